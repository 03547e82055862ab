//! Stopping a running guest: the stop-check middleware compiled into every module, the
//! per-instance [`Stop`] state that other threads raise, and the engine's deadline [`Watchdog`].
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
//! - [`Stop`] holds the address of that global in the instance, and why it was raised. The
//!   instance's owner clears it when a call starts; [`WasmerInterrupt`] (any thread), the
//!   [`Watchdog`] (when a call passes its deadline) and the memory limiter raise it.
//! - After a call traps, a raised flag turns the `unreachable` into a deadline or memory-limit
//!   trap.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use proxy_wasm_host::{Interrupt, Trap};
use wasmer::sys::{FunctionMiddleware, MiddlewareError, MiddlewareReaderState, ModuleMiddleware};
use wasmer::wasmparser::{BlockType, Operator};
use wasmer::{ExportIndex, GlobalInit, GlobalType, LocalFunctionIndex, ModuleInfo, Mutability, Type};

/// The export under which [`StopCheck`] exposes the stop flag. Hidden from
/// [`Module::exports`](proxy_wasm_host::Module::exports).
pub(crate) const STOP_EXPORT: &str = "__proxy_wasm_host_stop";

/// Why the stop flag was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Reason {
    /// The call ran past its deadline.
    Deadline = 1,
    /// [`WasmerInterrupt::interrupt`].
    Interrupted = 2,
    /// Linear memory would have grown past the limit.
    MemoryLimit = 3,
}

/// The middleware that compiles the stop checks into a module. It keeps the indexes of the
/// globals it added to the module being compiled, so an engine compiles one module at a time.
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

/// An instance's stop state, shared with its interrupt handle, the watchdog and its memories.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    /// Why the flag was raised (a [`Reason`]), 0 while it is not.
    reason: AtomicU32,
    armed: Mutex<Armed>,
}

#[derive(Debug, Default)]
struct Armed {
    /// The instance's flag, once instantiated and until the instance is dropped.
    flag: Option<FlagPtr>,
    /// When the running call's deadline passes.
    deadline_at: Option<Instant>,
}

impl Stop {
    fn armed(&self) -> MutexGuard<'_, Armed> {
        // The lock guards plain data that is valid at every point: a poisoned lock is usable.
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches the instance's flag.
    pub(crate) fn attach(&self, flag: FlagPtr) {
        self.armed().flag = Some(flag);
    }

    /// Detaches the flag: nothing writes it after this returns. Called before the instance drops.
    pub(crate) fn detach(&self) {
        self.armed().flag = None;
    }

    /// Raises the flag for `reason`, unless it is raised already.
    pub(crate) fn raise(&self, reason: Reason) {
        let armed = self.armed();
        let _ = self.reason.compare_exchange(0, reason as u32, Ordering::AcqRel, Ordering::Acquire);
        if let Some(flag) = armed.flag {
            flag.set(1);
        }
    }

    /// Why the flag was raised, if it was.
    pub(crate) fn reason(&self) -> Option<Reason> {
        match self.reason.load(Ordering::Acquire) {
            1 => Some(Reason::Deadline),
            2 => Some(Reason::Interrupted),
            3 => Some(Reason::MemoryLimit),
            _ => None,
        }
    }

    /// Lowers the flag, from the owner's thread, when a call starts: an earlier interrupt is
    /// forgotten.
    pub(crate) fn clear(&self, flag: FlagPtr) {
        self.reason.store(0, Ordering::Release);
        flag.set(0);
    }

    fn set_deadline(&self, at: Option<Instant>) {
        self.armed().deadline_at = at;
    }

    /// Raises the flag if the running call's deadline has passed. The watchdog's check.
    fn check_deadline(&self, now: Instant) {
        let mut armed = self.armed();
        if armed.deadline_at.is_some_and(|at| now >= at) {
            armed.deadline_at = None;
            let _ = self.reason.compare_exchange(0, Reason::Deadline as u32, Ordering::AcqRel, Ordering::Acquire);
            if let Some(flag) = armed.flag {
                flag.set(1);
            }
        }
    }
}

