//! The raw Wasmtime baselines.

use proxy_wasm_harness::proxy_wasm_wasmtime::wasmtime;
use wasmtime::{Caller, Engine, Instance, Linker, Memory, Module, Store, TypedFunc};

use super::{Baselines, Iteration};
use crate::modules::{lookup_plugin_wat, EMPTY_PLUGIN_WAT};

/// A bare Wasmtime engine.
pub(super) struct RawWasmtime(pub(super) Engine);

fn store<T>(engine: &Engine, data: T) -> Store<T> {
    let mut store = Store::new(engine, data);
    store.set_epoch_deadline(u64::MAX);
    store
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

impl Baselines for RawWasmtime {
    fn compile(&self, bytes: Vec<u8>) -> Iteration {
        let engine = self.0.clone();
        Box::new(move || drop(Module::new(&engine, &bytes).expect("compiles")))
    }

    fn lifecycle(&self) -> Iteration {
        let engine = &self.0;
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

    fn fresh_instance(&self, bytes: &[u8], stream: bool) -> Iteration {
        let engine = &self.0;
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
            if !stream {
                return;
            }
            let headers = instance.get_typed_func::<(i32, i32, i32), i32>(&mut store, "proxy_on_request_headers").unwrap();
            let done = instance.get_typed_func::<i32, i32>(&mut store, "proxy_on_done").unwrap();
            let log = instance.get_typed_func::<i32, ()>(&mut store, "proxy_on_log").unwrap();
            let delete = instance.get_typed_func::<i32, ()>(&mut store, "proxy_on_delete").unwrap();
            create.call(&mut store, (2, 1)).unwrap();
            headers.call(&mut store, (2, 0, 1)).unwrap();
            log.call(&mut store, 2).unwrap();
            done.call(&mut store, 2).unwrap();
            delete.call(&mut store, 2).unwrap();
        })
    }

    fn lookup(&self) -> Iteration {
        let engine = &self.0;
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
