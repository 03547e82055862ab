//! The cases, one public function each, taking a function that makes the engine under test.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abi::{AbiVersion, Callback, LogLevel};
use proxy_wasm_host::engine::{allocator_callback, Watchdog};
use proxy_wasm_host::{
    Embedder, Engine, Error, Export, ExternKind, Import, Instance, Interrupt, Limits, MetricValue, Module, PluginInfo,
    Services, Trap, TrapKind,
    VmHost, VmHostConfig,
};

/// Makes the engine under test.
pub type MakeEngine<'a> = &'a dyn Fn() -> Arc<dyn Engine>;

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

/// An engine, an embedder that records logs, and shared services.
struct Fixture {
    engine: Arc<dyn Engine>,
    recorder: Arc<Recorder>,
    services: Arc<Services>,
}

impl Fixture {
    fn new(make: MakeEngine<'_>) -> Self {
        Fixture { engine: make(), recorder: Arc::default(), services: Services::new() }
    }

    fn host(&self, limits: Limits) -> VmHost {
        let config = VmHostConfig::new("vm").with_limits(limits);
        VmHost::new(config, AbiVersion::V021, self.recorder.clone(), self.services.clone())
    }

    /// Compiles a module written in the text format: the host parses text, engines get binaries.
    fn compile(&self, wat: &str) -> Arc<dyn Module> {
        let binary = wat::parse_str(wat).unwrap_or_else(|e| panic!("{e}"));
        self.engine.compile(&binary).unwrap_or_else(|e| panic!("{e}"))
    }

