//! [`V8Engine`]: V8 set up once per process, compiling modules.

use std::sync::Arc;

use proxy_wasm_host::{Capabilities, Engine, Error, Module};

use crate::module::V8Module;
use crate::sys;
use crate::trap::NAME;

/// How V8 is set up. One setting holds for the whole process: V8 starts once, at the first
/// engine, and a later engine asking for other settings fails, naming those in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V8Config {
    /// V8 command-line flags, for example `--no-liftoff` (default none).
    pub flags: String,
    /// How V8 bounds-checks guest memory (default [`sys::TrapHandler::Off`]: explicit checks, no
    /// signal handler, so other engines' handlers in the process cannot break it; measured no
    /// slower).
    pub trap_handler: sys::TrapHandler,
}

/// The V8 engine: compiles modules, which then make instances (one isolate each).
///
/// Cloning is cheap and every clone is the same engine; it is `Send + Sync` and used from any
/// thread.
#[derive(Clone, Debug)]
pub struct V8Engine {
    _private: (),
}

impl V8Engine {
    /// Starts V8 with `config` if it has not started. Fails when the shim or libnode cannot be
    /// loaded (the message says where libnode was looked for and which command installs it), or
    /// V8 already runs with other settings.
    pub fn new(config: V8Config) -> Result<Self, Error> {
        sys::init(sys::Config { flags: config.flags, trap_handler: config.trap_handler })
            .map_err(|e| Error::Instantiate { engine: NAME, message: format!("cannot set up V8: {e}") })?;
        Ok(V8Engine { _private: () })
    }
}

impl Default for V8Engine {
    /// An engine with [`V8Config::default`], or one sharing whatever settings V8 already runs with.
    ///
    /// # Panics
    /// If V8 cannot start (the shim or libnode cannot be loaded).
    fn default() -> Self {
        match V8Engine::new(V8Config::default()) {
            Ok(engine) => engine,
            Err(_) if sys::running() => V8Engine { _private: () },
            Err(e) => panic!("{e}"),
        }
    }
}

impl Engine for V8Engine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            memory_limit: true,
            interrupt: true,
            // Not implemented: V8 10.2 serializes a compiled module, but loads one back only
            // through `WasmStreaming::SetCompiledModuleBytes`, inside the callback of a JS
            // `WebAssembly.compileStreaming`, with the original bytes too and an event loop to
            // settle its promise; the shim has none of that.
            precompiled: false,
            // Each instance is a new isolate (about 2-3 ms).
            cheap_clone: false,
            sandboxed: true,
        }
    }

    fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        let module = sys::Module::compile(bytes).map_err(|e| {
            let message = match e {
                sys::Error::Compile(message) => message,
                other => other.to_string(),
            };
            Error::Compile { engine: NAME, message }
        })?;
        Ok(Arc::new(V8Module::new(module)))
    }
}
