//! The shim's contract, on modules written in the text format.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;
use proxy_wasm_v8::sys::{CallError, Error, ExternType, FuncImport, Module, Vm};

const MIB: u64 = 1 << 20;

#[test]
fn host_call_gets_i32_and_i64_arguments_and_answers() {
    let mut vm = vm(GUEST, 16 * MIB);
    assert_eq!(call(&mut vm, "record", &[3]), Ok(Some(7)));
    assert_eq!(call(&mut vm, "record_neg", &[]), Ok(Some(7)));
    let calls = &vm.data().calls;
    assert_eq!(calls[0], (RECORD, vec![3, 0x1234_5678_9abc_def0, 0xffff_ffff]));
    // i32 zero-extended; i64 -1 as its bits.
    assert_eq!(calls[1], (RECORD, vec![(-5i32) as u32 as u64, u64::MAX, 0]));
}

#[test]
fn exported_functions_take_i32_arguments_and_give_an_optional_result() {
    let mut vm = vm(GUEST, 16 * MIB);
    assert_eq!(call(&mut vm, "add", &[40, 2]), Ok(Some(42)));
    assert_eq!(call(&mut vm, "add", &[i32::MAX, 1]), Ok(Some(i32::MIN)));
    assert_eq!(call(&mut vm, "nothing", &[]), Ok(None));
    assert_eq!(vm.export("no_such_export"), None);
    assert_eq!(vm.export("memory"), None, "a memory is not a function");
}

#[test]
fn host_function_calls_the_guest_allocator_reentrantly() {
    let mut vm = vm(GUEST, 16 * MIB);
    let addr = call(&mut vm, "alloc_hello", &[]).unwrap().unwrap();
    assert_eq!(addr, 1024);
    assert_eq!(&vm.memory()[1024..1029], b"hello");
    let again = call(&mut vm, "alloc_hello", &[]).unwrap().unwrap();
    assert_eq!(again, 1029, "the allocator ran again, re-entered from the host");
}

#[test]
fn unreachable_trap_has_v8s_text_and_the_vm_still_answers() {
    let mut vm = vm(GUEST, 16 * MIB);
    assert_eq!(call(&mut vm, "unreachable", &[]), Err(CallError::Trap("RuntimeError: unreachable".into())));
    match call(&mut vm, "oob", &[]) {
        Err(CallError::Trap(m)) => assert_eq!(m, "RuntimeError: memory access out of bounds"),
        other => panic!("{other:?}"),
    }
    assert_eq!(call(&mut vm, "add", &[1, 2]), Ok(Some(3)));
}

#[test]
fn host_trap_unwinds_the_guest_at_once_and_the_host_keeps_its_reason() {
    let mut vm = vm(GUEST, 16 * MIB);
    assert_eq!(call(&mut vm, "trap_then_mark", &[]), Err(CallError::HostTrap));
    assert_eq!(vm.data().trap.as_deref(), Some("the host said no"));
    assert_eq!(&vm.memory()[0..4], &[0; 4], "no guest code ran after the trap");
    // Nothing is left pending in the isolate.
    assert_eq!(call(&mut vm, "add", &[1, 2]), Ok(Some(3)));
}

/// The legacy exception-handling proposal (on by default in V8 10.2): a guest `catch_all`
/// cannot catch a host trap.
#[test]
fn host_trap_is_not_caught_by_a_guest_catch_all() {
    let wat = r#"
    (module
      (import "env" "trap" (func $trap))
      (memory (export "memory") 1)
      (func (export "catch")
        try
          call $trap
        catch_all
          (i32.store (i32.const 0) (i32.const 42))
        end
        (i32.store (i32.const 4) (i32.const 43))))
    "#;
    let mut vm = vm(wat, 16 * MIB);
    assert_eq!(call(&mut vm, "catch", &[]), Err(CallError::HostTrap));
    assert_eq!(&vm.memory()[0..8], &[0; 8], "the guest's handler did not run, nor what follows");
}