    fn instance(&self, wat: &str, limits: Limits) -> Box<dyn Instance> {
        self.try_instance(wat, limits).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_instance(&self, wat: &str, limits: Limits) -> Result<Box<dyn Instance>, Error> {
        self.instantiate(&self.compile(wat), limits)
    }

    /// An instance of `module` with `limits`, its allocator chosen as the host chooses it.
    fn instantiate(&self, module: &Arc<dyn Module>, limits: Limits) -> Result<Box<dyn Instance>, Error> {
        let mut host = self.host(limits);
        host.set_allocator(allocator_callback(module.exports()));
        module.instantiate(host)
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

/// Bytes that are not a valid module are [`Error::Compile`] with the engine's name and a reason
/// in the engine's own words (not asserted: each engine words it its own way).
pub fn compile_error_names_the_problem(make: MakeEngine<'_>) {
    let engine = make();
    // Well-formed text, but the body's type is wrong: only validation can tell.
    let mistyped = wat::parse_str(r#"(module (func (result i32) i64.const 1))"#).unwrap();
    for bytes in [&mistyped[..], b"\0asm\x01\0\0\0\x01\xff", b"\0asm\x01\0\0", b"not a module"] {
        let err = engine.compile(bytes).err().unwrap_or_else(|| panic!("{} compiled {bytes:?}", engine.name()));
        let Error::Compile { engine: name, message } = &err else { panic!("{err:?}") };
        assert_eq!(*name, engine.name());
        assert!(!message.trim().is_empty(), "an empty reason for {bytes:?}");
        let shown = err.to_string();
        assert!(shown.contains("not a valid Wasm module") && shown.contains(engine.name()), "{shown}");
        println!("{shown}");
    }
}

/// Imports and exports are listed in order, with their kinds and Wasm types.
pub fn imports_and_exports_are_listed(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
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

/// Arguments keep their low 32 bits, results are zero-extended, a missing callback is a trap,
/// and a call with another number of arguments than the callback's table row is refused before
/// it runs, naming both counts (the instance does not fail for it).
pub fn a_callback_gets_its_arguments_and_returns_its_value(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
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
    assert_eq!(vm.call(Callback::OnVmStart, &[(1 << 32) + 5, 1]), Ok(6));
    assert_eq!(vm.call(Callback::OnConfigure, &[1, 0]), Ok(0xffff_ffff));
    assert_eq!(vm.call(Callback::OnTick, &[1]), Ok(0));
    let missing = vm.call(Callback::OnLog, &[1]).unwrap_err();
    assert!(missing.message.contains("not exported"), "{missing}");
    let few = vm.call(Callback::OnVmStart, &[3]).unwrap_err();
    assert_eq!(few.message, "`proxy_on_vm_start` takes 2 arguments, the host passed 1");
    let many = vm.call(Callback::OnTick, &[1, 2]).unwrap_err();
    assert_eq!(many.message, "`proxy_on_tick` takes 1 arguments, the host passed 2");
    assert_eq!(vm.call(Callback::OnVmStart, &[3, 4]), Ok(7), "still callable after a refused call");
    assert_eq!(vm.memory_size(), 2 * 65536);
    assert_eq!(vm.interrupt_handle().is_some(), f.engine.capabilities().interrupt);
    assert_eq!(vm.host().abi_version(), AbiVersion::V021);
}

/// A callback export with another signature than the ABI's is [`Error::BadExport`].
pub fn a_callback_with_the_wrong_signature_is_refused(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
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
    assert!(
        matches!(&err, Error::BadExport { export, message } if export == "proxy_on_done" && message.contains("found a global")),
        "{err:?}"
    );
}

/// Unknown imports are all named; a known one with the wrong type is [`Error::BadImport`]; WASI is
/// linked under both of its module names.
pub fn imports_are_checked_against_the_table(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
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
        .try_instance(r#"(module (import "env" "proxy_nope" (func)) (import "other" "x" (func)))"#, Limits::default())
        .err()
        .unwrap();
    assert_eq!(err, Error::UnknownImports(vec!["env.proxy_nope".into(), "other.x".into()]));
    f.instance(
        r#"(module
          (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
        Limits::default(),
    );
}

/// `unreachable` is a one- or two-line guest trap, and the VM refuses further calls.
pub fn unreachable_is_a_guest_trap_and_fails_the_vm(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let mut vm = f.instance(
        r#"(module (func $proxy_on_tick (export "proxy_on_tick") (param i32) unreachable))"#,
        Limits::default(),
    );
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    println!("{trap}");
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.contains("unreachable"), "{trap}");
    assert!(trap.message.lines().count() <= 2, "{trap}");
    let again = vm.call(Callback::OnTick, &[1]).unwrap_err();
    assert_eq!(again.kind, TrapKind::Guest);
    assert!(again.message.starts_with("VM failed earlier: "), "{again}");
}

/// An endless loop is stopped by the host's watchdog through the engine's interrupt at the call
/// deadline, not before it, and the instance then refuses calls.
pub fn an_endless_loop_hits_the_deadline(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let deadline = Duration::from_millis(50);
    let mut vm = f.instance(ENDLESS, Limits { call_deadline: Some(deadline), ..Limits::default() });
    let Some(handle) = vm.interrupt_handle() else {
        // Nothing could stop the loop: the engine must say so rather than hang here.
        assert!(!f.engine.capabilities().interrupt, "an engine that can interrupt gives a handle");
        return;
    };
    let (trap, took, fired, again) = within_a_minute(move || {
        let slot = Watchdog::global().slot(handle, deadline);
        let start = Instant::now();
        let armed = slot.arm().unwrap();
        let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
        let took = start.elapsed();
        let fired = armed.disarm();
        (trap, took, fired, vm.call(Callback::OnTick, &[1]).unwrap_err())
    });
    println!("{trap} after {took:?}");
    assert_eq!(trap.kind, TrapKind::Deadline, "{trap}");
    assert!(fired, "the watchdog stopped the call");
    assert!(took >= deadline, "{took:?}");
    assert!(again.message.starts_with("VM failed earlier"), "{again}");
}

/// Calls `vm`'s `proxy_on_tick` (an endless loop) while another thread interrupts it through
/// `handle` after `after`; the call's trap (the test fails if it does not end within a minute).
fn interrupted_tick(mut vm: Box<dyn Instance>, handle: Arc<dyn Interrupt>, after: Duration) -> Trap {
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(after);
        handle.interrupt();
    });
    let trap = within_a_minute(move || vm.call(Callback::OnTick, &[1]).unwrap_err());
    stopper.join().unwrap();
    trap
}

/// The interrupt handle stops an endless loop from another thread.
pub fn interrupt_from_another_thread_stops_an_endless_loop(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let vm = f.instance(ENDLESS, Limits::default());
    let Some(handle) = vm.interrupt_handle() else {
        assert!(!f.engine.capabilities().interrupt, "an engine that can interrupt gives a handle");
        return;
    };
    let trap = interrupted_tick(vm, handle, Duration::from_millis(100));
    println!("{trap}");
    assert_eq!(trap.kind, TrapKind::Deadline, "{trap}");
    assert!(trap.message.contains("interrupted"), "{trap}");
}

/// Interrupts are per instance. Interrupting one instance, idle or running (which moves
/// whatever the engine shares to signal it, such as Wasmtime's epoch), leaves another
/// instance of the same engine alone: its calls, loops included, run to their end, and its own
/// interrupt still stops it.
pub fn interrupting_one_instance_leaves_another_alone(make: MakeEngine<'_>) {
    const LOOPS: &str = r#"
    (module
      (memory (export "memory") 1)
      (func (export "proxy_on_vm_start") (param $n i32) (param i32) (result i32)
        (loop $l (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (local.get $n)))
        (i32.const 1))
      (func (export "proxy_on_tick") (param i32) (loop $l (br $l))))
    "#;
    let f = Fixture::new(make);
    let module = f.compile(LOOPS);
    let mut quiet = f.instantiate(&module, Limits::default()).unwrap();
    let noisy = f.instantiate(&module, Limits::default()).unwrap();
    let (Some(quiet_handle), Some(noisy_handle)) = (quiet.interrupt_handle(), noisy.interrupt_handle()) else {
        assert!(!f.engine.capabilities().interrupt, "an engine that can interrupt gives a handle");
        return;
    };
    assert_eq!(quiet.call(Callback::OnVmStart, &[1000, 0]), Ok(1));
    for _ in 0..3 {
        noisy_handle.interrupt();
    }
    let noisy_trap = interrupted_tick(noisy, noisy_handle, Duration::from_millis(50));
    assert_eq!(noisy_trap.kind, TrapKind::Deadline, "{noisy_trap}");
    // The other instance's interrupts are not this one's: a call of a million loop iterations
    // (a check at each) runs to its end, twice.
    assert_eq!(quiet.call(Callback::OnVmStart, &[1_000_000, 0]), Ok(1));
    assert_eq!(quiet.call(Callback::OnVmStart, &[1_000_000, 0]), Ok(1));
    let trap = interrupted_tick(quiet, quiet_handle, Duration::from_millis(50));
    assert_eq!(trap.kind, TrapKind::Deadline, "its own interrupt stops it: {trap}");
}

/// The memory limit, as Wasm and the C++ host have it: past the limit `memory.grow` answers -1
/// (a guest that checks can recover), memory never exceeds the limit, and the engine tells the
/// host of the refusal ([`VmHost::note_memory_refused`]). A module whose memory starts above the
/// limit does not instantiate.
pub fn a_memory_bomb_hits_the_memory_limit(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    assert!(f.engine.capabilities().memory_limit, "every wasm engine enforces the memory limit");
    // Grows 16 pages at a time until refused, then answers the page count it reached; a tick
    // grows 16 pages more and traps if that was not refused.
    let mut vm = f.instance(
        r#"(module
          (memory (export "memory") 1)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
            (memory.size))
          (func (export "proxy_on_tick") (param i32)
            (if (i32.ne (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))))"#,
        Limits { max_memory_bytes: 4 << 20, ..Limits::default() },
    );
    assert_eq!(vm.host().memory_refused(), None);
    // Read before the growth too: an engine that keeps the size must see the growth.
    assert_eq!(vm.memory_size(), 1 << 16);
    let pages = vm.call(Callback::OnVmStart, &[1, 0]).unwrap();
    assert_eq!(pages, 49, "1 + 3 x 16 pages: the next 16 would pass 64 pages (4 MiB)");
    assert_eq!(vm.memory_size(), 49 << 16);
    assert_eq!(vm.host().memory_refused(), Some(65 << 16), "the refused request, in bytes");
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(49), "refused again; the guest goes on");
    vm.call(Callback::OnTick, &[1]).unwrap();
    // Grow to exactly the limit, then one page more is refused.
    let mut vm = f.instance(
        r#"(module
          (memory (export "memory") 1)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (drop (memory.grow (local.get 0)))
            (memory.grow (local.get 1))))"#,
        Limits { max_memory_bytes: 4 << 16, ..Limits::default() },
    );
    assert_eq!(vm.call(Callback::OnVmStart, &[3, 1]), Ok(u64::from(u32::MAX)));
    assert_eq!(vm.memory_size(), 4 << 16, "memory reaches the limit, never more");
    let err = f
        .try_instance(r#"(module (memory (export "memory") 100))"#, Limits { max_memory_bytes: 1 << 20, ..Limits::default() })
        .err()
        .unwrap();
    assert!(matches!(err, Error::Instantiate { .. }), "{err:?}");
    println!("{err}");
}

/// A start section that traps fails instantiation: [`Error::Instantiate`] with the engine's
/// name and the trap's message, after the start section's host calls before the trap were
/// served. The same module without the trap instantiates.
pub fn a_trapping_start_section_fails_instantiation(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    if !f.engine.capabilities().sandboxed {
        return; // a native plugin has no start section
    }
    let wat = r#"(module
      (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 100) "before the trap")
      (func $start (drop (call $log (i32.const 2) (i32.const 100) (i32.const 15))) unreachable)
      (start $start)
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1)))"#;
    let err = f.try_instance(wat, Limits::default()).err().expect("the start section trapped");
    println!("{err}");
    let Error::Instantiate { engine, message } = &err else { panic!("{err:?}") };
    assert_eq!(*engine, f.engine.name());
    assert!(message.contains("unreachable"), "{message}");
    assert!(message.lines().count() <= 2, "{message}");
    assert_eq!(f.recorder.logs(), [(LogLevel::Info, "before the trap".to_string())]);
    let mut vm = f.instance(&wat.replace(" unreachable", ""), Limits::default());
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(1));
}

