//! The re-entrant allocator checks of [`proxy_wasm_engine_tests::allocator`], with its
//! test-only host functions linked into Wasmer and called through [`Cx`].

use std::sync::Arc;

use abi::AbiVersion;
use proxy_wasm_engine_tests::allocator::{self, GUEST};
use proxy_wasm_host::{DefaultEmbedder, Services, VmHost, VmHostConfig};
use wasmer::{Function, FunctionEnvMut};

use crate::instance::WasmerInstance;
use crate::link::Cx;
use crate::store::StoreData;
use crate::WasmerEngine;

/// An instance of `wat` that also imports the test host functions `test.return_bytes` and
/// `test.swallow` (see [`allocator`]).
fn instance(wat: &str) -> WasmerInstance {
    let engine = WasmerEngine::singlepass();
    let module = engine.compile_module(&wat::parse_str(wat).unwrap()).unwrap();
    let config = VmHostConfig::new("vm");
    let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
    module.instantiate_with(host, |store, env, imports| {
        let return_bytes = Function::new_typed_with_env(store, env, |mut env: FunctionEnvMut<'_, StoreData>, ptr: i32, size: i32| {
            allocator::return_bytes(&mut Cx(&mut env), ptr, size)
        });
        let swallow = Function::new_typed_with_env(store, env, |mut env: FunctionEnvMut<'_, StoreData>, size: i32| {
            allocator::swallow(&mut Cx(&mut env), size)
        });
        imports.define("test", "return_bytes", return_bytes);
        imports.define("test", "swallow", swallow);
    })
    .unwrap()
}

#[test]
fn host_function_calls_the_allocator_reentrantly() {
    allocator::host_function_calls_the_allocator_reentrantly(&mut instance(GUEST), WasmerInstance::memory_bytes);
}

#[test]
fn a_trapping_allocator_fails_the_call() {
    allocator::a_trapping_allocator_fails_the_call(&mut instance(GUEST));
}

#[test]
fn an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it() {
    allocator::an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it(&mut instance(GUEST));
}
