//! Stopping a running guest: the stop-check middleware compiled into every module and the
//! per-instance [`Stop`] state that [`WasmerInterrupt`] raises from other threads (the host's
//! watchdog calls it when a call passes its deadline).
//!
//! Wasmer 7.4 offers two ways to stop a guest from outside: its metering middleware (a budget of
//! operators, decremented in every basic block, so a CPU-time deadline has to be guessed as an
//! operator count, and nothing can lower the budget from another thread) and the
//! `experimental-host-interrupt` feature (a `SIGUSR1` to the thread running the store: it takes
//! over a signal proxies use, misses interrupts that land in host code, and panics in the signal
//! handler on a stray `SIGUSR1`). Neither fits, so this engine does what Wasmtime's epochs do:
//! - [`StopCheck`] adds one mutable `i32` global, the *stop flag*, to each module it compiles, and
//!   checks it at every function entry, every loop header and after every `memory.grow`: when it
//!   is non-zero the guest executes `unreachable`.
//! - [`Stop`] holds the address of that global in the instance, and whether it was raised. The
//!   instance's owner clears it when a call starts; [`WasmerInterrupt`] raises it from any
//!   thread.
//! - After a call traps, a raised flag turns the `unreachable` into a deadline trap.
//!
//! The same middleware also takes the module's start section out of instantiation: it clears
//! the module's start function and exports that function as [`START_EXPORT`] instead, so that
//! `wasmer::Instance::new` runs no guest code and the instance runs the start function itself
//! once the stop flag and the memory are in place (`instance::instantiate`), under the VM's call
//! deadline, with host functions that see the memory, as on the other engines. Wasmer offers no
//! hook between creating an instance and running its start function, and its `Instance::new`
//! runs the start function before it hands the instance over.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use proxy_wasm_host::Interrupt;
use wasmer::sys::{FunctionMiddleware, MiddlewareError, MiddlewareReaderState, ModuleMiddleware};
use wasmer::wasmparser::{BlockType, Operator};
use wasmer::{ExportIndex, GlobalInit, GlobalType, LocalFunctionIndex, ModuleInfo, Mutability, Type};

/// The export under which [`StopCheck`] exposes the stop flag. Hidden from
/// [`Module::exports`](proxy_wasm_host::Module::exports).
pub(crate) const STOP_EXPORT: &str = "__proxy_wasm_host_stop";

/// The export under which [`StopCheck`] exposes the module's start function, which it takes out
/// of the start section (the host's one reserved name for it).
pub(crate) use proxy_wasm_host::engine::START_EXPORT;

/// The middleware that compiles the stop checks into a module and turns its start section into
/// the export [`START_EXPORT`]. It keeps the indexes of the globals it added to the module being
/// compiled, so an engine compiles one module at a time.
#[derive(Debug)]
pub(crate) struct StopCheck {
    /// The stop flag's global index in the module being compiled; `u32::MAX` before any.
    global: AtomicU32,
    /// A scratch global each check stores to first (see [`FunctionStopCheck::check`]).
    scratch: AtomicU32,
}

impl Default for StopCheck {
    fn default() -> Self {
        StopCheck { global: AtomicU32::new(u32::MAX), scratch: AtomicU32::new(u32::MAX) }
    }
}

impl StopCheck {
    /// Forgets the previous module, before the next compile.
    pub(crate) fn reset(&self) {
        self.global.store(u32::MAX, Ordering::SeqCst);
        self.scratch.store(u32::MAX, Ordering::SeqCst);
    }
}

impl ModuleMiddleware for StopCheck {
    fn generate_function_middleware<'a>(&self, _: LocalFunctionIndex) -> Box<dyn FunctionMiddleware<'a> + 'a> {
        Box::new(FunctionStopCheck {
            global: self.global.load(Ordering::SeqCst),
            scratch: self.scratch.load(Ordering::SeqCst),
            started: false,
        })
    }

    fn transform_module_info(&self, info: &mut ModuleInfo) -> Result<(), MiddlewareError> {
        let index = info.globals.push(GlobalType::new(Type::I32, Mutability::Var));
        info.global_initializers.push(GlobalInit::I32Const(0));
        info.exports.insert(STOP_EXPORT.to_string(), ExportIndex::Global(index));
        let scratch = info.globals.push(GlobalType::new(Type::I32, Mutability::Var));
        info.global_initializers.push(GlobalInit::I32Const(0));
        self.global.store(index.as_u32(), Ordering::SeqCst);
        self.scratch.store(scratch.as_u32(), Ordering::SeqCst);
        // The start section: no longer run by `wasmer::Instance::new`, but exported for the
        // instance to call (`shift_remove` keeps the order of the module's other exports).
        info.exports.shift_remove(START_EXPORT);
        if let Some(start) = info.start_function.take() {
            info.exports.insert(START_EXPORT.to_string(), ExportIndex::Function(start));
        }
        Ok(())
    }
}

