//! The raw V8 baselines: V8 through the engine's shim (`proxy_wasm_v8::sys`), without the
//! proxy-wasm layer: modules compiled as they are (no rewrite for the per-VM memory limit),
//! exports called by handle, one isolate per instance as in the engine.

use proxy_wasm_harness::proxy_wasm_v8::sys::{Caller, Func, FuncImport, Host, Module, Unwind, Vm};

use super::{Baselines, Iteration};
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

fn fresh_instance(bytes: &[u8], stream: bool) -> Iteration {
    let module = Module::compile_as_is(bytes).expect("compiles");
    Box::new(move || {
        let mut vm = vm(&module, NoHost, &[]);
        let create = export(&mut vm, "proxy_on_context_create");
        let vm_start = export(&mut vm, "proxy_on_vm_start");
        let configure = export(&mut vm, "proxy_on_configure");
        vm.call(create, &[1, 0]).unwrap();
        assert_eq!(vm.call(vm_start, &[1, 0]).unwrap(), Some(1));
        assert_eq!(vm.call(configure, &[1, 0]).unwrap(), Some(1));
        if !stream {
            return;
        }
        let headers = export(&mut vm, "proxy_on_request_headers");
        let done = export(&mut vm, "proxy_on_done");
        let log = export(&mut vm, "proxy_on_log");
        let delete = export(&mut vm, "proxy_on_delete");
        vm.call(create, &[2, 1]).unwrap();
        vm.call(headers, &[2, 0, 1]).unwrap();
        vm.call(log, &[2]).unwrap();
        vm.call(done, &[2]).unwrap();
        vm.call(delete, &[2]).unwrap();
    })
}

fn lifecycle() -> Iteration {
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

fn lookup() -> Iteration {
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

/// V8 (the platform is made once per process by the shim).
pub(super) struct RawV8;

impl Baselines for RawV8 {
    fn compile(&self, bytes: Vec<u8>) -> Iteration {
        Box::new(move || drop(Module::compile_as_is(&bytes).expect("compiles")))
    }

    fn lifecycle(&self) -> Iteration {
        lifecycle()
    }

    fn fresh_instance(&self, bytes: &[u8], stream: bool) -> Iteration {
        fresh_instance(bytes, stream)
    }

    fn lookup(&self) -> Iteration {
        lookup()
    }
}
