//! The Wasmer engine against the engine contract of `proxy-wasm-host` (the shared cases of
//! `proxy-wasm-engine-tests`), and what is Wasmer's own: its name, capabilities and trap words.

use std::sync::Arc;

use abi::{AbiVersion, Callback};
use proxy_wasm_host::{DefaultEmbedder, Engine, Limits, Module, Services, TrapKind, VmHost, VmHostConfig};
use proxy_wasm_wasmer::WasmerEngine;

mod singlepass {
    use super::*;

    proxy_wasm_engine_tests::engine_contract_tests!(|| Arc::new(WasmerEngine::singlepass()));
}

mod cranelift {
    use super::*;

    proxy_wasm_engine_tests::engine_contract_tests!(|| Arc::new(WasmerEngine::cranelift()));
}

fn host(limits: Limits) -> VmHost {
    let config = VmHostConfig::new("vm").with_limits(limits);
    VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new())
}

/// Compiles a module written in the text format (engines get binaries).
fn compile(engine: &WasmerEngine, wat: &str) -> Arc<dyn Module> {
    engine.compile(&wat::parse_str(wat).unwrap()).unwrap()
}

#[test]
fn capabilities_and_name() {
    for (engine, name) in [(WasmerEngine::singlepass(), "wasmer-singlepass"), (WasmerEngine::cranelift(), "wasmer")] {
        assert_eq!(engine.name(), name);
        let c = engine.capabilities();
        assert!(c.memory_limit && c.interrupt && c.precompiled && c.sandboxed);
        assert!(!c.cheap_clone, "no pooling: every instance maps its own memory");
    }
}

/// Wasmer's words for a Wasm trap, one line with the function.
#[test]
fn unreachable_names_the_function() {
    let engine = WasmerEngine::singlepass();
    let module = compile(&engine, r#"(module (func $proxy_on_tick (export "proxy_on_tick") (param i32) unreachable))"#);
    let mut vm = module.instantiate(host(Limits::default())).unwrap();
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.starts_with("wasm trap: "), "{trap}");
    assert!(trap.message.contains("(in `proxy_on_tick`)"), "{trap}");
}

/// The stop flag the engine adds to every module stays out of the export list.
#[test]
fn the_stop_flag_is_hidden_from_the_exports() {
    let engine = WasmerEngine::singlepass();
    let module = compile(&engine, r#"(module (func (export "proxy_on_tick") (param i32)))"#);
    let names: Vec<_> = module.exports().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["proxy_on_tick"]);
}

/// Growing memory within the limit works; the limit applies per instance, not per engine; past
/// it `memory.grow` answers -1 and the refusal reaches the host.
#[test]
fn the_memory_limit_is_per_instance() {
    let engine = WasmerEngine::singlepass();
    let module = compile(
        &engine,
        r#"(module (memory (export "memory") 1)
             (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (memory.grow (local.get 1))))"#,
    );
    let mut small = module.instantiate(host(Limits { max_memory_bytes: 2 << 16, ..Limits::default() })).unwrap();
    let mut large = module.instantiate(host(Limits { max_memory_bytes: 8 << 16, ..Limits::default() })).unwrap();
    assert_eq!(large.call(Callback::OnVmStart, &[1, 4]), Ok(1), "grew from 1 page to 5");
    assert_eq!(small.call(Callback::OnVmStart, &[1, 1]), Ok(1), "grew from 1 page to 2");
    assert_eq!(small.host().memory_refused(), None);
    assert_eq!(small.call(Callback::OnVmStart, &[1, 1]), Ok(u64::from(u32::MAX)), "refused: -1");
    assert_eq!(small.host().memory_refused(), Some(3 << 16));
    assert_eq!(small.memory_size(), 2 << 16);
    assert_eq!(large.memory_size(), 5 << 16);
    assert_eq!(large.host().memory_refused(), None);
}

/// A start section that grows memory past the limit gets -1 there, as any other code; the
/// instance is made, its memory within the limit.
#[test]
fn a_start_function_past_the_memory_limit_gets_minus_one() {
    let engine = WasmerEngine::singlepass();
    let module = compile(
        &engine,
        r#"(module (memory (export "memory") 1)
             (func $s (if (i32.ne (memory.grow (i32.const 4)) (i32.const -1)) (then unreachable)))
             (start $s))"#,
    );
    let mut vm = module.instantiate(host(Limits { max_memory_bytes: 2 << 16, ..Limits::default() })).unwrap();
    assert_eq!(vm.memory_size(), 1 << 16);
    let err = module.instantiate(host(Limits { max_memory_bytes: 8 << 16, ..Limits::default() })).err().unwrap();
    assert!(err.to_string().contains("unreachable"), "within the limit the grow works: {err}");
}
