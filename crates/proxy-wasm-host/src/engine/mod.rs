//! The narrow interface every engine implements: [`Engine`], [`Module`], [`Instance`].
//!
//! An engine crate compiles bytes, reports imports and exports, instantiates with the host
//! functions of the ABI table (expanded with [`abi::for_each_host_function!`], each calling the
//! one implementation in [`crate::hostcalls`]), calls callbacks by a handle resolved once per
//! instance, and gives host functions a [`HostCx`](crate::HostCx): guest memory plus the
//! re-entrant guest allocator. Everything else (lifecycle, policy, host-function logic) is the
//! host crate's.

use std::sync::Arc;
use std::time::Duration;

use abi::Callback;

use crate::{Error, Trap, VmHost};

/// What an engine can do. Capabilities an engine lacks are reported, never faked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// It enforces [`Limits::max_memory_bytes`].
    pub memory_limit: bool,
    /// It enforces [`Limits::call_deadline`] and can be interrupted from another thread.
    pub interrupt: bool,
    /// It can serialize a compiled module and load it back.
    pub precompiled: bool,
    /// Instantiating another instance of a compiled module is cheap (pooled or copy-on-write).
    pub cheap_clone: bool,
    /// It runs guest code in a sandbox (false only for the Null VM).
    pub sandboxed: bool,
}

/// Resource limits for one VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of linear memory the instance may have (`memory.grow` beyond fails).
    pub max_memory_bytes: u64,
    /// The longest one callback may run before it is interrupted and the VM fails.
    pub call_deadline: Option<Duration>,
}

impl Default for Limits {
    /// 1 GiB of memory, as the C++ host; no CPU deadline.
    fn default() -> Self {
        Limits { max_memory_bytes: 1 << 30, call_deadline: None }
    }
}

/// A Wasm engine: compiles modules. Cheap to share (`Arc`), used from any thread.
pub trait Engine: Send + Sync + 'static {
    /// Its name at run time, for example `wasmtime`.
    fn name(&self) -> &'static str;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Validates and compiles a module. The error says why the bytes are not a valid module.
    fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error>;

    /// Loads a module from [`Module::serialize`] output, if the engine can.
    fn deserialize(&self, _bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        Err(Error::Unsupported { engine: self.name(), what: "precompiled modules" })
    }
}

/// The kind of an import or export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternKind {
    /// A function, with its Wasm parameter and result types (`"i32"`, `"i64"`, ...).
    Func {
        /// Parameter types.
        params: Vec<&'static str>,
        /// Result types.
        results: Vec<&'static str>,
    },
    /// A linear memory.
    Memory,
    /// A table.
    Table,
    /// A global.
    Global,
    /// Something else (a tag, for example).
    Other,
}

impl ExternKind {
    /// The function type of a table row: its parameter kinds and result kind as Wasm types.
    pub fn func(params: impl IntoIterator<Item = abi::Kind>, result: abi::Kind) -> Self {
        ExternKind::Func {
            params: params.into_iter().filter_map(abi::Kind::wasm_type).collect(),
            results: result.wasm_type().into_iter().collect(),
        }
    }

    /// How messages write it: `(i32, i32) -> i32` for a function (`()` without a result),
    /// `a memory`, `a table`, ...
    pub fn describe(&self) -> String {
        match self {
            ExternKind::Func { params, results } => {
                let results = match results.as_slice() {
                    [] => "()".to_string(),
                    [one] => one.to_string(),
                    many => format!("({})", many.join(", ")),
                };
                format!("({}) -> {results}", params.join(", "))
            }
            ExternKind::Memory => "a memory".into(),
            ExternKind::Table => "a table".into(),
            ExternKind::Global => "a global".into(),
            ExternKind::Other => "something other than a function".into(),
        }
    }
}

/// One import of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The module name, for example `env`.
    pub module: String,
    /// The field name, for example `proxy_log`.
    pub name: String,
    /// What is imported.
    pub kind: ExternKind,
}

/// One export of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// Its name.
    pub name: String,
    /// What is exported.
    pub kind: ExternKind,
}

/// A compiled module. Shared by every VM made from it (`Arc`), used from any thread.
pub trait Module: Send + Sync {
    /// Its imports, in order.
    fn imports(&self) -> &[Import];

