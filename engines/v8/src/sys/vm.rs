//! [`Vm`]: one isolate with one instance; [`Caller`]: what a host function sees of it;
//! [`Interrupt`]: stops its running call from another thread.

use std::any::Any;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use super::module::{Module, GROW_IMPORT};
use super::{ffi, Error};

/// The host functions of a VM, implemented on its data: every function import calls
/// [`Host::call`] with the row it was bound to ([`FuncImport::row`]).
pub trait Host: Sized + 'static {
    /// Runs the import bound to `row` with its Wasm arguments (an `i32` zero-extended to 64
    /// bits, an `i64` as its bits) and returns its `i32` result (ignored for a function without
    /// result), or [`Unwind`] to trap: the guest is unwound, uncatchably, and the call answers
    /// [`CallError::HostTrap`]. Keep the reason in the VM's data. A panic is caught and taken
    /// as a trap ([`CallError::HostPanic`]).
    fn call(cx: &mut Caller<'_, Self>, row: u32, args: &[u64]) -> Result<i32, Unwind>;

    /// The guest's `memory.grow` asked for `requested_bytes` in all, past the VM's limit, and
    /// got -1 (a grow past the module's own maximum is not reported: it is the module's rule).
    fn memory_refused(&mut self, requested_bytes: u64) {
        let _ = requested_bytes;
    }
}

/// A host function's answer that traps: the guest is unwound and the call fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwind;

