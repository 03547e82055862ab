//! [`WasmtimeInstance`]: a store holding the VM's host state, each callback resolved on its
//! first call, and the call path; [`CallbackExports`], each callback export found and
//! type-checked once per module.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use abi::{Callback, CallbackInfo};
use proxy_wasm_host::engine::{arity_mismatch, callback_exports, CallbackHandles, HostPtr, TrapLatch, Watchdog};
use proxy_wasm_host::{CallbackSet, Error, Export, Instance, Interrupt, Trap, VmHost};
use wasmtime::{AsContextMut, EngineWeak, Extern, Func, InstancePre, ModuleExport, Store, StoreContextMut, TypedFunc, UpdateDeadline};

use crate::shared::{Shared, NAME};
use crate::store::StoreData;
use crate::trap;

/// Each callback the module exports, found and type-checked once per module, and its memory, so
/// that making an instance neither looks exports up by name nor builds their types again.
pub(crate) struct CallbackExports {
    callbacks: [Option<Result<ModuleExport, Error>>; Callback::COUNT],
    /// Where the exported `memory` is, if there is one.
    memory: Option<ModuleExport>,
}

impl CallbackExports {
    /// Finds every callback of any ABI version among `module`'s exports (`exports` are its
    /// exports in the host's terms): its index when its type is the callback's, else the error.
    pub(crate) fn of(module: &wasmtime::Module, exports: &[Export]) -> Self {
        let verdicts = callback_exports(exports);
        let callbacks = std::array::from_fn(|i| {
            let verdict = verdicts[i].clone()?;
            let index = module.get_export_index(abi::CALLBACKS[i].name)?;
            Some(verdict.map(|()| index))
        });
        CallbackExports { callbacks, memory: module.get_export_index(abi::MEMORY_EXPORT) }
    }

    /// Where `callback` is: `None` if the module does not export it, the error if its type is
    /// wrong.
    fn get(&self, callback: Callback) -> Option<&Result<ModuleExport, Error>> {
        self.callbacks[callback as usize].as_ref()
    }
}

/// The epoch callback, run when the engine's epoch moves (an [`WasmtimeInterrupt`] moves it):
/// stop if this store was interrupted, else go on until the epoch moves again.
fn epoch_check(cx: StoreContextMut<'_, StoreData>) -> wasmtime::Result<UpdateDeadline> {
    if cx.data().interrupt.load(Ordering::Acquire) {
        Ok(UpdateDeadline::Interrupt)
    } else {
        Ok(UpdateDeadline::Continue(1))
    }
}

/// Prepares a store for a call from the host: forgets an interrupt that landed while no call
/// ran (`flag` is the store's [`StoreData::interrupt`](crate::store::StoreData)).
///
/// The epoch deadline is not set again here. Compiled code checks the epoch at function entries
/// and loop headers whether or not a deadline is armed, and the epoch only moves when some
/// instance of the engine is interrupted. The deadline is set once, one tick ahead, when the
/// store is made, and [`epoch_check`] sets it one tick ahead of the epoch each time it is
/// reached. So a call finds it either ahead of the epoch, or reached by interrupts of other
/// instances (or a forgotten one of its own) since, and then the first check runs
/// [`epoch_check`], which sees no interrupt and goes on. Setting it on every call (a call into
/// Wasmtime, about 20 instructions) would only spare that one callback after an interrupt.
#[inline(always)]
fn begin_call(flag: &AtomicBool) {
    flag.store(false, Ordering::Relaxed);
}

/// A callback's typed handle, one variant per shape of the callback table: every parameter is an
/// `i32`; the result is nothing (`N*`) or an `i32` (`R*`).
#[derive(Clone)]
enum Handle {
    N0(TypedFunc<(), ()>),
    N1(TypedFunc<(i32,), ()>),
    N2(TypedFunc<(i32, i32), ()>),
    N3(TypedFunc<(i32, i32, i32), ()>),
    N4(TypedFunc<(i32, i32, i32, i32), ()>),
    N5(TypedFunc<(i32, i32, i32, i32, i32), ()>),
    R0(TypedFunc<(), i32>),
    R1(TypedFunc<(i32,), i32>),
    R2(TypedFunc<(i32, i32), i32>),
    R3(TypedFunc<(i32, i32, i32), i32>),
    R4(TypedFunc<(i32, i32, i32, i32), i32>),
    R5(TypedFunc<(i32, i32, i32, i32, i32), i32>),
}

