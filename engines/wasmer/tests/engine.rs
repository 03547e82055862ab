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

/// The names `module` lists as its exports.
fn export_names(module: &dyn Module) -> Vec<&str> {
    module.exports().iter().map(|e| e.name.as_str()).collect()
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
    assert_eq!(export_names(&*module), ["proxy_on_tick"]);
}

/// The start section the engine turns into an export stays out of the export list too; a
/// module's own export of that reserved name is neither listed nor run as a start section.
#[test]
fn the_start_export_is_hidden_and_reserved() {
    let engine = WasmerEngine::singlepass();
    let module = compile(&engine, r#"(module (func $s) (start $s) (func (export "proxy_on_tick") (param i32)))"#);
    assert_eq!(export_names(&*module), ["proxy_on_tick"]);
    let module = compile(
        &engine,
        r#"(module (func (export "__proxy_wasm_host_start") unreachable) (func (export "proxy_on_tick") (param i32)))"#,
    );
    assert_eq!(export_names(&*module), ["proxy_on_tick"]);
    let mut vm = module.instantiate(host(Limits::default())).expect("the export is not run as a start section");
    assert_eq!(vm.call(Callback::OnTick, &[1]), Ok(0));
}

/// A growth the start section had refused at the memory limit is not handed to the host with
/// the first callback (whose own trap would then be taken for a memory-limit one): the start
/// section got -1 and went on.
#[test]
fn a_refusal_in_the_start_section_is_not_the_first_callback_s() {
    let engine = WasmerEngine::singlepass();
    let module = compile(
        &engine,
        r#"(module (memory (export "memory") 1)
             (func $s (drop (memory.grow (i32.const 4))))
             (start $s)
             (func (export "proxy_on_tick") (param i32) unreachable))"#,
    );
    let mut vm = module.instantiate(host(Limits { max_memory_bytes: 2 << 16, ..Limits::default() })).unwrap();
    assert_eq!(vm.memory_size(), 1 << 16);
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest, "{trap}");
    assert_eq!(vm.host().memory_refused(), None);
}
