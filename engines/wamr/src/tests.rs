//! The re-entrant allocator checks of [`proxy_wasm_engine_tests::allocator`]. WAMR registers host
//! functions once per process, so this test binary's table has two rows more than the ABI's: the
//! test-only host functions `test.return_bytes` and `test.swallow`, called through [`Cx`].

use std::sync::Arc;

use abi::{AbiVersion, HOST_FUNCTIONS};
use proxy_wasm_engine_tests::allocator::{self, GUEST};
use proxy_wasm_host::{DefaultEmbedder, Services, Trap, VmHost, VmHostConfig};

use crate::instance::{instantiate, WamrInstance};
use crate::link::Cx;
use crate::wamr::HostFunc;
use crate::WamrEngine;

/// The rows unit tests add to the table, after the ABI's.
pub(crate) const TEST_ROWS: &[HostFunc<'static>] = &[
    HostFunc { row: HOST_FUNCTIONS.len(), module: "test", name: "return_bytes", signature: "(ii)i" },
    HostFunc { row: HOST_FUNCTIONS.len() + 1, module: "test", name: "swallow", signature: "(i)i" },
];

/// The host functions of [`TEST_ROWS`].
pub(crate) fn host_fn(row: usize, cx: &mut Cx<'_, '_>, args: &[u64]) -> Result<i32, Trap> {
    match (row - HOST_FUNCTIONS.len(), args) {
        (0, &[ptr, size]) => allocator::return_bytes(cx, ptr as i32, size as i32),
        (1, &[size]) => Ok(allocator::swallow(cx, size as i32)),
        _ => Err(Trap::guest(format!("no test host function at row {row} with {} arguments", args.len()))),
    }
}

/// An instance of `wat`, which may import the test host functions (the host's import check,
/// which would refuse them, is skipped).
fn instance(wat: &str) -> WamrInstance {
    let module = WamrEngine::default().load(&wat::parse_str(wat).unwrap()).unwrap();
    let config = VmHostConfig::new("vm");
    let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
    instantiate(&module, host).unwrap()
}

#[test]
fn host_function_calls_the_allocator_reentrantly() {
    allocator::host_function_calls_the_allocator_reentrantly(&mut instance(GUEST), |vm| vm.instance.memory().to_vec());
}

#[test]
fn a_trapping_allocator_fails_the_call() {
    allocator::a_trapping_allocator_fails_the_call(&mut instance(GUEST));
}

#[test]
fn an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it() {
    allocator::an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it(&mut instance(GUEST));
}
