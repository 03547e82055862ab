//! [`V8Instance`]: one VM (an isolate with one instance) holding the host state, its callbacks
//! resolved once, and the call path; [`Cx`], what host functions see of it.

use std::ptr::NonNull;
use std::sync::Arc;

use abi::Callback;
use proxy_wasm_host::engine::{call_row, callback_args, HostPtr, TrapLatch, Watchdog};
use proxy_wasm_host::{Error, GuestMemory, HostCx, Instance, Interrupt, Trap, VmHost, WordSize};

use crate::module::V8Module;
use crate::sys::{self, Caller, Func, FuncImport, Unwind};
use crate::trap::{self, NAME};

/// Host functions for tests: rows past the ABI table, reached with what every host function
/// gets.
#[cfg(test)]
pub(crate) type ExtraRows = fn(&mut Cx<'_, '_>, u32, &[u64]) -> Result<i32, Trap>;

/// What a VM's isolate holds for the host: the host state and what host functions need.
pub(crate) struct VmState {
    pub(crate) host: VmHost,
    /// The guest allocator ([`VmHost::allocator`]).
    allocator: Option<Func>,
    /// Whether host functions see guest memory (the module exports it as `memory`).
    exports_memory: bool,
    /// The first trap a host function raised in the running call; the shim only says that one
    /// did, and unwinds the guest.
    trap: Option<Trap>,
    #[cfg(test)]
    pub(crate) extra: Option<ExtraRows>,
}

impl sys::Host for VmState {
    fn call(cx: &mut Caller<'_, Self>, row: u32, args: &[u64]) -> Result<i32, Unwind> {
        #[cfg(test)]
        if row as usize >= abi::HOST_FUNCTIONS.len() {
            if let Some(extra) = cx.data().extra {
                return keep(&mut Cx(cx), |cx| extra(cx, row, args));
            }
        }
        keep(&mut Cx(cx), |cx| call_row(row as usize, WordSize::W32, cx, args))
    }

    fn memory_refused(&mut self, requested_bytes: u64) {
        self.host.note_memory_refused(requested_bytes);
    }
}

/// Runs a host function; a trap is kept (the first of the call) and unwinds the guest.
fn keep(cx: &mut Cx<'_, '_>, f: impl FnOnce(&mut Cx<'_, '_>) -> Result<i32, Trap>) -> Result<i32, Unwind> {
    f(cx).map_err(|trap| {
        cx.0.data().trap.get_or_insert(trap);
        Unwind
    })
}

/// A host function's view of its VM: guest memory, host state and the guest allocator.
pub(crate) struct Cx<'a, 'b>(pub(crate) &'a mut Caller<'b, VmState>);

impl HostCx for Cx<'_, '_> {
    fn parts(&mut self) -> (GuestMemory<'_>, &mut VmHost) {
        let (memory, state) = self.0.parts();
        let memory = if state.exports_memory { memory } else { &mut [] };
        (GuestMemory::new(memory, WordSize::W32), &mut state.host)
    }

    fn allocate(&mut self, size: u64) -> Result<u64, Trap> {
        let Some(allocator) = self.0.data().allocator else { return Ok(0) };
        // A wasm32 guest cannot allocate more than 4 GiB.
        let Ok(size) = u32::try_from(size) else { return Ok(0) };
        match self.0.call(allocator, &[size as i32]) {
            Ok(addr) => Ok(u64::from(addr.unwrap_or(0) as u32)),
            // The shim fails the outer call with this failure too, even if the host function
            // swallows it (the `TrapLatch` rule, kept inside the shim).
            Err(e) => {
                let kept = self.0.data().trap.clone();
                Err(trap::from_call(e, kept))
            }
        }
    }

    fn host(&mut self) -> &mut VmHost {
        &mut self.0.data().host
    }
}

/// A live instance of a [`V8Module`]: one VM, used by one thread at a time, any thread (`Send`).
///
/// Its callbacks are resolved at instantiation; after a trap it refuses every further call.
pub struct V8Instance {
    pub(crate) vm: sys::Vm<VmState>,
    callbacks: [Option<Func>; Callback::COUNT],
    /// The first trap, after which every call is refused.
    failed: TrapLatch,
}

