//! [`Instance`]: a module instance with its host state, exported [`Func`] handles and calls.
//!
//! # Ownership and aliasing
//! The host state (`State<T, E>`) is boxed once and its address is the WAMR instance's custom
//! data, where the trampoline finds it. Everything reaches it through that raw pointer, never
//! through a long-lived reference: a host function may call the guest, which may call another
//! host function on the same state, so the only references ever made are short borrows handed
//! out by `&mut self` methods ([`Instance::data`], [`Caller::data`](crate::wamr::Caller::data),
//! [`Caller::parts`](crate::wamr::Caller::parts)), which
//! end before any guest code can run again.

use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use wamrx_sys as sys;

use crate::wamr::caller::{dispatch, Caller};
use crate::wamr::interrupt::{Gate, InterruptHandle};
use crate::wamr::module::{c_text, Module, ERROR_BUF};
use crate::wamr::runtime::Row;
use crate::wamr::types::{CallError, Error, GrowRefusal, Val, ValType};

/// A host function: every import of the table given to [`init`](crate::wamr::init) lands here, with
/// its [`HostFunc::row`](crate::wamr::HostFunc::row) and `args`, one `u64` per Wasm parameter (an `i32` zero-extended, an `i64` as its
/// bits). `Ok` is the `i32` result (ignored for a row without one); `Err` stops the guest and
/// the call fails with [`CallError::Host`] carrying it.
///
/// A plain function pointer (a closure that captures nothing coerces to it), so that it can be
/// stored in the instance's state; per-instance data lives in `T`.
pub type HostFn<T, E> =
    fn(row: usize, caller: &mut Caller<'_, T, E>, args: &[u64]) -> Result<i32, E>;

/// The most parameters of a guest function this wrapper calls (callbacks have at most 5).
pub const MAX_CALL_PARAMS: usize = 16;

/// The guest stack of an instance when [`InstanceConfig::stack_size`] is not set: 256 KiB.
/// WAMR's own default is 16 KiB; the fast interpreter keeps frames, locals and operands there.
pub const DEFAULT_STACK_SIZE: u32 = 256 * 1024;

/// The size of a standard Wasm page.
pub const WASM_PAGE: u64 = 64 * 1024;

/// How to instantiate a module.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceConfig {
    /// The most bytes of linear memory the guest may have; `memory.grow` past it answers -1.
    /// Rounded down to whole 64 KiB pages. `None`: the module's own maximum (4 GiB if none).
    pub max_memory_bytes: Option<u64>,
    /// Bytes of the guest stack (WAMR's operand and frame stack of the exec env); 0 for
    /// [`DEFAULT_STACK_SIZE`]. Deep recursion past it traps with `wasm operand stack overflow`.
    pub stack_size: u32,
}

/// `dispatch::<T, E>` with its types erased: `(core, exec_env, inst, row, args)`.
pub(crate) type DispatchFn = unsafe fn(
    *mut Core,
    sys::wasm_exec_env_t,
    sys::wasm_module_inst_t,
    &Row,
    &[u64],
) -> Option<i32>;

/// The part of an instance's state the trampoline and WAMR callbacks see without knowing `T`
/// and `E`. First field of `State<T, E>` (`repr(C)`), so a `*mut State<T, E>` is a `*mut Core`.
#[repr(C)]
pub(crate) struct Core {
    /// `dispatch::<T, E>`: calls the instance's host function.
    pub(crate) dispatch: DispatchFn,
    /// The last `memory.grow` WAMR refused since the outermost call began.
    pub(crate) grow_refusal: Option<GrowRefusal>,
}

/// A host-side failure of a host function, kept whole while WAMR unwinds the guest.
pub(crate) enum Pending<E> {
    Host(E),
    Panic(String),
}

/// Everything the instance keeps on the Rust side; WAMR's custom data points at it.
#[repr(C)]
pub(crate) struct State<T, E> {
    pub(crate) core: Core,
    pub(crate) host_fn: HostFn<T, E>,
    pub(crate) pending: Option<Pending<E>>,
    pub(crate) gate: Arc<Gate>,
    /// The instance's id, which its `Func` handles carry.
    pub(crate) id: u64,
    pub(crate) data: T,
}

