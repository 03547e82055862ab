//! The host functions, linked once per engine from the ABI table, and [`Cx`]: what they see of
//! the instance that called them.

use proxy_wasm_host::{hostcalls, GuestMemory, HostCx, Trap, VmHost, WordSize};
use wasmtime::{Caller, Engine, Extern, Linker};

use crate::store::{memory_view, MemoryView, StoreData};
use crate::trap;

/// A trampoline's Wasm result: the status or errno, a plain value for `env.pthread_equal`;
/// nothing for a row without a result (`proc_exit`, `env.emscripten_notify_memory_growth`).
macro_rules! wasm_result {
    (none, $result:expr) => {
        $result.map(drop)
    };
    ($ret:ident, $result:expr) => {
        $result
    };
}

/// A linker with every host function of the ABI table: `env` rows under `env`, WASI rows under
/// every name in [`abi::WASI_MODULES`]. Each is a typed closure that widens its Wasm arguments
/// to the host's types and calls the one implementation in [`hostcalls`]; a host trap travels
/// through Wasmtime as a typed error that [`trap::from_error`] gets back out.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<StoreData>> {
    let mut linker = Linker::new(engine);
    macro_rules! link {
        ($( { $module:ident, $name:ident, [$($ver:ident)*], ($($arg:ident : $kind:ident),*) -> $ret:ident } )*) => {
            $(
                for module in abi::host_module!($module).import_names() {
                    linker.func_wrap(
                        module,
                        stringify!($name),
                        |mut caller: Caller<'_, StoreData> $(, $arg: abi::wasm_type!($kind))*|
                         -> wasmtime::Result<abi::wasm_type!($ret)> {
                            let result = hostcalls::$name(&mut Cx(&mut caller) $(, abi::wasm_to_host!($kind, $arg))*);
                            wasm_result!($ret, result).map_err(wasmtime::Error::new)
                        },
                    )?;
                }
            )*
        };
    }
    abi::for_each_host_function!(link);
    Ok(linker)
}

/// The exported memory's view for a host call made before instantiation has handed the memory
/// to the store (a start function's `proxy_log`): found through the caller and kept, as
/// instantiation would keep it; empty for a module without memory.
#[cold]
fn memory_during_start(caller: &mut Caller<'_, StoreData>) -> MemoryView {
    if let Some(Extern::Memory(memory)) = caller.get_export(abi::MEMORY_EXPORT) {
        caller.data_mut().memory = Some(memory);
    }
    memory_view(&mut *caller)
}

/// A host function's view of its caller: guest memory, host state and the guest allocator.
pub(crate) struct Cx<'a, 'b>(pub(crate) &'a mut Caller<'b, StoreData>);

impl HostCx for Cx<'_, '_> {
    fn parts(&mut self) -> (GuestMemory<'_>, &mut VmHost) {
        let mut view = memory_view(&mut *self.0);
        if view.len == 0 && self.0.data().memory.is_none() {
            view = memory_during_start(self.0);
        }
        let host = self.0.data().host_ptr();
        // SAFETY: `view` is the exported memory's current start and length (see `MemoryView`:
        // cleared before any growth), a live allocation of the store that `self` borrows
        // mutably for as long as the result lives; no guest code runs meanwhile (it runs only
        // through `allocate`, which needs `self` again), and the only other view of those
        // bytes, `Memory::data_mut`, needs the store as well.
        let bytes = unsafe { std::slice::from_raw_parts_mut(view.base.as_ptr(), view.len) };
        // SAFETY: as `StoreData::host`: the `Vm` holds no reference to the state during a call,
        // and the result borrows `self` (so the store's data) mutably, like `bytes`.
        (GuestMemory::new(bytes, WordSize::W32), unsafe { &mut *host.as_ptr() })
    }

    fn allocate(&mut self, size: u64) -> Result<u64, Trap> {
        if let Some((instance, export)) = self.0.data_mut().allocator_export.take() {
            self.0.data_mut().allocator = crate::instance::allocator(&mut *self.0, &instance, &export);
        }
        // A wasm32 guest cannot allocate more than 4 GiB.
        let Ok(size) = u32::try_from(size) else { return Ok(0) };
        let Some(allocator) = self.0.data_mut().allocator.take() else { return Ok(0) };
        let result = allocator.call(&mut *self.0, (size as i32,));
        self.0.data_mut().allocator = Some(allocator);
        match result {
            Ok(addr) => Ok(u64::from(addr as u32)),
            Err(e) => {
                let trap = trap::from_error(e);
                self.0.data_mut().poisoned = Some(trap.clone());
                Err(trap)
            }
        }
    }

    fn host(&mut self) -> &mut VmHost {
        self.0.data_mut().host()
    }
}
