//! The raw-engine baselines: the same guest code driven through the engine's own API, without
//! our layer, doing the same unavoidable work (the same exports called with the same arguments;
//! for a header lookup, a host function that finds the value, calls the guest's allocator and
//! copies the value in).
//!
//! WAMR's baseline calls its C API directly (`proxy_wasm_wamr::sys`), not our wrapper of it.
//!
//! Each baseline is a closure that runs one iteration, as [`Raw`] makes them per engine. An
//! engine without a raw baseline here (a new one, until someone writes it) gets `None`, and the
//! report says so.

/// One iteration of a benchmark.
pub type Iteration = Box<dyn FnMut()>;

/// A raw engine, without our layer.
pub enum Raw {
    /// Wasmtime, with the same configuration as our Wasmtime engine (so the same machine code),
    /// in stores that never reach their epoch deadline.
    #[cfg(feature = "wasmtime")]
    Wasmtime(wasmtime::Engine),
    /// Wasmer with a plain compiler (Cranelift for `wasmer`, Singlepass for
    /// `wasmer-singlepass`): no stop-check middleware, no memory-limiting tunables.
    #[cfg(any(feature = "wasmer", feature = "wasmer-singlepass"))]
    Wasmer(wasmer::Engine),
    /// WAMR through its C API, with the same build and the same guest stack size as our WAMR
    /// engine; the engine is made first because WAMR's runtime is one per process.
    #[cfg(feature = "wamr")]
    Wamr(proxy_wasm_wamr::WamrEngine),
}

impl Raw {
    /// The raw baseline of engine `name`, if there is one.
    pub fn for_engine(name: &str) -> Option<Raw> {
        match name {
            #[cfg(feature = "wasmtime")]
            "wasmtime" => Some(Raw::Wasmtime(proxy_wasm_wasmtime::WasmtimeEngine::default().wasmtime().clone())),
            #[cfg(feature = "wasmer")]
            "wasmer" => Some(Raw::Wasmer(wasmer::sys::Cranelift::new().into())),
            #[cfg(feature = "wasmer-singlepass")]
            "wasmer-singlepass" => Some(Raw::Wasmer(wasmer::sys::Singlepass::new().into())),
            #[cfg(feature = "wamr")]
            "wamr" => Some(Raw::Wamr(proxy_wasm_wamr::WamrEngine::default())),
            _ => None,
        }
    }

    /// Compiles `bytes` (and drops the module).
    pub fn compile(&self, bytes: Vec<u8>) -> Iteration {
        match self {
            #[cfg(feature = "wasmtime")]
            Raw::Wasmtime(engine) => {
                let engine = engine.clone();
                Box::new(move || drop(wasmtime::Module::new(&engine, &bytes).expect("compiles")))
            }
            #[cfg(any(feature = "wasmer", feature = "wasmer-singlepass"))]
            Raw::Wasmer(engine) => {
                let engine = engine.clone();
                Box::new(move || drop(wasmer::Module::new(&engine, &bytes).expect("compiles")))
            }
            #[cfg(feature = "wamr")]
            Raw::Wamr(_) => Box::new(move || wamr_raw::load(&bytes).unload()),
        }
    }

    /// Instantiates a module without imports (a new store each time), looks up the three root
    /// callbacks and calls them as our layer starts a plugin: `proxy_on_context_create(1, 0)`,
    /// `proxy_on_vm_start(1, 0)`, `proxy_on_configure(1, 0)`; then drops it all.
    pub fn instantiate(&self, bytes: &[u8]) -> Iteration {
        match self {
            #[cfg(feature = "wasmtime")]
            Raw::Wasmtime(engine) => wasmtime_raw::instantiate(engine, bytes),
            #[cfg(any(feature = "wasmer", feature = "wasmer-singlepass"))]
            Raw::Wasmer(engine) => wasmer_raw::instantiate(engine, bytes),
            #[cfg(feature = "wamr")]
            Raw::Wamr(_) => wamr_raw::instantiate(bytes),
        }
    }