    /// Its exports, in order.
    fn exports(&self) -> &[Export];

    /// Makes a new instance whose store holds `host`, linked to every host function of the ABI
    /// table, with `limits` applied. Callbacks of `host.abi_version()` are resolved here, once.
    ///
    /// Does not run any guest code: the host calls `_initialize` / `_start` itself.
    fn instantiate(&self, host: VmHost, limits: &Limits) -> Result<Box<dyn Instance>, Error>;

    /// Its precompiled form, if the engine supports [`Engine::deserialize`].
    fn serialize(&self) -> Option<Vec<u8>> {
        None
    }
}

/// A live instance: one VM on one thread at a time.
pub trait Instance: Send {
    /// Whether the module exports `callback` with the signature of its ABI version.
    fn has(&self, callback: Callback) -> bool;

    /// Calls `callback` with `args` (one per parameter in its table row, widened to `u64`;
    /// booleans are 0 or 1) and returns its result widened to `u64` (0 when it has none).
    ///
    /// The engine applies the per-call deadline. A trap, an exceeded deadline or a host
    /// function's [`Trap`] comes back as `Err`; the instance must not be called again after
    /// that, except to drop it.
    fn call(&mut self, callback: Callback, args: &[u64]) -> Result<u64, Trap>;

    /// The host state held in the instance's store.
    fn host(&mut self) -> &mut VmHost;

    /// The current size of linear memory in bytes.
    fn memory_size(&mut self) -> u64;

    /// A handle that interrupts this instance's running call from another thread, if the engine
    /// can.
    fn interrupt_handle(&self) -> Option<Arc<dyn Interrupt>> {
        None
    }
}

/// The most parameters a callback has (`proxy_on_http_call_response`).
pub const MAX_CALLBACK_PARAMS: usize = 5;

/// The arguments of a call of `callback` for a wasm32 guest: one per parameter of its table
/// row (`Err` otherwise, naming both counts), each narrowed to the `i32` every callback
/// parameter is in Wasm (the low 32 bits), the rest 0. What every Wasm engine's
/// [`Instance::call`] does before the call.
pub fn callback_args(callback: Callback, args: &[u64]) -> Result<[i32; MAX_CALLBACK_PARAMS], Trap> {
    check_arg_count(callback, args)?;
    let mut a = [0i32; MAX_CALLBACK_PARAMS];
    for (slot, arg) in a.iter_mut().zip(args) {
        *slot = *arg as i32;
    }
    Ok(a)
}

/// Refuses a call of `callback` with another number of arguments than its table row's
/// parameters, naming both counts. Every engine's [`Instance::call`] checks it first.
pub fn check_arg_count(callback: Callback, args: &[u64]) -> Result<(), Trap> {
    let wanted = callback.info().params.len();
    if args.len() != wanted || wanted > MAX_CALLBACK_PARAMS {
        return Err(Trap::guest(format!("`{callback}` takes {wanted} arguments, the host passed {}", args.len())));
    }
    Ok(())
}

/// What every engine's [`Instance::call`] keeps between calls: the first trap. Once there is
/// one, the instance refuses every call, so no guest code runs in a failed VM again.
#[derive(Debug, Default)]
pub struct TrapLatch(Option<String>);

impl TrapLatch {
    /// `Err` once the instance has trapped, naming that trap.
    pub fn check(&self) -> Result<(), Trap> {
        match &self.0 {
            Some(why) => Err(Trap::guest(format!("VM failed earlier: {why}"))),
            None => Ok(()),
        }
    }

    /// The outcome of a call that ran: its own trap; else `poisoned`, a trap the guest allocator
    /// raised inside a host function during the call, which fails the call even if the host
    /// function swallowed it; else its value. A trap is latched.
    pub fn settle(&mut self, result: Result<u64, Trap>, poisoned: Option<Trap>) -> Result<u64, Trap> {
        let result = match (result, poisoned) {
            (Err(trap), _) | (Ok(_), Some(trap)) => Err(trap),
            (Ok(value), None) => Ok(value),
        };
        if let Err(trap) = &result {
            self.0 = Some(trap.to_string());
        }
        result
    }
}

/// Interrupts a running call from another thread; the call fails with a deadline trap.
pub trait Interrupt: Send + Sync {
    /// Interrupts the call running now, if any.
    fn interrupt(&self);
}