/// Makes a typed handle of `func` without Wasmtime's type check.
macro_rules! unchecked {
    ($variant:ident, $store:expr, $func:expr) => {
        // SAFETY: `Handle::new`'s contract: the export's type is the callback's table row,
        // checked once per module (`CallbackExports::of`), and the row has only `i32`
        // parameters and an `i32` result or none (checked just before this), which is this
        // variant's `TypedFunc` type; so `Func::typed` would succeed, which is what
        // `TypedFunc::new_unchecked` requires.
        $variant(unsafe { TypedFunc::new_unchecked($store, $func) })
    };
}

impl Handle {
    /// The handle for `func`, the export of `info`'s callback, whose type [`CallbackExports`]
    /// checked against `info` already (so it is not checked again per instance: that check
    /// costs more than the rest of making the handle). A table row with another shape than
    /// `i32` parameters and an `i32` result or none is refused.
    fn new(func: Func, store: &Store<StoreData>, info: &CallbackInfo) -> wasmtime::Result<Self> {
        use Handle::*;
        let i32_only = info.params.iter().all(|p| p.kind.wasm_type() == Some("i32"))
            && matches!(info.result.wasm_type(), None | Some("i32"));
        if !i32_only {
            wasmtime::bail!("callback `{}` has a parameter or result other than i32", info.name);
        }
        Ok(match (info.params.len(), info.result.wasm_type().is_some()) {
            (0, false) => unchecked!(N0, store, func),
            (1, false) => unchecked!(N1, store, func),
            (2, false) => unchecked!(N2, store, func),
            (3, false) => unchecked!(N3, store, func),
            (4, false) => unchecked!(N4, store, func),
            (5, false) => unchecked!(N5, store, func),
            (0, true) => unchecked!(R0, store, func),
            (1, true) => unchecked!(R1, store, func),
            (2, true) => unchecked!(R2, store, func),
            (3, true) => unchecked!(R3, store, func),
            (4, true) => unchecked!(R4, store, func),
            (5, true) => unchecked!(R5, store, func),
            (n, _) => wasmtime::bail!("callbacks with {n} parameters are not supported"),
        })
    }

    /// Calls it with `args`, one per parameter (each narrowed to the `i32` every callback
    /// parameter is in Wasm: its low 32 bits); the result is widened (0 for none). Another
    /// number of arguments is refused, naming both counts: the arity is the variant's, so the
    /// check is the slice pattern, with no table lookup on the call path.
    #[inline]
    fn call(&self, store: &mut Store<StoreData>, callback: Callback, args: &[u64]) -> Result<wasmtime::Result<u64>, Trap> {
        use Handle::*;
        let none = |()| 0;
        let widen = |r: i32| u64::from(r as u32);
        let n = |x: &u64| *x as i32;
        Ok(match (self, args) {
            (N0(f), []) => f.call(store, ()).map(none),
            (N1(f), [a]) => f.call(store, (n(a),)).map(none),
            (N2(f), [a, b]) => f.call(store, (n(a), n(b))).map(none),
            (N3(f), [a, b, c]) => f.call(store, (n(a), n(b), n(c))).map(none),
            (N4(f), [a, b, c, d]) => f.call(store, (n(a), n(b), n(c), n(d))).map(none),
            (N5(f), [a, b, c, d, e]) => f.call(store, (n(a), n(b), n(c), n(d), n(e))).map(none),
            (R0(f), []) => f.call(store, ()).map(widen),
            (R1(f), [a]) => f.call(store, (n(a),)).map(widen),
            (R2(f), [a, b]) => f.call(store, (n(a), n(b))).map(widen),
            (R3(f), [a, b, c]) => f.call(store, (n(a), n(b), n(c))).map(widen),
            (R4(f), [a, b, c, d]) => f.call(store, (n(a), n(b), n(c), n(d))).map(widen),
            (R5(f), [a, b, c, d, e]) => f.call(store, (n(a), n(b), n(c), n(d), n(e))).map(widen),
            _ => return Err(arity_mismatch(callback, args)),
        })
    }
}

