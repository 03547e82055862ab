//! [`WasmerInstance`]: a store holding the VM's host state, each callback resolved on its first
//! call, and the call path with its deadline.

use std::ptr::NonNull;
use std::sync::Arc;

use abi::{Callback, CallbackInfo};
use proxy_wasm_host::engine::{arity_mismatch, CallbackHandles, DeadlineSlot, HostBox, HostPtr, TrapLatch, Watchdog};
use proxy_wasm_host::{CallbackSet, Error, Instance, Interrupt, Trap, VmHost};
use wasmer::{AsStoreMut, Extern, Function, FunctionEnv, Global, GlobalType, Mutability, Store, Type, TypedFunction};

use crate::limits::MemoryEvents;
use crate::shared::Shared;
use crate::stop::{FlagPtr, Stop, WasmerInterrupt, START_EXPORT, STOP_EXPORT};
use crate::store::{HostState, StatePtr, StoreData};
use crate::{limits, link, trap};

/// A callback's typed handle, one variant per shape of the callback table: every parameter is an
/// `i32`; the result is nothing (`N*`) or an `i32` (`R*`).
#[derive(Clone)]
enum Handle {
    N0(TypedFunction<(), ()>),
    N1(TypedFunction<i32, ()>),
    N2(TypedFunction<(i32, i32), ()>),
    N3(TypedFunction<(i32, i32, i32), ()>),
    N4(TypedFunction<(i32, i32, i32, i32), ()>),
    N5(TypedFunction<(i32, i32, i32, i32, i32), ()>),
    R0(TypedFunction<(), i32>),
    R1(TypedFunction<i32, i32>),
    R2(TypedFunction<(i32, i32), i32>),
    R3(TypedFunction<(i32, i32, i32), i32>),
    R4(TypedFunction<(i32, i32, i32, i32), i32>),
    R5(TypedFunction<(i32, i32, i32, i32, i32), i32>),
}

impl Handle {
    /// The handle for `func`, whose type was checked against `info` already.
    fn new(func: &Function, store: &Store, info: &CallbackInfo) -> Result<Self, String> {
        use Handle::*;
        let e = |e: wasmer::RuntimeError| e.message();
        Ok(match (info.params.len(), info.result.wasm_type().is_some()) {
            (0, false) => N0(func.typed(store).map_err(e)?),
            (1, false) => N1(func.typed(store).map_err(e)?),
            (2, false) => N2(func.typed(store).map_err(e)?),
            (3, false) => N3(func.typed(store).map_err(e)?),
            (4, false) => N4(func.typed(store).map_err(e)?),
            (5, false) => N5(func.typed(store).map_err(e)?),
            (0, true) => R0(func.typed(store).map_err(e)?),
            (1, true) => R1(func.typed(store).map_err(e)?),
            (2, true) => R2(func.typed(store).map_err(e)?),
            (3, true) => R3(func.typed(store).map_err(e)?),
            (4, true) => R4(func.typed(store).map_err(e)?),
            (5, true) => R5(func.typed(store).map_err(e)?),
            (n, _) => return Err(format!("callbacks with {n} parameters are not supported")),
        })
    }

    /// Calls it with `args`, one per parameter (each narrowed to the `i32` every callback
    /// parameter is in Wasm: its low 32 bits); the result is widened (0 for none). Another
    /// number of arguments is refused, naming both counts: the arity is the variant's, so the
    /// check is the slice pattern, with no table lookup on the call path.
    #[inline]
    fn call(&self, store: &mut impl AsStoreMut, callback: Callback, args: &[u64]) -> Result<Result<u64, wasmer::RuntimeError>, Trap> {
        use Handle::*;
        let none = |()| 0;
        let widen = |r: i32| u64::from(r as u32);
        let n = |x: &u64| *x as i32;
        Ok(match (self, args) {
            (N0(f), []) => f.call(store).map(none),
            (N1(f), [a]) => f.call(store, n(a)).map(none),
            (N2(f), [a, b]) => f.call(store, n(a), n(b)).map(none),
            (N3(f), [a, b, c]) => f.call(store, n(a), n(b), n(c)).map(none),
            (N4(f), [a, b, c, d]) => f.call(store, n(a), n(b), n(c), n(d)).map(none),
            (N5(f), [a, b, c, d, e]) => f.call(store, n(a), n(b), n(c), n(d), n(e)).map(none),
            (R0(f), []) => f.call(store).map(widen),
            (R1(f), [a]) => f.call(store, n(a)).map(widen),
            (R2(f), [a, b]) => f.call(store, n(a), n(b)).map(widen),
            (R3(f), [a, b, c]) => f.call(store, n(a), n(b), n(c)).map(widen),
            (R4(f), [a, b, c, d]) => f.call(store, n(a), n(b), n(c), n(d)).map(widen),
            (R5(f), [a, b, c, d, e]) => f.call(store, n(a), n(b), n(c), n(d), n(e)).map(widen),
            _ => return Err(arity_mismatch(callback, args)),
        })
    }
}