    /// The empty stream lifecycle on the empty plugin: the five exports our layer calls for a
    /// stream, with the same arguments.
    pub fn lifecycle(&self) -> Iteration {
        match self {
            #[cfg(feature = "wasmtime")]
            Raw::Wasmtime(engine) => wasmtime_raw::lifecycle(engine),
            #[cfg(any(feature = "wasmer", feature = "wasmer-singlepass"))]
            Raw::Wasmer(engine) => wasmer_raw::lifecycle(engine),
            #[cfg(feature = "wamr")]
            Raw::Wamr(_) => wamr_raw::lifecycle(),
        }
    }

    /// One `proxy_on_request_headers` call of the lookup plugin
    /// ([`lookup_plugin_wat`](crate::modules::lookup_plugin_wat)), whose
    /// `proxy_get_header_map_value` is a hand-written host function: find the header, call the
    /// guest's `malloc`, copy the value in, write its address and size.
    pub fn lookup(&self) -> Iteration {
        match self {
            #[cfg(feature = "wasmtime")]
            Raw::Wasmtime(engine) => wasmtime_raw::lookup(engine),
            #[cfg(any(feature = "wasmer", feature = "wasmer-singlepass"))]
            Raw::Wasmer(engine) => wasmer_raw::lookup(engine),
            #[cfg(feature = "wamr")]
            Raw::Wamr(_) => wamr_raw::lookup(),
        }
    }
}