/// A live instance of a [`WasmtimeModule`](crate::WasmtimeModule): one VM, used by one thread
/// at a time (`Send`).
///
/// Its callbacks were type-checked once per module; each is resolved to a typed handle on its
/// first call (a clone that never sees a stream never pays for the stream callbacks), and
/// called through it. After a trap it refuses every further call.
///
/// The instance is kept small (a byte per callback, the handles in a list of their own), as
/// it is moved a few times while it is made: a handle in place for every callback made it
/// ten times larger.
pub struct WasmtimeInstance {
    pub(crate) store: Store<StoreData>,
    instance: wasmtime::Instance,
    /// The callbacks the module exports for the guest's ABI version, resolved on first call.
    callbacks: CallbackHandles<Handle>,
    /// The module's exports, where a callback is found on its first call.
    exports: Arc<CallbackExports>,
    shared: Arc<Shared>,
    /// The store's interrupt flag, kept here too: cleared before every call, it is one load
    /// away rather than behind the store's data.
    interrupt: Arc<AtomicBool>,
    /// The first trap, after which every call is refused.
    failed: TrapLatch,
}

/// Makes an instance of the pre-linked module: a store with the host state, the memory limit
/// and the epoch callback; the module instantiated (a start section, if any, runs under the
/// VM's call deadline); the memory, the callbacks of the guest's ABI version and the allocator
/// resolved.
pub(crate) fn instantiate(
    shared: &Arc<Shared>,
    pre: &InstancePre<StoreData>,
    exports: &Arc<CallbackExports>,
    host: VmHost,
) -> Result<WasmtimeInstance, Error> {
    let shared = shared.clone();
    let version = host.abi_version();
    let allocator_callback = host.allocator();
    let deadline = host.limits().call_deadline;
    let mut store = Store::new(&shared.engine, StoreData::new(host));
    store.limiter(|data| data);
    store.epoch_deadline_callback(epoch_check);
    store.set_epoch_deadline(1);

    let interrupt = WasmtimeInterrupt { flag: store.data().interrupt.clone(), engine: shared.engine.weak() };
    let slot = deadline.map(|d| Watchdog::global().slot(Arc::new(interrupt), d));
    let instantiated = {
        let _armed = slot.as_ref().map(|s| s.arm()).transpose().map_err(instantiate_error)?;
        begin_call(&store.data().interrupt);
        pre.instantiate(&mut store)
    };
    let instance = instantiated.map_err(|e| instantiate_error(trap::from_error(e)))?;

    let memory = match exports.memory.and_then(|index| instance.get_module_export(&mut store, &index)) {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    };
    let mut exported = CallbackSet::EMPTY;
    for callback in Callback::for_version(version) {
        let Some(index) = exports.get(callback) else { continue };
        index.as_ref().map_err(Clone::clone)?;
        exported.insert(callback);
    }
    let data = store.data_mut();
    data.memory = memory;
    data.allocator_export = match exports.get(allocator_callback) {
        Some(Ok(index)) if exported.contains(allocator_callback) => Some((instance, *index)),
        _ => None,
    };
    let exports = exports.clone();
    let callbacks = CallbackHandles::new(exported);
    let interrupt = store.data().interrupt.clone();
    Ok(WasmtimeInstance { store, instance, callbacks, exports, shared, interrupt, failed: TrapLatch::default() })
}

/// The guest allocator's typed handle, exported at `index` of `instance` (`malloc` or
/// `proxy_on_memory_allocate`, whose type was checked with the module); `None` if the rows of
/// the allocator callbacks were not `(i32) -> i32`.
pub(crate) fn allocator(
    mut store: impl AsContextMut<Data = StoreData>,
    instance: &wasmtime::Instance,
    index: &ModuleExport,
) -> Option<TypedFunc<(i32,), i32>> {
    let Some(Extern::Func(func)) = instance.get_module_export(&mut store, index) else { return None };
    let i32_to_i32 = [Callback::Malloc, Callback::OnMemoryAllocate].iter().all(|c| {
        let info = c.info();
        info.params.len() == 1 && info.params[0].kind.wasm_type() == Some("i32") && info.result.wasm_type() == Some("i32")
    });
    // SAFETY: the export is the allocator callback, whose type `CallbackExports::of` checked
    // against its table row with the module, and both allocator rows are `(i32) -> i32`
    // (`i32_to_i32`), so `Func::typed::<(i32,), i32>` would succeed, which is what
    // `TypedFunc::new_unchecked` requires.
    i32_to_i32.then(|| unsafe { TypedFunc::new_unchecked(&store, func) })
}