/// A start section that loops forever is stopped at the VM's call deadline, as a callback is:
/// instantiation fails, not before the deadline and well within a minute, with
/// [`Error::Instantiate`] naming the engine and a deadline trap's message. An engine that
/// cannot be interrupted says so.
pub fn a_start_section_looping_forever_hits_the_deadline(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    if !f.engine.capabilities().interrupt {
        return; // nothing could stop the loop
    }
    let module = f.compile(
        r#"(module
          (memory (export "memory") 1)
          (func $spin (loop $l (br $l)))
          (start $spin)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1)))"#,
    );
    let deadline = Duration::from_millis(50);
    let limits = Limits { call_deadline: Some(deadline), ..Limits::default() };
    let mut host = f.host(limits);
    host.set_allocator(allocator_callback(module.exports()));
    let name = f.engine.name();
    let (err, took) = within_a_minute(move || {
        let start = Instant::now();
        let err = module.instantiate(host).err();
        (err, start.elapsed())
    });
    let err = err.expect("the start section never ends");
    println!("{err} after {took:?}");
    let Error::Instantiate { engine, message } = &err else { panic!("{err:?}") };
    assert_eq!(*engine, name);
    assert!(message.starts_with("CPU deadline exceeded: "), "a deadline trap's message: {message}");
    assert!(took >= deadline, "{took:?}");
}