#[test]
fn host_panic_is_a_trap_with_its_message() {
    let mut vm = vm(GUEST, 16 * MIB);
    assert_eq!(call(&mut vm, "panic", &[]), Err(CallError::HostPanic("host function panicked on purpose".into())));
    assert_eq!(call(&mut vm, "add", &[1, 2]), Ok(Some(3)));
}

#[test]
fn trap_in_the_reentered_allocator_fails_the_outer_call_even_if_swallowed() {
    let wat = GUEST.replace("(local.set $at (global.get $next))", "unreachable (local.set $at (global.get $next))");
    let mut vm = vm(&wat, 16 * MIB);
    assert_eq!(call(&mut vm, "alloc_hello", &[]), Err(CallError::HostTrap));
    assert_eq!(vm.data().inner_error, Some(CallError::Trap("RuntimeError: unreachable".into())));
    vm.data().inner_error = None;
    // The host function ignores the allocator's failure and answers: the outer call still
    // fails, with the allocator's trap, before the guest's next store.
    assert_eq!(call(&mut vm, "alloc_swallow", &[]), Err(CallError::Trap("RuntimeError: unreachable".into())));
    assert_eq!(vm.data().inner_error, Some(CallError::Trap("RuntimeError: unreachable".into())));
    assert_eq!(&vm.memory()[0..4], &[0; 4]);
    assert_eq!(call(&mut vm, "add", &[1, 2]), Ok(Some(3)));
}

#[test]
fn stack_overflow_is_a_range_error_and_the_vm_still_answers() {
    let mut vm = vm(GUEST, 16 * MIB);
    assert_eq!(call(&mut vm, "recurse", &[0]), Err(CallError::Trap("RangeError: Maximum call stack size exceeded".into())));
    assert_eq!(call(&mut vm, "add", &[1, 2]), Ok(Some(3)));
}

/// On threads with small stacks, entered deep down: a RangeError, never a segfault.
#[test]
fn stack_overflow_on_small_thread_stacks() {
    let module = Arc::new(compile(GUEST));
    for stack in [512 * 1024, 1024 * 1024, 2 * 1024 * 1024] {
        let module = module.clone();
        let outcome = thread::Builder::new()
            .stack_size(stack)
            .spawn(move || {
                let mut vm = vm_of(&module, 16 * MIB);
                // Enter from deeper down the second time: the limit holds from anywhere.
                fn deep(vm: &mut Vm<TestHost>, n: u32) -> Result<Option<i32>, CallError> {
                    let pad = std::hint::black_box([0u8; 4096]);
                    if n == 0 { call(vm, "recurse", &[pad[0] as i32]) } else { deep(vm, n - 1) }
                }
                let first = call(&mut vm, "recurse", &[0]);
                let deeper = deep(&mut vm, 24);
                (first, deeper, call(&mut vm, "add", &[1, 2]))
            })
            .unwrap()
            .join()
            .unwrap();
        let overflow = Err(CallError::Trap("RangeError: Maximum call stack size exceeded".into()));
        assert_eq!(outcome, (overflow.clone(), overflow, Ok(Some(3))), "stack of {stack} bytes");
    }
}

#[test]
fn memory_grow_past_the_vm_limit_answers_minus_one() {
    let wat = r#"
    (module
      (memory (export "memory") 1)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "size") (result i32) (memory.size)))
    "#;
    let module = compile(wat);
    // One compiled module, two VMs, two limits.
    let mut small = vm_of(&module, 3 * 64 * 1024);
    let mut large = vm_of(&module, 8 * 64 * 1024 + 100); // rounded down to 8 pages
    assert_eq!(call(&mut small, "grow", &[1]), Ok(Some(1)));
    assert_eq!(call(&mut small, "grow", &[1]), Ok(Some(2)));
    assert_eq!(call(&mut small, "grow", &[1]), Ok(Some(-1)));
    assert_eq!(call(&mut small, "size", &[]), Ok(Some(3)));
    assert_eq!(small.memory().len(), 3 * 64 * 1024);
    assert_eq!(call(&mut large, "grow", &[7]), Ok(Some(1)));
    assert_eq!(call(&mut large, "grow", &[1]), Ok(Some(-1)));
    assert_eq!(large.memory().len(), 8 * 64 * 1024);
    // The memory stays the module's own: still exported, still growable within the limit.
    assert_eq!(call(&mut small, "grow", &[0]), Ok(Some(3)));
}

