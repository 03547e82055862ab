//! The raw Wasmer baselines (Cranelift or Singlepass).

use proxy_wasm_harness::proxy_wasm_wasmer::wasmer;
use wasmer::{
    imports, Engine, Function, FunctionEnv, FunctionEnvMut, Instance, Memory, Module, RuntimeError, Store,
    TypedFunction,
};

use super::{Baselines, Iteration};
use crate::modules::{lookup_plugin_wat, EMPTY_PLUGIN_WAT};

/// A bare Wasmer engine with one compiler.
pub(super) struct RawWasmer(pub(super) Engine);

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

impl Baselines for RawWasmer {
    fn compile(&self, bytes: Vec<u8>) -> Iteration {
        let engine = self.0.clone();
        Box::new(move || drop(Module::new(&engine, &bytes).expect("compiles")))
    }

    fn lifecycle(&self) -> Iteration {
        let engine = &self.0;
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

    fn fresh_instance(&self, bytes: &[u8], stream: bool) -> Iteration {
        let engine = &self.0;
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
            if !stream {
                return;
            }
            let headers = e.get_typed_function::<(i32, i32, i32), i32>(&store, "proxy_on_request_headers").unwrap();
            let done = e.get_typed_function::<i32, i32>(&store, "proxy_on_done").unwrap();
            let log = e.get_typed_function::<i32, ()>(&store, "proxy_on_log").unwrap();
            let delete = e.get_typed_function::<i32, ()>(&store, "proxy_on_delete").unwrap();
            create.call(&mut store, 2, 1).unwrap();
            headers.call(&mut store, 2, 0, 1).unwrap();
            log.call(&mut store, 2).unwrap();
            done.call(&mut store, 2).unwrap();
            delete.call(&mut store, 2).unwrap();
        })
    }

    fn lookup(&self) -> Iteration {
        let engine = &self.0;
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
