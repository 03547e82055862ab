//! The host functions, made per store from the ABI table for the imports a module has, and
//! [`Cx`]: what they see of the instance that called them.

use proxy_wasm_host::{hostcalls, GuestMemory, HostCx, Trap, VmHost, WordSize};
use wasmer::{AsStoreMut, Function, FunctionEnv, FunctionEnvMut, Imports};

use crate::store::StoreData;
use crate::trap;

/// A trampoline's Wasm result: the status or errno, or the host's trap as the typed error (which
/// [`trap::from_error`] gets back out); a plain value for `env.pthread_equal`; nothing for a row without a
/// result (`proc_exit`, `env.emscripten_notify_memory_growth`).
macro_rules! wasm_result {
    (none, $result:expr) => {
        $result.map(drop)
    };
    ($ret:ident, $result:expr) => {
        $result
    };
}

/// The host function `module.name` of the ABI table as a typed Wasmer function in `store`, or
/// `None` if the table has no such row. Each is a closure that widens its Wasm arguments to the
/// host's types and calls the one implementation in [`hostcalls`].
fn host_function(
    store: &mut impl AsStoreMut,
    env: &FunctionEnv<StoreData>,
    module: abi::HostModule,
    name: &str,
) -> Option<Function> {
    macro_rules! make {
        ($( { $module:ident, $name:ident, [$($ver:ident)*], ($($arg:ident : $kind:ident),*) -> $ret:ident } )*) => {
            match (module, name) {
                $(
                    (abi::host_module!($module), stringify!($name)) => Some(Function::new_typed_with_env(
                        store,
                        env,
                        |mut env: FunctionEnvMut<'_, StoreData> $(, $arg: abi::wasm_type!($kind))*|
                         -> Result<abi::wasm_type!($ret), Trap> {
                            let result = hostcalls::$name(&mut Cx(&mut env) $(, abi::wasm_to_host!($kind, $arg))*);
                            wasm_result!($ret, result)
                        },
                    )),
                )*
                _ => None,
            }
        };
    }
    abi::for_each_host_function!(make)
}

/// The host functions `module` imports: `env` rows under `env`, WASI rows under every name in
/// [`abi::WASI_MODULES`]. Imports outside the table are left out (the module's import check
/// refuses them first).
pub(crate) fn imports(store: &mut impl AsStoreMut, env: &FunctionEnv<StoreData>, module: &wasmer::Module) -> Imports {
    let mut imports = Imports::new();
    for import in module.imports() {
        let Some(host_module) = abi::HostModule::from_import_name(import.module()) else { continue };
        if let Some(function) = host_function(store, env, host_module, import.name()) {
            imports.define(import.module(), import.name(), function);
        }
    }
    imports
}

/// A host function's view of its caller: guest memory, host state and the guest allocator.
pub(crate) struct Cx<'a, 'b>(pub(crate) &'a mut FunctionEnvMut<'b, StoreData>);

impl HostCx for Cx<'_, '_> {
    fn parts(&mut self) -> (GuestMemory<'_>, &mut VmHost) {
        let (data, store) = self.0.data_and_store_mut();
        let (ptr, len) = match &data.memory {
            Some(memory) => {
                let view = memory.view(&store);
                (view.data_ptr(), usize::try_from(view.data_size()).unwrap_or(0))
            }
            None => (std::ptr::null_mut(), 0),
        };
        let bytes: &mut [u8] = if ptr.is_null() || len == 0 {
            &mut []
        } else {
            // SAFETY: `ptr..ptr + len` is the instance's whole linear memory, as Wasmer reports it
            // now. It stays valid and unaliased while the returned borrow of `self` lives: only
            // guest code can grow (and move) it or write it, and no guest code runs until that
            // borrow ends (`allocate`, the only way back into the guest, needs `&mut self`).
            unsafe { std::slice::from_raw_parts_mut(ptr, len) }
        };
        (GuestMemory::new(bytes, WordSize::W32), &mut data.shared().host)
    }

    fn allocate(&mut self, size: u64) -> Result<u64, Trap> {
        let Some(allocator) = self.0.data().allocator.clone() else { return Ok(0) };
        // A wasm32 guest cannot allocate more than 4 GiB.
        let Ok(size) = u32::try_from(size) else { return Ok(0) };
        match allocator.call(&mut *self.0, size as i32) {
            Ok(addr) => Ok(u64::from(addr as u32)),
            Err(e) => {
                let data = self.0.data_mut();
                let trap = trap::from_error(e, &data.stop);
                data.shared().poisoned = Some(trap.clone());
                Err(trap)
            }
        }
    }

    fn host(&mut self) -> &mut VmHost {
        &mut self.0.data_mut().shared().host
    }
}