/// [`StopCheck`] for one function.
#[derive(Debug)]
struct FunctionStopCheck {
    global: u32,
    scratch: u32,
    /// Whether the entry check was emitted.
    started: bool,
}

impl FunctionStopCheck {
    /// `global.set $scratch (i32.const 0)`, then `if (global.get $stop) { unreachable }`.
    ///
    /// The store matters to an optimising compiler: without a store between them, Cranelift's
    /// redundant-load elimination treats every load of the flag in a function as the same value
    /// (nothing in the function writes it), so a loop header's check would read the flag once,
    /// at function entry, and an endless loop would never stop. A store to a global before each
    /// load gives every check its own memory state, so each one really reads the flag.
    fn check<'a>(&self, state: &mut MiddlewareReaderState<'a>) {
        state.extend(&[
            Operator::I32Const { value: 0 },
            Operator::GlobalSet { global_index: self.scratch },
            Operator::GlobalGet { global_index: self.global },
            Operator::If { blockty: BlockType::Empty },
            Operator::Unreachable,
            Operator::End,
        ]);
    }
}

impl<'a> FunctionMiddleware<'a> for FunctionStopCheck {
    fn feed(&mut self, operator: Operator<'a>, state: &mut MiddlewareReaderState<'a>) -> Result<(), MiddlewareError> {
        if self.global == u32::MAX || self.scratch == u32::MAX {
            return Err(MiddlewareError::new("stop check", "the stop flag globals were not added to the module"));
        }
        if !self.started {
            self.started = true;
            self.check(state);
        }
        let check_after = matches!(operator, Operator::Loop { .. } | Operator::MemoryGrow { .. });
        state.push_operator(operator);
        if check_after {
            self.check(state);
        }
        Ok(())
    }
}

/// The address of an instance's stop flag.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlagPtr(std::ptr::NonNull<u32>);

// SAFETY: the pointer is only dereferenced through `FlagPtr::set`, as an atomic, while the
// instance that owns the global is alive (see `Stop::detach`); sending or sharing the address
// itself is harmless.
unsafe impl Send for FlagPtr {}
// SAFETY: as above.
unsafe impl Sync for FlagPtr {}

impl FlagPtr {
    /// # Safety
    /// `ptr` must be the 4-byte aligned value slot of an `i32` global that stays alive until
    /// the `Stop` holding this pointer is detached.
    pub(crate) unsafe fn new(ptr: std::ptr::NonNull<u32>) -> Self {
        FlagPtr(ptr)
    }

    /// Stores `value` in the flag.
    fn set(self, value: u32) {
        // SAFETY: `FlagPtr::new`'s contract: the slot is alive and aligned. Every host-side access
        // is atomic; compiled guest code reads it with a plain load, as Wasmtime's epoch check
        // does, which sees either value.
        unsafe { AtomicU32::from_ptr(self.0.as_ptr()) }.store(value, Ordering::Release);
    }
}

/// An instance's stop state, shared with its interrupt handle.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    /// Whether the flag was raised since the running call started.
    raised: AtomicBool,
    /// The instance's flag, once instantiated and until the instance is dropped.
    flag: Mutex<Option<FlagPtr>>,
}

impl Stop {
    fn flag(&self) -> MutexGuard<'_, Option<FlagPtr>> {
        // The lock guards plain data that is valid at every point: a poisoned lock is usable.
        self.flag.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches the instance's flag.
    pub(crate) fn attach(&self, flag: FlagPtr) {
        *self.flag() = Some(flag);
    }

    /// Detaches the flag: nothing writes it after this returns. Called before the instance drops.
    pub(crate) fn detach(&self) {
        *self.flag() = None;
    }

    /// Raises the flag: the running call stops at its next check.
    fn raise(&self) {
        let flag = self.flag();
        self.raised.store(true, Ordering::Release);
        if let Some(flag) = *flag {
            flag.set(1);
        }
    }

    /// Whether the flag was raised since the running call started.
    pub(crate) fn raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Lowers the flag, from the owner's thread, when a call starts: an earlier interrupt is
    /// forgotten.
    pub(crate) fn clear(&self, flag: FlagPtr) {
        self.raised.store(false, Ordering::Release);
        flag.set(0);
    }
}

/// Interrupts a [`WasmerInstance`](crate::WasmerInstance)'s running call from any thread: the
/// call stops at its next function entry or loop header with a deadline trap. An interrupt while
/// no call runs is forgotten when the next call starts. The host's watchdog calls it when a call
/// passes its deadline.
pub struct WasmerInterrupt {
    pub(crate) stop: Arc<Stop>,
}

impl Interrupt for WasmerInterrupt {
    fn interrupt(&self) {
        self.stop.raise();
    }
}