/// Why a call of the guest failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// A Wasm trap or a JS exception: V8's message, for example `RuntimeError: unreachable`,
    /// `RangeError: Maximum call stack size exceeded`, `LinkError: WebAssembly.Instance(): ...`.
    Trap(String),
    /// The call was stopped by [`Interrupt::fire`].
    Interrupted,
    /// A host function answered [`Unwind`] (the host keeps the reason).
    HostTrap,
    /// A host function panicked, with this message.
    HostPanic(String),
    /// The request is wrong: a handle of another VM, too many arguments, no instance.
    BadRequest(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Trap(m) => f.write_str(m),
            CallError::Interrupted => f.write_str("interrupted"),
            CallError::HostTrap => f.write_str("a host function trapped"),
            CallError::HostPanic(m) => write!(f, "a host function panicked: {m}"),
            CallError::BadRequest(m) => write!(f, "bad request: {m}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A function import: `module`.`name` calls [`Host::call`] with `row`.
#[derive(Clone, Copy, Debug)]
pub struct FuncImport<'a> {
    /// Module name, for example `env`.
    pub module: &'a str,
    /// Field name, for example `proxy_log`.
    pub name: &'a str,
    /// The row passed to [`Host::call`] (for the proxy-wasm host: the index in
    /// `abi::HOST_FUNCTIONS`).
    pub row: u32,
}

/// An exported function of one [`Vm`], resolved once by [`Vm::export`]. Valid only for the VM
/// that resolved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Func(i32);

/// What the shim's callback reaches through its `vm_data`. Allocated once per VM and only
/// reached through raw pointers, so that re-entrant host calls never alias a live reference.
struct State<T> {
    data: T,
    api: &'static ffi::Shim,
    vm: *mut ffi::v8s_vm,
    panic: Option<String>,
}

/// One VM: a V8 isolate with one context and (after [`Vm::instantiate`]) one instance, and the
/// host's data `T`. Used by one thread at a time, any thread (`Send`): the shim takes the
/// isolate's `Locker` in every call.
pub struct Vm<T: Host> {
    api: &'static ffi::Shim,
    raw: NonNull<ffi::v8s_vm>,
    state: NonNull<State<T>>,
}

// SAFETY: the isolate is locked (v8::Locker) by whichever thread calls the shim, and `&mut self`
// keeps calls one at a time; the data `T` moves with the VM, hence `T: Send`.
unsafe impl<T: Host + Send> Send for Vm<T> {}

impl<T: Host> Vm<T> {
    /// A new isolate holding `data`, without an instance yet. Errors: [`Error::Platform`],
    /// [`Error::Vm`].
    pub fn new(data: T) -> Result<Vm<T>, Error> {
        let api = super::platform()?;
        let state = NonNull::from(Box::leak(Box::new(State { data, api, vm: std::ptr::null_mut(), panic: None })));
        let mut error = ffi::v8s_message::empty();
        // SAFETY: `trampoline::<T>` matches v8s_host_fn and is called with the `vm_data` given
        // here, a `State<T>` that lives until the VM is freed (Drop frees the VM first).
        let raw = unsafe { (api.vm_new)(trampoline::<T>, state.as_ptr().cast(), &mut error) };
        match NonNull::new(raw) {
            Some(raw) => {
                // SAFETY: `state` is the live allocation made above; nothing else refers to it yet.
                unsafe { (*state.as_ptr()).vm = raw.as_ptr() };
                Ok(Vm { api, raw, state })
            }
            None => {
                // SAFETY: the shim did not keep `state` (no VM was made): freed once, here.
                drop(unsafe { Box::from_raw(state.as_ptr()) });
                Err(Error::Vm(error.take()))
            }
        }
    }

    /// Instantiates `module` (once per VM) with `imports` and a memory of at most
    /// `max_memory_bytes` (rounded down to 64 KiB pages; `memory.grow` past it answers -1).
    /// The module's start function runs here: an [`Interrupt`] made before reaches it.
    ///
    /// Errors: [`Error::MemoryLimit`] when the module's memory starts larger than the limit;
    /// [`Error::Instantiate`] with V8's `LinkError` for a missing import, or the start
    /// function's failure.
    pub fn instantiate(&mut self, module: &Module, imports: &[FuncImport<'_>], max_memory_bytes: u64) -> Result<(), Error> {
        let func = |module: &str, name: &str, row: u32| ffi::v8s_func_import {
            module: module.as_ptr().cast(),
            module_len: module.len(),
            name: name.as_ptr().cast(),
            name_len: name.len(),
            row,
        };
        let mut funcs: Vec<ffi::v8s_func_import> = imports.iter().map(|i| func(i.module, i.name, i.row)).collect();
        let memory = match module.memory_plan() {
            None => None,
            Some(plan) => {
                let pages = plan.pages(max_memory_bytes)?;
                // Every memory.grow of the module calls this import (see `Module::compile`).
                funcs.push(func(GROW_IMPORT.0, GROW_IMPORT.1, ffi::V8S_ROW_MEMORY_GROW));
                Some(ffi::v8s_memory_import {
                    module: plan.module.as_ptr().cast(),
                    module_len: plan.module.len(),
                    name: plan.name.as_ptr().cast(),
                    name_len: plan.name.len(),
                    initial_pages: pages.initial,
                    maximum_pages: pages.maximum,
                    limit_pages: pages.limit,
                })
            }
        };
        let mut error = ffi::v8s_message::empty();
        // SAFETY: the VM and module are live; `funcs` and `memory` (and the strings they point
        // into, borrowed from `imports` and `module`) outlive the call, which copies them.
        let status = unsafe {
            (self.api.vm_instantiate)(
                self.raw.as_ptr(),
                module.raw(),
                funcs.as_ptr(),
                funcs.len(),
                memory.as_ref().map_or(std::ptr::null(), |m| m as *const _),
                &mut error,
            )
        };
        match self.outcome(status, &mut error) {
            Ok(()) => Ok(()),
            Err(CallError::BadRequest(m)) => Err(Error::Vm(m)),
            Err(e) => Err(Error::Instantiate(e)),
        }
    }

    /// The exported function `name`, resolved once; `None` if there is none (or no instance).
    pub fn export(&mut self, name: &str) -> Option<Func> {
        // SAFETY: the VM is live and not in a call of this thread's (`&mut self`); `name` is
        // valid for the call.
        let handle = unsafe { (self.api.vm_export)(self.raw.as_ptr(), name.as_ptr().cast(), name.len()) };
        (handle >= 0).then_some(Func(handle))
    }

    /// Calls `func` with `args`; its `i32` result, `None` for a function without result.
    pub fn call(&mut self, func: Func, args: &[i32]) -> Result<Option<i32>, CallError> {
        // SAFETY: the VM is live; the state's `vm` is this VM.
        unsafe { call_raw(self.state.as_ptr(), func, args) }
    }

    /// The guest memory (empty without one). Fetched again each time: it moves and grows.
    pub fn memory(&mut self) -> &mut [u8] {
        // SAFETY: `&mut self` holds off guest code (which could grow memory) while it lives.
        unsafe { memory_raw(self.api, self.raw.as_ptr()) }
    }

    /// The host's data.
    pub fn data(&mut self) -> &mut T {
        // SAFETY: no guest call is under way (`&mut self`), so no `Caller` reaches the state.
        unsafe { &mut (*self.state.as_ptr()).data }
    }

    /// Where the host's data is: at this address for as long as the VM lives. References to
    /// it (or to the whole state) are made only for a borrow each: with `&mut self`
    /// ([`data`](Self::data), a call's outcome), and during a call by the trampoline and the
    /// host functions' [`Caller`] ([`Caller::data`], [`Caller::parts`]).
    pub fn data_ptr(&self) -> NonNull<T> {
        let state = self.state.as_ptr();
        // SAFETY: `state` is live (freed only when the VM drops); the projection makes no
        // reference, and a field of a non-null allocation is not null.
        unsafe { NonNull::new_unchecked(&raw mut (*state).data) }
    }

    /// A handle that stops this VM's running call from any thread.
    pub fn interrupt(&self) -> Interrupt {
        // SAFETY: the VM is live; the handle shares the shim's interrupt state, which outlives
        // the VM (firing after the VM is freed does nothing).
        let raw = unsafe { (self.api.vm_interrupt)(self.raw.as_ptr()) };
        Interrupt { api: self.api, raw: NonNull::new(raw).expect("operator new does not return null") }
    }

    fn outcome(&mut self, status: i32, error: &mut ffi::v8s_message) -> Result<(), CallError> {
        // SAFETY: no guest call is under way (`&mut self`).
        let state = unsafe { &mut *self.state.as_ptr() };
        outcome(status, error, state)
    }
}

impl<T: Host> Drop for Vm<T> {
    fn drop(&mut self) {
        // SAFETY: the VM is not in a call (`&mut self`). The shim cuts its interrupt handles off
        // before it disposes the isolate; the state is freed after, once no callback can run.
        unsafe {
            (self.api.vm_free)(self.raw.as_ptr());
            drop(Box::from_raw(self.state.as_ptr()));
        }
    }
}

/// A host function's view of its VM: the host's data, guest memory, and re-entrant calls.
pub struct Caller<'a, T> {
    state: *mut State<T>,
    _borrow: PhantomData<&'a mut T>,
}

impl<T: Host> Caller<'_, T> {
    /// The host's data.
    pub fn data(&mut self) -> &mut T {
        // SAFETY: the state lives while the VM does (longer than this callback); no other
        // reference to it is live: outer frames hold only raw pointers, and `&mut self`
        // keeps re-entrant calls (which make their own `Caller`) off while this one lives.
        unsafe { &mut (*self.state).data }
    }

    /// The guest memory (empty without one), fetched again: it grows when the guest runs.
    pub fn memory(&mut self) -> &mut [u8] {
        self.parts().0
    }

    /// Guest memory and host data together.
    pub fn parts(&mut self) -> (&mut [u8], &mut T) {
        // SAFETY: as in `data`; the memory is V8's backing store, a separate allocation that
        // no guest code can touch or grow while `&mut self` holds re-entrant calls off.
        unsafe { (memory_raw((*self.state).api, (*self.state).vm), &mut (*self.state).data) }
    }

    /// Calls `func` re-entrantly (for example the guest allocator). A failure here fails the
    /// outer call too, even if the host function then returns normally: with the same
    /// [`CallError`], or [`CallError::HostTrap`] if the host function answers [`Unwind`].
    pub fn call(&mut self, func: Func, args: &[i32]) -> Result<Option<i32>, CallError> {
        // SAFETY: the state and its VM are live; no borrow of them is held across (`&mut self`).
        unsafe { call_raw(self.state, func, args) }
    }
}

