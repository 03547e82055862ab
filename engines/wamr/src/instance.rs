//! [`WamrInstance`]: a WAMR instance holding the VM's host state, the callbacks resolved once,
//! and the call path; [`WamrInterrupt`], which stops a running call from another thread.

use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use abi::Callback;
use proxy_wasm_host::engine::{callback_args, DeadlineSlot, HostPtr, TrapLatch, Watchdog, MAX_CALLBACK_PARAMS};
use proxy_wasm_host::{Error, Instance, Interrupt, Trap, VmHost};

use crate::link::host_fn;
use crate::module::WamrModule;
use crate::shared::NAME;
use crate::start::START_EXPORT;
use crate::store::StoreData;
use crate::trap;
use crate::wamr::{self, Func, InstanceConfig, InterruptHandle, Val};

/// A live instance of a [`WamrModule`]: one VM, used by one thread at a time (`Send`), from any
/// thread (WAMR records the calling thread and its stack bounds at the start of every call, so
/// no thread needs set-up).
///
/// Its callbacks are resolved and type-checked at instantiation; after a trap it refuses every
/// further call.
pub struct WamrInstance {
    pub(crate) instance: wamr::Instance<StoreData, Trap>,
    callbacks: [Option<Func>; Callback::COUNT],
    /// Whether the host's memory limit, rather than the module's own declared maximum, is the
    /// instance's maximum: only then is a refused `memory.grow` the host's to note.
    limit_binds: bool,
    /// The first trap, after which every call is refused.
    failed: TrapLatch,
}

/// Makes an instance of `module` (whose imports were checked): the memory limit applied (a limit
/// below the module's initial memory is refused, naming both), the start section run, if any,
/// then the callbacks of the guest's ABI version and the allocator resolved.
///
/// The start section runs here, not inside WAMR's instantiation: the engine took it out of the
/// module before WAMR loaded it and exported its function as [`START_EXPORT`] (`start.rs`), so
/// it runs once WAMR has handed the instance over, as a callback runs: under the VM's call
/// deadline ([`Limits::call_deadline`](proxy_wasm_host::Limits::call_deadline), armed in the
/// host's [`Watchdog`] with a [`WamrInterrupt`]), its host calls seeing the memory, before any
/// callback, in no restricted phase and without the guest allocator (as on the other engines).
/// A trap in it, a deadline trap included, fails instantiation with [`Error::Instantiate`].
///
/// WAMR itself still runs the exports `__post_instantiate` and `__wasm_call_ctors`, if the
/// module has them, inside its instantiation, as it does for every embedder: WAMR gives no
/// handle on an instance before it returns, so those are not under the call deadline, and they
/// now run before the start function rather than after it.
pub(crate) fn instantiate(module: &WamrModule, host: VmHost) -> Result<WamrInstance, Error> {
    let version = host.abi_version();
    let allocator_callback = host.allocator();
    let limit = host.limits().max_memory_bytes;
    let call_deadline = host.limits().call_deadline;
    let config = InstanceConfig { max_memory_bytes: Some(limit), stack_size: 0 };
    let mut instance = module
        .wamr()
        .instantiate(StoreData::new(host, module.memory_exported()), host_fn, &config)
        .map_err(|e| Error::Instantiate { engine: NAME, message: trap::message(e) })?;
    if module.has_start() {
        run_start(&mut instance, call_deadline)
            .map_err(|trap| Error::Instantiate { engine: NAME, message: trap.to_string() })?;
    }

    let mut callbacks: [Option<Func>; Callback::COUNT] = std::array::from_fn(|_| None);
    for callback in Callback::for_version(version) {
        let Some(verdict) = &module.verdicts()[callback as usize] else { continue };
        verdict.clone()?;
        let func = instance.func(callback.name()).map_err(|e| Error::BadExport {
            export: callback.name().to_string(),
            message: trap::message(e),
        })?;
        callbacks[callback as usize] = Some(func);
    }
    instance.data().allocator = callbacks[allocator_callback as usize].clone();
    // The cap in whole pages, as WAMR applies it; the module's own maximum may be lower.
    let limit_binds = instance.memory_max_bytes() >= limit / wamr::WASM_PAGE * wamr::WASM_PAGE;
    Ok(WamrInstance { instance, callbacks, limit_binds, failed: TrapLatch::default() })
}

