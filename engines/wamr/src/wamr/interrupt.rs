//! Stopping a running call from another thread with `wasm_runtime_terminate`.
//!
//! `wasm_runtime_terminate` sets the instance's exception ("terminated by user") and, with the
//! thread manager built in, the terminate flag of its exec env, which the fast interpreter
//! checks at every branch and call. Two hazards come with it, and the [`Gate`] removes both:
//!
//! - A terminate that lands while no call runs stays pending and fails the *next* call. The
//!   gate terminates only while a call runs, under a lock that the start of every call also
//!   takes; a terminate that raced with the end of its call is cleared under that lock before
//!   the next call starts. [`InterruptHandle::interrupt_call`] also names the call it aims at,
//!   by generation, so an interrupt decided for one call can never stop a later one.
//! - The handle may outlive the instance. Dropping the instance closes the gate (under the same
//!   lock) before WAMR frees anything, so a late interrupt finds no instance and does nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wamrx_sys as sys;

/// The instance pointer, sendable to the interrupting thread.
struct InstPtr(sys::wasm_module_inst_t);

// SAFETY: the pointer is only used for `wasm_runtime_terminate`, which WAMR allows from any
// thread (it takes WAMR's cluster and exception locks), and only while the gate holds it, that
// is before the instance is freed.
unsafe impl Send for InstPtr {}

/// Shared between an instance and its interrupt handles.
///
/// The lock is taken by terminators, by [`Gate::begin`], by the failure path of a call and by
/// [`Gate::close`]; the end of a successful call only stores `running = false`. A terminator
/// that saw `running` just before the call ended may therefore terminate an idle instance: its
/// exception stays pending and the next `begin`, under the lock, clears it before the next call
/// runs. So the fast path costs one uncontended lock (about 30 ns here) and two plain stores.
#[derive(Default)]
pub(crate) struct Gate {
    /// The instance, until it is dropped. Held while terminating.
    inst: Mutex<Option<InstPtr>>,
    /// The generation of the running or last outermost call (0 before the first); written
    /// under the lock.
    generation: AtomicU64,
    /// Whether an outermost call is running.
    running: AtomicBool,
    /// Whether the running (or last) call was terminated through the gate. Set before the
    /// terminate, so the call that WAMR stopped sees it when it returns.
    fired: AtomicBool,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, Option<InstPtr>> {
        // Nothing panics while the lock is held; a poisoned lock still holds consistent data.
        self.inst
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets interrupts reach `inst`.
    pub(crate) fn open(&self, inst: sys::wasm_module_inst_t) {
        *self.lock() = Some(InstPtr(inst));
    }

    /// Cuts the handles off: after this returns no interrupt touches the instance.
    pub(crate) fn close(&self) {
        *self.lock() = None;
    }

    /// The generation the next outermost call will have.
    pub(crate) fn next_generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed) + 1
    }

    /// Starts an outermost call on `inst`, of the next generation: clears a pending exception (a
    /// trap or terminate left by an earlier call, or a terminate that landed just after one).
    pub(crate) fn begin(&self, inst: sys::wasm_module_inst_t) {
        let _locked = self.lock();
        // SAFETY: `inst` is live (its owner is calling it). No terminate runs concurrently (they
        // hold this lock), and no guest code runs, so nothing writes the exception meanwhile.
        if unsafe { !sys::wasm_runtime_get_exception(inst).is_null() } {
            // SAFETY: as above; clearing also clears the exec env's terminate flag. Skipped when
            // nothing is pending because, with the thread manager, it walks every cluster of the
            // process under a global lock.
            unsafe { sys::wasm_runtime_clear_exception(inst) };
        }
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        self.generation.store(generation, Ordering::Relaxed);
        self.fired.store(false, Ordering::Relaxed);
        // Published to terminators by the unlock.
        self.running.store(true, Ordering::Relaxed);
    }

    /// Ends the outermost call; whether it was interrupted. Lock-free (see the type's docs).
    pub(crate) fn end(&self) -> bool {
        self.running.store(false, Ordering::Release);
        self.fired.load(Ordering::Acquire)
    }

    /// Runs `f` while no terminate can write the instance's exception, with whether the running
    /// (or last) call was interrupted.
    pub(crate) fn locked<R>(&self, f: impl FnOnce(bool) -> R) -> R {
        let _locked = self.lock();
        f(self.fired.load(Ordering::Relaxed))
    }

    fn terminate(&self, generation: Option<u64>) -> bool {
        let inst = self.lock();
        let aimed = generation.is_none_or(|g| g == self.generation.load(Ordering::Relaxed));
        match &*inst {
            Some(inst)
                if aimed
                    && self.running.load(Ordering::Acquire)
                    && !self.fired.load(Ordering::Relaxed) =>
            {
                self.fired.store(true, Ordering::Release);
                // SAFETY: the instance is live: the gate is open (closing takes this lock, and
                // happens before WAMR frees the instance).
                unsafe { sys::wasm_runtime_terminate(inst.0) };
                true
            }
            _ => false,
        }
    }
}

/// Stops a running call of one [`Instance`](crate::wamr::Instance) from another thread. Cheap to
/// clone; `Send` and `Sync`; may outlive the instance (it then does nothing).
///
/// The stopped call fails with [`CallError::Interrupted`](crate::wamr::CallError::Interrupted) and the
/// instance stays usable. An interrupt while no call runs is dropped, never kept for a later call.
#[derive(Clone)]
pub struct InterruptHandle {
    pub(crate) gate: Arc<Gate>,
}

impl InterruptHandle {
    /// Stops the outermost call running now, if any. Returns whether a terminate was delivered
    /// (`false` when idle, already stopped, or the instance is gone); a call that was finishing
    /// at that moment may still return its result, and the terminate is then discarded.
    ///
    /// The interpreter sees it at its next branch or call; a call blocked inside a host function
    /// stops when that function returns.
    pub fn interrupt(&self) -> bool {
        self.gate.terminate(None)
    }

    /// Stops the call of this `generation` (see
    /// [`Instance::next_generation`](crate::wamr::Instance::next_generation)) if it is still running;
    /// a later call is never touched. Returns whether it was stopped.
    pub fn interrupt_call(&self, generation: u64) -> bool {
        self.gate.terminate(Some(generation))
    }
}

impl std::fmt::Debug for InterruptHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterruptHandle").finish_non_exhaustive()
    }
}