/// Calls `func` in the state's VM.
///
/// # Safety
/// `state` is a live `State<T>` whose `vm` is live, and no reference into it is held.
unsafe fn call_raw<T>(state: *mut State<T>, func: Func, args: &[i32]) -> Result<Option<i32>, CallError> {
    let mut result = 0;
    let mut has_result = 0;
    let mut error = ffi::v8s_message::empty();
    // SAFETY: per this function's contract; `args` and the out-parameters are valid for the call.
    let status = unsafe { ((*state).api.vm_call)((*state).vm, func.0, args.as_ptr(), args.len(), &mut result, &mut has_result, &mut error) };
    // SAFETY: the call is over, so no callback holds the state now.
    outcome(status, &mut error, unsafe { &mut *state })?;
    Ok((has_result != 0).then_some(result))
}

/// The guest memory of `vm`.
///
/// # Safety
/// `vm` is live, and no guest code runs while the slice lives.
unsafe fn memory_raw<'a>(api: &ffi::Shim, vm: *mut ffi::v8s_vm) -> &'a mut [u8] {
    let mut base = std::ptr::null_mut();
    let mut len = 0;
    // SAFETY: `vm` is live; the out-parameters are valid.
    unsafe { (api.vm_memory)(vm, &mut base, &mut len) };
    if base.is_null() || len == 0 {
        return &mut [];
    }
    // SAFETY: `base..base + len` is the memory's backing store; it stays put while no guest
    // code runs (the caller's contract), and only this VM's thread reaches it (no shared
    // memories).
    unsafe { std::slice::from_raw_parts_mut(base, len) }
}