/// Interrupts a [`WasmerInstance`](crate::WasmerInstance)'s running call from any thread: the
/// call stops at its next function entry or loop header with a deadline trap. An interrupt while
/// no call runs is forgotten when the next call starts.
pub struct WasmerInterrupt {
    pub(crate) stop: Arc<Stop>,
}

impl Interrupt for WasmerInterrupt {
    fn interrupt(&self) {
        self.stop.raise(Reason::Interrupted);
    }
}

/// The engine's deadline watchdog: a thread, started by the first call that has a deadline, that
/// every `tick` raises the stop flag of each call past its deadline, while at least one call with
/// a deadline runs, and parks otherwise. It holds only a weak reference to the engine's watchdog
/// and ends when the engine is dropped.
#[derive(Debug)]
pub(crate) struct Watchdog {
    tick: Duration,
    /// The instances that have a deadline.
    stops: Mutex<Vec<Weak<Stop>>>,
    /// Calls with a deadline running now.
    active: AtomicUsize,
    /// The thread, once started, or why it could not be.
    thread: OnceLock<Result<Thread, String>>,
}

/// Keeps the watchdog watching the call while it runs.
pub(crate) struct Watching<'a> {
    watchdog: &'a Watchdog,
    stop: &'a Stop,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.stop.set_deadline(None);
        self.watchdog.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Watchdog {
    pub(crate) fn new(tick: Duration) -> Arc<Self> {
        Arc::new(Watchdog { tick, stops: Mutex::new(Vec::new()), active: AtomicUsize::new(0), thread: OnceLock::new() })
    }

    /// Watches `stop`'s instance from now on.
    pub(crate) fn register(&self, stop: &Arc<Stop>) {
        let mut stops = self.stops.lock().unwrap_or_else(|e| e.into_inner());
        stops.retain(|s| s.strong_count() > 0);
        stops.push(Arc::downgrade(stop));
    }

    /// Arms `deadline` for the call starting now, starting or waking the watchdog thread.
    pub(crate) fn watch<'a>(self: &'a Arc<Self>, stop: &'a Stop, deadline: Duration) -> Result<Watching<'a>, Trap> {
        let thread = self.thread.get_or_init(|| {
            let weak = Arc::downgrade(self);
            std::thread::Builder::new()
                .name("wasmer-watchdog".into())
                .spawn(move || run(weak))
                .map(|handle| handle.thread().clone())
                .map_err(|e| e.to_string())
        });
        let thread = thread
            .as_ref()
            .map_err(|e| Trap::guest(format!("cannot enforce the call deadline: no watchdog thread: {e}")))?;
        stop.set_deadline(Instant::now().checked_add(deadline));
        if self.active.fetch_add(1, Ordering::SeqCst) == 0 {
            thread.unpark();
        }
        Ok(Watching { watchdog: self, stop })
    }

    fn scan(&self) {
        let now = Instant::now();
        let stops = self.stops.lock().unwrap_or_else(|e| e.into_inner());
        for stop in stops.iter().filter_map(Weak::upgrade) {
            stop.check_deadline(now);
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Wake the thread so that it sees the engine is gone and ends.
        if let Some(Ok(thread)) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// The watchdog thread's loop.
fn run(watchdog: Weak<Watchdog>) {
    loop {
        let Some(strong) = watchdog.upgrade() else { return };
        let idle = strong.active.load(Ordering::SeqCst) == 0;
        let tick = strong.tick;
        drop(strong);
        if idle {
            // `watch` and `Drop for Watchdog` unpark us; a wake-up between the check and the park
            // is not lost (the token makes `park` return at once).
            std::thread::park();
            continue;
        }
        std::thread::sleep(tick);
        match watchdog.upgrade() {
            Some(strong) => strong.scan(),
            None => return,
        }
    }
}
