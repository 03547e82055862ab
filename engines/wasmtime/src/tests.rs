//! Tests of the re-entrant allocator path that do not depend on any host function's
//! implementation: a test-only host function calls [`proxy_wasm_host::return_bytes`] through
//! [`Cx`], the guest's allocator itself calls host functions.

use std::sync::Arc;

use abi::{AbiVersion, Callback};
use proxy_wasm_host::{
    return_bytes, DefaultEmbedder, HostError, Instance, Limits, Services, TrapKind, VmHost, VmHostConfig,
};
use wasmtime::Caller;

use crate::instance::{instantiate_pre, StoreData, WasmtimeInstance};
use crate::link::{linker, Cx};
use crate::module::WasmtimeModule;
use crate::WasmtimeEngine;

/// An instance of `wat` whose linker also has `test.return_bytes(ret_ptr, ret_size) -> status`
/// (returns "hello" through the guest allocator) and `test.swallow(size) -> 0` (allocates and
/// ignores the result, error included).
fn instance(wat: &str) -> WasmtimeInstance {
    let engine = WasmtimeEngine::default();
    let shared = &engine.shared;
    let mut linker = linker(&shared.engine).unwrap();
    linker
        .func_wrap("test", "return_bytes", |mut caller: Caller<'_, StoreData>, ptr: i32, size: i32| {
            let r = return_bytes(&mut Cx(&mut caller), ptr as u32 as u64, size as u32 as u64, b"hello");
            match r {
                Ok(()) => Ok(0),
                Err(HostError::Status(s)) => Ok(s.raw() as i32),
                Err(HostError::Errno(e)) => Ok(e.raw() as i32),
                Err(HostError::Trap(t)) => Err(wasmtime::Error::new(t)),
            }
        })
        .unwrap()
        .func_wrap("test", "swallow", |mut caller: Caller<'_, StoreData>, size: i32| {
            let _ = proxy_wasm_host::HostCx::allocate(&mut Cx(&mut caller), size as u32 as u64);
            0i32
        })
        .unwrap();
    let module = WasmtimeModule::new(shared.clone(), wasmtime::Module::new(&shared.engine, wat).unwrap());
    let pre = linker.instantiate_pre(module.wasmtime()).unwrap();
    let config = VmHostConfig::new("vm");
    let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
    instantiate_pre(shared, &pre, module.callbacks(), host, &Limits::default()).unwrap()
}

const GUEST: &str = r#"
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "test" "return_bytes" (func $return_bytes (param i32 i32) (result i32)))
  (import "test" "swallow" (func $swallow (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (global $trap (mut i32) (i32.const 0))
  (data (i32.const 100) "malloc")
  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (if (global.get $trap) (then unreachable))
    ;; Host calls from inside the allocator, itself called from inside a host call.
    (drop (call $now (i32.const 200)))
    (drop (call $log (i32.const 2) (i32.const 100) (i32.const 6)))
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $p))
  ;; proxy_on_vm_start(_, mode): 0 returns "hello" through the allocator and answers its address;
  ;; 1 does the same with a trapping allocator; 2 swallows the allocator's trap.
  (func (export "proxy_on_vm_start") (param i32) (param $mode i32) (result i32)
    (global.set $trap (i32.ne (local.get $mode) (i32.const 0)))
    (if (i32.eq (local.get $mode) (i32.const 2))
      (then (return (call $swallow (i32.const 5)))))
    (if (call $return_bytes (i32.const 8) (i32.const 12)) (then unreachable))
    (i32.load (i32.const 8)))
)
"#;

#[test]
fn host_function_calls_the_allocator_reentrantly() {
    let mut vm = instance(GUEST);
    let addr = vm.call(Callback::OnVmStart, &[1, 0]).unwrap();
    assert_eq!(addr, 1024);
    let memory = vm.store.data().memory.unwrap();
    let bytes = memory.data(&vm.store);
    assert_eq!(&bytes[1024..1029], b"hello");
    assert_eq!(&bytes[12..16], &5u32.to_le_bytes());
    // And again: the store is fine after a nested call.
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]).unwrap(), 1029);
}

#[test]
fn a_trapping_allocator_fails_the_call() {
    let mut vm = instance(GUEST);
    let trap = vm.call(Callback::OnVmStart, &[1, 1]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.contains("unreachable"), "{trap}");
    let again = vm.call(Callback::OnVmStart, &[1, 0]).unwrap_err();
    assert!(again.message.starts_with("VM failed earlier"), "{again}");
}

#[test]
fn an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it() {
    let mut vm = instance(GUEST);
    let trap = vm.call(Callback::OnVmStart, &[1, 2]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.contains("unreachable"), "{trap}");
}
