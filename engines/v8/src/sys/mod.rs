//! V8 10.2 (Debian's libnode108) for the proxy-wasm host, through a narrow C++ shim
//! (`shim/v8_shim.h`): the low-level half of the V8 engine.
//!
//! - [`init`]: the platform, once per process (never disposed: `V8::Dispose` hangs while a
//!   compiled module is alive).
//! - [`Module`]: compiled and validated once (V8's message on failure), shared by every VM and
//!   thread; its imports and exports with their types ([`ModuleInfo`], read with `wasmparser`
//!   since V8 10.2's JS API does not give them).
//! - [`Vm`]: one isolate per VM, usable from any thread (one at a time). Host functions are
//!   one callback, [`Host::call`], by table row. Calls of exported functions by a handle
//!   resolved once ([`Func`]), re-entrant from host functions ([`Caller::call`]).
//! - [`Interrupt`]: stops the running call from another thread (the CPU deadline).
//! - The memory limit per VM: the module's own memory becomes an import that each VM fills
//!   with a `WebAssembly.Memory` whose maximum is the VM's limit, and every `memory.grow` a call
//!   into the shim, which answers -1 past the limit and tells [`Host::memory_refused`]. One
//!   compiled module serves every limit.
//!
//! This layer knows nothing of proxy-wasm: rows are numbers, imports are names. It is the part
//! a backend on the `v8` crate would replace, keeping these types.

pub(crate) mod ffi;
mod module;
mod vm;
pub mod wasm;

use std::sync::OnceLock;

pub use module::{Module, GROW_IMPORT, MEMORY_IMPORT, RESERVED_MODULE};
pub use vm::{CallError, Caller, Func, FuncImport, Host, Interrupt, Unwind, Vm};
pub use wasm::{Export, ExternType, Import, MemoryDecl, MemorySource, ModuleInfo};

/// How V8 bounds-checks guest memory accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrapHandler {
    /// Explicit bounds checks in the generated code; no signal handler (the default).
    #[default]
    Off,
    /// Guard regions and V8's own SIGSEGV handler. It gives up for good after one fault it does
    /// not own (restoring the handler before it), so another engine's signal-based traps in the
    /// same process break V8's later ones: only for a process without another engine.
    V8,
    /// Guard regions and the shim's SIGSEGV handler, which asks V8 first and hands every other
    /// fault to the handler installed before it (Wasmtime's, for example), each time.
    Chained,
}

/// Process-wide V8 settings, applied by the first [`init`] (or by the first compile with the
/// defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// V8 command-line flags, for example `--no-liftoff`.
    pub flags: String,
    /// The bounds-check mode.
    pub trap_handler: TrapHandler,
}

impl Default for Config {
    /// No flags; [`TrapHandler::Off`]: explicit bounds checks, no signal handler, so nothing
    /// another library does with SIGSEGV can break V8 (measured no slower, see the README).
    fn default() -> Self {
        Config { flags: String::new(), trap_handler: TrapHandler::Off }
    }
}

/// Why V8 could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The platform did not start: the shim's message.
    Platform(String),
    /// V8 refused the bytes: its message, for example
    /// `CompileError: WebAssembly.Module(): expected magic word 00 61 73 6d, found ...`.
    Compile(String),
    /// The module uses something this engine does not support, and why.
    Unsupported(String),
    /// V8 could not make the VM's isolate.
    Vm(String),
    /// Instantiation failed: V8's `LinkError` for a missing import, or the start function's
    /// trap.
    Instantiate(CallError),
    /// The module's memory starts larger than the VM's limit.
    MemoryLimit {
        /// The initial memory the module declares, in bytes.
        initial_bytes: u64,
        /// The VM's limit, in bytes.
        limit_bytes: u64,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Platform(m) => write!(f, "V8 did not start: {m}"),
            Error::Compile(m) => write!(f, "V8 refused the module: {m}"),
            Error::Unsupported(m) => write!(f, "not supported on V8 10.2: {m}"),
            Error::Vm(m) => write!(f, "V8 could not create the VM: {m}"),
            Error::Instantiate(e) => write!(f, "instantiation failed: {e}"),
            Error::MemoryLimit { initial_bytes, limit_bytes } => write!(
                f,
                "the module's memory starts at {initial_bytes} bytes, over the VM's limit of {limit_bytes} bytes"
            ),
        }
    }
}

impl std::error::Error for Error {}

static PLATFORM: OnceLock<Result<Config, String>> = OnceLock::new();

/// Starts V8 for this process with `config`. The first call (or the first [`Module::compile`]
/// or [`Vm::new`], with [`Config::default`]) decides; later calls answer `Ok` only if they
/// ask for the same settings, and `Err` naming the settings in force otherwise.
pub fn init(config: Config) -> Result<(), Error> {
    let result = PLATFORM.get_or_init(|| {
        let mode = match config.trap_handler {
            TrapHandler::Off => 0,
            TrapHandler::V8 => 1,
            TrapHandler::Chained => 2,
        };
        let api = ffi::shim()?;
        let mut error = ffi::v8s_message::empty();
        // SAFETY: the flags are a valid (pointer, length) pair for the call; `error` is a valid
        // out-parameter. The shim runs its initialisation once (std::call_once).
        let status = unsafe { (api.platform_init)(config.flags.as_ptr().cast(), config.flags.len(), mode, &mut error) };
        if status == ffi::V8S_OK { Ok(config.clone()) } else { Err(error.take()) }
    });
    match result {
        Ok(in_force) if *in_force == config => Ok(()),
        Ok(in_force) => Err(Error::Platform(format!("V8 already runs with {in_force:?}; asked for {config:?}"))),
        Err(m) => Err(Error::Platform(m.clone())),
    }
}

/// Whether V8 runs in this process (started by [`init`] or at the first use).
pub fn running() -> bool {
    matches!(PLATFORM.get(), Some(Ok(_)))
}

/// Starts V8 with the defaults unless it runs already (with whatever settings); the shim's API
/// once it runs.
fn platform() -> Result<&'static ffi::Shim, Error> {
    if PLATFORM.get().is_none() {
        // Another thread may win with other settings: whatever runs then is fine here.
        let _ = init(Config::default());
    }
    match PLATFORM.get() {
        Some(Ok(_)) => ffi::shim().map_err(Error::Platform),
        Some(Err(m)) => Err(Error::Platform(m.clone())),
        None => Err(Error::Platform("V8 was not initialised".into())),
    }
}
