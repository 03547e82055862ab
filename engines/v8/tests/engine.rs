//! The V8 engine against the engine contract of `proxy-wasm-host` (the shared cases of
//! `proxy-wasm-engine-tests`), and the bad input of issue 17: a module V8 refuses, a missing
//! import, a JS exception, a trap in every callback, an endless loop, a stack overflow, a memory
//! bomb; each a clear error or trap, and the next VM works.

use std::sync::Arc;

use proxy_wasm_v8::V8Engine;

proxy_wasm_engine_tests::engine_contract_tests!(|| Arc::new(V8Engine::default()));

use std::time::Duration;

use abi::{AbiVersion, Callback, Kind};
use proxy_wasm_host::engine::allocator_callback;
use proxy_wasm_host::{DefaultEmbedder, Engine, Error, Instance, Limits, Module, Services, TrapKind, VmHost, VmHostConfig};

/// A V8 engine and what its VMs share.
struct Fixture {
    engine: V8Engine,
    services: Arc<Services>,
}

impl Fixture {
    fn new() -> Self {
        Fixture { engine: V8Engine::default(), services: Services::new() }
    }

    fn compile(&self, wat: &str) -> Result<Arc<dyn Module>, Error> {
        self.engine.compile(&wat::parse_str(wat).unwrap())
    }

