//! The engine SDK: everything an engine crate implements and everything the host gives it, in
//! one place. An engine crate only moves values and bytes between its engine and this crate;
//! lifecycle, policy, limits bookkeeping and every host function live here.
//!
//! # Adding an engine, in order
//!
//! 1. **[`Engine`]**: a name, its [`Capabilities`] (report only what it enforces), and
//!    [`Engine::compile`], which receives a *binary* module (the host parses the text format
//!    itself) and validates it, with the engine's own message in [`Error::Compile`].
//! 2. **[`Module`]**: its imports and exports with their function types, then
//!    [`check_imports`] before linking anything (an engine that would load a module with an
//!    unknown or mistyped import must refuse it here, with the same error as every engine), and
//!    [`callback_exports`] once per module for the verdict on each callback export.
//! 3. **Host functions**, from the ABI table, one of two ways: typed trampolines expanded from
//!    [`abi::for_each_host_function!`] calling [`hostcalls`](crate::hostcalls)`::<name>` (Rust
//!    engines), or one raw trampoline per row calling [`call_row`] with the row index
//!    and the arguments as `u64`s (C-API engines, the Null VM). Either way the host function
//!    gets a [`HostCx`](crate::HostCx): bounds-checked guest memory, the VM's
//!    [`VmHost`], and the re-entrant guest allocator (the callback
//!    [`VmHost::allocator`](crate::VmHost::allocator) names, chosen by [`allocator_callback`]).
//!    A host function's [`Trap`] must stop the guest and come back out of
//!    [`Instance::call`] unchanged.
//! 4. **[`Instance`]** (an `unsafe` trait: see its safety contract): keeps the [`VmHost`] it
//!    is made with at a fixed address for its whole life (in a [`HostBox`], or in engine state
//!    that is already on the heap and reached by raw pointer) and gives it out through
//!    [`Instance::host_ptr`]; its host functions reach it only during a call, itself only
//!    with `&mut self`.
//!    [`Module::instantiate`] applies [`VmHost::limits`](crate::VmHost::limits)
//!    (memory: past the limit `memory.grow` answers -1, and the engine tells the host with
//!    [`VmHost::note_memory_refused`](crate::VmHost::note_memory_refused)), and resolves each
//!    callback of the guest's ABI version once (at instantiation, or on its first call: a VM
//!    that never sees a stream then never looks up the stream callbacks). [`Instance::has`]
//!    answers which it has, and [`Instance::exported`] all of them at once if the engine keeps
//!    the set. [`Instance::call`] checks its arguments ([`callback_args`] or
//!    [`check_arg_count`]), clears a pending interrupt, calls, and settles the outcome through a
//!    [`TrapLatch`] so that no guest code runs after a trap (an engine whose handles carry
//!    their arity matches on it and answers a mismatch with [`arity_mismatch`]).
//! 5. **[`Interrupt`]**: stops the running call from another thread with a
//!    [`TrapKind::Deadline`](crate::TrapKind::Deadline) trap. The host's one [`Watchdog`] arms
//!    the CPU deadline around every call and fires the interrupt; an engine keeps no deadline
//!    thread of its own (it may keep a cheaper internal mechanism where it measures faster).
//! 6. **Threads** (below), per-thread set-up inside the crate.
//! 7. **Tests**: `proxy-wasm-engine-tests`' `engine_contract_tests!` in the crate's
//!    `tests/engine.rs`, the engine in the harness's list of engines (so that the conformance
//!    suite, the end-to-end tests and the benches run on it), and a README engine-table row.
//!
//! # Threads
//!
//! - An [`Engine`] and its [`Module`]s are used from any thread at once (`Send + Sync`).
//! - An [`Instance`] is used by one thread at a time (`Send`, `&mut self`), but by any thread:
//!   made on one thread, called on a second, then on the first again; and from a thread that
//!   has never run the engine before. A proxy runs one VM per worker thread and moves nothing
//!   between them, yet an embedder may build VMs on its main thread and hand them to workers.
//!   An engine that needs per-thread set-up (a thread environment, an isolate lock) does it
//!   inside its crate, lazily, on the calling thread; nothing outside the crate knows.
//! - An [`Interrupt`] is called from any thread, at any time, also after its instance is gone
//!   (it must then do nothing).
//! - Host functions run on the thread of the [`Instance::call`] that reached them, and may call
//!   the guest again through [`HostCx::allocate`](crate::HostCx::allocate) on that thread.