/// The request headers the raw lookups look in.
#[cfg(any(feature = "wasmtime", feature = "wasmer", feature = "wasmer-singlepass", feature = "wamr"))]
fn headers() -> Vec<(Vec<u8>, Vec<u8>)> {
    crate::workload::REQUEST_HEADERS.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

#[cfg(feature = "wasmtime")]
mod wasmtime_raw {
    use wasmtime::{Caller, Engine, Instance, Linker, Memory, Module, Store, TypedFunc};

    use super::Iteration;
    use crate::modules::{lookup_plugin_wat, EMPTY_PLUGIN_WAT};

    fn store<T>(engine: &Engine, data: T) -> Store<T> {
        let mut store = Store::new(engine, data);
        store.set_epoch_deadline(u64::MAX);
        store
    }

    pub(super) fn instantiate(engine: &Engine, bytes: &[u8]) -> Iteration {
        let module = Module::new(engine, bytes).expect("compiles");
        let pre = Linker::<()>::new(engine).instantiate_pre(&module).expect("links");
        let engine = engine.clone();
        Box::new(move || {
            let mut store = store(&engine, ());
            let instance = pre.instantiate(&mut store).expect("instantiates");
            let create = instance.get_typed_func::<(i32, i32), ()>(&mut store, "proxy_on_context_create").unwrap();
            let vm_start = instance.get_typed_func::<(i32, i32), i32>(&mut store, "proxy_on_vm_start").unwrap();
            let configure = instance.get_typed_func::<(i32, i32), i32>(&mut store, "proxy_on_configure").unwrap();
            create.call(&mut store, (1, 0)).unwrap();
            assert_eq!(vm_start.call(&mut store, (1, 0)).unwrap(), 1);
            assert_eq!(configure.call(&mut store, (1, 0)).unwrap(), 1);
        })
    }

    pub(super) fn lifecycle(engine: &Engine) -> Iteration {
        let module = Module::new(engine, wat::parse_str(EMPTY_PLUGIN_WAT).unwrap()).unwrap();
        let mut store = store(engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let create = instance.get_typed_func::<(i32, i32), ()>(&mut store, "proxy_on_context_create").unwrap();
        let headers = instance.get_typed_func::<(i32, i32, i32), i32>(&mut store, "proxy_on_request_headers").unwrap();
        let done = instance.get_typed_func::<i32, i32>(&mut store, "proxy_on_done").unwrap();
        let log = instance.get_typed_func::<i32, ()>(&mut store, "proxy_on_log").unwrap();
        let delete = instance.get_typed_func::<i32, ()>(&mut store, "proxy_on_delete").unwrap();
        let mut id = 1;
        Box::new(move || {
            id += 1;
            create.call(&mut store, (id, 1)).unwrap();
            headers.call(&mut store, (id, 0, 1)).unwrap();
            done.call(&mut store, id).unwrap();
            log.call(&mut store, id).unwrap();
            delete.call(&mut store, id).unwrap();
        })
    }

    /// What the raw lookup's store holds.
    struct LookupData {
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        memory: Option<Memory>,
        malloc: Option<TypedFunc<i32, i32>>,
    }

    /// The hand-written `proxy_get_header_map_value`. The allocator's handle is taken out of the
    /// store for the call and put back (cloning a `TypedFunc` clones its type, which costs more
    /// than the rest of the lookup: avoidable work, so the baseline does not do it).
    fn get_header(mut caller: Caller<'_, LookupData>, _map: i32, key: i32, key_size: i32, ret_ptr: i32, ret_size: i32) -> wasmtime::Result<i32> {
        let memory = caller.data().memory.expect("memory");
        let (mem, data) = memory.data_and_store_mut(&mut caller);
        let (key, key_size) = (key as u32 as usize, key_size as u32 as usize);
        let key = mem.get(key..key + key_size).ok_or_else(|| wasmtime::Error::msg("key out of bounds"))?;
        let Some(index) = data.headers.iter().position(|(k, _)| k.eq_ignore_ascii_case(key)) else { return Ok(1) };
        let len = data.headers[index].1.len();
        let malloc = caller.data_mut().malloc.take().expect("malloc");
        let addr = malloc.call(&mut caller, len as i32);
        caller.data_mut().malloc = Some(malloc);
        let addr = addr? as u32 as usize;
        let (mem, data) = memory.data_and_store_mut(&mut caller);
        let out = mem.get_mut(addr..addr + len).ok_or_else(|| wasmtime::Error::msg("value out of bounds"))?;
        out.copy_from_slice(&data.headers[index].1);
        for (at, word) in [(ret_ptr, addr as u32), (ret_size, len as u32)] {
            let at = at as u32 as usize;
            let slot = mem.get_mut(at..at + 4).ok_or_else(|| wasmtime::Error::msg("return slot out of bounds"))?;
            slot.copy_from_slice(&word.to_le_bytes());
        }
        Ok(0)
    }

    pub(super) fn lookup(engine: &Engine) -> Iteration {
        let module = Module::new(engine, wat::parse_str(lookup_plugin_wat()).unwrap()).unwrap();
        let mut linker = Linker::new(engine);
        linker.func_wrap("env", "proxy_get_header_map_value", get_header).unwrap();
        let data = LookupData { headers: super::headers(), memory: None, malloc: None };
        let mut store = store(engine, data);
        let instance = linker.instantiate(&mut store, &module).unwrap();
        store.data_mut().memory = instance.get_memory(&mut store, "memory");
        store.data_mut().malloc = Some(instance.get_typed_func::<i32, i32>(&mut store, "malloc").unwrap());
        let headers = instance.get_typed_func::<(i32, i32, i32), i32>(&mut store, "proxy_on_request_headers").unwrap();
        Box::new(move || {
            headers.call(&mut store, (2, 20, 1)).unwrap();
        })
    }
}

#[cfg(any(feature = "wasmer", feature = "wasmer-singlepass"))]
mod wasmer_raw {
    use wasmer::{
        imports, Engine, Function, FunctionEnv, FunctionEnvMut, Instance, Memory, Module, RuntimeError, Store,
        TypedFunction,
    };

    use super::Iteration;
    use crate::modules::{lookup_plugin_wat, EMPTY_PLUGIN_WAT};

    pub(super) fn instantiate(engine: &Engine, bytes: &[u8]) -> Iteration {
        let module = Module::new(engine, bytes).expect("compiles");
        let engine = engine.clone();
        Box::new(move || {
            let mut store = Store::new(engine.clone());
            let instance = Instance::new(&mut store, &module, &imports! {}).expect("instantiates");
            let e = &instance.exports;
            let create = e.get_typed_function::<(i32, i32), ()>(&store, "proxy_on_context_create").unwrap();
            let vm_start = e.get_typed_function::<(i32, i32), i32>(&store, "proxy_on_vm_start").unwrap();
            let configure = e.get_typed_function::<(i32, i32), i32>(&store, "proxy_on_configure").unwrap();
            create.call(&mut store, 1, 0).unwrap();
            assert_eq!(vm_start.call(&mut store, 1, 0).unwrap(), 1);
            assert_eq!(configure.call(&mut store, 1, 0).unwrap(), 1);
        })
    }

    pub(super) fn lifecycle(engine: &Engine) -> Iteration {
        let mut store = Store::new(engine.clone());
        let module = Module::new(&store, wat::parse_str(EMPTY_PLUGIN_WAT).unwrap()).unwrap();
        let instance = Instance::new(&mut store, &module, &imports! {}).unwrap();
        let e = &instance.exports;
        let create = e.get_typed_function::<(i32, i32), ()>(&store, "proxy_on_context_create").unwrap();
        let headers = e.get_typed_function::<(i32, i32, i32), i32>(&store, "proxy_on_request_headers").unwrap();
        let done = e.get_typed_function::<i32, i32>(&store, "proxy_on_done").unwrap();
        let log = e.get_typed_function::<i32, ()>(&store, "proxy_on_log").unwrap();
        let delete = e.get_typed_function::<i32, ()>(&store, "proxy_on_delete").unwrap();
        let mut id = 1;
        Box::new(move || {
            id += 1;
            create.call(&mut store, id, 1).unwrap();
            headers.call(&mut store, id, 0, 1).unwrap();
            done.call(&mut store, id).unwrap();
            log.call(&mut store, id).unwrap();
            delete.call(&mut store, id).unwrap();
        })
    }

    /// What the raw lookup's host function sees.
    struct LookupEnv {
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        memory: Option<Memory>,
        malloc: Option<TypedFunction<i32, i32>>,
    }

    /// The hand-written `proxy_get_header_map_value`.
    fn get_header(
        mut env: FunctionEnvMut<'_, LookupEnv>,
        _map: i32,
        key: i32,
        key_size: i32,
        ret_ptr: i32,
        ret_size: i32,
    ) -> Result<i32, RuntimeError> {
        let (data, mut store) = env.data_and_store_mut();
        let memory = data.memory.clone().expect("memory");
        // A Wasmer function handle is an index into the store: cloning it is cheap.
        let malloc = data.malloc.clone().expect("malloc");
        let mut key_bytes = [0u8; 64];
        let key_bytes = key_bytes.get_mut(..key_size as u32 as usize).ok_or_else(|| RuntimeError::new("key too long"))?;
        memory.view(&store).read(u64::from(key as u32), key_bytes).map_err(|e| RuntimeError::new(e.to_string()))?;
        let Some(index) = data.headers.iter().position(|(k, _)| k.eq_ignore_ascii_case(key_bytes)) else { return Ok(1) };
        let len = data.headers[index].1.len();
        let addr = malloc.call(&mut store, len as i32)? as u32;
        let view = memory.view(&store);
        let write = |at: u32, bytes: &[u8]| view.write(u64::from(at), bytes).map_err(|e| RuntimeError::new(e.to_string()));
        write(addr, &data.headers[index].1)?;
        write(ret_ptr as u32, &addr.to_le_bytes())?;
        write(ret_size as u32, &(len as u32).to_le_bytes())?;
        Ok(0)
    }

    pub(super) fn lookup(engine: &Engine) -> Iteration {
        let mut store = Store::new(engine.clone());
        let module = Module::new(&store, wat::parse_str(lookup_plugin_wat()).unwrap()).unwrap();
        let env = FunctionEnv::new(&mut store, LookupEnv { headers: super::headers(), memory: None, malloc: None });
        let get = Function::new_typed_with_env(&mut store, &env, get_header);
        let instance = Instance::new(&mut store, &module, &imports! { "env" => { "proxy_get_header_map_value" => get } }).unwrap();
        let memory = instance.exports.get_memory("memory").unwrap().clone();
        let malloc = instance.exports.get_typed_function::<i32, i32>(&store, "malloc").unwrap();
        let data = env.as_mut(&mut store);
        data.memory = Some(memory);
        data.malloc = Some(malloc);
        let headers = instance.exports.get_typed_function::<(i32, i32, i32), i32>(&store, "proxy_on_request_headers").unwrap();
        Box::new(move || {
            headers.call(&mut store, 2, 20, 1).unwrap();
        })
    }
}

#[cfg(feature = "wamr")]
mod wamr_raw {
    //! WAMR through its C API. Everything runs on the bench's main thread; the engine made in
    //! [`Raw::for_engine`](super::Raw::for_engine) has initialised WAMR for the process.

    use std::ffi::{c_char, c_void, CStr};
    use std::ptr;
    use std::sync::OnceLock;

    use proxy_wasm_wamr::sys;
    use proxy_wasm_wamr::wamr::DEFAULT_STACK_SIZE;

    use super::Iteration;
    use crate::modules::{lookup_plugin_wat, EMPTY_PLUGIN_WAT};

    /// The import module of the raw lookup's host function: `env` is our engine's (WAMR's host
    /// functions are registered per process, by module name), so the baseline's copy of the
    /// lookup plugin imports from this name instead.
    const RAW_MODULE: &CStr = c"raw_bench";

    /// A loaded module and the buffer WAMR loaded it from (WAMR writes into it and points into
    /// it until the module is unloaded).
    pub(super) struct Loaded {
        raw: sys::wasm_module_t,
        _bytes: Vec<u8>,
    }

    impl Loaded {
        pub(super) fn unload(self) {
            // SAFETY: no instance of the module is alive (the baselines drop theirs first); the
            // buffer is freed after WAMR let go of it.
            unsafe { sys::wasm_runtime_unload(self.raw) };
        }
    }

    /// Loads `bytes`: a copy WAMR may write into (unavoidable with WAMR), then
    /// `wasm_runtime_load`.
    pub(super) fn load(bytes: &[u8]) -> Loaded {
        let mut bytes = bytes.to_vec();
        let mut error = [0 as c_char; 128];
        // SAFETY: WAMR is initialised (see the module docs); the buffer is ours, writable, and
        // kept in `Loaded` until after the unload.
        let raw = unsafe { sys::wasm_runtime_load(bytes.as_mut_ptr(), bytes.len() as u32, error.as_mut_ptr(), 128) };
        // SAFETY: WAMR NUL-terminates its message inside the buffer.
        assert!(!raw.is_null(), "WAMR load: {:?}", unsafe { CStr::from_ptr(error.as_ptr()) });
        Loaded { raw, _bytes: bytes }
    }

    /// A live instance with its exec env (freed together).
    struct Inst {
        raw: sys::wasm_module_inst_t,
        exec_env: sys::wasm_exec_env_t,
    }

    impl Inst {
        /// Instantiates `module` with our engine's guest stack size and no extra heap.
        fn new(module: &Loaded) -> Inst {
            let mut error = [0 as c_char; 128];
            // SAFETY: `module` is loaded; the error buffer is writable.
            let raw = unsafe { sys::wasm_runtime_instantiate(module.raw, DEFAULT_STACK_SIZE, 0, error.as_mut_ptr(), 128) };
            // SAFETY: as in `load`.
            assert!(!raw.is_null(), "WAMR instantiate: {:?}", unsafe { CStr::from_ptr(error.as_ptr()) });
            // SAFETY: `raw` is live; WAMR frees the singleton exec env with the instance.
            let exec_env = unsafe { sys::wasm_runtime_get_exec_env_singleton(raw) };
            assert!(!exec_env.is_null());
            Inst { raw, exec_env }
        }

        fn func(&self, name: &CStr) -> sys::wasm_function_inst_t {
            // SAFETY: the instance is live; WAMR reads the name during the call.
            let f = unsafe { sys::wasm_runtime_lookup_function(self.raw, name.as_ptr()) };
            assert!(!f.is_null(), "no export {name:?}");
            f
        }

        /// Calls `f` (of this instance) with `args` in WAMR's cells; the first cell after.
        fn call(&self, f: sys::wasm_function_inst_t, args: &mut [u32]) -> u32 {
            // SAFETY: `f` belongs to this instance and `args` has one cell per `i32` parameter of
            // it (the callers pass the callbacks' own arity), with room for an `i32` result.
            let ok = unsafe { sys::wasm_runtime_call_wasm(self.exec_env, f, args.len() as u32, args.as_mut_ptr()) };
            assert!(ok, "the raw WAMR call trapped");
            args.first().copied().unwrap_or(0)
        }
    }

    impl Drop for Inst {
        fn drop(&mut self) {
            // SAFETY: no call runs; nothing else holds the instance.
            unsafe { sys::wasm_runtime_deinstantiate(self.raw) };
        }
    }

    pub(super) fn instantiate(bytes: &[u8]) -> Iteration {
        let module = load(bytes);
        Box::new(move || {
            let inst = Inst::new(&module);
            let create = inst.func(c"proxy_on_context_create");
            let vm_start = inst.func(c"proxy_on_vm_start");
            let configure = inst.func(c"proxy_on_configure");
            inst.call(create, &mut [1, 0]);
            assert_eq!(inst.call(vm_start, &mut [1, 0]), 1);
            assert_eq!(inst.call(configure, &mut [1, 0]), 1);
        })
    }

    pub(super) fn lifecycle() -> Iteration {
        // Leaked: the instance lives as long as the iteration closure, the module longer.
        let module = Box::leak(Box::new(load(&wat::parse_str(EMPTY_PLUGIN_WAT).unwrap())));
        let inst = Inst::new(module);
        let create = inst.func(c"proxy_on_context_create");
        let headers = inst.func(c"proxy_on_request_headers");
        let done = inst.func(c"proxy_on_done");
        let log = inst.func(c"proxy_on_log");
        let delete = inst.func(c"proxy_on_delete");
        let mut id = 1u32;
        Box::new(move || {
            id += 1;
            inst.call(create, &mut [id, 1]);
            inst.call(headers, &mut [id, 0, 1]);
            inst.call(done, &mut [id]);
            inst.call(log, &mut [id]);
            inst.call(delete, &mut [id]);
        })
    }

    /// What the raw lookup's host function sees, through its exec env's user data.
    struct LookupData {
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        malloc: sys::wasm_function_inst_t,
    }

    /// `len` bytes of the instance's memory at `addr`, if in bounds.
    ///
    /// # Safety
    /// `inst` is live and no guest code runs while the slice is used.
    unsafe fn guest<'a>(inst: sys::wasm_module_inst_t, addr: u32, len: usize) -> Option<&'a mut [u8]> {
        // SAFETY: the caller's contract; WAMR checks the range against the memory's size, and
        // then the native address of `addr` starts `len` valid bytes.
        unsafe {
            if !sys::wasm_runtime_validate_app_addr(inst, u64::from(addr), len as u64) {
                return None;
            }
            let native = sys::wasm_runtime_addr_app_to_native(inst, u64::from(addr)).cast::<u8>();
            Some(std::slice::from_raw_parts_mut(native, len))
        }
    }

    /// The hand-written `proxy_get_header_map_value(map, key, key_size, ret_ptr, ret_size)`, a
    /// raw WAMR native (`args`: one 64-bit slot per parameter, the result into the first).
    unsafe extern "C" fn get_header(exec_env: sys::wasm_exec_env_t, args: *mut u64) {
        // SAFETY: WAMR passes the running exec env and five parameter slots (the import's type
        // matched the registered signature); the user data is the `LookupData` set in `lookup`,
        // alive as long as the instance, and no other reference to it exists during the call.
        let (inst, data, a) = unsafe {
            let a = std::slice::from_raw_parts_mut(args, 5);
            let data = &*sys::wasm_runtime_get_user_data(exec_env).cast::<LookupData>();
            (sys::wasm_runtime_get_module_inst(exec_env), data, a)
        };
        let fail = |why: &CStr| {
            // SAFETY: `inst` is the running instance; WAMR copies the text.
            unsafe { sys::wasm_runtime_set_exception(inst, why.as_ptr()) }
        };
        let (key, key_size, ret_ptr, ret_size) = (a[1] as u32, a[2] as u32 as usize, a[3] as u32, a[4] as u32);
        // SAFETY: the guest is blocked in this call; the slice is dropped before it runs again.
        let Some(key) = (unsafe { guest(inst, key, key_size) }) else { return fail(c"key out of bounds") };
        let Some(index) = data.headers.iter().position(|(k, _)| k.eq_ignore_ascii_case(key)) else {
            a[0] = 1;
            return;
        };
        let value = &data.headers[index].1;
        let mut cell = [value.len() as u32];
        // SAFETY: `malloc` is an `(i32) -> i32` export of this instance; one cell holds the
        // argument and then the result. The exec env runs this call, so the nested call is
        // WAMR's supported re-entrant use.
        if !unsafe { sys::wasm_runtime_call_wasm(exec_env, data.malloc, 1, cell.as_mut_ptr()) } {
            return; // The allocator trapped: its exception fails the outer call.
        }
        let addr = cell[0];
        let (addr_bytes, len_bytes) = (addr.to_le_bytes(), (value.len() as u32).to_le_bytes());
        for (at, bytes) in [(addr, &value[..]), (ret_ptr, &addr_bytes[..]), (ret_size, &len_bytes[..])] {
            // SAFETY: as above; memory is fetched again after the allocator ran (it may have
            // grown and moved).
            match unsafe { guest(inst, at, bytes.len()) } {
                Some(out) => out.copy_from_slice(bytes),
                None => return fail(c"return value out of bounds"),
            }
        }
        a[0] = 0;
    }

    /// Registers `raw_bench.proxy_get_header_map_value`, once per process.
    fn register() {
        static DONE: OnceLock<()> = OnceLock::new();
        DONE.get_or_init(|| {
            let symbols = Box::leak(Box::new([sys::NativeSymbol {
                symbol: c"proxy_get_header_map_value".as_ptr(),
                func_ptr: get_header as *mut c_void,
                signature: c"(iiiii)i".as_ptr(),
                attachment: ptr::null_mut(),
            }]));
            // SAFETY: the array and its strings live for the process (leaked, static), as WAMR
            // keeps them; the function has the raw-native signature. No module is being loaded
            // meanwhile: the benches load on this thread only.
            assert!(unsafe { sys::wasm_runtime_register_natives_raw(RAW_MODULE.as_ptr(), symbols.as_mut_ptr(), 1) });
        });
    }

    pub(super) fn lookup() -> Iteration {
        register();
        let wat = lookup_plugin_wat().replace(r#"(import "env""#, r#"(import "raw_bench""#);
        let module = Box::leak(Box::new(load(&wat::parse_str(wat).unwrap())));
        let inst = Inst::new(module);
        let data = Box::leak(Box::new(LookupData { headers: super::headers(), malloc: inst.func(c"malloc") }));
        // SAFETY: the exec env is live; the data is leaked, so it outlives every call.
        unsafe { sys::wasm_runtime_set_user_data(inst.exec_env, ptr::from_mut(data).cast()) };
        let headers = inst.func(c"proxy_on_request_headers");
        Box::new(move || {
            inst.call(headers, &mut [2, 20, 1]);
        })
    }
}
