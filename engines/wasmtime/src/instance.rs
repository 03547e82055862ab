//! [`WasmtimeInstance`]: a store holding the VM's host state, the callbacks resolved once, and
//! the call path with its deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::{Callback, CallbackInfo};
use proxy_wasm_host::{callback_args, MAX_CALLBACK_PARAMS, Error, Instance, Interrupt, Limits, Trap, TrapLatch, VmHost};
use wasmtime::{EngineWeak, Extern, Func, InstancePre, Memory, Store, StoreContextMut, TypedFunc, UpdateDeadline};

use crate::engine::{Shared, Ticking, NAME};
use crate::module::{CallbackExports, WasmtimeModule};
use crate::trap::{self, MemoryLimiter};

/// What a store holds: the host state and what host functions need of the instance.
pub(crate) struct StoreData {
    /// The VM's host state.
    pub(crate) host: VmHost,
    /// The exported `memory`, if any.
    pub(crate) memory: Option<Memory>,
    /// The guest allocator: `malloc`, else `proxy_on_memory_allocate`. In an `Arc` because a
    /// host function clones it out of the store for each call (the allocator may re-enter the
    /// host), and cloning a `TypedFunc` clones its registered type, which costs more than the
    /// rest of a header lookup.
    pub(crate) allocator: Option<Arc<TypedFunc<(i32,), i32>>>,
    limiter: MemoryLimiter,
    /// Set by [`WasmtimeInterrupt`]; cleared when a call starts.
    interrupt: Arc<AtomicBool>,
    /// The CPU budget of one call.
    deadline: Option<Duration>,
    /// When the running call's budget ends.
    deadline_at: Option<Instant>,
    /// A trap raised in the guest allocator during a host function. The VM fails with it even
    /// if the host function swallowed the error.
    pub(crate) poisoned: Option<Trap>,
}

impl StoreData {
    /// The deadline trap for an epoch interrupt of the running call.
    pub(crate) fn stop_reason(&self) -> Trap {
        if self.interrupt.load(Ordering::Acquire) {
            Trap::deadline("interrupted by the host")
        } else {
            Trap::deadline(format!("the call ran longer than its {:?} deadline", self.deadline.unwrap_or_default()))
        }
    }
}

/// The epoch callback, run when the engine's epoch passes the store's deadline (one tick after
/// the call started or after the last check): stop if interrupted or past the call's deadline,
/// else check again at the next tick.
fn epoch_check(cx: StoreContextMut<'_, StoreData>) -> wasmtime::Result<UpdateDeadline> {
    let data = cx.data();
    let late = data.deadline_at.is_some_and(|at| Instant::now() >= at);
    if late || data.interrupt.load(Ordering::Acquire) {
        Ok(UpdateDeadline::Interrupt)
    } else {
        Ok(UpdateDeadline::Continue(1))
    }
}

/// Prepares `store` for a call from the host: clears the interrupt flag, arms the deadline and
/// keeps the ticker going while the returned guard lives.
fn begin_call<'a>(shared: &'a Arc<Shared>, store: &mut Store<StoreData>) -> Result<Option<Ticking<'a>>, Trap> {
    let data = store.data_mut();
    data.interrupt.store(false, Ordering::Relaxed);
    data.deadline_at = data.deadline.and_then(|d| Instant::now().checked_add(d));
    let ticking = if data.deadline_at.is_some() { Some(shared.ticking()?) } else { None };
    // Without a deadline this costs nothing unless the epoch moves (the ticker runs for another
    // VM, or `interrupt` bumps it): then `epoch_check` runs once per tick.
    store.set_epoch_deadline(1);
    Ok(ticking)
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

impl Handle {
    /// The handle for `func`, whose type was checked against `info` already.
    fn new(func: Func, store: &Store<StoreData>, info: &CallbackInfo) -> wasmtime::Result<Self> {
        use Handle::*;
        Ok(match (info.params.len(), info.result.wasm_type().is_some()) {
            (0, false) => N0(func.typed(store)?),
            (1, false) => N1(func.typed(store)?),
            (2, false) => N2(func.typed(store)?),
            (3, false) => N3(func.typed(store)?),
            (4, false) => N4(func.typed(store)?),
            (5, false) => N5(func.typed(store)?),
            (0, true) => R0(func.typed(store)?),
            (1, true) => R1(func.typed(store)?),
            (2, true) => R2(func.typed(store)?),
            (3, true) => R3(func.typed(store)?),
            (4, true) => R4(func.typed(store)?),
            (5, true) => R5(func.typed(store)?),
            (n, _) => wasmtime::bail!("callbacks with {n} parameters are not supported"),
        })
    }

    /// Calls it with the first parameters of `a`; the result is widened (0 for none).
    fn call(&self, store: &mut Store<StoreData>, a: &[i32; MAX_CALLBACK_PARAMS]) -> wasmtime::Result<u64> {
        use Handle::*;
        let none = |()| 0;
        let widen = |r: i32| u64::from(r as u32);
        match self {
            N0(f) => f.call(store, ()).map(none),
            N1(f) => f.call(store, (a[0],)).map(none),
            N2(f) => f.call(store, (a[0], a[1])).map(none),
            N3(f) => f.call(store, (a[0], a[1], a[2])).map(none),
            N4(f) => f.call(store, (a[0], a[1], a[2], a[3])).map(none),
            N5(f) => f.call(store, (a[0], a[1], a[2], a[3], a[4])).map(none),
            R0(f) => f.call(store, ()).map(widen),
            R1(f) => f.call(store, (a[0],)).map(widen),
            R2(f) => f.call(store, (a[0], a[1])).map(widen),
            R3(f) => f.call(store, (a[0], a[1], a[2])).map(widen),
            R4(f) => f.call(store, (a[0], a[1], a[2], a[3])).map(widen),
            R5(f) => f.call(store, (a[0], a[1], a[2], a[3], a[4])).map(widen),
        }
    }
}

