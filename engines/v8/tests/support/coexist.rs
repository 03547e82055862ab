//! V8 (with its trap handler) and Wasmtime in one process: out-of-bounds loads trap in each
//! engine in turn and on two threads at once. Shared by the coexistence tests (one process per
//! start-up order, since signal handlers are process-wide) and `examples/coexist.rs`.

use std::sync::Arc;
use std::thread;

use proxy_wasm_v8::sys::{init, CallError, Caller, Config, Host, Module, TrapHandler, Unwind, Vm};

const OOB: &str = r#"(module (memory (export "memory") 1)
  (func (export "oob") (result i32) (i32.load (i32.const -4)))
  (func (export "ok") (result i32) (i32.load (i32.const 8))))"#;

struct NoHost;

impl Host for NoHost {
    fn call(_: &mut Caller<'_, Self>, _: u32, _: &[u64]) -> Result<i32, Unwind> {
        Err(Unwind)
    }
}

/// A Wasmtime engine with the same module.
pub struct Wasmtime {
    engine: wasmtime::Engine,
    module: wasmtime::Module,
}

impl Wasmtime {
    /// Makes the engine: Wasmtime installs its signal handlers here (once per process).
    pub fn new() -> Self {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, wat::parse_str(OOB).unwrap()).unwrap();
        Wasmtime { engine, module }
    }

    /// An out-of-bounds load traps (a signal in Wasmtime's guard region), then a good load.
    pub fn oob(&self) {
        let mut store = wasmtime::Store::new(&self.engine, ());
        let instance = wasmtime::Instance::new(&mut store, &self.module, &[]).unwrap();
        let oob = instance.get_typed_func::<(), i32>(&mut store, "oob").unwrap();
        let err = oob.call(&mut store, ()).unwrap_err();
        assert_eq!(err.downcast_ref::<wasmtime::Trap>().copied(), Some(wasmtime::Trap::MemoryOutOfBounds), "{err:?}");
        let ok = instance.get_typed_func::<(), i32>(&mut store, "ok").unwrap();
        assert_eq!(ok.call(&mut store, ()).unwrap(), 0);
    }
}

/// Starts V8 with `mode` and compiles the module.
pub fn start_v8(mode: TrapHandler) -> Module {
    init(Config { flags: String::new(), trap_handler: mode }).unwrap();
    Module::compile(&wat::parse_str(OOB).unwrap()).unwrap()
}

/// An out-of-bounds load traps in a new V8 VM, then a good load.
pub fn v8_oob(module: &Module) {
    let mut vm = Vm::new(NoHost).unwrap();
    vm.instantiate(module, &[], 1 << 20).unwrap();
    let oob = vm.export("oob").unwrap();
    assert_eq!(vm.call(oob, &[]), Err(CallError::Trap("RuntimeError: memory access out of bounds".into())));
    let ok = vm.export("ok").unwrap();
    assert_eq!(vm.call(ok, &[]), Ok(Some(0)));
}

/// The whole check, `step` told of each stage passed.
pub fn run(mode: TrapHandler, wasmtime_first: bool, step: &dyn Fn(&str)) {
    let (wt, module) = if wasmtime_first {
        let wt = Wasmtime::new();
        wt.oob();
        step("wasmtime oob trapped (before V8 started)");
        (wt, start_v8(mode))
    } else {
        let module = start_v8(mode);
        v8_oob(&module);
        step("v8 oob trapped (before Wasmtime started)");
        (Wasmtime::new(), module)
    };
    for round in 0..3 {
        wt.oob();
        step(&format!("round {round}: wasmtime oob trapped"));
        v8_oob(&module);
        step(&format!("round {round}: v8 oob trapped"));
    }
    let (module, wt) = (Arc::new(module), Arc::new(wt));
    let a = {
        let module = module.clone();
        thread::spawn(move || (0..300).for_each(|_| v8_oob(&module)))
    };
    let b = {
        let wt = wt.clone();
        thread::spawn(move || (0..300).for_each(|_| wt.oob()))
    };
    a.join().unwrap();
    b.join().unwrap();
    step("concurrent: 300 v8 and 300 wasmtime oob traps on two threads");
}