/// Makes an instance of `module`: a new isolate holding the host state; the module instantiated
/// with its host functions (and `extra` imports, for tests) and a memory of at most the VM's
/// limit (a start section, if any, runs under the VM's call deadline); the callbacks of the
/// guest's ABI version and the allocator resolved. The caller has checked the imports.
pub(crate) fn instantiate(module: &V8Module, host: VmHost, extra: &[FuncImport<'_>]) -> Result<V8Instance, Error> {
    let version = host.abi_version();
    let allocator = host.allocator();
    let limits = *host.limits();
    let state = VmState {
        host,
        allocator: None,
        exports_memory: module.exports_memory,
        trap: None,
        #[cfg(test)]
        extra: None,
    };
    let mut vm = sys::Vm::new(state).map_err(|e| trap::instantiate_error(e, None))?;
    let mut imports: Vec<FuncImport<'_>> =
        module.rows.iter().map(|(m, n, row)| FuncImport { module: m, name: n, row: *row }).collect();
    imports.extend_from_slice(extra);
    let slot = limits.call_deadline.map(|d| Watchdog::global().slot(Arc::new(V8Interrupt(vm.interrupt())), d));
    let instantiated = {
        let armed = slot.as_ref().map(|s| s.arm()).transpose();
        let _armed = armed.map_err(|trap| Error::Instantiate { engine: NAME, message: trap.to_string() })?;
        vm.instantiate(&module.module, &imports, limits.max_memory_bytes)
    };
    if let Err(e) = instantiated {
        let kept = vm.data().trap.take();
        return Err(trap::instantiate_error(e, kept));
    }

    let mut callbacks: [Option<Func>; Callback::COUNT] = [None; Callback::COUNT];
    for callback in Callback::for_version(version) {
        let Some(verdict) = &module.callbacks[callback as usize] else { continue };
        verdict.clone()?;
        let Some(func) = vm.export(callback.name()) else {
            return Err(Error::BadExport { export: callback.name().to_string(), message: "not a function".into() });
        };
        callbacks[callback as usize] = Some(func);
    }
    vm.data().allocator = callbacks[allocator as usize];
    Ok(V8Instance { vm, callbacks, failed: TrapLatch::default() })
}

// SAFETY: the host state is in the `sys::Vm`'s state (leaked from a `Box`, freed when the VM,
// owned by `self`, drops), projected from its raw pointer (`data_ptr`). References to it are
// made only for a borrow each: by `sys::Vm` with `&mut self` (`data`, `outcome`), and during a
// call by the host functions' `Caller` (`data`, `parts`) and the trampoline.
unsafe impl Instance for V8Instance {
    fn has(&self, callback: Callback) -> bool {
        self.callbacks[callback as usize].is_some()
    }

    fn call(&mut self, callback: Callback, args: &[u64]) -> Result<u64, Trap> {
        self.failed.check()?;
        let Some(func) = self.callbacks[callback as usize] else {
            return Err(Trap::guest(format!("`{callback}` is not exported by the module")));
        };
        let a = callback_args(callback, args)?;
        let result = self.vm.call(func, &a[..args.len()]);
        let kept = self.vm.data().trap.take();
        let result = match result {
            Ok(value) => Ok(value.map_or(0, |v| u64::from(v as u32))),
            Err(e) => Err(trap::from_call(e, kept)),
        };
        // A re-entered allocator's failure is already the call's own (the shim sees to it).
        self.failed.settle(result, None)
    }

    fn host_ptr(&mut self) -> HostPtr {
        let data = self.vm.data_ptr().as_ptr();
        // SAFETY: `data` is the VM's live state; the projection makes no reference, and a
        // field of a non-null allocation is not null.
        HostPtr::new(unsafe { NonNull::new_unchecked(&raw mut (*data).host) })
    }

    fn memory_size(&mut self) -> u64 {
        if self.vm.data().exports_memory {
            self.vm.memory().len() as u64
        } else {
            0
        }
    }

    fn interrupt_handle(&self) -> Option<Arc<dyn Interrupt>> {
        Some(Arc::new(V8Interrupt(self.vm.interrupt())))
    }
}

/// Interrupts a [`V8Instance`]'s running call from any thread: V8's `TerminateExecution` on the
/// VM's isolate, only while a call of that VM runs (an interrupt between calls is dropped, so it
/// never reaches a later call). The call stops at its next stack check (function entry or loop
/// header) with a deadline trap. Does nothing once the instance is gone.
pub struct V8Interrupt(sys::Interrupt);

impl Interrupt for V8Interrupt {
    fn interrupt(&self) {
        self.0.fire();
    }
}