/// A live instance of a [`WasmtimeModule`]: one VM, used by one thread at a time (`Send`).
///
/// Its callbacks are resolved and type-checked at instantiation and called through typed
/// handles; after a trap it refuses every further call.
pub struct WasmtimeInstance {
    pub(crate) store: Store<StoreData>,
    callbacks: [Option<Handle>; Callback::COUNT],
    shared: Arc<Shared>,
    /// The first trap, after which every call is refused.
    failed: TrapLatch,
}

/// Makes an instance: a store with the host state, limits and epoch callback; the module
/// instantiated from its pre-linked form (its start function, if any, runs under the call
/// deadline); the memory, the callbacks of the guest's ABI version and the allocator resolved.
pub(crate) fn instantiate(module: &WasmtimeModule, host: VmHost, limits: &Limits) -> Result<WasmtimeInstance, Error> {
    instantiate_pre(module.shared(), module.pre()?, module.callbacks(), host, limits)
}

/// [`instantiate`] from a pre-linked module.
pub(crate) fn instantiate_pre(
    shared: &Arc<Shared>,
    pre: &InstancePre<StoreData>,
    exports: &CallbackExports,
    host: VmHost,
    limits: &Limits,
) -> Result<WasmtimeInstance, Error> {
    let shared = shared.clone();
    let version = host.abi_version();
    let data = StoreData {
        host,
        memory: None,
        allocator: None,
        limiter: MemoryLimiter::new(limits.max_memory_bytes),
        interrupt: Arc::new(AtomicBool::new(false)),
        deadline: limits.call_deadline,
        deadline_at: None,
        poisoned: None,
    };
    let mut store = Store::new(&shared.engine, data);
    store.limiter(|data| &mut data.limiter);
    store.epoch_deadline_callback(epoch_check);

    let instantiated = {
        let _ticking = begin_call(&shared, &mut store).map_err(instantiate_error)?;
        pre.instantiate(&mut store)
    };
    let instance = instantiated.map_err(|e| instantiate_error(trap::from_error(e, store.data())))?;

    let memory = instance.get_memory(&mut store, "memory");
    let mut callbacks: [Option<Handle>; Callback::COUNT] = std::array::from_fn(|_| None);
    for callback in Callback::for_version(version) {
        let info = callback.info();
        let Some(index) = exports.get(callback) else { continue };
        let index = index.as_ref().map_err(Clone::clone)?;
        let bad = |message: String| Error::BadExport { export: info.name.to_string(), message };
        let Some(Extern::Func(func)) = instance.get_module_export(&mut store, index) else {
            return Err(bad("not a function".into()));
        };
        let handle = Handle::new(func, &store, info).map_err(|e| bad(format!("{e:#}")))?;
        callbacks[callback as usize] = Some(handle);
    }
    let allocator = [Callback::Malloc, Callback::OnMemoryAllocate].iter().find_map(|cb| match &callbacks[*cb as usize] {
        Some(Handle::R1(f)) => Some(Arc::new(f.clone())),
        _ => None,
    });
    let data = store.data_mut();
    data.memory = memory;
    data.allocator = allocator;
    Ok(WasmtimeInstance { store, callbacks, shared, failed: TrapLatch::default() })
}

fn instantiate_error(trap: Trap) -> Error {
    Error::Instantiate { engine: NAME, message: trap.to_string() }
}

impl Instance for WasmtimeInstance {
    fn has(&self, callback: Callback) -> bool {
        self.callbacks[callback as usize].is_some()
    }

    fn call(&mut self, callback: Callback, args: &[u64]) -> Result<u64, Trap> {
        self.failed.check()?;
        let Some(handle) = &self.callbacks[callback as usize] else {
            return Err(Trap::guest(format!("`{callback}` is not exported by the module")));
        };
        let a = callback_args(callback, args)?;
        let result = {
            let _ticking = begin_call(&self.shared, &mut self.store)?;
            handle.call(&mut self.store, &a)
        };
        let poisoned = self.store.data_mut().poisoned.take();
        let result = result.map_err(|e| trap::from_error(e, self.store.data()));
        self.failed.settle(result, poisoned)
    }

    fn host(&mut self) -> &mut VmHost {
        &mut self.store.data_mut().host
    }

    fn memory_size(&mut self) -> u64 {
        match self.store.data().memory {
            Some(memory) => memory.data_size(&self.store) as u64,
            None => 0,
        }
    }

    fn interrupt_handle(&self) -> Option<Arc<dyn Interrupt>> {
        Some(Arc::new(WasmtimeInterrupt {
            flag: self.store.data().interrupt.clone(),
            engine: self.shared.engine.weak(),
        }))
    }
}

/// Interrupts a [`WasmtimeInstance`]'s running call from any thread: the call stops at its
/// next function entry or loop header with a deadline trap. An interrupt while no call runs is
/// forgotten when the next call starts. Does not keep the engine alive.
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
