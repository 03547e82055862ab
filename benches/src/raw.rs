//! The raw-engine baselines: the same guest code driven through the engine's own API, without
//! our layer, doing the same unavoidable work (the same exports called with the same arguments;
//! for a header lookup, a host function that finds the value, calls the guest's allocator and
//! copies the value in).
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
    /// V8 through the engine's shim (`proxy_wasm_v8::sys`), without the proxy-wasm layer:
    /// modules compiled as they are (no rewrite for the per-VM memory limit), exports called by
    /// handle, one isolate per instance as in the engine.
    #[cfg(feature = "v8")]
    V8,
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
            #[cfg(feature = "v8")]
            "v8" => Some(Raw::V8),
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
            #[cfg(feature = "v8")]
            Raw::V8 => Box::new(move || drop(proxy_wasm_v8::sys::Module::compile_as_is(&bytes).expect("compiles"))),
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
            #[cfg(feature = "v8")]
            Raw::V8 => v8_raw::instantiate(bytes),
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
            #[cfg(feature = "v8")]
            Raw::V8 => v8_raw::lifecycle(),
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
            #[cfg(feature = "v8")]
            Raw::V8 => v8_raw::lookup(),
        }
    }
}

/// The request headers the raw lookups look in.
#[cfg(any(feature = "wasmtime", feature = "wasmer", feature = "wasmer-singlepass", feature = "v8"))]
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

#[cfg(feature = "v8")]
mod v8_raw {
    use proxy_wasm_v8::sys::{Caller, Func, FuncImport, Host, Module, Unwind, Vm};

    use super::Iteration;
    use crate::modules::{lookup_plugin_wat, EMPTY_PLUGIN_WAT};

    /// A VM without host functions.
    struct NoHost;

    impl Host for NoHost {
        fn call(_: &mut Caller<'_, Self>, _: u32, _: &[u64]) -> Result<i32, Unwind> {
            Err(Unwind)
        }
    }

    /// A VM of `module` with `imports`, limited only by the module's own maximum.
    fn vm<T: Host>(module: &Module, data: T, imports: &[FuncImport<'_>]) -> Vm<T> {
        let mut vm = Vm::new(data).expect("a VM");
        vm.instantiate(module, imports, 1 << 32).expect("instantiates");
        vm
    }

    fn export<T: Host>(vm: &mut Vm<T>, name: &str) -> Func {
        vm.export(name).unwrap_or_else(|| panic!("exports `{name}`"))
    }

    pub(super) fn instantiate(bytes: &[u8]) -> Iteration {
        let module = Module::compile_as_is(bytes).expect("compiles");
        Box::new(move || {
            let mut vm = vm(&module, NoHost, &[]);
            let create = export(&mut vm, "proxy_on_context_create");
            let vm_start = export(&mut vm, "proxy_on_vm_start");
            let configure = export(&mut vm, "proxy_on_configure");
            vm.call(create, &[1, 0]).unwrap();
            assert_eq!(vm.call(vm_start, &[1, 0]).unwrap(), Some(1));
            assert_eq!(vm.call(configure, &[1, 0]).unwrap(), Some(1));
        })
    }

    pub(super) fn lifecycle() -> Iteration {
        let module = Module::compile_as_is(&wat::parse_str(EMPTY_PLUGIN_WAT).unwrap()).unwrap();
        let mut vm = vm(&module, NoHost, &[]);
        let create = export(&mut vm, "proxy_on_context_create");
        let headers = export(&mut vm, "proxy_on_request_headers");
        let done = export(&mut vm, "proxy_on_done");
        let log = export(&mut vm, "proxy_on_log");
        let delete = export(&mut vm, "proxy_on_delete");
        let mut id = 1;
        Box::new(move || {
            id += 1;
            vm.call(create, &[id, 1]).unwrap();
            vm.call(headers, &[id, 0, 1]).unwrap();
            vm.call(done, &[id]).unwrap();
            vm.call(log, &[id]).unwrap();
            vm.call(delete, &[id]).unwrap();
        })
    }

    /// What the raw lookup's host function sees.
    struct Lookup {
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        malloc: Option<Func>,
    }

    /// The hand-written `proxy_get_header_map_value`, the VM's only host function.
    impl Host for Lookup {
        fn call(cx: &mut Caller<'_, Self>, _row: u32, args: &[u64]) -> Result<i32, Unwind> {
            let [_map, key, key_size, ret_ptr, ret_size] = args else { return Err(Unwind) };
            let (key, key_size) = (*key as usize, *key_size as usize);
            let (mem, data) = cx.parts();
            let key = mem.get(key..key + key_size).ok_or(Unwind)?;
            let Some(index) = data.headers.iter().position(|(k, _)| k.eq_ignore_ascii_case(key)) else { return Ok(1) };
            let len = data.headers[index].1.len();
            let malloc = data.malloc.ok_or(Unwind)?;
            let addr = cx.call(malloc, &[len as i32]).map_err(|_| Unwind)?.ok_or(Unwind)? as u32 as usize;
            let (mem, data) = cx.parts();
            mem.get_mut(addr..addr + len).ok_or(Unwind)?.copy_from_slice(&data.headers[index].1);
            for (at, word) in [(*ret_ptr as usize, addr as u32), (*ret_size as usize, len as u32)] {
                mem.get_mut(at..at + 4).ok_or(Unwind)?.copy_from_slice(&word.to_le_bytes());
            }
            Ok(0)
        }
    }

    pub(super) fn lookup() -> Iteration {
        let module = Module::compile_as_is(&wat::parse_str(lookup_plugin_wat()).unwrap()).unwrap();
        let imports = [FuncImport { module: "env", name: "proxy_get_header_map_value", row: 0 }];
        let mut vm = vm(&module, Lookup { headers: super::headers(), malloc: None }, &imports);
        let malloc = export(&mut vm, "malloc");
        vm.data().malloc = Some(malloc);
        let headers = export(&mut vm, "proxy_on_request_headers");
        Box::new(move || {
            vm.call(headers, &[2, 20, 1]).unwrap();
        })
    }
}