#[test]
fn module_maximum_below_the_limit_wins() {
    let wat = r#"(module (memory 1 2) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;
    let mut vm = vm(wat, 16 * MIB);
    assert_eq!(call(&mut vm, "grow", &[1]), Ok(Some(1)));
    assert_eq!(call(&mut vm, "grow", &[1]), Ok(Some(-1)));
}

#[test]
fn memory_bomb_stops_at_the_limit() {
    let wat = r#"
    (module
      (memory (export "memory") 1)
      (func (export "bomb") (result i32)
        (block $full (loop $more
          (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (br $more)))
        (memory.size))
      (func (export "huge") (result i32) (memory.grow (i32.const 65535))))
    "#;
    let mut vm = vm(wat, 16 * MIB);
    assert_eq!(call(&mut vm, "huge", &[]), Ok(Some(-1)));
    assert_eq!(call(&mut vm, "bomb", &[]), Ok(Some(256)));
    assert_eq!(vm.memory().len() as u64, 16 * MIB);
}

#[test]
fn memory_that_starts_over_the_limit_is_refused() {
    let module = compile(r#"(module (memory 300))"#); // 18.75 MiB
    let mut vm = Vm::new(TestHost::default()).unwrap();
    assert_eq!(
        vm.instantiate(&module, &[], 16 * MIB),
        Err(Error::MemoryLimit { initial_bytes: 300 * 64 * 1024, limit_bytes: 16 * MIB })
    );
}

#[test]
fn imported_memory_is_created_with_the_limit() {
    let wat = r#"
    (module
      (import "env" "memory" (memory 1))
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "store") (i32.store (i32.const 8) (i32.const 0x01020304))))
    "#;
    let mut vm = vm(wat, 2 * 64 * 1024);
    assert_eq!(call(&mut vm, "store", &[]), Ok(None));
    assert_eq!(&vm.memory()[8..12], &[4, 3, 2, 1]);
    assert_eq!(call(&mut vm, "grow", &[1]), Ok(Some(1)));
    assert_eq!(call(&mut vm, "grow", &[1]), Ok(Some(-1)));
}

#[test]
fn module_without_memory_has_an_empty_view() {
    let mut vm = vm(r#"(module (func (export "f") (result i32) (i32.const 5)))"#, 16 * MIB);
    assert!(vm.memory().is_empty());
    assert_eq!(call(&mut vm, "f", &[]), Ok(Some(5)));
}

#[test]
fn memory_view_follows_growth_inside_a_host_call() {
    // The guest grows memory, then calls the host, which must see the new size.
    let wat = r#"
    (module
      (import "env" "alloc_hello" (func $h (result i32)))
      (memory (export "memory") 1)
      (global $next (mut i32) (i32.const 0))
      (func (export "malloc") (param i32) (result i32)
        (drop (memory.grow (i32.const 1)))
        (global.set $next (i32.mul (memory.size) (i32.const 65536)))
        (i32.sub (global.get $next) (i32.const 100)))
      (func (export "go") (result i32) (drop (memory.grow (i32.const 2))) (call $h)))
    "#;
    let mut vm = vm(wat, 16 * MIB);
    let addr = call(&mut vm, "go", &[]).unwrap().unwrap();
    // malloc grew to 4 pages and returned an address in the last one.
    assert_eq!(addr as usize, 4 * 65536 - 100);
    assert_eq!(&vm.memory()[addr as usize..addr as usize + 5], b"hello");
}

#[test]
fn interrupt_stops_an_endless_loop_from_another_thread_and_nothing_strays() {
    let mut vm = vm(GUEST, 16 * MIB);
    let spin = vm.export("spin").unwrap();
    let add = vm.export("add").unwrap();
    let interrupt = Arc::new(vm.interrupt());
    // Fired while idle: dropped, the next call is unharmed.
    interrupt.fire();
    assert_eq!(vm.call(add, &[1, 2]), Ok(Some(3)));
    for _ in 0..3 {
        let stopper = {
            let interrupt = interrupt.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                interrupt.fire();
            })
        };
        assert_eq!(vm.call(spin, &[]), Err(CallError::Interrupted));
        stopper.join().unwrap();
        // A late interrupt after the call: dropped too.
        interrupt.fire();
        assert_eq!(vm.call(add, &[2, 3]), Ok(Some(5)));
    }
}

