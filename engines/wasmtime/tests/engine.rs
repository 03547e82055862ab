//! The Wasmtime engine against the engine contract of `proxy-wasm-host`, with hand-written WAT
//! guests.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abi::{AbiVersion, Callback, LogLevel, MetricType};
use proxy_wasm_host::{
    Embedder, Engine, Error, Export, ExternKind, Import, Instance, Limits, Module, PluginInfo, Services, TrapKind,
    VmHost, VmHostConfig,
};
use proxy_wasm_wasmtime::{WasmtimeConfig, WasmtimeEngine};

/// Records every log line.
#[derive(Default)]
struct Recorder {
    logs: Mutex<Vec<(LogLevel, String)>>,
}

impl Embedder for Recorder {
    fn log(&self, _plugin: Option<&PluginInfo>, level: LogLevel, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_string()));
    }
}

impl Recorder {
    fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.lock().unwrap().clone()
    }
}

struct Fixture {
    engine: WasmtimeEngine,
    recorder: Arc<Recorder>,
    services: Arc<Services>,
}

impl Fixture {
    fn new() -> Self {
        Fixture { engine: WasmtimeEngine::default(), recorder: Arc::default(), services: Services::new() }
    }

    fn host(&self) -> VmHost {
        let config = VmHostConfig {
            vm_id: "vm".into(),
            vm_configuration: Vec::new(),
            environment: Vec::new(),
            map_limits: Default::default(),
        };
        VmHost::new(config, AbiVersion::V021, self.recorder.clone(), self.services.clone())
    }

    fn compile(&self, wat: &str) -> Arc<dyn Module> {
        self.engine.compile(wat.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn instance(&self, wat: &str, limits: Limits) -> Box<dyn Instance> {
        self.try_instance(wat, limits).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_instance(&self, wat: &str, limits: Limits) -> Result<Box<dyn Instance>, Error> {
        self.compile(wat).instantiate(self.host(), &limits)
    }
}

/// Runs `f` on another thread and fails the test if it does not return within a minute.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60)).expect("the call did not return")
}

const ENDLESS: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "proxy_on_tick") (param i32) (loop $l (br $l))))
"#;

#[test]
fn capabilities_and_name() {
    let engine = WasmtimeEngine::default();
    assert_eq!(engine.name(), "wasmtime");
    let c = engine.capabilities();
    assert!(c.memory_limit && c.interrupt && c.precompiled && c.cheap_clone && c.sandboxed);
    let unpooled = WasmtimeEngine::new(WasmtimeConfig { pooling: false, ..Default::default() }).unwrap();
    assert!(!unpooled.capabilities().cheap_clone);
}