/// An instance of a [`Module`]: its linear memory, globals and exec env, and the host state
/// `T` its host functions see. `E` is the trap type host functions return.
///
/// `Send` when `T` and `E` are: it may be created on one thread and called on another (WAMR
/// records the calling thread and its stack bounds at the start of every call, so no per-thread
/// set-up is needed in this build). Not `Sync`: one call at a time, through `&mut self`.
pub struct Instance<T, E> {
    inst: sys::wasm_module_inst_t,
    exec_env: sys::wasm_exec_env_t,
    state: NonNull<State<T, E>>,
    gate: Arc<Gate>,
    id: u64,
    /// Keeps the module loaded while the instance lives.
    _module: Module,
    _owns: PhantomData<State<T, E>>,
}

// SAFETY: the WAMR instance and exec env are not tied to a thread (the thread and its stack
// boundary are recorded at each call), `&mut self` serialises calls, and the state holds `T` and
// `E`, which are `Send`. Interrupt handles only share the `Gate`, which is `Sync`.
unsafe impl<T: Send, E: Send> Send for Instance<T, E> {}

static NEXT_INSTANCE_ID: AtomicU64 = AtomicU64::new(1);

impl Module {
    /// Instantiates the module with host state `data` and host function `host_fn`.
    ///
    /// Runs the module's `start` function, if it has one (its host calls see `data`); there is
    /// no interrupt handle yet, so a `start` function that never ends hangs this call.
    ///
    /// # Errors
    /// - [`Error::MemoryCapTooSmall`] for a cap under one page (WAMR reads 0 pages as "no cap");
    /// - [`Error::MemoryCapBelowInitial`] when the module's initial memory is larger than the cap
    ///   (WAMR would silently raise the cap);
    /// - [`Error::Instantiate`] with WAMR's message (for example a trap in `start`, or memory
    ///   that cannot be allocated).
    pub fn instantiate<T, E>(
        &self,
        data: T,
        host_fn: HostFn<T, E>,
        config: &InstanceConfig,
    ) -> Result<Instance<T, E>, Error> {
        let cap_pages = match config.max_memory_bytes {
            None => None,
            Some(bytes) if bytes < WASM_PAGE => {
                return Err(Error::MemoryCapTooSmall { cap_bytes: bytes })
            }
            // 65536 pages (4 GiB) is the wasm32 maximum; WAMR keeps the module's if lower.
            Some(bytes) => Some((bytes / WASM_PAGE).min(65536) as u32),
        };
        let gate = Arc::new(Gate::default());
        let id = NEXT_INSTANCE_ID.fetch_add(1, Ordering::Relaxed);
        let state = Box::new(State {
            core: Core {
                dispatch: dispatch::<T, E>,
                grow_refusal: None,
            },
            host_fn,
            pending: None,
            gate: gate.clone(),
            id,
            data,
        });
        let state = NonNull::from(Box::leak(state));
        let stack_size = if config.stack_size == 0 {
            DEFAULT_STACK_SIZE
        } else {
            config.stack_size
        };
        // SAFETY: `state` is a live allocation, freed only by `Instance::drop` after the instance
        // is gone, or below when instantiation fails.
        let inst = unsafe {
            instantiate_raw(self.inner.raw, state.as_ptr().cast(), cap_pages, stack_size)
        };
        let inst = match inst {
            Ok(inst) => inst,
            Err(message) => {
                // SAFETY: WAMR made no instance, so nothing else points at the state.
                drop(unsafe { Box::from_raw(state.as_ptr()) });
                return Err(Error::Instantiate(message));
            }
        };
        // From here on the instance's drop frees everything.
        let mut instance = Instance {
            inst,
            exec_env: std::ptr::null_mut(),
            state,
            gate,
            id,
            _module: self.clone(),
            _owns: PhantomData,
        };
        if let Some(max) = config.max_memory_bytes {
            let initial = instance.memory_size();
            if initial > max {
                return Err(Error::MemoryCapBelowInitial {
                    cap_bytes: max,
                    initial_bytes: initial,
                });
            }
        }
        // SAFETY: `inst` is live. The singleton exec env is created now, not at the first call,
        // so that a terminate finds it (WAMR looks up the instance's exec env to set its
        // terminate flag); WAMR frees it with the instance.
        instance.exec_env = unsafe { sys::wasm_runtime_get_exec_env_singleton(inst) };
        if instance.exec_env.is_null() {
            return Err(Error::Instantiate(
                "could not create the exec env: WAMR's thread manager needs a shadow stack (the `__stack_pointer` \
                 region) of at least 512 bytes, or memory ran out"
                    .into(),
            ));
        }
        // SAFETY: the exec env is live and no guest code runs.
        unsafe { restore_aux_stack(instance.exec_env) };
        instance.gate.open(inst);
        Ok(instance)
    }
}