/// Runs the start function, exported as [`START_EXPORT`], as the host runs a callback: under the
/// call deadline `deadline` (if any), armed in the host's watchdog for a slot of its own. A trap
/// comes back as the host's [`Trap`], a deadline one when the watchdog interrupted it.
fn run_start(instance: &mut wamr::Instance<StoreData, Trap>, deadline: Option<Duration>) -> Result<(), Trap> {
    // Cannot fail: the rewrite exported the start function, which validation made `[] -> []`.
    let func = instance
        .func(START_EXPORT)
        .map_err(|e| Trap::guest(format!("its start function: {}", trap::message(e))))?;
    let slot =
        deadline.map(|d| Watchdog::global().slot(Arc::new(WamrInterrupt(instance.interrupt_handle())), d));
    let armed = slot.as_ref().map(DeadlineSlot::arm).transpose()?;
    // Clears an exception or interrupt left from before, then calls.
    let result = instance.call(&func, &[]);
    drop(armed);
    // No allocator is resolved yet, so nothing can have poisoned the instance; checked anyway.
    let poisoned = instance.data().poisoned.take();
    match (result, poisoned) {
        (Err(e), _) => Err(trap::from_call_error(e)),
        (Ok(_), Some(trap)) => Err(trap),
        (Ok(_), None) => Ok(()),
    }
}

impl WamrInstance {
    /// Tells the host of a `memory.grow` refused at its limit during the call that just ended.
    fn note_refusal(&mut self) {
        let Some(refusal) = self.instance.grow_refusal() else { return };
        if refusal.at_maximum && self.limit_binds {
            self.instance.data().host.note_memory_refused(refusal.requested_bytes);
        }
    }
}

// SAFETY: the host state is in the `wamr::Instance`'s state (leaked from a `Box`, freed when
// that instance, owned by `self`, drops), projected from its raw pointer (`data_ptr`).
// References to it are made only for a borrow each: by `wamr::Instance::data` with `&mut
// self`, and during a call by the host functions' `Caller` (`data`, `parts`).
unsafe impl Instance for WamrInstance {
    fn has(&self, callback: Callback) -> bool {
        self.callbacks[callback as usize].is_some()
    }

    fn call(&mut self, callback: Callback, args: &[u64]) -> Result<u64, Trap> {
        self.failed.check()?;
        let Some(func) = &self.callbacks[callback as usize] else {
            return Err(Trap::guest(format!("`{callback}` is not exported by the module")));
        };
        let a = callback_args(callback, args)?;
        let vals: [Val; MAX_CALLBACK_PARAMS] = a.map(Val::I32);
        // Clears an exception or interrupt left from before, then calls.
        let result = self.instance.call(func, &vals[..args.len()]);
        self.note_refusal();
        let poisoned = self.instance.data().poisoned.take();
        let result = match result {
            Ok(Some(Val::I32(v))) => Ok(u64::from(v as u32)),
            Ok(Some(Val::I64(v))) => Ok(v as u64),
            Ok(None) => Ok(0),
            Err(e) => Err(trap::from_call_error(e)),
        };
        self.failed.settle(result, poisoned)
    }

    fn host_ptr(&mut self) -> HostPtr {
        let data = self.instance.data_ptr().as_ptr();
        // SAFETY: `data` is the instance's live state; the projection makes no reference, and a
        // field of a non-null allocation is not null.
        HostPtr::new(unsafe { NonNull::new_unchecked(&raw mut (*data).host) })
    }

    fn memory_size(&mut self) -> u64 {
        if self.instance.data().memory_exported {
            self.instance.memory_size()
        } else {
            0
        }
    }

    fn interrupt_handle(&self) -> Option<Arc<dyn Interrupt>> {
        Some(Arc::new(WamrInterrupt(self.instance.interrupt_handle())))
    }
}

/// Interrupts a [`WamrInstance`]'s running call from any thread with `wasm_runtime_terminate`:
/// the interpreter stops at its next branch or call (a call blocked in a host function stops
/// when that returns) and the call fails with a deadline trap. An interrupt while no call runs
/// is dropped, and one that lands as its call ends is cleared before the next call starts, so it
/// never reaches a later call. Does nothing once the instance is gone.
pub struct WamrInterrupt(InterruptHandle);

impl Interrupt for WamrInterrupt {
    fn interrupt(&self) {
        self.0.interrupt();
    }
}