#[test]
fn interrupt_reaches_a_reentered_allocator() {
    let wat = GUEST.replace("(local.set $at (global.get $next))", "(loop $l (br $l)) (local.set $at (global.get $next))");
    let mut vm = vm(&wat, 16 * MIB);
    let interrupt = vm.interrupt();
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        interrupt.fire();
        interrupt // outlives the VM below: firing then does nothing
    });
    assert_eq!(call(&mut vm, "alloc_swallow", &[]), Err(CallError::Interrupted));
    assert_eq!(vm.data().inner_error, Some(CallError::Interrupted));
    assert_eq!(&vm.memory()[0..4], &[0; 4], "the outer guest stopped too");
    assert_eq!(call(&mut vm, "add", &[1, 2]), Ok(Some(3)));
    let interrupt = stopper.join().unwrap();
    drop(vm);
    interrupt.fire();
}

#[test]
fn vm_moves_between_threads() {
    let module = Arc::new(compile(GUEST));
    let mut vm = vm_of(&module, 16 * MIB);
    assert_eq!(call(&mut vm, "alloc_hello", &[]), Ok(Some(1024)));
    // A thread that never ran V8, then back here, then a third.
    let mut vm = thread::spawn(move || {
        assert_eq!(call(&mut vm, "alloc_hello", &[]), Ok(Some(1029)));
        assert_eq!(call(&mut vm, "unreachable", &[]), Err(CallError::Trap("RuntimeError: unreachable".into())));
        vm
    })
    .join()
    .unwrap();
    assert_eq!(call(&mut vm, "alloc_hello", &[]), Ok(Some(1034)));
    let vm = thread::spawn(move || {
        assert_eq!(call(&mut vm, "recurse", &[0]), Err(CallError::Trap("RangeError: Maximum call stack size exceeded".into())));
        vm
    })
    .join()
    .unwrap();
    drop(vm); // freed on another thread than the one that made it
}

