//! [`WamrInstance`]: a WAMR instance holding the VM's host state, the callbacks resolved once,
//! and the call path; [`WamrInterrupt`], which stops a running call from another thread.

use std::ptr::NonNull;
use std::sync::Arc;

use abi::Callback;
use proxy_wasm_host::engine::{callback_args, HostPtr, TrapLatch, MAX_CALLBACK_PARAMS};
use proxy_wasm_host::{Error, Instance, Interrupt, Trap, VmHost};

use crate::link::host_fn;
use crate::module::WamrModule;
use crate::shared::NAME;
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
/// below the module's initial memory is refused, naming both), the start section run, if any
/// (WAMR also runs the exports `__post_instantiate` and `__wasm_call_ctors` here, if the module
/// has them, as it does for every embedder), then the callbacks of the guest's ABI version and
/// the allocator resolved.
///
/// WAMR gives no handle on an instance before it returns, so code run here is not under the
/// call deadline.
pub(crate) fn instantiate(module: &WamrModule, host: VmHost) -> Result<WamrInstance, Error> {
    let version = host.abi_version();
    let allocator_callback = host.allocator();
    let limit = host.limits().max_memory_bytes;
    let config = InstanceConfig { max_memory_bytes: Some(limit), stack_size: 0 };
    let mut instance = module
        .wamr()
        .instantiate(StoreData::new(host, module.memory_exported()), host_fn, &config)
        .map_err(|e| Error::Instantiate { engine: NAME, message: trap::message(e) })?;

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
