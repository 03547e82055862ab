//! A test host: rows of host functions with fixed behaviours, and helpers.

#![allow(dead_code)]

use proxy_wasm_v8::sys::{Caller, Func, FuncImport, Host, Module, Unwind, Vm};

/// Rows of the test host.
pub const RECORD: u32 = 0; // records its arguments, answers 7
pub const ALLOC_HELLO: u32 = 1; // calls the guest allocator for 5 bytes, writes "hello", answers the address
pub const TRAP: u32 = 2; // traps with a reason kept here
pub const PANIC: u32 = 3; // panics
pub const ALLOC_SWALLOW: u32 = 4; // calls the allocator, ignores its failure, answers 0

/// Every test import, by name in `env`.
pub const IMPORTS: &[FuncImport<'static>] = &[
    FuncImport { module: "env", name: "record", row: RECORD },
    FuncImport { module: "env", name: "alloc_hello", row: ALLOC_HELLO },
    FuncImport { module: "env", name: "trap", row: TRAP },
    FuncImport { module: "env", name: "panic", row: PANIC },
    FuncImport { module: "env", name: "alloc_swallow", row: ALLOC_SWALLOW },
];

#[derive(Default)]
pub struct TestHost {
    pub calls: Vec<(u32, Vec<u64>)>,
    pub malloc: Option<Func>,
    pub trap: Option<String>,
    pub inner_error: Option<proxy_wasm_v8::sys::CallError>,
}

impl Host for TestHost {
    fn call(cx: &mut Caller<'_, Self>, row: u32, args: &[u64]) -> Result<i32, Unwind> {
        cx.data().calls.push((row, args.to_vec()));
        match row {
            RECORD => Ok(7),
            ALLOC_HELLO | ALLOC_SWALLOW => {
                let malloc = cx.data().malloc.expect("malloc resolved");
                match cx.call(malloc, &[5]) {
                    Ok(Some(addr)) => {
                        let mem = cx.memory();
                        mem[addr as usize..addr as usize + 5].copy_from_slice(b"hello");
                        Ok(addr)
                    }
                    Ok(None) => panic!("malloc returned nothing"),
                    Err(e) if row == ALLOC_SWALLOW => {
                        cx.data().inner_error = Some(e);
                        Ok(0)
                    }
                    Err(e) => {
                        cx.data().inner_error = Some(e.clone());
                        cx.data().trap = Some(format!("allocator failed: {e}"));
                        Err(Unwind)
                    }
                }
            }
            TRAP => {
                cx.data().trap = Some("the host said no".into());
                Err(Unwind)
            }
            PANIC => panic!("host function panicked on purpose"),
            _ => Err(Unwind),
        }
    }
}

pub fn compile(wat: &str) -> Module {
    Module::compile(&wat::parse_str(wat).expect("valid wat")).expect("V8 compiles it")
}

/// A VM of `wat` with every test import, `limit` bytes of memory, and `malloc` resolved if
/// exported.
pub fn vm(wat: &str, limit: u64) -> Vm<TestHost> {
    vm_of(&compile(wat), limit)
}

pub fn vm_of(module: &Module, limit: u64) -> Vm<TestHost> {
    let mut vm = Vm::new(TestHost::default()).expect("a VM");
    let imports: Vec<FuncImport<'_>> = IMPORTS
        .iter()
        .filter(|i| module.info().imports.iter().any(|m| m.module == i.module && m.name == i.name))
        .copied()
        .collect();
    vm.instantiate(module, &imports, limit).expect("instantiates");
    let malloc = vm.export("malloc");
    vm.data().malloc = malloc;
    vm
}

pub fn call(vm: &mut Vm<TestHost>, name: &str, args: &[i32]) -> Result<Option<i32>, proxy_wasm_v8::sys::CallError> {
    let f = vm.export(name).unwrap_or_else(|| panic!("export `{name}`"));
    vm.call(f, args)
}

/// A bump allocator at 1024 and the import set most tests use.
pub const GUEST: &str = r#"
(module
  (import "env" "record" (func $record (param i32 i64 i32) (result i32)))
  (import "env" "alloc_hello" (func $alloc_hello (result i32)))
  (import "env" "alloc_swallow" (func $alloc_swallow (result i32)))
  (import "env" "trap" (func $trap))
  (import "env" "panic" (func $panic))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "malloc") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $at))
  (func (export "record") (param $a i32) (result i32)
    (call $record (local.get $a) (i64.const 0x123456789abcdef0) (i32.const -1)))
  (func (export "record_neg") (result i32)
    (call $record (i32.const -5) (i64.const -1) (i32.const 0)))
  (func (export "alloc_hello") (result i32) (call $alloc_hello))
  (func (export "alloc_swallow") (result i32)
    (drop (call $alloc_swallow))
    (i32.store (i32.const 0) (i32.const 99))
    (i32.const 1))
  (func (export "trap_then_mark")
    (call $trap)
    (i32.store (i32.const 0) (i32.const 42)))
  (func (export "panic") (call $panic))
  (func (export "unreachable") unreachable)
  (func (export "oob") (result i32) (i32.load (i32.const -4)))
  (func $rec (export "recurse") (param i32) (result i32)
    (call $rec (i32.add (local.get 0) (i32.const 1))))
  (func (export "spin") (loop $l (br $l)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "nothing"))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
)
"#;
