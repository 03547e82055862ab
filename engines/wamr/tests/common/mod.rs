//! The host-function table, host state and host function shared by the tests and the example.
#![allow(dead_code)]

use std::fmt;

use proxy_wasm_wamr::wamr::{
    init, CallError, Caller, Func, HostFunc, Instance, InstanceConfig, InterruptHandle, Runtime,
    Val,
};

/// The one table of this test process (WAMR's registration is process-wide).
pub const TABLE: &[HostFunc<'static>] = &[
    HostFunc {
        row: 0,
        module: "env",
        name: "add",
        signature: "(ii)i",
    },
    HostFunc {
        row: 1,
        module: "env",
        name: "log",
        signature: "(ii)i",
    },
    HostFunc {
        row: 2,
        module: "env",
        name: "fail",
        signature: "(i)i",
    },
    HostFunc {
        row: 3,
        module: "env",
        name: "alloc_write",
        signature: "(ii)i",
    },
    HostFunc {
        row: 4,
        module: "env",
        name: "panic",
        signature: "()i",
    },
    HostFunc {
        row: 5,
        module: "env",
        name: "wide",
        signature: "(Ii)i",
    },
    HostFunc {
        row: 6,
        module: "env",
        name: "poke",
        signature: "(i)i",
    },
    HostFunc {
        row: 7,
        module: "env",
        name: "reenter",
        signature: "(i)i",
    },
    HostFunc {
        row: 8,
        module: "env",
        name: "nop",
        signature: "()i",
    },
    HostFunc {
        row: 9,
        module: "env",
        name: "swallow",
        signature: "()i",
    },
    HostFunc {
        row: 10,
        module: "wasi_snapshot_preview1",
        name: "proc_exit",
        signature: "(i)",
    },
    // The same host row under a second module name.
    HostFunc {
        row: 10,
        module: "wasi_unstable",
        name: "proc_exit",
        signature: "(i)",
    },
];

pub const ADD: usize = 0;
pub const LOG: usize = 1;
pub const FAIL: usize = 2;
pub const ALLOC_WRITE: usize = 3;
pub const PANIC: usize = 4;
pub const WIDE: usize = 5;
pub const POKE: usize = 6;
pub const REENTER: usize = 7;
pub const NOP: usize = 8;
pub const SWALLOW: usize = 9;
pub const PROC_EXIT: usize = 10;

pub fn runtime() -> Runtime {
    init(TABLE).expect("WAMR starts")
}

/// A host trap, with a message longer than WAMR's 127-byte exception buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTrap(pub String);

impl fmt::Display for TestTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Default)]
pub struct Host {
    pub calls: Vec<(usize, Vec<u64>)>,
    pub log: Vec<String>,
    /// The guest allocator, for `alloc_write`.
    pub malloc: Option<Func>,
    /// The guest function `reenter` calls back.
    pub reenter: Option<Func>,
    /// `poke` interrupts the call of this generation through `handle`; the answers are kept.
    pub handle: Option<InterruptHandle>,
    pub target: u64,
    pub poked: Vec<bool>,
    /// Whether the memory base moved across the allocator call in `alloc_write`.
    pub base_moved: Option<bool>,
    /// Nesting depth reached by `reenter`.
    pub depth: u32,
}

pub type Inst = Instance<Host, TestTrap>;

fn nested<E: fmt::Display>(e: CallError<E>) -> TestTrap {
    TestTrap(format!("nested call failed: {e}"))
}