/// Past the module's own declared maximum, `memory.grow` answers -1 as Wasm specifies: only the
/// host's limit is a trap.
pub fn growing_past_the_modules_own_maximum_answers_minus_one(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
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

/// The limit applies per instance: growing within it works; past it `memory.grow` answers -1
/// and the refusal (the size asked for, in bytes) reaches the host; past the module's own
/// declared maximum -1 too, but that refusal is not the host's limit and is not noted.
pub fn the_memory_limit_is_per_instance(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let grow = r#"(module (memory (export "memory") 1)
             (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (memory.grow (local.get 1))))"#;
    let module = f.compile(grow);
    let mut small = f.instantiate(&module, Limits { max_memory_bytes: 2 << 16, ..Limits::default() }).unwrap();
    let mut large = f.instantiate(&module, Limits { max_memory_bytes: 8 << 16, ..Limits::default() }).unwrap();
    assert_eq!(large.call(Callback::OnVmStart, &[1, 4]), Ok(1), "grew from 1 page to 5");
    assert_eq!(small.call(Callback::OnVmStart, &[1, 1]), Ok(1), "grew from 1 page to 2");
    assert_eq!(small.host().memory_refused(), None);
    assert_eq!(small.call(Callback::OnVmStart, &[1, 1]), Ok(u64::from(u32::MAX)), "refused: -1");
    assert_eq!(small.host().memory_refused(), Some(3 << 16));
    assert_eq!(small.memory_size(), 2 << 16);
    assert_eq!(large.memory_size(), 5 << 16);
    assert_eq!(large.host().memory_refused(), None);
    let mut own = f.instance(&grow.replace("(memory (export \"memory\") 1)", "(memory (export \"memory\") 1 2)"), Limits {
        max_memory_bytes: 8 << 16,
        ..Limits::default()
    });
    assert_eq!(own.call(Callback::OnVmStart, &[1, 4]), Ok(u64::from(u32::MAX)), "past the module's maximum");
    assert_eq!(own.host().memory_refused(), None, "the module's own maximum is not the host's limit");
}