#[test]
fn compile_error_names_the_problem() {
    let engine = WasmtimeEngine::default();
    let err = engine.compile(br#"(module (func (result i32) i64.const 1))"#).err().unwrap();
    let Error::Compile { engine: name, message } = &err else { panic!("{err:?}") };
    assert_eq!(*name, "wasmtime");
    assert!(message.contains("type mismatch"), "{message}");
    let err = engine.compile(b"\0asm\x01\0\0\0\x01\xff").err().unwrap();
    assert!(matches!(err, Error::Compile { .. }), "{err:?}");
    println!("{err}");
}

#[test]
fn imports_and_exports_are_listed() {
    let f = Fixture::new();
    let module = f.compile(
        r#"(module
          (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_seek" (func (param i32 i64 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (global (export "g") i32 (i32.const 0))
          (func (export "malloc") (param i32) (result i32) (i32.const 0))
          (func (export "f") (param f32 f64)))"#,
    );
    let func = |params: &[&'static str], results: &[&'static str]| ExternKind::Func {
        params: params.to_vec(),
        results: results.to_vec(),
    };
    assert_eq!(
        module.imports(),
        &[
            Import { module: "env".into(), name: "proxy_log".into(), kind: func(&["i32", "i32", "i32"], &["i32"]) },
            Import {
                module: "wasi_snapshot_preview1".into(),
                name: "fd_seek".into(),
                kind: func(&["i32", "i64", "i32", "i32"], &["i32"]),
            },
        ]
    );
    assert_eq!(
        module.exports(),
        &[
            Export { name: "memory".into(), kind: ExternKind::Memory },
            Export { name: "g".into(), kind: ExternKind::Global },
            Export { name: "malloc".into(), kind: func(&["i32"], &["i32"]) },
            Export { name: "f".into(), kind: func(&["f32", "f64"], &[]) },
        ]
    );
}

#[test]
fn a_callback_gets_its_arguments_and_returns_its_value() {
    let f = Fixture::new();
    let mut vm = f.instance(
        r#"(module
          (memory (export "memory") 2)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (i32.add (local.get 0) (local.get 1)))
          (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const -1))
          (func (export "proxy_on_tick") (param i32)))"#,
        Limits::default(),
    );
    assert!(vm.has(Callback::OnVmStart));
    assert!(vm.has(Callback::OnTick));
    assert!(!vm.has(Callback::OnLog));
    assert_eq!(vm.call(Callback::OnVmStart, &[3, 4]), Ok(7));
    // Arguments keep their low 32 bits; results are zero-extended.
    assert_eq!(vm.call(Callback::OnVmStart, &[(1 << 32) + 5, 1]), Ok(6));
    assert_eq!(vm.call(Callback::OnConfigure, &[1, 0]), Ok(0xffff_ffff));
    assert_eq!(vm.call(Callback::OnTick, &[1]), Ok(0));
    let missing = vm.call(Callback::OnLog, &[1]).unwrap_err();
    assert!(missing.message.contains("not exported"), "{missing}");
    assert_eq!(vm.memory_size(), 2 * 65536);
    assert!(vm.interrupt_handle().is_some());
    assert_eq!(vm.host().abi_version(), AbiVersion::V021);
}