/// Instantiates `module` with `custom_data`, a memory cap and a stack size; WAMR's message on
/// failure.
///
/// # Safety
/// `module` is loaded; `custom_data` is a `State` that outlives the instance.
unsafe fn instantiate_raw(
    module: sys::wasm_module_t,
    custom_data: *mut std::ffi::c_void,
    cap_pages: Option<u32>,
    stack_size: u32,
) -> Result<sys::wasm_module_inst_t, String> {
    let mut args: *mut sys::InstantiationArgs2 = std::ptr::null_mut();
    // SAFETY: writes a fresh allocation (or nothing) to `args`.
    if !unsafe { sys::wasm_runtime_instantiation_args_create(&mut args) } || args.is_null() {
        return Err("out of memory creating the instantiation arguments".into());
    }
    let mut error = [0 as c_char; ERROR_BUF];
    // SAFETY: `args` is live until destroyed below; WAMR copies the values into the instance.
    let inst = unsafe {
        sys::wasm_runtime_instantiation_args_set_custom_data(args, custom_data);
        sys::wasm_runtime_instantiation_args_set_default_stack_size(args, stack_size);
        if let Some(pages) = cap_pages {
            sys::wasm_runtime_instantiation_args_set_max_memory_pages(args, pages);
        }
        let inst =
            sys::wasm_runtime_instantiate_ex2(module, args, error.as_mut_ptr(), ERROR_BUF as u32);
        sys::wasm_runtime_instantiation_args_destroy(args);
        inst
    };
    if inst.is_null() {
        Err(c_text(&error))
    } else {
        Ok(inst)
    }
}

// WAMR-internal functions (declared in core/iwasm/common/wasm_runtime_common.h, not in the
// public wasm_export.h), present in the static library when the thread manager is built in.
extern "C" {
    fn wasm_exec_env_get_aux_stack(
        exec_env: sys::wasm_exec_env_t,
        start_offset: *mut u64,
        size: *mut u32,
    ) -> bool;
    fn wasm_exec_env_set_aux_stack(
        exec_env: sys::wasm_exec_env_t,
        start_offset: u64,
        size: u32,
    ) -> bool;
}

/// Gives the exec env the module's whole shadow stack. The thread manager gave it only
/// 1 / (max threads + 1) of it, keeping the rest for guest threads this wrapper never spawns;
/// a guest using more would trap with `wasm auxiliary stack overflow` where other engines run.
/// A module without linker-style stack globals has no shadow stack known to WAMR: nothing to do.
///
/// # Safety
/// `exec_env` is live and no guest code has run on it (the stack pointer is reset to its start).
unsafe fn restore_aux_stack(exec_env: sys::wasm_exec_env_t) {
    let (mut start, mut size) = (0u64, 0u32);
    // SAFETY: the caller's contract; the getter reads the module's stack layout, and the setter
    // re-applies it (it checks the range against the module's data end itself).
    unsafe {
        if wasm_exec_env_get_aux_stack(exec_env, &mut start, &mut size) {
            wasm_exec_env_set_aux_stack(exec_env, start, size);
        }
    }
}

impl<T, E> Drop for Instance<T, E> {
    fn drop(&mut self) {
        // First cut interrupt handles off: a terminate from now on finds no instance.
        self.gate.close();
        // SAFETY: no call runs (`&mut self`), no handle can reach the instance any more; WAMR frees
        // the singleton exec env with it. After this nothing points at the state.
        unsafe { sys::wasm_runtime_deinstantiate(self.inst) };
        // SAFETY: the state was leaked from a `Box` in `instantiate` and is freed only here.
        drop(unsafe { Box::from_raw(self.state.as_ptr()) });
    }
}

/// An exported function of one instance, looked up once by [`Instance::func`]. Calls check that
/// it is used with its own instance.
#[derive(Clone, Debug)]
pub struct Func {
    pub(crate) raw: sys::wasm_function_inst_t,
    pub(crate) instance_id: u64,
    params: Box<[ValType]>,
    pub(crate) result: Option<ValType>,
}

// SAFETY: a function handle is an address inside its instance, used only by calls of that
// instance (checked by id), which are serialised by the instance.
unsafe impl Send for Func {}
// SAFETY: as above; the handle is never dereferenced by Rust.
unsafe impl Sync for Func {}

impl Func {
    /// Its parameter types.
    pub fn params(&self) -> &[ValType] {
        &self.params
    }