/// The one host function of the tests.
pub fn host_fn(
    row: usize,
    caller: &mut Caller<'_, Host, TestTrap>,
    args: &[u64],
) -> Result<i32, TestTrap> {
    if row == NOP {
        // Kept free of allocation: the cost example measures the call path with it.
        return Ok(0);
    }
    caller.data().calls.push((row, args.to_vec()));
    match row {
        ADD => Ok((args[0] as i32).wrapping_add(args[1] as i32)),
        LOG => {
            let (ptr, len) = (args[0] as usize, args[1] as usize);
            let (mem, host) = caller.parts();
            let bytes = mem
                .get(ptr..ptr + len)
                .ok_or_else(|| TestTrap("log: out of bounds".into()))?;
            host.log.push(String::from_utf8_lossy(bytes).into_owned());
            Ok(0)
        }
        FAIL => Err(TestTrap(format!(
            "fail({}): {}",
            args[0],
            "a host trap message longer than WAMR keeps. ".repeat(6)
        ))),
        ALLOC_WRITE => {
            let (ret_ptr, size) = (args[0] as usize, args[1] as u32);
            let malloc = caller
                .data()
                .malloc
                .clone()
                .ok_or_else(|| TestTrap("no malloc".into()))?;
            let before = caller.memory().as_ptr() as usize;
            let ptr = match caller.call(&malloc, &[Val::I32(size as i32)]) {
                Ok(Some(Val::I32(p))) => p as u32 as usize,
                Ok(other) => return Err(TestTrap(format!("malloc returned {other:?}"))),
                Err(CallError::Host(e)) => return Err(e),
                Err(e) => return Err(nested(e)),
            };
            // Fetch memory again: malloc may have grown (and moved) it.
            let mem = caller.memory();
            let after = mem.as_ptr() as usize;
            let dst = mem
                .get_mut(ptr..ptr + size as usize)
                .ok_or_else(|| TestTrap("malloc gave an out-of-bounds block".into()))?;
            for (i, b) in dst.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
            mem.get_mut(ret_ptr..ret_ptr + 4)
                .ok_or_else(|| TestTrap("bad return pointer".into()))?
                .copy_from_slice(&(ptr as u32).to_le_bytes());
            caller.data().base_moved = Some(before != after);
            Ok(0)
        }
        PANIC => panic!("host function panicked on purpose"),
        WIDE => {
            // (i64, i32): returns the high half of the i64 plus the i32.
            Ok(((args[0] >> 32) as i32).wrapping_add(args[1] as i32))
        }
        POKE => {
            let host = caller.data();
            let handle = host
                .handle
                .clone()
                .ok_or_else(|| TestTrap("no handle".into()))?;
            let stopped = handle.interrupt_call(host.target);
            host.poked.push(stopped);
            Ok(stopped as i32)
        }
        REENTER => {
            caller.data().depth += 1;
            let f = caller
                .data()
                .reenter
                .clone()
                .ok_or_else(|| TestTrap("no reenter".into()))?;
            match caller.call(&f, &[Val::I32(args[0] as i32 + 1)]) {
                Ok(Some(Val::I32(v))) => Ok(v),
                Ok(_) => Ok(0),
                Err(CallError::Host(e)) => Err(e),
                Err(e) => Err(nested(e)),
            }
        }
        SWALLOW => {
            // Calls the allocator and ignores how it went.
            let malloc = caller
                .data()
                .malloc
                .clone()
                .ok_or_else(|| TestTrap("no malloc".into()))?;
            let _ = caller.call(&malloc, &[Val::I32(1)]);
            Ok(0)
        }
        PROC_EXIT => Err(TestTrap(format!("proc_exit({})", args[0]))),
        _ => Err(TestTrap(format!("unknown row {row}"))),
    }
}

pub fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid WAT")
}

pub fn instance(text: &str) -> Inst {
    instance_with(text, &InstanceConfig::default())
}

pub fn instance_with(text: &str, config: &InstanceConfig) -> Inst {
    let module = runtime().load(&wasm(text)).expect("module loads");
    module
        .instantiate(Host::default(), host_fn, config)
        .expect("module instantiates")
}

pub fn call(inst: &mut Inst, name: &str, args: &[Val]) -> Result<Option<Val>, CallError<TestTrap>> {
    let f = inst.func(name).expect("export exists");
    inst.call(&f, args)
}

pub fn call_i32(inst: &mut Inst, name: &str, args: &[Val]) -> i32 {
    match call(inst, name, args) {
        Ok(Some(Val::I32(v))) => v,
        other => panic!("`{name}` should return an i32, got {other:?}"),
    }
}

/// The allocator guest: a bump `malloc` that grows memory and makes a host call itself, and
/// `run`, which asks the host to allocate and fill `size` bytes.
pub const ALLOCATOR: &str = r#"
(module
  (import "env" "alloc_write" (func $alloc_write (param i32 i32) (result i32)))
  (import "env" "log" (func $log (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 16) "malloc")
  (func (export "malloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i32)
    (drop (call $log (i32.const 16) (i32.const 6)))
    (local.set $ptr (global.get $next))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (block $ok
      (br_if $ok (i32.le_u (local.get $end) (i32.mul (memory.size) (i32.const 65536))))
      (br_if $ok (i32.ne
        (memory.grow (i32.sub (i32.div_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 65536)) (memory.size)))
        (i32.const -1)))
      (return (i32.const 0)))
    (global.set $next (local.get $end))
    (local.get $ptr))
  (func (export "run") (param $size i32) (result i32)
    (drop (call $alloc_write (i32.const 8) (local.get $size)))
    (i32.load (i32.const 8))))
"#;