/// A start section that grows memory past the limit gets -1 there, as any other code; the
/// instance is made, its memory within the limit. Within the limit the same grow works.
pub fn a_start_function_past_the_memory_limit_gets_minus_one(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let module = f.compile(
        r#"(module (memory (export "memory") 1)
             (func $s (if (i32.ne (memory.grow (i32.const 4)) (i32.const -1)) (then unreachable)))
             (start $s))"#,
    );
    let mut vm = f.instantiate(&module, Limits { max_memory_bytes: 2 << 16, ..Limits::default() }).unwrap();
    assert_eq!(vm.memory_size(), 1 << 16);
    let err = f.instantiate(&module, Limits { max_memory_bytes: 8 << 16, ..Limits::default() }).err().unwrap();
    assert!(err.to_string().contains("unreachable"), "within the limit the grow works: {err}");
}

/// A guest whose `proxy_on_vm_start(_, trap)` reads shared data `key` (the host copies the value
/// through the guest allocator, `malloc` here, in the text format) and logs it at WARN, then
/// answers `proxy_get_shared_data`'s status. `trap` sets the global `$trap`, which an allocator
/// may check; the allocator may log through `$log` and read the clock through `$now`.
fn shared_data_logger(malloc: &str) -> String {
    format!(
        r#"
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 4096))
  (global $trap (mut i32) (i32.const 0))
  (data (i32.const 100) "malloc")
  (data (i32.const 110) "key")
  {malloc}
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (local $status i32)
    (global.set $trap (local.get 1))
    (local.set $status (call $get (i32.const 110) (i32.const 3) (i32.const 8) (i32.const 12) (i32.const 16)))
    (if (i32.eqz (local.get $status))
      (then (drop (call $log (i32.const 3) (i32.load (i32.const 8)) (i32.load (i32.const 12))))))
    (local.get $status))
)
"#
    )
}

/// An allocator that makes host calls itself (as the C++ host's `bad_malloc` test; the two it
/// makes are among the four the C++ host allows there), and traps when `$trap` is set.
const REENTRANT_MALLOC: &str = r#"
  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (if (global.get $trap) (then unreachable))
    (if (call $now (i32.const 0) (i64.const 1) (i32.const 200)) (then unreachable))
    (if (i64.eqz (i64.load (i32.const 200))) (then unreachable))
    (if (call $log (i32.const 2) (i32.const 100) (i32.const 6)) (then unreachable))
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $p))
"#;

/// An allocator that grows memory for every allocation: the address it answers lies in the
/// pages it just added.
const GROWING_MALLOC: &str = r#"
  (func (export "malloc") (param $size i32) (result i32)
    (i32.add (i32.mul (memory.grow (i32.const 2)) (i32.const 65536)) (i32.const 16)))
"#;

