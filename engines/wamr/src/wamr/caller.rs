//! [`Caller`]: what a host function sees of the instance that called it, and the dispatch
//! from the trampoline to the instance's [`HostFn`](crate::wamr::HostFn).

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

use wamrx_sys as sys;

use crate::wamr::instance::{failure, memory_raw, memory_slice, Cells, Core, Func, Pending, State};
use crate::wamr::interrupt::Gate;
use crate::wamr::runtime::{self, Row};
use crate::wamr::types::{CallError, Val};

/// What a host function sees of the instance that called it: the host state, the linear
/// memory, and re-entrant calls into the guest (its allocator).
///
/// Memory is fetched again at each access: a guest call may grow (and so move) it.
pub struct Caller<'a, T, E> {
    state: *mut State<T, E>,
    exec_env: sys::wasm_exec_env_t,
    inst: sys::wasm_module_inst_t,
    instance_id: u64,
    _call: PhantomData<&'a mut State<T, E>>,
}

impl<T, E> Caller<'_, T, E> {
    /// The host state.
    pub fn data(&mut self) -> &mut T {
        // SAFETY: the guest is blocked in this host call; the borrow of `self` ends before any
        // guest call (`Caller::call` takes `&mut self`), so no other reference to the state
        // exists meanwhile.
        unsafe { &mut (*self.state).data }
    }

    /// The whole linear memory (empty if the module has none), valid until the next guest call.
    pub fn memory(&mut self) -> &mut [u8] {
        // SAFETY: the guest is blocked in this host call and cannot run again while the slice
        // borrows `self` (`Caller::call` takes `&mut self`).
        unsafe { memory_slice(self.inst) }
    }

    /// Memory and host state together.
    pub fn parts(&mut self) -> (&mut [u8], &mut T) {
        // SAFETY: as for `memory` and `data`; the memory and the state are disjoint.
        unsafe { (memory_slice(self.inst), &mut (*self.state).data) }
    }

    /// Calls a guest function from inside this host function, on the same exec env (typically
    /// the allocator). Fetch memory again afterwards: it may have grown and moved.
    ///
    /// Does not clear exceptions and is not an interrupt generation of its own: if the outer call
    /// is already failing (a trap, an interrupt) it fails at once. A failure here also fails the
    /// outer call when this host function returns, whatever it returns: WAMR keeps the
    /// exception on the instance.
    ///
    /// # Errors
    /// As [`Instance::call`](crate::wamr::Instance::call); a host trap raised by a nested host function comes back as
    /// [`CallError::Host`] (moved out: return it to keep it as the outer call's trap).
    pub fn call(&mut self, func: &Func, args: &[Val]) -> Result<Option<Val>, CallError<E>> {
        if func.instance_id != self.instance_id {
            return Err(CallError::BadCall(
                "the function handle belongs to another instance".into(),
            ));
        }
        let mut cells = Cells::default();
        cells.fill(func, args)?;
        let (state, inst) = (self.state, self.inst);
        // Under the gate's lock no terminate writes the exception, so reading it is not a race.
        // SAFETY: `inst` is live (its call is running) and `state` is its state, not borrowed.
        let failing = self.gate().locked(|fired| unsafe {
            (!sys::wasm_runtime_get_exception(inst).is_null()).then(|| failure(inst, state, fired))
        });
        if let Some(failure) = failing {
            return Err(failure);
        }
        // SAFETY: the exec env is the one running this host call on this thread; WAMR supports
        // nested calls on it; no reference to the state is alive across the call.
        let ok = unsafe {
            sys::wasm_runtime_call_wasm(self.exec_env, func.raw, cells.len, cells.buf.as_mut_ptr())
        };
        if ok {
            return Ok(cells.result(func.result));
        }
        // The exception stays on the instance, for the outer call.
        // SAFETY: as above.
        Err(self
            .gate()
            .locked(|fired| unsafe { failure(inst, state, fired) }))
    }

    fn gate(&self) -> &Gate {
        // SAFETY: a shared borrow of the `Arc` field only, while no `&mut` to the state is alive.
        unsafe { &(*self.state).gate }
    }

    /// The current size of linear memory in bytes.
    pub fn memory_size(&self) -> u64 {
        // SAFETY: `inst` is live.
        let (_, len) = unsafe { memory_raw(self.inst) };
        len as u64
    }
}

/// Calls the host function of the instance whose state is `core`, catching a panic, and turns
/// a trap or a panic into WAMR's exception (the full trap is kept in the state). `None` then.
///
/// # Safety
/// `core` is the `Core` of a live `State<T, E>` and no reference to that state is alive; called
/// on the thread running the instance, from the trampoline.
pub(crate) unsafe fn dispatch<T, E>(
    core: *mut Core,
    exec_env: sys::wasm_exec_env_t,
    inst: sys::wasm_module_inst_t,
    row: &Row,
    args: &[u64],
) -> Option<i32> {
    let state = core.cast::<State<T, E>>();
    // SAFETY: `State` is `repr(C)` with `core` first, so `core` is the state's address.
    let (host_fn, instance_id) = unsafe { ((*state).host_fn, (*state).id) };
    let mut caller = Caller {
        state,
        exec_env,
        inst,
        instance_id,
        _call: PhantomData,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| host_fn(row.row, &mut caller, args)));
    let pending = match outcome {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(trap)) => Pending::Host(trap),
        Err(panic) => Pending::Panic(panic_message(&*panic)),
    };
    let text = match pending {
        Pending::Host(_) => &row.trap_text,
        Pending::Panic(_) => &row.panic_text,
    };
    // SAFETY: the host function has returned; no reference to the state is alive.
    unsafe {
        // Keep the first failure: an outer host function returning a nested one again is the same.
        if (*state).pending.is_none() {
            (*state).pending = Some(pending);
        }
    }
    runtime::fail(inst, text);
    None
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}