    /// Its result type, if it returns one.
    pub fn result(&self) -> Option<ValType> {
        self.result
    }
}

impl<T, E> Instance<T, E> {
    /// The exported function `name`, if it takes only `i32`/`i64` parameters (at most
    /// [`MAX_CALL_PARAMS`]) and returns nothing or one `i32`/`i64`.
    ///
    /// # Errors
    /// [`Error::Func`] when there is no such exported function or its type is not callable here.
    pub fn func(&self, name: &str) -> Result<Func, Error> {
        let err = |message: &str| Error::Func {
            name: name.into(),
            message: message.into(),
        };
        let c_name = CString::new(name).map_err(|_| err("the name contains a NUL byte"))?;
        // SAFETY: `inst` is live; WAMR reads the name during the call only.
        let raw = unsafe { sys::wasm_runtime_lookup_function(self.inst, c_name.as_ptr()) };
        if raw.is_null() {
            return Err(err("no exported function of that name"));
        }
        // SAFETY: `raw` is a function of `inst`.
        let (n_params, n_results) = unsafe {
            (
                sys::wasm_func_get_param_count(raw, self.inst),
                sys::wasm_func_get_result_count(raw, self.inst),
            )
        };
        if n_params as usize > MAX_CALL_PARAMS || n_results > 1 {
            return Err(err(&format!("has {n_params} parameters and {n_results} results; at most {MAX_CALL_PARAMS} and 1 are supported")));
        }
        let mut kinds = [0 as sys::wasm_valkind_t; MAX_CALL_PARAMS + 1];
        // SAFETY: `kinds` has room for `n_params` (<= MAX_CALL_PARAMS) and for 1 result.
        unsafe {
            sys::wasm_func_get_param_types(raw, self.inst, kinds.as_mut_ptr());
            if n_results == 1 {
                sys::wasm_func_get_result_types(
                    raw,
                    self.inst,
                    kinds.as_mut_ptr().add(MAX_CALL_PARAMS),
                );
            }
        }
        let int =
            |kind| ValType::from_kind(kind).filter(|t| matches!(t, ValType::I32 | ValType::I64));
        let params = kinds[..n_params as usize]
            .iter()
            .map(|&k| int(k))
            .collect::<Option<Box<[_]>>>()
            .ok_or_else(|| err("has a parameter other than i32 or i64"))?;
        let result = match n_results {
            0 => None,
            _ => Some(
                int(kinds[MAX_CALL_PARAMS])
                    .ok_or_else(|| err("returns something other than i32 or i64"))?,
            ),
        };
        Ok(Func {
            raw,
            instance_id: self.id,
            params,
            result,
        })
    }

    /// Calls `func` with `args` from the host (the outermost call). Any exception pending from an
    /// earlier call (a trap, a terminate) is cleared first; the call can be stopped by this
    /// instance's [`InterruptHandle`]. After a failed call the exception is cleared: the
    /// instance can be called again (whether that is wise is the host's decision).
    ///
    /// # Errors
    /// See [`CallError`]. [`Instance::grow_refusal`] tells whether a `memory.grow` was refused
    /// during the call.
    pub fn call(&mut self, func: &Func, args: &[Val]) -> Result<Option<Val>, CallError<E>> {
        if func.instance_id != self.id {
            return Err(CallError::BadCall(
                "the function handle belongs to another instance".into(),
            ));
        }
        // Filled in place: returning it by value cost a 132-byte memcpy per call.
        let mut cells = Cells::default();
        cells.fill(func, args)?;
        self.gate.begin(self.inst);
        // SAFETY: we hold `&mut self`, so no other call of this instance runs and no reference to
        // the state is alive; `func` is one of this instance's functions (checked above).
        unsafe {
            (*self.state.as_ptr()).core.grow_refusal = None;
            (*self.state.as_ptr()).pending = None;
        }
        // SAFETY: the exec env and `func` belong to the live instance; `cells` matches the type.
        let ok = unsafe {
            sys::wasm_runtime_call_wasm(self.exec_env, func.raw, cells.len, cells.buf.as_mut_ptr())
        };
        let interrupted = self.gate.end();
        if ok && !interrupted {
            return Ok(cells.result(func.result));
        }
        let (inst, state) = (self.inst, self.state.as_ptr());
        // Under the gate's lock no terminate runs: read why the call failed, then clear the
        // exception so that the instance works again. A terminate that landed after the guest
        // had returned is cleared the same way, and the result stands.
        // SAFETY: the call is over, `inst` is live and `state` is its state, not borrowed.
        let failure = self.gate.locked(|fired| unsafe {
            let failure = (!ok).then(|| failure(inst, state, fired));
            sys::wasm_runtime_clear_exception(inst);
            failure
        });
        match failure {
            None => Ok(cells.result(func.result)),
            Some(failure) => Err(failure),
        }
    }

