//! The guest allocator called from inside a host function, for an engine crate's own unit
//! tests: they link the two test-only host functions below (`test.return_bytes` and
//! `test.swallow`, which only an engine crate can link), instantiate [`GUEST`], and run the
//! checks here. The contract's own allocator cases ([`crate::cases`]) go through real host
//! functions, which never swallow an allocator's trap; `test.swallow` does, to show that the
//! call fails anyway.

use abi::Callback;
use proxy_wasm_host::{hostcalls, return_bytes as host_return_bytes, HostCx, Instance, Trap, TrapKind};

/// What `test.return_bytes` hands the guest.
pub const RETURNED: &[u8] = b"hello";

/// `test.return_bytes(ret_ptr, ret_size) -> status`: returns [`RETURNED`] through the guest
/// allocator, as a host function returns bytes.
pub fn return_bytes(cx: &mut impl HostCx, ret_ptr: i32, ret_size: i32) -> Result<i32, Trap> {
    hostcalls::finish(host_return_bytes(cx, ret_ptr as u32 as u64, ret_size as u32 as u64, RETURNED))
}

/// `test.swallow(size) -> 0`: calls the guest allocator and ignores its answer, error included.
pub fn swallow(cx: &mut impl HostCx, size: i32) -> i32 {
    let _ = cx.allocate(size as u32 as u64);
    0
}

/// A guest whose allocator itself makes host calls, and whose `proxy_on_vm_start(_, mode)`
/// calls the test host functions: mode 0 returns [`RETURNED`] through the allocator and answers
/// its address; 1 does the same with a trapping allocator; 2 swallows the allocator's trap.
pub const GUEST: &str = r#"
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (import "test" "return_bytes" (func $return_bytes (param i32 i32) (result i32)))
  (import "test" "swallow" (func $swallow (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (global $trap (mut i32) (i32.const 0))
  (data (i32.const 100) "malloc")
  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (if (global.get $trap) (then unreachable))
    ;; Host calls from inside the allocator, itself called from inside a host call (two the C++
    ;; host allows there).
    (drop (call $now (i32.const 0) (i64.const 1) (i32.const 200)))
    (drop (call $log (i32.const 2) (i32.const 100) (i32.const 6)))
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $p))
  (func (export "proxy_on_vm_start") (param i32) (param $mode i32) (result i32)
    (global.set $trap (i32.ne (local.get $mode) (i32.const 0)))
    (if (i32.eq (local.get $mode) (i32.const 2))
      (then (return (call $swallow (i32.const 5)))))
    (if (call $return_bytes (i32.const 8) (i32.const 12)) (then unreachable))
    (i32.load (i32.const 8)))
)
"#;

/// A host function calls the allocator, which makes host calls itself; the bytes land where it
/// said, and the instance works after the nested call. `memory` copies `vm`'s linear memory.
pub fn host_function_calls_the_allocator_reentrantly<I: Instance>(vm: &mut I, memory: impl Fn(&mut I) -> Vec<u8>) {
    let addr = vm.call(Callback::OnVmStart, &[1, 0]).unwrap();
    assert_eq!(addr, 1024);
    let bytes = memory(vm);
    assert_eq!(&bytes[1024..1029], RETURNED);
    assert_eq!(&bytes[12..16], &5u32.to_le_bytes());
    // And again: the store is fine after a nested call.
    assert_eq!(vm.call(Callback::OnVmStart, &[1, 0]).unwrap(), 1029);
}

/// A trap in the allocator fails the call, and the instance refuses the next one.
pub fn a_trapping_allocator_fails_the_call(vm: &mut dyn Instance) {
    let trap = vm.call(Callback::OnVmStart, &[1, 1]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.contains("unreachable"), "{trap}");
    let again = vm.call(Callback::OnVmStart, &[1, 0]).unwrap_err();
    assert!(again.message.starts_with("VM failed earlier"), "{again}");
}

/// An allocator's trap fails the call even when the host function swallowed it.
pub fn an_allocator_trap_fails_the_call_even_if_the_host_function_ignores_it(vm: &mut dyn Instance) {
    let trap = vm.call(Callback::OnVmStart, &[1, 2]).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Guest);
    assert!(trap.message.contains("unreachable"), "{trap}");
}