/// A host function calls the guest allocator, which itself makes host calls.
pub fn a_host_function_calls_the_allocator_reentrantly(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    f.services.set_shared_data("vm", b"key", b"shared value", 0).unwrap();
    let mut vm = f.instance(&shared_data_logger(REENTRANT_MALLOC), Limits::default());
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(0), "proxy_get_shared_data's status");
    assert_eq!(
        f.recorder.logs(),
        vec![(LogLevel::Info, "malloc".to_string()), (LogLevel::Warn, "shared value".to_string())]
    );
}

/// The allocator grows memory during a host function, which read memory before (the key):
/// the host writes the value into the pages the growth added, not into a view of memory as it
/// was before the call.
pub fn a_host_function_writes_into_pages_its_allocator_added(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    if !f.engine.capabilities().sandboxed {
        return; // a native plugin has no linear memory to grow
    }
    f.services.set_shared_data("vm", b"key", b"value in a new page", 0).unwrap();
    let mut vm = f.instance(&shared_data_logger(GROWING_MALLOC), Limits::default());
    assert_eq!(vm.memory_size(), 1 << 16);
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(0), "proxy_get_shared_data's status");
    assert_eq!(vm.memory_size(), 3 << 16, "the allocator grew memory by two pages");
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(0), "again, in the pages after those");
    assert_eq!(vm.memory_size(), 5 << 16);
    let logged = vec![(LogLevel::Warn, "value in a new page".to_string()); 2];
    assert_eq!(f.recorder.logs(), logged);
}

/// A start function that logs (a host call reading memory while the module is still being
/// instantiated), then a callback that logs: both messages arrive whole, in that order, on every
/// sandboxed engine, and the memory has its size, so what the engine saw of memory during the
/// start function did not stay.
pub fn host_calls_read_memory_during_and_after_the_start_function(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    if !f.engine.capabilities().sandboxed {
        return; // a native plugin has no start section
    }
    let mut vm = f.instance(
        r#"(module
          (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "in start")
          (data (i32.const 200) "in vm_start")
          (func $start (drop (call $log (i32.const 2) (i32.const 100) (i32.const 8))))
          (start $start)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (call $log (i32.const 2) (i32.const 200) (i32.const 11))))"#,
        Limits::default(),
    );
    assert_eq!(vm.memory_size(), 1 << 16);
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(0), "proxy_log's status");
    let logs = f.recorder.logs();
    let (start, vm_start) = ((LogLevel::Info, "in start".to_string()), (LogLevel::Info, "in vm_start".to_string()));
    assert_eq!(logs, [start, vm_start]);
}

/// A host call the C++ host does not allow inside the allocator (here `proxy_done`) traps
/// there; the trap comes out of the outer call as [`TrapKind::Restricted`].
pub fn a_restricted_call_inside_the_allocator_traps(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    f.services.set_shared_data("vm", b"key", b"shared value", 0).unwrap();
    let mut vm = f.instance(
        r#"(module
          (import "env" "proxy_done" (func $done (result i32)))
          (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 110) "key")
          (func (export "malloc") (param i32) (result i32)
            (drop (call $done))
            (i32.const 4096))
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (call $get (i32.const 110) (i32.const 3) (i32.const 8) (i32.const 12) (i32.const 16))))"#,
        Limits::default(),
    );
    let trap = vm.call(Callback::OnVmStart, &[1, 0]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Restricted, "{trap}");
    assert!(trap.message.contains("`proxy_done` is not allowed inside the guest allocator"), "{trap}");
}

/// A trap in the allocator, called from a host function, fails the call.
pub fn a_trapping_allocator_fails_the_call(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    f.services.set_shared_data("vm", b"key", b"shared value", 0).unwrap();
    let mut vm = f.instance(&shared_data_logger(REENTRANT_MALLOC), Limits::default());
    let trap = vm.call(Callback::OnVmStart, &[1, 1]).unwrap_err();
    println!("{trap}");
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.contains("unreachable"), "{trap}");
    let again = vm.call(Callback::OnVmStart, &[1, 0]).unwrap_err();
    assert!(again.message.starts_with("VM failed earlier"), "{again}");
}

