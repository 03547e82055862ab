//! The Wasmtime engine against the engine contract of `proxy-wasm-host` (the shared cases of
//! `proxy-wasm-engine-tests`), and Wasmtime's own features: the instance pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::{AbiVersion, Callback};
use proxy_wasm_host::{DefaultEmbedder, Engine, Error, Services, VmHost, VmHostConfig};
use proxy_wasm_wasmtime::{WasmtimeConfig, WasmtimeEngine};

proxy_wasm_engine_tests::engine_contract_tests!(|| Arc::new(WasmtimeEngine::default()));

#[test]
fn capabilities_and_name() {
    let engine = WasmtimeEngine::default();
    assert_eq!(engine.name(), "wasmtime");
    let c = engine.capabilities();
    assert!(c.memory_limit && c.interrupt && c.precompiled && c.cheap_clone && c.sandboxed);
    let unpooled = WasmtimeEngine::new(WasmtimeConfig { pooling: false, ..Default::default() }).unwrap();
    assert!(!unpooled.capabilities().cheap_clone);
}

/// Wasmtime's own words for a Wasm trap, one line with the function.
#[test]
fn unreachable_names_the_instruction_and_the_function() {
    let f = Fixture::new();
    let module = f.compile(r#"(module (func $proxy_on_tick (export "proxy_on_tick") (param i32) unreachable))"#);
    let mut vm = module.instantiate(f.host()).unwrap();
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    assert!(trap.message.contains("wasm `unreachable` instruction executed"), "{trap}");
    assert!(trap.message.contains("(in `proxy_on_tick`)"), "{trap}");
}

struct Fixture {
    engine: WasmtimeEngine,
    services: Arc<Services>,
}

impl Fixture {
    fn new() -> Self {
        Fixture { engine: WasmtimeEngine::default(), services: Services::new() }
    }

    fn host(&self) -> VmHost {
        let config = VmHostConfig::new("vm");
        VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), self.services.clone())
    }

    fn compile(&self, wat: &str) -> Arc<dyn proxy_wasm_host::Module> {
        self.engine.compile(&wat::parse_str(wat).unwrap()).unwrap_or_else(|e| panic!("{e}"))
    }
}

const SMALL: &str = r#"
(module
  (memory (export "memory") 17)
  (data (i32.const 0) "some data to copy in")
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_tick") (param i32)))
"#;

fn instantiate_many(f: &Fixture, n: usize) -> Duration {
    let module = f.compile(SMALL);
    let start = Instant::now();
    for _ in 0..n {
        let mut vm = module.instantiate(f.host()).unwrap();
        vm.call(Callback::OnTick, &[1]).unwrap();
    }
    start.elapsed() / n as u32
}

#[test]
fn two_hundred_sequential_instances_from_the_pool() {
    let f = Fixture::new();
    assert!(f.engine.capabilities().cheap_clone);
    let pooled = instantiate_many(&f, 200);
    let f = Fixture { engine: WasmtimeEngine::new(WasmtimeConfig { pooling: false, ..Default::default() }).unwrap(), ..Fixture::new() };
    let unpooled = instantiate_many(&f, 200);
    println!("instantiate + one call: {pooled:?} pooled, {unpooled:?} without the pool");
}

#[test]
fn the_pool_holds_max_instances_at_once() {
    let engine = WasmtimeEngine::new(WasmtimeConfig { max_instances: 4, ..Default::default() }).unwrap();
    let f = Fixture { engine, ..Fixture::new() };
    let module = f.compile(SMALL);
    let live: Vec<_> = (0..4).map(|_| module.instantiate(f.host()).unwrap()).collect();
    let err = module.instantiate(f.host()).err().unwrap();
    println!("{err}");
    assert!(matches!(err, Error::Instantiate { .. }), "{err:?}");
    drop(live);
    module.instantiate(f.host()).unwrap();
}