use std::sync::Arc;
use std::time::Duration;

use abi::Callback;

use crate::{CallbackSet, Error, Trap, VmHost};

mod call;
mod checks;
mod handles;
mod host_box;
mod watchdog;

pub use crate::hostcalls::call_row;
pub use call::{arity_mismatch, callback_args, check_arg_count, trap_location, TrapLatch, MAX_CALLBACK_PARAMS};
pub use handles::CallbackHandles;
pub use host_box::{HostBox, HostPtr};
pub use checks::{
    allocator_callback, callback_exports, check_callback_export, check_imports, exports_memory, missing_imports, START_EXPORT,
};
pub use watchdog::{Armed, DeadlineSlot, Watchdog};

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
    /// The most bytes of linear memory the instance may have: past it `memory.grow` answers -1,
    /// as the Wasm specification and the C++ host do, and the host notes the refusal.
    pub max_memory_bytes: u64,
    /// The longest one callback may run (wall-clock time) before it is interrupted and the VM
    /// fails; `None` for no deadline.
    pub call_deadline: Option<Duration>,
}

impl Limits {
    /// The default CPU deadline of one callback: 5 seconds. Far above what any plugin needs for
    /// one callback, start functions included, even interpreted on a loaded machine; short
    /// enough that a plugin looping forever fails in plain sight instead of hanging its worker.
    /// (Envoy sets no deadline; set `call_deadline: None` for the same.)
    pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(5);
}

impl Default for Limits {
    /// 1 GiB of memory, as the C++ host, and the [default deadline](Self::DEFAULT_CALL_DEADLINE).
    fn default() -> Self {
        Limits { max_memory_bytes: 1 << 30, call_deadline: Some(Limits::DEFAULT_CALL_DEADLINE) }
    }
}

/// A Wasm engine: compiles modules. Cheap to share (`Arc`), used from any thread.
pub trait Engine: Send + Sync + 'static {
    /// Its name at run time, for example `wasmtime`.
    fn name(&self) -> &'static str;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// What the engine's compiled code depends on besides the module, for the
    /// [`PrecompiledCache`](crate::PrecompiledCache) key: the engine library's version, the
    /// engine crate's, and any configuration that changes the machine code. Empty (the default)
    /// means "do not cache". An engine crate must make it change whenever its compiled code
    /// would.
    fn version(&self) -> String {
        String::new()
    }

    /// Validates and compiles a binary module (the host parses the text format before it gets
    /// here). The error says why the bytes are not a valid module, in the engine's words.
    fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error>;

    /// Loads a module from [`Module::serialize`] output, if the engine can.
    ///
    /// # Safety
    /// The bytes are run as machine code without validation: they must come from
    /// [`Module::serialize`] of the same engine (version and configuration) and have been kept
    /// out of anyone else's reach since (for example a cache file only this process writes).
    /// Untrusted input goes through [`Engine::compile`]. In the host, the
    /// [`PrecompiledCache`](crate::PrecompiledCache) is the one caller, under its trust rule.
    unsafe fn deserialize(&self, _bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
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
    /// table, with [`VmHost::limits`] applied (a memory limit below the module's initial memory
    /// is an [`Error::Instantiate`] naming both). Callbacks of `host.abi_version()` are resolved
    /// here, once.
    ///
    /// Runs no guest code but a Wasm start section, if the module has one (under the call
    /// deadline where the engine can interrupt it): the host calls `_initialize` / `_start`
    /// itself.
    fn instantiate(&self, host: VmHost) -> Result<Box<dyn Instance>, Error>;

    /// Its precompiled form, if the engine supports [`Engine::deserialize`].
    fn serialize(&self) -> Option<Vec<u8>> {
        None
    }
}