#[test]
fn vms_run_on_several_threads_at_once() {
    let module = Arc::new(compile(GUEST));
    let barrier = Arc::new(Barrier::new(4));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (module, barrier) = (module.clone(), barrier.clone());
            thread::spawn(move || {
                let mut vm = vm_of(&module, 16 * MIB);
                barrier.wait();
                for n in 0..200 {
                    assert_eq!(call(&mut vm, "add", &[i, n]), Ok(Some(i + n)));
                    assert_eq!(call(&mut vm, "record", &[n]), Ok(Some(7)));
                }
                assert_eq!(call(&mut vm, "oob", &[]), Err(CallError::Trap("RuntimeError: memory access out of bounds".into())));
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn missing_import_is_a_link_error() {
    let module = compile(GUEST);
    let mut vm = Vm::new(TestHost::default()).unwrap();
    let without_trap: Vec<FuncImport<'_>> = IMPORTS.iter().filter(|i| i.name != "trap").copied().collect();
    match vm.instantiate(&module, &without_trap, 16 * MIB) {
        Err(Error::Instantiate(CallError::Trap(m))) => {
            assert!(m.starts_with("LinkError: WebAssembly.Instance(): Import #3 module=\"env\" function=\"trap\""), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_bytes_are_refused_with_v8s_message() {
    match Module::compile(b"\0asm\x01\0\0\0\x01\x05") {
        Err(Error::Compile(m)) => assert!(m.starts_with("CompileError: WasmModuleObject::Compile(): "), "{m}"),
        other => panic!("{other:?}"),
    }
    match Module::compile(b"not wasm") {
        Err(Error::Compile(m)) => assert!(m.contains("expected magic word"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Well-formed sections, invalid code: V8's message with the original offsets.
    let bytes = wat::parse_str(r#"(module (memory 1) (func (result i32) (i64.const 1)))"#).unwrap();
    match Module::compile(&bytes) {
        Err(Error::Compile(m)) => assert!(m.starts_with("CompileError: WasmModuleObject::Compile(): Compiling function #0 failed"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn start_function_trap_fails_instantiation() {
    let module = compile(r#"(module (func $s unreachable) (start $s))"#);
    let mut vm = Vm::new(TestHost::default()).unwrap();
    assert_eq!(vm.instantiate(&module, &[], MIB), Err(Error::Instantiate(CallError::Trap("RuntimeError: unreachable".into()))));
}

#[test]
fn imports_and_exports_have_their_types() {
    let info = compile(GUEST).info().clone();
    assert_eq!(info.imports[0].module, "env");
    assert_eq!(info.imports[0].name, "record");
    assert_eq!(info.imports[0].ty, ExternType::Func { params: vec!["i32", "i64", "i32"], results: vec!["i32"] });
    let malloc = info.exports.iter().find(|e| e.name == "malloc").unwrap();
    assert_eq!(malloc.ty, ExternType::Func { params: vec!["i32"], results: vec!["i32"] });
    let memory = info.exports.iter().find(|e| e.name == "memory").unwrap();
    assert!(matches!(memory.ty, ExternType::Memory(m) if m.initial == 1 && m.maximum.is_none()));
    // The rewrite is invisible: the memory is not listed as an import.
    assert_eq!(info.imports.len(), 5);
}

#[test]
fn many_vms_come_and_go() {
    let module = compile(GUEST);
    for _ in 0..50 {
        let mut vm = vm_of(&module, 16 * MIB);
        assert_eq!(call(&mut vm, "alloc_hello", &[]), Ok(Some(1024)));
    }
}

#[test]
fn interrupt_reaches_the_start_function() {
    let module = compile(r#"(module (func $s (loop $l (br $l))) (start $s))"#);
    let mut vm = Vm::new(TestHost::default()).unwrap();
    let interrupt = vm.interrupt();
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        interrupt.fire();
    });
    assert_eq!(vm.instantiate(&module, &[], MIB), Err(Error::Instantiate(CallError::Interrupted)));
    stopper.join().unwrap();
}

#[test]
fn data_segments_fill_the_rewritten_memory() {
    let mut vm = vm(r#"(module (memory 1) (data (i32.const 16) "proxy"))"#, MIB);
    assert_eq!(&vm.memory()[16..21], b"proxy");
}

#[test]
fn a_module_that_imports_the_rewrite_name_is_refused() {
    let bytes = wat::parse_str(r#"(module (import "proxy-wasm:v8" "memory" (func)) (memory 1))"#).unwrap();
    assert!(matches!(Module::compile(&bytes), Err(Error::Unsupported(m)) if m.contains("proxy-wasm:v8")));
}

#[test]
fn second_instantiation_of_a_vm_is_refused() {
    let module = compile(r#"(module)"#);
    let mut vm = Vm::new(TestHost::default()).unwrap();
    vm.instantiate(&module, &[], MIB).unwrap();
    assert!(matches!(vm.instantiate(&module, &[], MIB), Err(Error::Vm(m)) if m.contains("already")));
}

/// V8 10.2 has the legacy exception-handling proposal on: its traps and stack overflow stay
/// uncatchable by a guest's `catch_all`, as in the other engines.
#[test]
fn traps_and_stack_overflow_are_not_caught_by_a_guest_catch_all() {
    let wat = r#"
    (module
      (func $rec (param i32) (result i32) (call $rec (i32.add (local.get 0) (i32.const 1))))
      (func (export "overflow") (result i32)
        try (result i32)
          (call $rec (i32.const 0))
        catch_all
          (i32.const 77)
        end)
      (func (export "unreachable") (result i32)
        try (result i32)
          unreachable
        catch_all
          (i32.const 78)
        end))
    "#;
    let mut vm = vm(wat, MIB);
    assert_eq!(call(&mut vm, "overflow", &[]), Err(CallError::Trap("RangeError: Maximum call stack size exceeded".into())));
    assert_eq!(call(&mut vm, "unreachable", &[]), Err(CallError::Trap("RuntimeError: unreachable".into())));
}