/// An `i64` host-function argument arrives whole, sign included.
pub fn an_i64_argument_passes_through(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    // `proxy_on_vm_start(id, which)`: which 2 defines the counter `requests`, 3 the gauge
    // `level` (answering the new id); 0 adds 5_000_000_000 to metric `id`, 1 adds -3.
    let mut vm = f.instance(
        r#"(module
          (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
          (import "env" "proxy_define_metric" (func $def (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "requests")
          (data (i32.const 16) "level")
          (func (export "proxy_on_vm_start") (param $id i32) (param $which i32) (result i32)
            (if (i32.eq (local.get $which) (i32.const 2))
              (then (drop (call $def (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 32)))
                    (return (i32.load (i32.const 32)))))
            (if (i32.eq (local.get $which) (i32.const 3))
              (then (drop (call $def (i32.const 1) (i32.const 16) (i32.const 5) (i32.const 32)))
                    (return (i32.load (i32.const 32)))))
            (if (result i32) (local.get $which)
              (then (call $inc (local.get $id) (i64.const -3)))
              (else (call $inc (local.get $id) (i64.const 5000000000))))))"#,
        Limits::default(),
    );
    let counter = vm.call(Callback::OnVmStart, &[0, 2]).unwrap();
    let gauge = vm.call(Callback::OnVmStart, &[0, 3]).unwrap();
    let value = |name: &str| f.services.metrics().into_iter().find(|(n, _)| n == name).map(|(_, v)| v);
    assert_eq!(vm.call(Callback::OnVmStart, &[counter, 0]), Ok(0));
    assert_eq!(value("requests"), Some(MetricValue::Counter(5_000_000_000)));
    assert_eq!(vm.call(Callback::OnVmStart, &[gauge, 0]), Ok(0));
    assert_eq!(vm.call(Callback::OnVmStart, &[gauge, 1]), Ok(0));
    assert_eq!(value("level"), Some(MetricValue::Gauge(4_999_999_997)));
}

/// Host functions without a status link and return: WASI `proc_exit` returns to the guest (the
/// C++ host logs it and returns), `env.pthread_equal` answers its plain value and
/// `env.emscripten_notify_memory_growth` nothing.
pub fn rows_without_a_status_return_to_the_guest(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let mut vm = f.instance(
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (import "env" "pthread_equal" (func $eq (param i32 i32) (result i32)))
          (import "env" "emscripten_notify_memory_growth" (func $grew (param i32)))
          (memory (export "memory") 1)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (call $exit (i32.const 3))
            (call $grew (i32.const 0))
            (i32.add
              (i32.mul (call $eq (local.get 0) (local.get 1)) (i32.const 10))
              (i32.const 7))))"#,
        Limits::default(),
    );
    assert_eq!(vm.call(Callback::OnVmStart, &[4, 4]), Ok(17));
    assert_eq!(vm.call(Callback::OnVmStart, &[4, 5]), Ok(7));
}

/// A precompiled module loads back and runs, its start section included; garbage is refused. An
/// engine without precompiled modules says so.
pub fn serialize_and_deserialize_round_trip(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let module = f.compile(
        r#"(module
          (memory (export "memory") 1)
          (global $started (mut i32) (i32.const 0))
          (func $start (global.set $started (i32.const 1)))
          (start $start)
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.mul (local.get 0) (local.get 1)))
          (func (export "proxy_on_configure") (param i32 i32) (result i32) (global.get $started)))"#,
    );
    let Some(bytes) = module.serialize() else {
        assert!(!f.engine.capabilities().precompiled, "an engine with precompiled modules serializes");
        // SAFETY: an engine without precompiled modules refuses any bytes without running them.
        assert!(matches!(unsafe { f.engine.deserialize(b"anything") }, Err(Error::Unsupported { .. })));
        return;
    };
    assert!(f.engine.capabilities().precompiled);
    // SAFETY: `bytes` are this engine's own `serialize` output, made just above in this process.
    let loaded = unsafe { f.engine.deserialize(&bytes) }.unwrap();
    assert_eq!(loaded.exports(), module.exports());
    let mut vm = f.instantiate(&loaded, Limits::default()).unwrap();
    assert_eq!(vm.call(Callback::OnVmStart, &[6, 7]), Ok(42));
    assert_eq!(vm.call(Callback::OnConfigure, &[1, 0]), Ok(1), "the start section ran");
    // SAFETY: the engines check a header before running anything and refuse these bytes; this
    // is the one input the contract asks them to refuse (no engine can vouch for others).
    let err = unsafe { f.engine.deserialize(b"not a module") }.err().unwrap();
    assert!(matches!(err, Error::Compile { .. }), "{err:?}");
}