/// A live instance: one VM on one thread at a time.
///
/// # Safety
/// The [`Vm`](crate::Vm) dereferences [`host_ptr`](Self::host_ptr) between calls, so an
/// implementation promises, for every call of it:
/// - it points to the one [`VmHost`] the instance was made with, alive and at that address for
///   as long as the instance lives (moving the instance does not move it: keep it in a
///   [`HostBox`], or in engine state that is already on the heap and reached by raw pointer);
/// - the instance makes references to that state only while it has `&mut self`, or for its
///   host functions during [`call`](Self::call), and none outlives the borrow it was made in;
/// - every pointer to it derives from the heap allocation's own raw pointer, never from a
///   `Box` or a `&mut` that is used again afterwards (which would invalidate the copies).
pub unsafe trait Instance: Send {
    /// Whether the module exports `callback` with the signature of its ABI version.
    fn has(&self, callback: Callback) -> bool;

    /// Every callback [`has`](Self::has) answers true for. The host asks once per VM, so that
    /// its check before each callback is a bit test; the default asks `has` of every row of the
    /// callback table, and an engine that keeps the set already answers with it.
    fn exported(&self) -> CallbackSet {
        let mut set = CallbackSet::EMPTY;
        for row in abi::CALLBACKS.iter().filter(|row| self.has(row.callback)) {
            set.insert(row.callback);
        }
        set
    }

    /// Calls `callback` with `args` (one per parameter in its table row, widened to `u64`;
    /// booleans are 0 or 1) and returns its result widened to `u64` (0 when it has none).
    ///
    /// An interrupt that landed while no call ran is forgotten when the call starts. A trap, an
    /// interrupt ([`TrapKind::Deadline`](crate::TrapKind::Deadline)) or a host function's
    /// [`Trap`] comes back as `Err`; after that the instance refuses every call
    /// ([`TrapLatch`]). The host arms the CPU deadline around the call
    /// ([`Watchdog`]); the engine only answers the interrupt.
    fn call(&mut self, callback: Callback, args: &[u64]) -> Result<u64, Trap>;

    /// Where the instance keeps its VM's host state (see the trait's safety contract): the
    /// [`Vm`](crate::Vm) asks once and keeps it.
    fn host_ptr(&mut self) -> HostPtr;

    /// The instance's host state, for as long as this borrow of the instance. Provided over
    /// [`host_ptr`](Self::host_ptr); an engine does not override it.
    fn host(&mut self) -> &mut VmHost {
        let ptr = self.host_ptr();
        // SAFETY: the trait's contract: the state is alive while the instance is, and the
        // instance holds no reference to it outside a borrow of its own; `&mut self` means no
        // call runs and the caller holds no other reference, for as long as the result lives.
        unsafe { ptr.get() }
    }

    /// The current size of linear memory in bytes.
    fn memory_size(&mut self) -> u64;

    /// A handle that interrupts this instance's running call from another thread, if the engine
    /// can.
    fn interrupt_handle(&self) -> Option<Arc<dyn Interrupt>> {
        None
    }
}

/// Interrupts a running call from another thread; the call fails with a
/// [`TrapKind::Deadline`](crate::TrapKind::Deadline) trap. Called by the [`Watchdog`] when a call
/// passes its deadline, or by an embedder (shutting down, say).
pub trait Interrupt: Send + Sync {
    /// Interrupts the call running now, if any; the guest stops at its next check (a function
    /// entry or loop header, typically). While no call runs, the interrupt waits in the
    /// engine's flag and the next call clears it as it starts. Does nothing once the instance
    /// is gone. Must be quick and must not block on the running call.
    fn interrupt(&self);
}
