//! V8 with its default bounds checks ([`TrapHandler::Chained`]) beside Wasmtime in one
//! process, Wasmtime's signal handlers installed first: out-of-bounds traps in each engine, in turn and
//! at once. One test per binary: signal handlers are process-wide.

use proxy_wasm_v8::sys::TrapHandler;

#[path = "support/coexist.rs"]
mod coexist;

#[test]
fn v8_and_wasmtime_trap_in_one_process_wasmtime_first() {
    coexist::run(TrapHandler::Chained, true, &|_| {});
}
