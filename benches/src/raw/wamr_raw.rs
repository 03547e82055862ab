//! The raw WAMR baselines: WAMR through its C API (`proxy_wasm_wamr::sys`), not our wrapper of
//! it, with the same build and the same guest stack size as our WAMR engine. Everything runs on
//! the bench's main thread; the engine held in [`RawWamr`] has initialised WAMR for the process
//! (WAMR's runtime is one per process).

use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use proxy_wasm_harness::proxy_wasm_wamr::{self, sys, wamr::DEFAULT_STACK_SIZE};

use super::{Baselines, Iteration};
use crate::modules::{lookup_plugin_wat, EMPTY_PLUGIN_WAT};

/// The import module of the raw lookup's host function: `env` is our engine's (WAMR's host
/// functions are registered per process, by module name), so the baseline's copy of the
/// lookup plugin imports from this name instead.
const RAW_MODULE: &CStr = c"raw_bench";

/// A loaded module and the buffer WAMR loaded it from (WAMR writes into it and points into
/// it until the module is unloaded).
struct Loaded {
    raw: sys::wasm_module_t,
    _bytes: Vec<u8>,
}

impl Loaded {
    fn unload(self) {
        // SAFETY: no instance of the module is alive (the baselines drop theirs first); the
        // buffer is freed after WAMR let go of it.
        unsafe { sys::wasm_runtime_unload(self.raw) };
    }
}

/// Loads `bytes`: a copy WAMR may write into (unavoidable with WAMR), then
/// `wasm_runtime_load`.
fn load(bytes: &[u8]) -> Loaded {
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

fn fresh_instance(bytes: &[u8], stream: bool) -> Iteration {
    let module = load(bytes);
    Box::new(move || {
        let inst = Inst::new(&module);
        let create = inst.func(c"proxy_on_context_create");
        let vm_start = inst.func(c"proxy_on_vm_start");
        let configure = inst.func(c"proxy_on_configure");
        inst.call(create, &mut [1, 0]);
        assert_eq!(inst.call(vm_start, &mut [1, 0]), 1);
        assert_eq!(inst.call(configure, &mut [1, 0]), 1);
        if !stream {
            return;
        }
        let headers = inst.func(c"proxy_on_request_headers");
        let done = inst.func(c"proxy_on_done");
        let log = inst.func(c"proxy_on_log");
        let delete = inst.func(c"proxy_on_delete");
        inst.call(create, &mut [2, 1]);
        inst.call(headers, &mut [2, 0, 1]);
        inst.call(log, &mut [2]);
        inst.call(done, &mut [2]);
        inst.call(delete, &mut [2]);
    })
}

fn lifecycle() -> Iteration {
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

fn lookup() -> Iteration {
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

/// WAMR, initialised for the process by the engine it holds.
pub(super) struct RawWamr(pub(super) proxy_wasm_wamr::WamrEngine);

impl Baselines for RawWamr {
    fn compile(&self, bytes: Vec<u8>) -> Iteration {
        Box::new(move || load(&bytes).unload())
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