/// The typed handle of `callback`, exported by `instance` (its type was checked with the
/// module).
fn resolve(instance: &wasmer::Instance, store: &Store, callback: Callback) -> Result<Handle, Error> {
    let info = callback.info();
    let bad = |message: String| Error::BadExport { export: info.name.to_string(), message };
    let Some(Extern::Function(func)) = instance.exports.get_extern(info.name) else {
        return Err(bad("not a function".into()));
    };
    Handle::new(func, store, info).map_err(bad)
}

/// A live instance of a [`WasmerModule`](crate::WasmerModule): one VM, used by one thread at a
/// time (`Send`).
///
/// Its callbacks were type-checked once per module; each is resolved to a typed handle on its
/// first call (a clone that never sees a stream does not look up the stream callbacks), and
/// called through it. After a trap it refuses every further call.
pub struct WasmerInstance {
    store: Store,
    env: FunctionEnv<StoreData>,
    instance: wasmer::Instance,
    /// The callbacks the module exports for the guest's ABI version, resolved on first call.
    callbacks: CallbackHandles<Handle>,
    stop: Arc<Stop>,
    /// The instance's stop flag.
    flag: FlagPtr,
    /// Growths its memory refused at the limit (handed to the host after each call), and
    /// whether it grew.
    events: Arc<MemoryEvents>,
    /// The size of its memory in bytes when last read: read again only after it grew, as
    /// Wasmer's view of a memory costs more than the rest of a stream's bookkeeping per call.
    memory_bytes: u64,
    /// The first trap, after which every call is refused.
    failed: TrapLatch,
    /// The VM's host state. Last, so it is dropped after the store that points at it.
    host: HostBox<HostState>,
}

/// Makes an instance of `module` (whose imports were checked): a store whose function environment
/// holds the host state, the module's imports linked to the ABI's host functions (and `extra`,
/// for tests), its memories limited; then the stop flag and the memory resolved and handed to the
/// host functions; then the module's start section run, if it has one; then the callbacks of the
/// guest's ABI version (`verdicts`: the module's callback exports, type-checked once) and the
/// allocator resolved.
///
/// The start section runs here rather than inside `wasmer::Instance::new`: the compiler
/// middleware took it out of the module and exported its function as [`START_EXPORT`]
/// (`stop.rs`), so it runs with the stop flag attached, under the VM's call deadline
/// ([`Limits::call_deadline`](proxy_wasm_host::Limits::call_deadline), armed in the host's
/// [`Watchdog`] as around every call), and its host calls see the memory. As on the other
/// engines, it runs before any callback, in no restricted phase (the host restricts only the
/// start functions it calls itself, `_initialize` and `_start`), and without the guest allocator
/// (which is exported code, callable only once instantiation is over). A trap in it, a deadline
/// trap included, fails instantiation with [`Error::Instantiate`]; a memory growth it had
/// refused at the limit is not the first callback's.
pub(crate) fn instantiate(
    shared: &Arc<Shared>,
    module: &wasmer::Module,
    verdicts: &[Option<Result<(), Error>>; Callback::COUNT],
    host: VmHost,
    extra: impl FnOnce(&mut Store, &FunctionEnv<StoreData>, &mut wasmer::Imports),
) -> Result<WasmerInstance, Error> {
    let name = shared.name;
    let version = host.abi_version();
    let allocator_callback = host.allocator();
    let max_memory_bytes = host.limits().max_memory_bytes;
    let call_deadline = host.limits().call_deadline;
    let stop = Arc::new(Stop::default());
    let events = Arc::new(MemoryEvents::default());
    // Before the store, so that on an early return it is dropped after it.
    let host = HostBox::new(HostState { host, poisoned: None });
    let mut store = Store::new(shared.engine.clone());
    let data = StoreData { shared: StatePtr(host.ptr()), memory: None, allocator: None, stop: stop.clone() };
    let env = FunctionEnv::new(&mut store, data);
    let mut imports = link::imports(&mut store, &env, module);
    extra(&mut store, &env, &mut imports);
    let instance = limits::with_limit(max_memory_bytes, &events, || {
        // Boxed: Wasmer's error is large, and this closure's result passes through `with_limit`.
        wasmer::Instance::new(&mut store, module, &imports).map_err(Box::new)
    })
    .map_err(|e| {
        let message = match *e {
            // Only a module compiled without our middleware still has a start section here.
            wasmer::InstantiationError::Start(e) => trap::from_error(e, &stop).to_string(),
            other => other.to_string(),
        };
        Error::Instantiate { engine: name, message }
    })?;

    let flag = match instance.exports.get_extern(STOP_EXPORT) {
        Some(Extern::Global(global)) => flag_ptr(&mut store, global),
        _ => None,
    };
    let flag = flag.ok_or_else(|| Error::Instantiate {
        engine: name,
        message: "the module was not compiled by this engine: it lacks the stop flag".into(),
    })?;
    stop.attach(flag);

    let memory = instance.exports.get_memory(abi::MEMORY_EXPORT).ok().cloned();
    env.as_mut(&mut store).memory = memory.clone();
    if let Some(start) = start_function(&instance, &store, name)? {
        // The handle `interrupt_handle` gives the host for the callbacks, in a slot of its own.
        let slot = call_deadline
            .map(|deadline| Watchdog::global().slot(Arc::new(WasmerInterrupt { stop: stop.clone() }), deadline));
        let result = run_start(&mut store, &start, slot.as_ref(), &stop, flag);
        if let Err(e) = result {
            // The store (and the flag in it) is dropped on this return. So are the other
            // holders of `stop`, the slot and the store's data, but nothing should be able to
            // write the flag even then.
            stop.detach();
            return Err(Error::Instantiate { engine: name, message: e.to_string() });
        }
    }
    // A refusal in the start section is not the first callback's.
    events.take_refused();

    let mut exported = CallbackSet::EMPTY;
    for callback in Callback::for_version(version) {
        let Some(verdict) = &verdicts[callback as usize] else { continue };
        verdict.clone()?;
        exported.insert(callback);
    }
    let allocator = if exported.contains(allocator_callback) {
        match resolve(&instance, &store, allocator_callback)? {
            Handle::R1(f) => Some(f),
            _ => None,
        }
    } else {
        None
    };
    events.take_grown();
    let memory_bytes = memory.as_ref().map_or(0, |m| m.view(&store).data_size());
    env.as_mut(&mut store).allocator = allocator;
    let callbacks = CallbackHandles::new(exported);
    let failed = TrapLatch::default();
    Ok(WasmerInstance { store, env, instance, callbacks, stop, flag, events, memory_bytes, failed, host })
}

