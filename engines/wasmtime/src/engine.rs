//! [`WasmtimeEngine`]: one Wasmtime engine and its linker of host functions.

use std::sync::Arc;

use proxy_wasm_host::{Capabilities, Engine, Error, Module};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::module::WasmtimeModule;
use crate::shared::{Shared, NAME};

/// How a [`WasmtimeEngine`] is set up. [`Default`] suits a proxy: pooled instances, 1 GiB of
/// memory at most per instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmtimeConfig {
    /// Take instances from Wasmtime's pooling allocator (default `true`). The pool reserves its
    /// slots once, up front, and recycles them with copy-on-write memory images, so that making
    /// another instance of a compiled module costs microseconds instead of fresh `mmap`s. Off,
    /// every instance maps its own memory.
    pub pooling: bool,
    /// With `pooling`: how many instances (and so linear memories and tables) may be alive at
    /// once across the whole engine (default 128). One more fails to instantiate with a message
    /// saying the pool is exhausted.
    pub max_instances: u32,
    /// With `pooling`: the size of each memory slot, the most linear memory any instance can
    /// ever have (default 1 GiB). [`Limits::max_memory_bytes`](proxy_wasm_host::Limits) caps
    /// each VM below that; a limit above it is reached at this size instead.
    pub max_memory_bytes: u64,
    /// The virtual address space reserved for each linear memory, guard region excluded
    /// (default 4 GiB on 64-bit hosts). At 4 GiB compiled code needs no explicit bounds checks
    /// (the whole 32-bit index space is reserved); the price is address space only: 128 slots
    /// take about 516 GiB of reservation, none of it committed. Set it to `max_memory_bytes`
    /// where address space is scarce (`ulimit -v`): guest loads and stores then carry a bounds
    /// check. It must be at least `max_memory_bytes` when pooling.
    pub memory_reservation: u64,
}

impl Default for WasmtimeConfig {
    fn default() -> Self {
        WasmtimeConfig {
            pooling: true,
            max_instances: 128,
            max_memory_bytes: 1 << 30,
            memory_reservation: if cfg!(target_pointer_width = "64") { 1 << 32 } else { 1 << 30 },
        }
    }
}

/// The Wasmtime engine: compiles modules, which then make instances.
///
/// Cloning is cheap (an `Arc`) and every clone is the same engine; it is `Send + Sync` and used
/// from any thread. The compiled modules and live instances it made keep it alive.
///
/// # Precompiled modules
/// [`Engine::deserialize`] loads machine code that Wasmtime runs **without validating it**:
/// give it only bytes that [`Module::serialize`] of this crate produced (with a compatible
/// Wasmtime version and configuration, which Wasmtime checks) and that nobody could tamper
/// with since, for example a cache file the proxy itself wrote. Untrusted input must go through
/// [`Engine::compile`].
#[derive(Clone)]
pub struct WasmtimeEngine {
    pub(crate) shared: Arc<Shared>,
}

impl WasmtimeEngine {
    /// An engine set up as `config` says. Fails when Wasmtime rejects the configuration or
    /// cannot reserve the pool.
    pub fn new(config: WasmtimeConfig) -> Result<Self, Error> {
        let fail = |e: wasmtime::Error| Error::Instantiate {
            engine: NAME,
            message: format!("cannot set up the engine: {e:#}"),
        };
        let mut wasm = wasmtime::Config::new();
        wasm.epoch_interruption(true);
        wasm.memory_reservation(config.memory_reservation);
        if config.pooling {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_core_instances(config.max_instances)
                .total_memories(config.max_instances)
                .total_tables(config.max_instances)
                .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX));
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = wasmtime::Engine::new(&wasm).map_err(fail)?;
        let linker = crate::link::linker(&engine).map_err(fail)?;
        Ok(WasmtimeEngine { shared: Arc::new(Shared { engine, linker, pooling: config.pooling }) })
    }

    /// The Wasmtime engine underneath, for example to run a baseline without the ABI layer.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.shared.engine
    }
}

impl Default for WasmtimeEngine {
    /// An engine with [`WasmtimeConfig::default`]; if the pool cannot be reserved (address
    /// space limited by `ulimit -v`, for example), one without pooling, which
    /// [`Capabilities::cheap_clone`] then reports as `false`.
    ///
    /// # Panics
    /// If Wasmtime cannot set up even an engine without pooling.
    fn default() -> Self {
        WasmtimeEngine::new(WasmtimeConfig::default())
            .or_else(|_| WasmtimeEngine::new(WasmtimeConfig { pooling: false, ..WasmtimeConfig::default() }))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The Wasmtime release this crate runs (a test checks it against the workspace's Cargo.lock).
pub const WASMTIME_VERSION: &str = "48.0.0";

impl Engine for WasmtimeEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Wasmtime's version, this crate's, and Wasmtime's own compatibility hash of the engine's
    /// configuration (`Engine::precompile_compatibility_hash`: compiler settings, tunables such
    /// as the memory reservation, features), so that code compiled under another configuration
    /// has another cache key.
    fn version(&self) -> String {
        use std::hash::{Hash, Hasher};
        // SipHash with fixed keys: the same configuration gives the same number in every process
        // built by the same compiler.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.shared.engine.precompile_compatibility_hash().hash(&mut hasher);
        format!(
            "wasmtime {WASMTIME_VERSION}, proxy-wasm-wasmtime {}, configuration {:016x}",
            env!("CARGO_PKG_VERSION"),
            hasher.finish()
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            memory_limit: true,
            interrupt: true,
            precompiled: true,
            cheap_clone: self.shared.pooling,
            sandboxed: true,
        }
    }

    fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        let module = wasmtime::Module::new(&self.shared.engine, bytes)
            .map_err(|e| Error::Compile { engine: NAME, message: format!("{e:#}") })?;
        Ok(Arc::new(WasmtimeModule::new(self.shared.clone(), module)))
    }

    /// Loads the output of [`Module::serialize`]. **Trusted bytes only**: see
    /// [`WasmtimeEngine`]'s docs.
    unsafe fn deserialize(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        // SAFETY: `Module::deserialize` is sound for bytes made by `Module::serialize` of a
        // compatible engine (Wasmtime checks the version and configuration header itself), which
        // is this method's own safety contract (`Engine::deserialize`): the caller vouches that
        // the bytes are our own `serialize` output, kept out of reach of anyone else.
        let module = unsafe { wasmtime::Module::deserialize(&self.shared.engine, bytes) }
            .map_err(|e| Error::Compile { engine: NAME, message: format!("{e:#}") })?;
        Ok(Arc::new(WasmtimeModule::new(self.shared.clone(), module)))
    }
}

#[cfg(test)]
mod version_tests {
    /// The Wasmtime version the engine reports is the one Cargo built.
    #[test]
    fn the_reported_wasmtime_version_is_the_locked_one() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
        let wanted = format!("name = \"wasmtime\"\nversion = \"{}\"", super::WASMTIME_VERSION);
        assert!(lock.contains(&wanted), "Cargo.lock has another wasmtime than {}", super::WASMTIME_VERSION);
    }
}