/// A plugin host with a precompiled-module cache loads what an earlier host compiled (an
/// engine that can serialize), and refuses a cache file whose content changed, naming it.
pub fn the_precompiled_cache_serves_a_restart_and_refuses_a_changed_file(make: MakeEngine<'_>) {
    let engine = make();
    let dir = std::env::temp_dir().join(format!("pw-precompiled-{}-{}", engine.name(), std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = proxy_wasm_host::PrecompiledCache::open(&dir).unwrap();
    let wat = r#"(module
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "malloc") (param i32) (result i32) (i32.const 1024))
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1)))"#;
    let host = || proxy_wasm_host::PluginHost::new(engine.clone(), Arc::new(proxy_wasm_host::DefaultEmbedder)).with_precompiled_cache(cache.clone());
    let first = host().load(wat.as_bytes()).unwrap();
    let sha = first.sha256();
    let Some(path) = cache.entry_path(&*engine, &sha) else {
        assert!(!engine.capabilities().precompiled || engine.version().is_empty(), "an engine that serializes and has a version is cached");
        return;
    };
    assert!(path.is_file(), "{} was written", path.display());
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    // A restart: a new host loads from the cache (the file stays as it was) and runs it.
    let second = host().load(wat.as_bytes()).unwrap();
    assert_eq!(second.module().exports(), first.module().exports());
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), written);
    let vm = host().add_plugin(&second, proxy_wasm_host::VmConfig::default(), proxy_wasm_host::PluginInfo::default());
    assert!(vm.is_ok(), "{:?}", vm.err());
    // One flipped byte in the machine code: refused by name, never run.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let e = host().load(wat.as_bytes()).err().unwrap().to_string();
    assert!(e.starts_with(&format!("precompiled-module cache {}: its content does not match its checksum", path.display())), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A guest that counts its calls in a global and in memory; `proxy_on_vm_start` answers the count.
const COUNTER: &str = r#"
(module
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1)))
    (if (i32.ne (global.get $n) (i32.load (i32.const 64))) (then unreachable))
    (global.get $n)))
"#;

/// The thread contract (`proxy_wasm_host::engine`): an instance made on one thread is called on
/// a second thread that has never run the engine, then on the first again, keeping its state;
/// a fresh thread makes and calls an instance of a module compiled elsewhere.
pub fn an_instance_moves_between_threads(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let module = f.compile(COUNTER);
    let mut vm = f.instantiate(&module, Limits::default()).unwrap();
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(1));
    let mut vm = within_a_minute(move || {
        assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(2));
        vm
    });
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(3));
    let host = f.host(Limits::default());
    let fresh = within_a_minute(move || {
        let mut vm = module.instantiate(host).unwrap();
        (vm.call(Callback::OnVmStart, &[1, 0]), vm.call(Callback::OnVmStart, &[1, 0]))
    });
    assert_eq!(fresh, (Ok(1), Ok(2)));
    // The moved instance is still whole, and its interrupt handle works from yet another thread.
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(4));
    if let Some(handle) = vm.interrupt_handle() {
        within_a_minute(move || handle.interrupt());
        // An interrupt that lands while no call runs is forgotten when the next call starts.
        assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(5));
    }
}

/// One VM per worker thread, as a proxy runs them: four threads, each with its own instance of
/// one compiled module, call in parallel; every instance keeps its own state.
pub fn a_vm_per_worker_thread(make: MakeEngine<'_>) {
    let f = Fixture::new(make);
    let module = f.compile(COUNTER);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (module, host) = (module.clone(), f.host(Limits::default()));
            std::thread::spawn(move || {
                let mut vm = module.instantiate(host).unwrap();
                (1..=500).map(|_| vm.call(Callback::OnVmStart, &[1, 0]).unwrap()).last()
            })
        })
        .collect();
    for worker in workers {
        assert_eq!(worker.join().unwrap(), Some(500));
    }
}