/// The module's start function, which the middleware exported as [`START_EXPORT`]; `None` for a
/// module without a start section.
fn start_function(
    instance: &wasmer::Instance,
    store: &Store,
    name: &'static str,
) -> Result<Option<TypedFunction<(), ()>>, Error> {
    let bad = |message: String| Error::Instantiate { engine: name, message };
    match instance.exports.get_extern(START_EXPORT) {
        None => Ok(None),
        // Cannot fail: validation made it `[] -> []`, as every start function.
        Some(Extern::Function(func)) => {
            func.typed(store).map(Some).map_err(|e| bad(format!("its start function: {}", e.message())))
        }
        Some(_) => Err(bad(format!("`{START_EXPORT}` is not a function"))),
    }
}

/// Runs the start function as the host runs a callback: the stop flag lowered, under the call
/// deadline `slot` (if any) armed in the host's watchdog. A trap comes back as the host's
/// [`Trap`], a deadline one when the watchdog interrupted it.
fn run_start(
    store: &mut Store,
    start: &TypedFunction<(), ()>,
    slot: Option<&DeadlineSlot>,
    stop: &Stop,
    flag: FlagPtr,
) -> Result<(), Trap> {
    let armed = slot.map(DeadlineSlot::arm).transpose()?;
    stop.clear(flag);
    let result = start.call(store);
    drop(armed);
    result.map_err(|e| trap::from_error(e, stop))
}

/// The address of the stop flag `global` in `store`.
fn flag_ptr(store: &mut Store, global: &Global) -> Option<FlagPtr> {
    if global.ty(store) != GlobalType::new(Type::I32, Mutability::Var) {
        return None;
    }
    // With only the `sys` backend built in, every extern is a `sys` one.
    let wasmer::sys::vm::VMExtern::Global(handle) = Extern::Global(global.clone()).to_vm_extern().unwrap_sys() else {
        return None;
    };
    let definition = handle.get(store.objects_mut().as_sys()).vmglobal();
    // SAFETY: `definition` is the value slot of a mutable `i32` global (checked above) of an
    // instance in `store`: 16-byte aligned (`VMGlobalDefinition` is `repr(C, align(16))`), the
    // `i32` at its start, and alive as long as the store. The `WasmerInstance` that owns the
    // store detaches the flag before dropping it.
    Some(unsafe { FlagPtr::new(definition.cast()) })
}