    /// The host state.
    pub fn data(&mut self) -> &mut T {
        // SAFETY: `&mut self` excludes running calls, so no other reference to the state exists.
        unsafe { &mut (*self.state.as_ptr()).data }
    }

    /// Where the host state is: at this address for as long as the instance lives. References
    /// to it are made only for a borrow each: with `&mut self` ([`data`](Self::data)), and
    /// during a call by the host functions' `Caller` (`data`, `parts`).
    pub fn data_ptr(&self) -> NonNull<T> {
        let state = self.state.as_ptr();
        // SAFETY: `state` is live (freed only when the instance drops); the projection makes
        // no reference, and a field of a non-null allocation is not null.
        unsafe { NonNull::new_unchecked(&raw mut (*state).data) }
    }

    /// The whole linear memory (empty if the module has none).
    pub fn memory(&mut self) -> &mut [u8] {
        // SAFETY: `&mut self` excludes running calls, so nothing else reads or writes the memory
        // while the slice lives, and nothing can grow (move) it.
        unsafe { memory_slice(self.inst) }
    }

    /// The current size of linear memory in bytes: what the guest can address (pages x bytes
    /// per page, rounded up to the OS page for a memory WAMR shrank).
    pub fn memory_size(&self) -> u64 {
        // SAFETY: `inst` is live; reads its memory's size.
        let (_, len) = unsafe { memory_raw(self.inst) };
        len as u64
    }

    /// The size of one page of this instance's memory, as WAMR laid it out: 65536, or the whole
    /// memory for a module without `memory.grow` (WAMR then makes it one large page). 0 without
    /// memory.
    pub fn memory_bytes_per_page(&self) -> u64 {
        // SAFETY: `inst` is live.
        unsafe {
            let mem = sys::wasm_runtime_get_default_memory(self.inst);
            if mem.is_null() {
                0
            } else {
                sys::wasm_memory_get_bytes_per_page(mem)
            }
        }
    }

    /// The most linear memory the instance may reach, in bytes: the lower of the cap it was made
    /// with and the module's own declared maximum (4 GiB without either). 0 without memory.
    pub fn memory_max_bytes(&self) -> u64 {
        // SAFETY: `inst` is live; these read its default memory's fields.
        unsafe {
            let mem = sys::wasm_runtime_get_default_memory(self.inst);
            if mem.is_null() {
                0
            } else {
                sys::wasm_memory_get_max_page_count(mem)
                    .saturating_mul(sys::wasm_memory_get_bytes_per_page(mem))
            }
        }
    }

    /// The `memory.grow` WAMR refused during the last outermost call (cleared when a call
    /// begins), from WAMR's enlarge-memory error callback: of several, one at the maximum before
    /// any other, then the one asking for the most.
    pub fn grow_refusal(&self) -> Option<GrowRefusal> {
        // SAFETY: a plain read through the raw pointer. `Instance` is not `Sync` and calls take
        // `&mut self`, so no guest code (which writes the field) runs meanwhile.
        unsafe { (*self.state.as_ptr()).core.grow_refusal }
    }

    /// A handle to interrupt this instance's calls from another thread.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            gate: self.gate.clone(),
        }
    }

    /// The generation the next [`Instance::call`] will have, for
    /// [`InterruptHandle::interrupt_call`]. Read it on the calling thread just before the call.
    pub fn next_generation(&self) -> u64 {
        self.gate.next_generation()
    }
}

impl<T, E> std::fmt::Debug for Instance<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("memory_size", &self.memory_size())
            .finish_non_exhaustive()
    }
}

/// Arguments in WAMR's cell layout (one `u32` per `i32`, two per `i64`), reused for the result.
#[derive(Default)]
pub(crate) struct Cells {
    pub(crate) buf: [u32; 2 * MAX_CALL_PARAMS],
    pub(crate) len: u32,
}