fn outcome<T>(status: i32, error: &mut ffi::v8s_message, state: &mut State<T>) -> Result<(), CallError> {
    match status {
        ffi::V8S_OK => Ok(()),
        ffi::V8S_EXCEPTION => Err(CallError::Trap(error.take())),
        ffi::V8S_TERMINATED => Err(CallError::Interrupted),
        ffi::V8S_HOST_TRAP => Err(match state.panic.take() {
            Some(m) => CallError::HostPanic(m),
            None => CallError::HostTrap,
        }),
        ffi::V8S_BAD_REQUEST => Err(CallError::BadRequest(error.take())),
        other => Err(CallError::BadRequest(format!("the shim answered an unknown status {other}"))),
    }
}

/// The shim's one host callback: runs [`Host::call`] for `row`.
///
/// # Safety
/// Called by the shim only, with the `vm_data` of `Vm::new` (a live `State<T>`), `nargs`
/// arguments at `args`, and a valid `result`.
unsafe extern "C" fn trampoline<T: Host>(vm_data: *mut c_void, row: u32, args: *const u64, nargs: usize, result: *mut i32) -> i32 {
    let state = vm_data.cast::<State<T>>();
    // SAFETY: the shim passes `nargs` initialised arguments (its buffer is never null).
    let args = unsafe { std::slice::from_raw_parts(args, nargs) };
    if row == ffi::V8S_ROW_MEMORY_REFUSED {
        let requested = args.first().copied().unwrap_or(0);
        // SAFETY: as in `Caller::data`: no other reference to the state is live during a
        // callback; this one ends before the shim goes on.
        let data = unsafe { &mut (*state).data };
        // A panic must not cross into C++; the refusal then goes unreported.
        let _ = catch_unwind(AssertUnwindSafe(|| data.memory_refused(requested)));
        return 0;
    }
    let mut cx = Caller { state, _borrow: PhantomData };
    match catch_unwind(AssertUnwindSafe(|| T::call(&mut cx, row, args))) {
        Ok(Ok(value)) => {
            // SAFETY: the shim passes a valid out-parameter.
            unsafe { *result = value };
            0
        }
        Ok(Err(Unwind)) => 1,
        Err(payload) => {
            // SAFETY: the callback is over; nothing else holds the state now.
            unsafe { (*state).panic = Some(panic_message(&*payload)) };
            1
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Stops a VM's running call from any thread: the call answers [`CallError::Interrupted`].
/// Firing between calls does nothing (a late interrupt never reaches a later call), and so does
/// firing after the VM is gone.
pub struct Interrupt {
    api: &'static ffi::Shim,
    raw: NonNull<ffi::v8s_interrupt>,
}

// SAFETY: the shim's interrupt state is guarded by its own mutex, and TerminateExecution may be
// called from any thread.
unsafe impl Send for Interrupt {}
// SAFETY: as above: `fire` takes `&self` and the shim serialises it.
unsafe impl Sync for Interrupt {}

impl Interrupt {
    /// Stops the running call, if any.
    pub fn fire(&self) {
        // SAFETY: the handle is live until Drop.
        unsafe { (self.api.interrupt_fire)(self.raw.as_ptr()) }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        // SAFETY: freed once, here.
        unsafe { (self.api.interrupt_free)(self.raw.as_ptr()) }
    }
}