#[test]
fn a_callback_with_the_wrong_signature_is_refused() {
    let f = Fixture::new();
    let err = f
        .try_instance(r#"(module (func (export "proxy_on_tick") (param i32 i32)))"#, Limits::default())
        .err()
        .unwrap();
    assert_eq!(
        err,
        Error::BadExport { export: "proxy_on_tick".into(), message: "expected (i32) -> (), found (i32, i32) -> ()".into() }
    );
    let err = f
        .try_instance(r#"(module (global (export "proxy_on_done") i32 (i32.const 0)))"#, Limits::default())
        .err()
        .unwrap();
    assert!(matches!(&err, Error::BadExport { export, message } if export == "proxy_on_done" && message.contains("found a global")), "{err:?}");
}

#[test]
fn imports_are_checked_against_the_table() {
    let f = Fixture::new();
    let err = f
        .try_instance(r#"(module (import "env" "proxy_log" (func (param i32 i32) (result i32))))"#, Limits::default())
        .err()
        .unwrap();
    assert_eq!(
        err,
        Error::BadImport {
            import: "env.proxy_log".into(),
            message: "expected (i32, i32, i32) -> i32, found (i32, i32) -> i32".into()
        }
    );
    let err = f
        .try_instance(
            r#"(module (import "env" "proxy_nope" (func)) (import "other" "x" (func)))"#,
            Limits::default(),
        )
        .err()
        .unwrap();
    assert_eq!(err, Error::UnknownImports(vec!["env.proxy_nope".into(), "other.x".into()]));
    // Both WASI module names are linked.
    f.instance(
        r#"(module
          (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
        Limits::default(),
    );
}

#[test]
fn unreachable_is_a_guest_trap_and_fails_the_vm() {
    let f = Fixture::new();
    let mut vm = f.instance(
        r#"(module (func $proxy_on_tick (export "proxy_on_tick") (param i32) unreachable))"#,
        Limits::default(),
    );
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.contains("wasm `unreachable` instruction executed"), "{trap}");
    assert!(trap.message.lines().count() <= 2, "{trap}");
    println!("{trap}");
    let again = vm.call(Callback::OnTick, &[1]).unwrap_err();
    assert_eq!(again.kind, TrapKind::Guest);
    assert!(again.message.starts_with("VM failed earlier: "), "{again}");
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    let f = Fixture::new();
    let mut vm = f.instance(ENDLESS, Limits { call_deadline: Some(Duration::from_millis(50)), ..Limits::default() });
    let (trap, took) = within_a_minute(move || {
        let start = Instant::now();
        let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
        (trap, start.elapsed())
    });
    println!("{trap} after {took:?}");
    assert_eq!(trap.kind, TrapKind::Deadline, "{trap}");
    assert!(took >= Duration::from_millis(50), "{took:?}");
}

#[test]
fn interrupt_from_another_thread_stops_an_endless_loop() {
    let f = Fixture::new();
    let mut vm = f.instance(ENDLESS, Limits::default());
    let handle = vm.interrupt_handle().unwrap();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        handle.interrupt();
    });
    let trap = within_a_minute(move || vm.call(Callback::OnTick, &[1]).unwrap_err());
    stopper.join().unwrap();
    println!("{trap}");
    assert_eq!(trap.kind, TrapKind::Deadline, "{trap}");
    assert!(trap.message.contains("interrupted"), "{trap}");
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let f = Fixture::new();
    let mut vm = f.instance(
        r#"(module
          (memory (export "memory") 1)
          (func (export "proxy_on_tick") (param i32)
            (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))))"#,
        Limits { max_memory_bytes: 4 << 20, ..Limits::default() },
    );
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    println!("{trap}");
    assert_eq!(trap.kind, TrapKind::MemoryLimit, "{trap}");
    assert!(vm.memory_size() <= 4 << 20);
    // A module that asks for more than the limit up front does not instantiate.
    let err = f
        .try_instance(r#"(module (memory (export "memory") 100))"#, Limits { max_memory_bytes: 1 << 20, ..Limits::default() })
        .err()
        .unwrap();
    assert!(matches!(err, Error::Instantiate { .. }), "{err:?}");
    println!("{err}");
}

#[test]
fn growing_past_the_modules_own_maximum_answers_minus_one() {
    let f = Fixture::new();
    // Declared maximum 2 pages, host limit 4 MiB: growing to 6 pages is the module's own
    // refusal (-1, no trap); growing to 2 pages works; then the maximum again answers -1.
    let mut vm = f.instance(
        r#"(module
          (memory (export "memory") 1 2)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (if (i32.ne (memory.grow (i32.const 5)) (i32.const -1)) (then unreachable))
            (if (i32.ne (memory.grow (i32.const 1)) (i32.const 1)) (then unreachable))
            (memory.grow (i32.const 1))))"#,
        Limits { max_memory_bytes: 4 << 20, ..Limits::default() },
    );
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]).unwrap(), u64::from(u32::MAX));
    assert_eq!(vm.memory_size(), 2 * 65536);
}

/// A guest whose allocator makes host calls itself (as the C++ host's `bad_malloc` test), and
/// whose `proxy_on_vm_start` reads shared data (the host copies the value through the
/// allocator) and logs it.
const REENTRANT: &str = r#"
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 4096))
  (global $trap (mut i32) (i32.const 0))
  (data (i32.const 100) "malloc")
  (data (i32.const 110) "key")
  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (if (global.get $trap) (then unreachable))
    (if (call $now (i32.const 200)) (then unreachable))
    (if (i64.eqz (i64.load (i32.const 200))) (then unreachable))
    (if (call $log (i32.const 2) (i32.const 100) (i32.const 6)) (then unreachable))
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $p))
  ;; proxy_on_vm_start(_, trap): the status of proxy_get_shared_data, after logging the value.
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (local $status i32)
    (global.set $trap (local.get 1))
    (local.set $status (call $get (i32.const 110) (i32.const 3) (i32.const 8) (i32.const 12) (i32.const 16)))
    (if (i32.eqz (local.get $status))
      (then (drop (call $log (i32.const 3) (i32.load (i32.const 8)) (i32.load (i32.const 12))))))
    (local.get $status))
)
"#;