    fn instantiate(&self, module: &Arc<dyn Module>, limits: Limits) -> Result<Box<dyn Instance>, Error> {
        let config = VmHostConfig::new("vm").with_limits(limits);
        let mut host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), self.services.clone());
        host.set_allocator(allocator_callback(module.exports()));
        module.instantiate(host)
    }

    fn instance(&self, wat: &str) -> Box<dyn Instance> {
        let module = self.compile(wat).unwrap_or_else(|e| panic!("{e}"));
        self.instantiate(&module, Limits::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A fresh VM still works: the failure before it left nothing behind.
    fn next_vm_works(&self) {
        let mut vm = self.instance(
            r#"(module (memory (export "memory") 1)
                 (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"#,
        );
        assert_eq!(vm.call(Callback::OnVmStart, &[40, 2]), Ok(42));
    }
}

/// Wasm that wasmparser accepts but V8 10.2 does not enable (tail calls are behind a flag
/// there): a compile error in V8's words, and the next module is fine.
#[test]
fn a_module_v8_refuses_is_a_compile_error_in_v8s_words() {
    let f = Fixture::new();
    let err = f.compile(r#"(module (func $f (return_call $f)))"#).err().unwrap();
    let Error::Compile { engine: "v8", message } = &err else { panic!("{err:?}") };
    assert!(message.starts_with("CompileError: WasmModuleObject::Compile(): "), "{message}");
    let err = f.engine.compile(b"\0asm\x01\0\0\0\x0a\x04\x01\x02\0\x0b").err().unwrap();
    assert!(matches!(err, Error::Compile { .. }), "{err:?}");
    f.next_vm_works();
}

/// An import the host lacks is refused before V8 links anything, with the same error as every
/// engine; V8's own `LinkError` shows for what only V8 checks (the `sys` tests).
#[test]
fn a_missing_import_is_refused_before_linking() {
    let f = Fixture::new();
    let module = f.compile(r#"(module (import "env" "proxy_no_such_call" (func)) (memory (export "memory") 1))"#).unwrap();
    let err = f.instantiate(&module, Limits::default()).err().unwrap();
    assert_eq!(err, Error::UnknownImports(vec!["env.proxy_no_such_call".into()]));
    f.next_vm_works();
}

/// A Wasm exception thrown out of a callback (the legacy exception-handling proposal, on by
/// default in V8 10.2) reaches the host as a JS exception: a guest trap with V8's message.
#[test]
fn a_js_exception_out_of_the_guest_is_a_guest_trap() {
    let f = Fixture::new();
    let mut vm = f.instance(
        r#"(module (memory (export "memory") 1) (tag $oops)
             (func (export "proxy_on_tick") (param i32) (throw $oops)))"#,
    );
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    println!("{trap}");
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(!trap.message.is_empty());
    assert!(vm.call(Callback::OnTick, &[1]).unwrap_err().message.starts_with("VM failed earlier"));
    f.next_vm_works();
}

/// Every callback of the ABI traps on `unreachable` with V8's words, and the VM refuses the
/// next call.
#[test]
fn a_trap_in_every_callback() {
    let f = Fixture::new();
    let mut exports = String::new();
    for callback in Callback::for_version(AbiVersion::V021) {
        let info = callback.info();
        let params = " i32".repeat(info.params.len());
        let result = if info.result == Kind::None { String::new() } else { format!("(result {})", info.result.wasm_type().unwrap()) };
        exports.push_str(&format!(r#"(func (export "{}") (param{params}) {result} unreachable)"#, info.name));
    }
    let module = f.compile(&format!(r#"(module (memory (export "memory") 1) {exports})"#)).unwrap();
    for callback in Callback::for_version(AbiVersion::V021) {
        let mut vm = f.instantiate(&module, Limits::default()).unwrap();
        let args = vec![1; callback.info().params.len()];
        let trap = vm.call(callback, &args).unwrap_err();
        assert_eq!(trap.kind, TrapKind::Guest, "{callback}: {trap}");
        assert_eq!(trap.message, "RuntimeError: unreachable", "{callback}");
        assert!(vm.call(callback, &args).unwrap_err().message.starts_with("VM failed earlier"), "{callback}");
    }
    f.next_vm_works();
}

/// An endless loop in a start function stops at the deadline: instantiation fails, naming it.
#[test]
fn an_endless_loop_in_the_start_function_hits_the_deadline() {
    let f = Fixture::new();
    let module = f.compile(r#"(module (memory (export "memory") 1) (func $spin (loop $l (br $l))) (start $spin))"#).unwrap();
    let limits = Limits { call_deadline: Some(Duration::from_millis(50)), ..Limits::default() };
    let err = f.instantiate(&module, limits).err().unwrap();
    println!("{err}");
    let Error::Instantiate { engine: "v8", message } = &err else { panic!("{err:?}") };
    assert!(message.contains("CPU deadline exceeded"), "{message}");
    f.next_vm_works();
}

/// Unbounded recursion is V8's `RangeError`, a guest trap; on a small thread too.
#[test]
fn a_stack_overflow_is_a_guest_trap() {
    let f = Fixture::new();
    let wat = r#"(module (memory (export "memory") 1)
        (func $down (export "proxy_on_tick") (param i32) (call $down (i32.add (local.get 0) (i32.const 1)))))"#;
    let mut vm = f.instance(wat);
    let trap = vm.call(Callback::OnTick, &[1]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest);
    assert_eq!(trap.message, "RangeError: Maximum call stack size exceeded");
    let module = f.compile(wat).unwrap();
    let mut vm = f.instantiate(&module, Limits::default()).unwrap();
    let trap = std::thread::Builder::new()
        .stack_size(512 << 10)
        .spawn(move || vm.call(Callback::OnTick, &[1]).unwrap_err())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(trap.message, "RangeError: Maximum call stack size exceeded");
    f.next_vm_works();
}

/// A memory bomb that asks for 4 GiB at once, then page by page: -1 at the limit each time, the
/// host told, memory never above the limit; a guest that then aborts fails with a memory-limit
/// trap at the VM level (the host's rule, from the refusal the engine reported).
#[test]
fn a_memory_bomb_gets_minus_one_and_the_host_is_told() {
    let f = Fixture::new();
    let module = f
        .compile(
            r#"(module (memory (export "memory") 1)
                 (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
                   (if (i32.ne (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))
                   (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
                   (memory.size)))"#,
        )
        .unwrap();
    let limits = Limits { max_memory_bytes: 8 << 20, ..Limits::default() };
    let mut vm = f.instantiate(&module, limits).unwrap();
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]), Ok(128));
    assert_eq!(vm.memory_size(), 8 << 20);
    assert_eq!(vm.host().memory_refused(), Some(65536 << 16), "the largest refused request");
    f.next_vm_works();
}