/// The typed handle of `callback`, exported at `index` of `instance`.
fn resolve(store: &mut Store<StoreData>, instance: &wasmtime::Instance, callback: Callback, index: ModuleExport) -> Result<Handle, Error> {
    let info = callback.info();
    let bad = |message: String| Error::BadExport { export: info.name.to_string(), message };
    let Some(Extern::Func(func)) = instance.get_module_export(&mut *store, &index) else {
        return Err(bad("not a function".into()));
    };
    Handle::new(func, store, info).map_err(|e| bad(format!("{e:#}")))
}

fn instantiate_error(trap: Trap) -> Error {
    Error::Instantiate { engine: NAME, message: trap.to_string() }
}

impl WasmtimeInstance {
    /// The handle of `callback` made on its first call (see [`CallbackHandles::insert`]).
    #[cold]
    fn resolve_first(&mut self, callback: Callback) -> Result<usize, Trap> {
        let (store, instance, exports) = (&mut self.store, &self.instance, &self.exports);
        self.callbacks.insert(callback, || {
            let index = exports.get(callback).and_then(|e| e.as_ref().ok());
            let index = index.ok_or_else(|| Trap::guest(format!("`{callback}` has no export")))?;
            // Cannot fail: the export's type was checked with the module.
            resolve(store, instance, callback, *index).map_err(|e| Trap::guest(e.to_string()))
        })
    }

    /// A call that trapped, or whose guest allocator trapped inside a host function: the trap
    /// is latched ([`TrapLatch::settle`]).
    #[cold]
    fn settle(&mut self, result: wasmtime::Result<u64>) -> Result<u64, Trap> {
        let poisoned = self.store.data_mut().poisoned.take();
        self.failed.settle(result.map_err(trap::from_error), poisoned)
    }
}

// SAFETY: the host state is in the store data's `HostBox` (fixed address, freed with the store,
// which this instance owns), and `host_ptr` is the box's raw pointer. References to it are
// made only for a borrow of the store's data each: through `StoreData::host` (the instance,
// the resource limiter, host functions) and in `Cx::parts`, from the same raw pointer.
unsafe impl Instance for WasmtimeInstance {
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
        begin_call(&self.interrupt);
        match self.callbacks.at(place).call(&mut self.store, callback, args)? {
            Ok(value) if self.store.data().poisoned.is_none() => Ok(value),
            result => self.settle(result),
        }
    }

    fn host_ptr(&mut self) -> HostPtr {
        HostPtr::new(self.store.data().host_ptr())
    }

    fn memory_size(&mut self) -> u64 {
        crate::store::memory_view(&mut self.store).len as u64
    }

    fn interrupt_handle(&self) -> Option<Arc<dyn Interrupt>> {
        Some(Arc::new(WasmtimeInterrupt {
            flag: self.store.data().interrupt.clone(),
            engine: self.shared.engine.weak(),
        }))
    }
}

/// Interrupts a [`WasmtimeInstance`]'s running call from any thread: sets the instance's flag and
/// moves the engine's epoch, so the call reaches its epoch callback at its next function entry or
/// loop header and stops with a deadline trap. An interrupt while no call runs is forgotten when
/// the next call starts. Does not keep the engine alive.
pub struct WasmtimeInterrupt {
    flag: Arc<AtomicBool>,
    engine: EngineWeak,
}

impl Interrupt for WasmtimeInterrupt {
    fn interrupt(&self) {
        self.flag.store(true, Ordering::Release);
        // Moving the epoch makes the running call reach its epoch callback, which sees the flag.
        if let Some(engine) = self.engine.upgrade() {
            engine.increment_epoch();
        }
    }
}