#[test]
fn a_host_function_calls_the_allocator_reentrantly() {
    let f = Fixture::new();
    f.services.set_shared_data("vm", b"key", b"shared value", 0).unwrap();
    let mut vm = f.instance(REENTRANT, Limits::default());
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(0), "proxy_get_shared_data's status");
    assert_eq!(
        f.recorder.logs(),
        vec![(LogLevel::Info, "malloc".to_string()), (LogLevel::Warn, "shared value".to_string())]
    );
}

#[test]
fn a_trapping_allocator_fails_the_call() {
    let f = Fixture::new();
    f.services.set_shared_data("vm", b"key", b"shared value", 0).unwrap();
    let mut vm = f.instance(REENTRANT, Limits::default());
    let trap = vm.call(Callback::OnVmStart, &[1, 1]).unwrap_err();
    println!("{trap}");
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.contains("unreachable"), "{trap}");
}

#[test]
fn an_i64_argument_passes_through() {
    let f = Fixture::new();
    let counter = f.services.define_metric(MetricType::Counter, "requests");
    let gauge = f.services.define_metric(MetricType::Gauge, "level");
    let mut vm = f.instance(
        r#"(module
          (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
          (memory (export "memory") 1)
          (func (export "proxy_on_vm_start") (param $id i32) (param $which i32) (result i32)
            (if (result i32) (local.get $which)
              (then (call $inc (local.get $id) (i64.const -3)))
              (else (call $inc (local.get $id) (i64.const 5000000000))))))"#,
        Limits::default(),
    );
    assert_eq!(vm.call(Callback::OnVmStart, &[u64::from(counter), 0]), Ok(0));
    assert_eq!(f.services.get_metric(counter), Ok(5_000_000_000));
    assert_eq!(vm.call(Callback::OnVmStart, &[u64::from(gauge), 0]), Ok(0));
    assert_eq!(vm.call(Callback::OnVmStart, &[u64::from(gauge), 1]), Ok(0));
    assert_eq!(f.services.get_metric(gauge), Ok(4_999_999_997));
}

#[test]
fn proc_exit_is_an_exit_trap() {
    let f = Fixture::new();
    let mut vm = f.instance(
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const 3))))"#,
        Limits::default(),
    );
    let trap = vm.call(Callback::Start, &[]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Exit(3), "{trap}");
}

#[test]
fn serialize_and_deserialize_round_trip() {
    let f = Fixture::new();
    let module = f.compile(
        r#"(module
          (memory (export "memory") 1)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.mul (local.get 0) (local.get 1))))"#,
    );
    let bytes = module.serialize().expect("wasmtime serializes");
    let loaded = f.engine.deserialize(&bytes).unwrap();
    assert_eq!(loaded.exports(), module.exports());
    let mut vm = loaded.instantiate(f.host(), &Limits::default()).unwrap();
    assert_eq!(vm.call(Callback::OnVmStart, &[6, 7]), Ok(42));
    // Garbage is refused, not run.
    let err = f.engine.deserialize(b"not a module").err().unwrap();
    assert!(matches!(err, Error::Compile { .. }), "{err:?}");
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
        let mut vm = module.instantiate(f.host(), &Limits::default()).unwrap();
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
    let live: Vec<_> = (0..4).map(|_| module.instantiate(f.host(), &Limits::default()).unwrap()).collect();
    let err = module.instantiate(f.host(), &Limits::default()).err().unwrap();
    println!("{err}");
    assert!(matches!(err, Error::Instantiate { .. }), "{err:?}");
    drop(live);
    module.instantiate(f.host(), &Limits::default()).unwrap();
}
