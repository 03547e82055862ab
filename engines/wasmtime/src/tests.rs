//! The re-entrant allocator checks of [`proxy_wasm_engine_tests::allocator`], with its
//! test-only host functions linked into Wasmtime and called through [`Cx`].

use std::sync::Arc;

use abi::AbiVersion;
use proxy_wasm_engine_tests::allocator::{self, GUEST};
use proxy_wasm_host::{DefaultEmbedder, Services, VmHost, VmHostConfig};
use wasmtime::Caller;

use crate::instance::{instantiate, WasmtimeInstance};
use crate::link::{linker, Cx};
use crate::module::WasmtimeModule;
use crate::store::StoreData;
use crate::WasmtimeEngine;

/// An instance of `wat` whose linker also has the test host functions `test.return_bytes` and
/// `test.swallow` (see [`allocator`]).
fn instance(wat: &str) -> WasmtimeInstance {
    let engine = WasmtimeEngine::default();
    let shared = &engine.shared;
    let mut linker = linker(&shared.engine).unwrap();
    linker
        .func_wrap("test", "return_bytes", |mut caller: Caller<'_, StoreData>, ptr: i32, size: i32| {
            allocator::return_bytes(&mut Cx(&mut caller), ptr, size).map_err(wasmtime::Error::new)
        })
        .unwrap()
        .func_wrap("test", "swallow", |mut caller: Caller<'_, StoreData>, size: i32| {
            allocator::swallow(&mut Cx(&mut caller), size)
        })
        .unwrap();
    let binary = wat::parse_str(wat).unwrap();
    let module = WasmtimeModule::new(shared.clone(), wasmtime::Module::new(&shared.engine, binary).unwrap());
    let pre = linker.instantiate_pre(module.wasmtime()).unwrap();
    let config = VmHostConfig::new("vm");
    let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
    instantiate(shared, &pre, module.callbacks(), host).unwrap()
}

#[test]
fn host_function_calls_the_allocator_reentrantly() {
    allocator::host_function_calls_the_allocator_reentrantly(&mut instance(GUEST), |vm| {
        let memory = vm.store.data().memory.unwrap();
        memory.data(&vm.store).to_vec()
    });
}

#[test]
fn a_trapping_allocator_fails_the_call() {
    allocator::a_trapping_allocator_fails_the_call(&mut instance(GUEST));
}

#[test]
fn an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it() {
    allocator::an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it(&mut instance(GUEST));
}

