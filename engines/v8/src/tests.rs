//! The re-entrant allocator checks of [`proxy_wasm_engine_tests::allocator`], with its test-only
//! host functions bound to rows past the ABI table and called through [`Cx`].

use std::sync::Arc;

use abi::{AbiVersion, HOST_FUNCTIONS};
use proxy_wasm_engine_tests::allocator::{self, GUEST};
use proxy_wasm_host::{DefaultEmbedder, Engine, Services, Trap, VmHost, VmHostConfig};

use crate::instance::{instantiate, Cx, V8Instance};
use crate::module::V8Module;
use crate::sys::{self, FuncImport};
use crate::V8Engine;

/// The rows of `test.return_bytes` and `test.swallow`.
fn rows() -> (u32, u32) {
    let base = HOST_FUNCTIONS.len() as u32;
    (base, base + 1)
}

fn extra(cx: &mut Cx<'_, '_>, row: u32, args: &[u64]) -> Result<i32, Trap> {
    let (return_bytes, _) = rows();
    if row == return_bytes {
        allocator::return_bytes(cx, args[0] as i32, args[1] as i32)
    } else {
        Ok(allocator::swallow(cx, args[0] as i32))
    }
}

/// An instance of `wat` with the test host functions as well.
fn instance(wat: &str) -> V8Instance {
    let _engine = V8Engine::default();
    let module = V8Module::new(sys::Module::compile(&wat::parse_str(wat).unwrap()).unwrap());
    let (return_bytes, swallow) = rows();
    let extra_imports = [
        FuncImport { module: "test", name: "return_bytes", row: return_bytes },
        FuncImport { module: "test", name: "swallow", row: swallow },
    ];
    let config = VmHostConfig::new("vm");
    let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
    // The rows are set before the first guest code runs (the module has no start function).
    let mut vm = instantiate(&module, host, &extra_imports).unwrap();
    vm.vm.data().extra = Some(extra);
    vm
}

#[test]
fn host_function_calls_the_allocator_reentrantly() {
    allocator::host_function_calls_the_allocator_reentrantly(&mut instance(GUEST), |vm| vm.vm.memory().to_vec());
}

#[test]
fn a_trapping_allocator_fails_the_call() {
    allocator::a_trapping_allocator_fails_the_call(&mut instance(GUEST));
}

#[test]
fn an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it() {
    allocator::an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it(&mut instance(GUEST));
}

#[test]
fn the_engine_reports_its_capabilities() {
    let c = V8Engine::default().capabilities();
    assert!(c.memory_limit && c.interrupt && c.sandboxed);
    assert!(!c.precompiled && !c.cheap_clone);
}
