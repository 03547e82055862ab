//! [`WasmerEngine`]: one Wasmer engine with its compiler, stop-check middleware and
//! memory-limiting tunables.

use std::sync::{Arc, Mutex};

use proxy_wasm_host::{Capabilities, Engine, Error, Module};
use wasmer::sys::{CompilerConfig, NativeEngineExt};

use crate::limits::LimitingTunables;
use crate::module::WasmerModule;
use crate::shared::Shared;
use crate::stop::StopCheck;

/// Which Wasmer compiler turns Wasm into machine code; each has a Cargo feature of this crate.
///
/// Wasmer 7.4.x pins Cranelift at exactly 0.135.0, which Wasmtime 48.0.0 also uses: the
/// workspace keeps the two on that one Cranelift (`cargo tree -d` shows no second one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compiler {
    /// Cranelift (feature `cranelift`): an optimising compiler. Engine name `wasmer`.
    #[cfg(feature = "cranelift")]
    Cranelift,
    /// Singlepass (feature `singlepass`): compiles in one linear pass, fast to compile, slower
    /// code. Engine name `wasmer-singlepass`.
    #[cfg(feature = "singlepass")]
    Singlepass,
}

impl Compiler {
    /// The engine's name at run time with this compiler.
    pub const fn engine_name(self) -> &'static str {
        match self {
            #[cfg(feature = "cranelift")]
            Compiler::Cranelift => "wasmer",
            #[cfg(feature = "singlepass")]
            Compiler::Singlepass => "wasmer-singlepass",
        }
    }
}

/// How a [`WasmerEngine`] is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmerConfig {
    /// The compiler.
    pub compiler: Compiler,
}

impl WasmerConfig {
    /// The default configuration with `compiler`.
    pub fn new(compiler: Compiler) -> Self {
        WasmerConfig { compiler }
    }
}

/// The Wasmer engine: compiles modules, which then make instances.
///
/// Cloning is cheap (an `Arc`) and every clone is the same engine; it is `Send + Sync` and used
/// from any thread. The compiled modules and live instances it made keep it alive.
///
/// Modules are compiled one at a time per engine: the stop-check middleware keeps the index of
/// the global it adds to the module being compiled.
///
/// # Precompiled modules
/// [`Engine::deserialize`] loads machine code that Wasmer runs **without validating it**: give
/// it only bytes that [`Module::serialize`] of this crate produced with the same compiler and
/// Wasmer version, and that nobody could tamper with since, for example a cache file the proxy
/// itself wrote. Untrusted input must go through [`Engine::compile`].
#[derive(Clone)]
pub struct WasmerEngine {
    pub(crate) shared: Arc<Shared>,
}

impl WasmerEngine {
    /// An engine set up as `config` says.
    pub fn new(config: WasmerConfig) -> Self {
        let stop_check = Arc::new(StopCheck::default());
        let mut engine: wasmer::Engine = match config.compiler {
            #[cfg(feature = "cranelift")]
            Compiler::Cranelift => {
                let mut compiler = wasmer::sys::Cranelift::new();
                compiler.push_middleware(stop_check.clone());
                compiler.into()
            }
            #[cfg(feature = "singlepass")]
            Compiler::Singlepass => {
                let mut compiler = wasmer::sys::Singlepass::new();
                compiler.push_middleware(stop_check.clone());
                compiler.into()
            }
        };
        engine.set_tunables(LimitingTunables::new());
        let shared = Shared { engine, name: config.compiler.engine_name(), stop_check, compile_lock: Mutex::new(()) };
        WasmerEngine { shared: Arc::new(shared) }
    }

    /// An engine with the Cranelift compiler, named `wasmer`.
    #[cfg(feature = "cranelift")]
    pub fn cranelift() -> Self {
        WasmerEngine::new(WasmerConfig::new(Compiler::Cranelift))
    }

    /// An engine with the Singlepass compiler, named `wasmer-singlepass`.
    #[cfg(feature = "singlepass")]
    pub fn singlepass() -> Self {
        WasmerEngine::new(WasmerConfig::new(Compiler::Singlepass))
    }

    /// Compiles `bytes` into our module type.
    pub(crate) fn compile_module(&self, bytes: &[u8]) -> Result<WasmerModule, Error> {
        let module = {
            // A poisoned lock only means another compile panicked inside Wasmer; the middleware's
            // state is rewritten by the next compile anyway.
            let _one_at_a_time = self.shared.compile_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.stop_check.reset();
            wasmer::Module::new(&self.shared.engine, bytes)
        };
        let module = module.map_err(|e| Error::Compile { engine: self.shared.name, message: e.to_string() })?;
        Ok(WasmerModule::new(self.shared.clone(), module))
    }

    /// The Wasmer engine underneath, for example to run a baseline without the ABI layer. Modules
    /// it compiles carry the stop checks of this engine's middleware.
    pub fn wasmer(&self) -> &wasmer::Engine {
        &self.shared.engine
    }
}

/// The Wasmer release this crate runs (a test checks it against the workspace's Cargo.lock).
pub const WASMER_VERSION: &str = "7.4.2";

/// The revision of what the stop-check middleware (`stop.rs`) does to every module (the code it
/// adds to every function, the globals it adds, and its start section turned into an export):
/// bump it with any change to that, so that precompiled modules made with another revision are
/// never taken from a cache. Revision 2 takes the start section out of instantiation; a module
/// of revision 1 would run its start section inside `wasmer::Instance::new` again, outside the
/// call deadline.
pub const STOP_CHECKS_REVISION: u32 = 2;

impl Engine for WasmerEngine {
    fn name(&self) -> &'static str {
        self.shared.name
    }

    /// Wasmer's version and compiler, this crate's version, and the revision of the stop checks
    /// compiled into every module (`STOP_CHECKS_REVISION`).
    fn version(&self) -> String {
        format!(
            "wasmer {WASMER_VERSION} ({}), proxy-wasm-wasmer {}, stop checks r{STOP_CHECKS_REVISION}",
            self.shared.name,
            env!("CARGO_PKG_VERSION")
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { memory_limit: true, interrupt: true, precompiled: true, cheap_clone: false, sandboxed: true }
    }

    fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        Ok(Arc::new(self.compile_module(bytes)?))
    }

    /// Loads the output of [`Module::serialize`]. **Trusted bytes only**: see
    /// [`WasmerEngine`]'s docs.
    unsafe fn deserialize(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        // SAFETY: `Module::deserialize` is sound for bytes made by `Module::serialize` of a
        // compatible engine (Wasmer checks the header and version itself, and refuses other
        // bytes), which is this method's own safety contract (`Engine::deserialize`): the caller
        // vouches that the bytes are our own `serialize` output, kept out of reach of anyone else.
        let module = unsafe { wasmer::Module::deserialize(&self.shared.engine, bytes) }
            .map_err(|e| Error::Compile { engine: self.shared.name, message: e.to_string() })?;
        Ok(Arc::new(WasmerModule::new(self.shared.clone(), module)))
    }
}

#[cfg(test)]
mod version_tests {
    /// The Wasmer version the engine reports is the one Cargo built.
    #[test]
    fn the_reported_wasmer_version_is_the_locked_one() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
        let wanted = format!("name = \"wasmer\"\nversion = \"{}\"", super::WASMER_VERSION);
        assert!(lock.contains(&wanted), "Cargo.lock has another wasmer than {}", super::WASMER_VERSION);
    }
}
