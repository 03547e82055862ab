//! The raw-engine baselines: the same guest code driven through the engine's own API, without
//! our layer, doing the same unavoidable work (the same exports called with the same arguments;
//! for a header lookup, a host function that finds the value, calls the guest's allocator and
//! copies the value in).
//!
//! Each baseline is a closure that runs one iteration, as [`Raw`] makes them per engine. An
//! engine without a raw baseline here (a new one, until someone writes it) gets `None`, and the
//! report says so. Each raw engine is compiled only when its engine is built into the harness
//! ([`proxy_wasm_harness::if_engine!`]), through the engine library its engine crate
//! re-exports.

use proxy_wasm_harness::if_engine;

/// One iteration of a benchmark.
pub type Iteration = Box<dyn FnMut()>;

/// What a raw engine runs: the same work as our layer, through the engine's own API.
trait Baselines {
    fn compile(&self, bytes: Vec<u8>) -> Iteration;
    /// A new instance of `bytes` with the three root callbacks called; then, with `stream`,
    /// the stream's five exports looked up and called on it; then all dropped.
    fn fresh_instance(&self, bytes: &[u8], stream: bool) -> Iteration;
    fn lifecycle(&self) -> Iteration;
    fn lookup(&self) -> Iteration;
}

/// A raw engine, without our layer: Wasmtime with the same configuration as our Wasmtime
/// engine (so the same machine code), in stores that never reach their epoch deadline; Wasmer
/// with a plain compiler (Cranelift for `wasmer`, Singlepass for `wasmer-singlepass`), without
/// the stop-check middleware and the memory-limiting tunables; WAMR through its C API, not our
/// wrapper of it; V8 through the engine's shim, without the proxy-wasm layer.
pub struct Raw(Box<dyn Baselines>);

impl Raw {
    /// The raw baseline of engine `name`, if there is one.
    pub fn for_engine(name: &str) -> Option<Raw> {
        match name {
            "wasmtime" => if_engine!(wasmtime {
                Some(Raw(Box::new(wasmtime_raw::RawWasmtime(
                    proxy_wasm_harness::proxy_wasm_wasmtime::WasmtimeEngine::default().wasmtime().clone(),
                ))))
            } else { None }),
            "wasmer" => if_engine!(wasmer {
                Some(Raw(Box::new(wasmer_raw::RawWasmer(wasmer::sys::Cranelift::new().into()))))
            } else { None }),
            "wasmer-singlepass" => if_engine!(wasmer_singlepass {
                Some(Raw(Box::new(wasmer_raw::RawWasmer(wasmer::sys::Singlepass::new().into()))))
            } else { None }),
            "wamr" => if_engine!(wamr {
                Some(Raw(Box::new(wamr_raw::RawWamr(proxy_wasm_harness::proxy_wasm_wamr::WamrEngine::default()))))
            } else { None }),
            "v8" => if_engine!(v8 { Some(Raw(Box::new(v8_raw::RawV8))) } else { None }),
            _ => None,
        }
    }

    /// Compiles `bytes` (and drops the module).
    pub fn compile(&self, bytes: Vec<u8>) -> Iteration {
        self.0.compile(bytes)
    }

    /// Instantiates a module without imports (a new store each time), looks up the three root
    /// callbacks and calls them as our layer starts a plugin: `proxy_on_context_create(1, 0)`,
    /// `proxy_on_vm_start(1, 0)`, `proxy_on_configure(1, 0)`; then drops it all.
    pub fn instantiate(&self, bytes: &[u8]) -> Iteration {
        self.0.fresh_instance(bytes, false)
    }

    /// The empty stream lifecycle on the empty plugin: the five exports our layer calls for a
    /// stream, with the same arguments.
    pub fn lifecycle(&self) -> Iteration {
        self.0.lifecycle()
    }

    /// An instance per stream, as a raw embedder would run one: a new instance of `bytes` (the
    /// empty plugin), the three root callbacks as [`instantiate`](Self::instantiate) calls them,
    /// then the stream's five exports looked up on it and called as
    /// [`lifecycle`](Self::lifecycle) calls them; then it is dropped.
    pub fn ephemeral(&self, bytes: &[u8]) -> Iteration {
        self.0.fresh_instance(bytes, true)
    }

    /// One `proxy_on_request_headers` call of the lookup plugin
    /// ([`lookup_plugin_wat`](crate::modules::lookup_plugin_wat)), whose
    /// `proxy_get_header_map_value` is a hand-written host function: find the header, call the
    /// guest's `malloc`, copy the value in, write its address and size.
    pub fn lookup(&self) -> Iteration {
        self.0.lookup()
    }
}

if_engine!(wasmtime | wasmer | wasmer_singlepass | wamr | v8 {
    /// The request headers the raw lookups look in.
    fn headers() -> Vec<(Vec<u8>, Vec<u8>)> {
        crate::workload::REQUEST_HEADERS.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }
});

if_engine!(wasmer | wasmer_singlepass {
    use proxy_wasm_harness::proxy_wasm_wasmer::wasmer;
});

if_engine!(wasmtime {
    mod wasmtime_raw;
});

if_engine!(wasmer | wasmer_singlepass {
    mod wasmer_raw;
});

if_engine!(wamr {
    mod wamr_raw;
});

if_engine!(v8 {
    mod v8_raw;
});