impl Cells {
    /// Checks `args` against `func`'s parameters and lays them out.
    pub(crate) fn fill<E>(&mut self, func: &Func, args: &[Val]) -> Result<(), CallError<E>> {
        if args.len() != func.params.len()
            || args
                .iter()
                .zip(func.params.iter())
                .any(|(a, t)| a.ty() != *t)
        {
            let types = |v: &mut dyn Iterator<Item = ValType>| {
                v.map(ValType::name).collect::<Vec<_>>().join(", ")
            };
            return Err(CallError::BadCall(format!(
                "the function takes ({}), the host passed ({})",
                types(&mut func.params.iter().copied()),
                types(&mut args.iter().map(|a| a.ty()))
            )));
        }
        for arg in args {
            match *arg {
                Val::I32(v) => self.push(v as u32),
                Val::I64(v) => {
                    // WAMR's cell order for an i64 is the native (little-endian) word order.
                    self.push(v as u64 as u32);
                    self.push((v as u64 >> 32) as u32);
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, v: u32) {
        self.buf[self.len as usize] = v;
        self.len += 1;
    }

    pub(crate) fn result(&self, ty: Option<ValType>) -> Option<Val> {
        match ty? {
            ValType::I64 => Some(Val::I64(
                (u64::from(self.buf[0]) | u64::from(self.buf[1]) << 32) as i64,
            )),
            _ => Some(Val::I32(self.buf[0] as i32)),
        }
    }
}

/// Why the call that just failed on `inst` failed: a host trap kept on the Rust side first,
/// then the interrupt, then WAMR's exception text. Takes the host trap out of the state.
///
/// # Safety
/// `inst` is live and `state` is its state; no reference to the state is alive.
pub(crate) unsafe fn failure<T, E>(
    inst: sys::wasm_module_inst_t,
    state: *mut State<T, E>,
    interrupted: bool,
) -> CallError<E> {
    // SAFETY: the caller's contract.
    match unsafe { (*state).pending.take() } {
        Some(Pending::Host(e)) => CallError::Host(e),
        Some(Pending::Panic(m)) => CallError::HostPanic(m),
        None if interrupted => CallError::Interrupted,
        // SAFETY: `inst` is live.
        None => CallError::Trap(
            unsafe { exception_text(inst) }
                .unwrap_or_else(|| "the call failed without an exception".into()),
        ),
    }
}

/// The instance's exception without WAMR's `Exception: ` prefix, if one is set.
///
/// # Safety
/// `inst` is live and no other thread writes its exception (see `Gate`).
unsafe fn exception_text(inst: sys::wasm_module_inst_t) -> Option<String> {
    // SAFETY: the caller's contract; the text is NUL-terminated inside the instance.
    let text = unsafe {
        let ptr = sys::wasm_runtime_get_exception(inst);
        if ptr.is_null() {
            return None;
        }
        CStr::from_ptr(ptr).to_string_lossy().into_owned()
    };
    Some(
        text.strip_prefix("Exception: ")
            .map(str::to_owned)
            .unwrap_or(text),
    )
}

/// The base and length of `inst`'s default memory, `(dangling, 0)` without one.
///
/// The length is WAMR's `memory_data_size`, the bound its interpreter checks guest accesses
/// against: pages x bytes per page, rounded up to the OS page (they differ only for a memory
/// WAMR shrank to `__heap_base`, see NOTES.md).
///
/// # Safety
/// `inst` is live.
pub(crate) unsafe fn memory_raw(inst: sys::wasm_module_inst_t) -> (*mut u8, usize) {
    let mut end = 0u64;
    // SAFETY: the caller's contract; these read the memory instance's fields.
    unsafe {
        let mem = sys::wasm_runtime_get_default_memory(inst);
        if mem.is_null()
            || !sys::wasm_runtime_get_app_addr_range(inst, 0, std::ptr::null_mut(), &mut end)
        {
            return (NonNull::dangling().as_ptr(), 0);
        }
        let base = sys::wasm_memory_get_base_address(mem).cast::<u8>();
        if base.is_null() {
            return (NonNull::dangling().as_ptr(), 0);
        }
        (base, end as usize)
    }
}

/// The whole linear memory of `inst` as a slice.
///
/// # Safety
/// `inst` is live, and for the slice's lifetime no guest code runs on it (nothing else reads,
/// writes or moves the memory).
pub(crate) unsafe fn memory_slice<'a>(inst: sys::wasm_module_inst_t) -> &'a mut [u8] {
    // SAFETY: the caller's contract; WAMR's memory is `len` bytes at `base`, one allocation.
    unsafe {
        let (base, len) = memory_raw(inst);
        std::slice::from_raw_parts_mut(base, len)
    }
}
