//! The WAMR engine against the engine contract of `proxy-wasm-host` (the shared cases of
//! `proxy-wasm-engine-tests`), and what is WAMR's own: its name, capabilities and trap words,
//! and bad input (modules WAMR cannot load, imports WAMR would link anyway, a memory limit below
//! the initial memory, a trap in every callback, endless loops), after each of which the next VM
//! works.

use std::sync::Arc;
use std::time::Duration;

use abi::{AbiVersion, Callback};
use proxy_wasm_host::engine::{allocator_callback, Watchdog};
use proxy_wasm_host::{
    DefaultEmbedder, Engine, Error, Instance, Limits, Module, Services, TrapKind, VmHost, VmHostConfig,
};
use proxy_wasm_wamr::WamrEngine;

proxy_wasm_engine_tests::engine_contract_tests!(|| Arc::new(WamrEngine::default()));

fn host(limits: Limits) -> VmHost {
    let config = VmHostConfig::new("vm").with_limits(limits);
    VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new())
}

/// Compiles a module written in the text format (engines get binaries).
fn compile(wat: &str) -> Arc<dyn Module> {
    WamrEngine::default().compile(&wat::parse_str(wat).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn instance(wat: &str, limits: Limits) -> Box<dyn Instance> {
    let module = compile(wat);
    let mut host = host(limits);
    host.set_allocator(allocator_callback(module.exports()));
    module.instantiate(host).unwrap_or_else(|e| panic!("{e}"))
}

/// A module any engine runs: the proof, after bad input, that the next VM works.
const GOOD: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"#;

fn the_next_vm_works() {
    let mut vm = instance(GOOD, Limits::default());
    assert_eq!(vm.call(Callback::OnVmStart, &[40, 2]), Ok(42));
}

#[test]
fn capabilities_and_name() {
    let engine = WamrEngine::default();
    assert_eq!(engine.name(), "wamr");
    let c = engine.capabilities();
    assert!(c.memory_limit && c.interrupt && c.sandboxed);
    assert!(!c.precompiled, "an interpreter: nothing to precompile");
    assert!(!c.cheap_clone, "every instance allocates its own memory");
    assert_eq!(engine.runtime().version(), (2, 4, 3));
}

/// WAMR's words for a Wasm trap.
#[test]
fn unreachable_is_wamr_s_words() {
    let mut vm = instance(r#"(module (func (export "proxy_on_tick") (param i32) unreachable))"#, Limits::default());
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest);
    assert_eq!(trap.message, "wasm trap: unreachable");
}

/// Valid Wasm that this WAMR build cannot load (SIMD is not built in): a compile error in WAMR's
/// words, and the next module loads.
#[test]
fn a_module_wamr_cannot_load_is_a_compile_error() {
    let simd = wat::parse_str(
        r#"(module (func (export "f") (result i32) (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))"#,
    )
    .unwrap();
    let err = WamrEngine::default().compile(&simd).err().unwrap();
    let Error::Compile { engine: "wamr", message } = &err else { panic!("{err:?}") };
    println!("{err}");
    assert!(message.starts_with("WASM module load failed: "), "{message}");
    the_next_vm_works();
}

/// WAMR links `env._name` to the host's `name` on its own; the host's exact-name check refuses
/// the module as every engine does.
#[test]
fn an_underscored_import_is_refused_though_wamr_would_link_it() {
    let module = compile(r#"(module (import "env" "_proxy_log" (func (param i32 i32 i32) (result i32))))"#);
    let err = module.instantiate(host(Limits::default())).err().unwrap();
    assert_eq!(err, Error::UnknownImports(vec!["env._proxy_log".into()]));
    the_next_vm_works();
}

/// WAMR loads a module whose import is missing or mistyped (it would trap only when called); the
/// host refuses it before any of its code runs, even a start section.
#[test]
fn missing_and_mistyped_imports_are_refused_before_anything_runs() {
    for (wat, expected) in [
        (
            r#"(module (import "env" "proxy_log" (func $log (param i32 i32) (result i32)))
                 (func $s (drop (call $log (i32.const 0) (i32.const 0)))) (start $s))"#,
            "its import `env.proxy_log` has the wrong type: expected (i32, i32, i32) -> i32, found (i32, i32) -> i32",
        ),
        (
            r#"(module (import "env" "proxy_nope" (func $nope)) (func $s (call $nope)) (start $s))"#,
            "it imports `env.proxy_nope`",
        ),
    ] {
        let module = compile(wat);
        let err = module.instantiate(host(Limits::default())).err().unwrap();
        assert!(err.to_string().contains(expected), "{err}");
    }
    the_next_vm_works();
}

/// A limit below the module's initial memory is refused, naming both sizes; one page or more
/// below a page is refused too (WAMR reads a cap of 0 pages as no cap).
#[test]
fn a_memory_limit_below_the_initial_memory_is_refused() {
    let module = compile(r#"(module (memory (export "memory") 3))"#);
    let err = module.instantiate(host(Limits { max_memory_bytes: 2 << 16, ..Limits::default() })).err().unwrap();
    assert_eq!(
        err.to_string(),
        "wamr could not instantiate it: memory limit of 131072 bytes is below the module's initial memory of 196608 bytes"
    );
    let err = module.instantiate(host(Limits { max_memory_bytes: 1000, ..Limits::default() })).err().unwrap();
    assert!(matches!(err, Error::Instantiate { .. }), "{err:?}");
    let mut vm = module.instantiate(host(Limits { max_memory_bytes: 3 << 16, ..Limits::default() })).unwrap();
    assert_eq!(vm.memory_size(), 3 << 16);
    the_next_vm_works();
}

/// Every callback of the ABI traps in its own VM: each trap is a guest trap in WAMR's words, the
/// VM then refuses calls, and the next VM works.
#[test]
fn a_trap_in_every_callback() {
    let mut wat = String::from("(module (memory (export \"memory\") 1)\n");
    for callback in Callback::for_version(AbiVersion::V021) {
        let info = callback.info();
        let params = "i32 ".repeat(info.params.len());
        let result = info.result.wasm_type().map(|t| format!("(result {t})")).unwrap_or_default();
        wat.push_str(&format!("(func (export \"{}\") (param {params}) {result} unreachable)\n", info.name));
    }
    wat.push(')');
    let module = compile(&wat);
    let mut count = 0;
    for callback in Callback::for_version(AbiVersion::V021) {
        let mut vm = module.instantiate(host(Limits::default())).unwrap();
        assert!(vm.has(callback), "{callback}");
        let args = vec![1; callback.info().params.len()];
        let trap = vm.call(callback, &args).unwrap_err();
        assert_eq!((trap.kind, trap.message.as_str()), (TrapKind::Guest, "wasm trap: unreachable"), "{callback}");
        let again = vm.call(callback, &args).unwrap_err();
        assert!(again.message.starts_with("VM failed earlier"), "{again}");
        count += 1;
    }
    assert!(count > 20, "{count} callbacks");
    the_next_vm_works();
}

/// Traps WAMR itself raises, each in its words; after each the next VM works.
#[test]
fn wamr_s_own_traps() {
    for (body, words) in [
        ("(drop (i32.div_u (i32.const 1) (i32.const 0)))", "wasm trap: integer divide by zero"),
        ("(drop (i32.load (i32.const 65536)))", "wasm trap: out of bounds memory access"),
        ("(call $recurse)", "wasm trap: wasm operand stack overflow"),
    ] {
        let wat = format!(
            r#"(module (memory 1) (func $recurse (call $recurse))
                 (func (export "proxy_on_tick") (param i32) {body}))"#
        );
        let mut vm = instance(&wat, Limits::default());
        let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
        assert_eq!((trap.kind, trap.message.as_str()), (TrapKind::Guest, words));
        the_next_vm_works();
    }
}

/// An endless loop in a host-called allocator (nested inside a host function) is stopped by the
/// deadline like one in a callback; the host function sees the deadline trap, the call fails
/// with it, and a new VM of the same module works.
#[test]
fn an_endless_loop_inside_a_host_call_hits_the_deadline() {
    let module = compile(
        r#"(module
          (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "key")
          (func (export "malloc") (param i32) (result i32) (loop $l (br $l)) (i32.const 0))
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (call $get (i32.const 100) (i32.const 3) (i32.const 8) (i32.const 12) (i32.const 16))))"#,
    );
    let services = Services::new();
    services.set_shared_data("vm", b"key", b"value", 0).unwrap();
    let mut host = VmHost::new(VmHostConfig::new("vm"), AbiVersion::V021, Arc::new(DefaultEmbedder), services);
    host.set_allocator(Callback::Malloc);
    let mut vm = module.instantiate(host).unwrap();
    let slot = Watchdog::global().slot(vm.interrupt_handle().unwrap(), Duration::from_millis(50));
    let armed = slot.arm().unwrap();
    let trap = vm.call(Callback::OnVmStart, &[1, 0]).unwrap_err();
    assert!(armed.disarm(), "the watchdog stopped it");
    assert_eq!(trap.kind, TrapKind::Deadline, "{trap}");
    the_next_vm_works();
}

/// WAMR runs the exports `__wasm_call_ctors` and `__post_instantiate` while instantiating, as it
/// does for every embedder (Envoy's WAMR too): pinned here, because the host's own start
/// (`_initialize`, `_start`) comes after.
#[test]
fn wamr_runs_call_ctors_while_instantiating() {
    let mut vm = instance(
        r#"(module (memory (export "memory") 1) (global $n (mut i32) (i32.const 0))
             (func (export "__wasm_call_ctors") (global.set $n (i32.add (global.get $n) (i32.const 1))))
             (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (global.get $n)))"#,
        Limits::default(),
    );
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(1));
}

/// Host functions see guest memory only when the module exports it as `memory`, as on every
/// engine (WAMR would hand out memory 0 anyway); `memory_size` is 0 then.
#[test]
fn a_memory_not_exported_is_not_the_host_s_to_see() {
    let mut vm = instance(
        r#"(module
             (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
             (memory 1)
             (data (i32.const 0x200) "x-a")
             (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
               (call $log (i32.const 2) (i32.const 0x200) (i32.const 3))))"#,
        Limits::default(),
    );
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(abi::Status::InvalidMemoryAccess.raw().into()));
    assert_eq!(vm.memory_size(), 0);
}