impl WasmerInstance {
    /// A copy of linear memory.
    #[cfg(test)]
    pub(crate) fn memory_bytes(&mut self) -> Vec<u8> {
        match &self.env.as_ref(&self.store).memory {
            Some(memory) => memory.view(&self.store).copy_to_vec().unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// After a call that trapped, poisoned the instance, or had a memory growth refused: the
    /// refusal is handed to the host, and the trap latched ([`TrapLatch::settle`]).
    #[cold]
    fn settle(&mut self, result: Result<u64, wasmer::RuntimeError>) -> Result<u64, Trap> {
        // SAFETY: the call is over, so no host function holds the state, and `&mut self` means
        // the `Vm` holds none either; the reference ends in this function.
        let shared = unsafe { self.host.get() };
        if let Some(requested) = self.events.take_refused() {
            shared.host.note_memory_refused(requested);
        }
        let poisoned = shared.poisoned.take();
        let result = result.map_err(|e| trap::from_error(e, &self.stop));
        self.failed.settle(result, poisoned)
    }

    /// The handle of `callback` made on its first call (see [`CallbackHandles::insert`]).
    #[cold]
    fn resolve_first(&mut self, callback: Callback) -> Result<usize, Trap> {
        let (store, instance) = (&self.store, &self.instance);
        // Cannot fail: the export's type was checked with the module.
        self.callbacks.insert(callback, || resolve(instance, store, callback).map_err(|e| Trap::guest(e.to_string())))
    }
}

// SAFETY: Wasmer 7 stopped declaring `Store` `Send` (wasmerio/wasmer#7001): its objects hold raw
// pointers, host functions keep their data as `Box<dyn Any>`, and a store can hold an `on_called`
// handler that need not be `Send`. Moving this instance to another thread between calls is sound
// all the same:
// - the store, its instance and every object and raw pointer in it move together, and all of them
//   point into heap memory the store itself owns, which does not move;
// - the only data shared with anything outside are the engine (`Send + Sync`), our `Arc<Stop>`
//   (`Sync`) and the host functions, which Wasmer requires to be `Send + Sync`; the function
//   environment's data, `StoreData`, is `Send`;
// - we never install an `on_called` handler;
// - `&mut self` on every call means no call is running while the instance moves, so none of
//   Wasmer's per-call thread-local state (trap handling, the current store) refers to it.
unsafe impl Send for WasmerInstance {}

impl Drop for WasmerInstance {
    fn drop(&mut self) {
        // No other thread may write the stop flag once the store (and the global) is gone.
        self.stop.detach();
    }
}

// SAFETY: the host state is in `self.host`, a `HostBox` (fixed address, freed with the
// instance, after the store that holds a `StatePtr` copy), and `host_ptr` projects it from the
// box's raw pointer. References to it are made only for a borrow each: by the instance through
// `HostBox::get` with `&mut self`, and during a call by host functions through `StatePtr::get`.
unsafe impl Instance for WasmerInstance {
    fn has(&self, callback: Callback) -> bool {
        self.callbacks.has(callback)
    }

    fn exported(&self) -> CallbackSet {
        self.callbacks.exported()
    }

    fn call(&mut self, callback: Callback, args: &[u64]) -> Result<u64, Trap> {
        self.failed.check()?;
        let place = match self.callbacks.place(callback) {
            Some(place) => place,
            None => self.resolve_first(callback)?,
        };
        self.stop.clear(self.flag);
        let result = self.callbacks.at(place).call(&mut self.store, callback, args)?;
        // SAFETY: as in `settle`: the call is over, and the reference ends in this statement.
        let clean = unsafe { self.host.get() }.poisoned.is_none() && !self.events.refusal_pending();
        match result {
            Ok(value) if clean => Ok(value),
            result => self.settle(result),
        }
    }

    fn host_ptr(&mut self) -> HostPtr {
        let state = self.host.ptr().as_ptr();
        // SAFETY: `state` is the live allocation of `self.host`; the projection makes no
        // reference, and a field of a non-null allocation is not null.
        HostPtr::new(unsafe { NonNull::new_unchecked(&raw mut (*state).host) })
    }

    fn memory_size(&mut self) -> u64 {
        if self.events.take_grown() {
            if let Some(memory) = &self.env.as_ref(&self.store).memory {
                self.memory_bytes = memory.view(&self.store).data_size();
            }
        }
        self.memory_bytes
    }

    fn interrupt_handle(&self) -> Option<Arc<dyn Interrupt>> {
        Some(Arc::new(WasmerInterrupt { stop: self.stop.clone() }))
    }
}
