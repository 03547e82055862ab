//! [`WasmtimeEngine`]: one Wasmtime engine, its linker of host functions and its epoch ticker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::Thread;
use std::time::Duration;

use proxy_wasm_host::{Capabilities, Engine, Error, Module, Trap};
use wasmtime::{InstanceAllocationStrategy, Linker, PoolingAllocationConfig};

use crate::instance::StoreData;
use crate::module::WasmtimeModule;

/// The engine's name, as [`Engine::name`] reports it.
pub(crate) const NAME: &str = "wasmtime";

/// How a [`WasmtimeEngine`] is set up. [`Default`] suits a proxy: pooled instances, 1 GiB of
/// memory at most per instance, a 10 ms epoch tick.
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
    /// How often the epoch advances while some call has a CPU deadline (default 10 ms): the
    /// granularity of [`Limits::call_deadline`](proxy_wasm_host::Limits). The ticker thread
    /// sleeps when no call has a deadline.
    pub epoch_tick: Duration,
}

impl Default for WasmtimeConfig {
    fn default() -> Self {
        WasmtimeConfig {
            pooling: true,
            max_instances: 128,
            max_memory_bytes: 1 << 30,
            memory_reservation: if cfg!(target_pointer_width = "64") { 1 << 32 } else { 1 << 30 },
            epoch_tick: Duration::from_millis(10),
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

/// What the engine, its modules and instances share.
pub(crate) struct Shared {
    /// Wasmtime's engine.
    pub(crate) engine: wasmtime::Engine,
    /// Every host function of the ABI table, linked once.
    pub(crate) linker: Linker<StoreData>,
    /// Advances the epoch while some call has a deadline.
    pub(crate) ticker: Ticker,
    /// Whether instances come from the pool.
    pooling: bool,
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
        let ticker = Ticker { interval: config.epoch_tick, active: AtomicUsize::new(0), thread: OnceLock::new() };
        Ok(WasmtimeEngine { shared: Arc::new(Shared { engine, linker, ticker, pooling: config.pooling }) })
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

impl Engine for WasmtimeEngine {
    fn name(&self) -> &'static str {
        NAME
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
    fn deserialize(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        // SAFETY: `Module::deserialize` is sound for bytes made by `Module::serialize` of a
        // compatible engine (Wasmtime checks the version and configuration header itself). This
        // engine's public contract, documented on `WasmtimeEngine` and on this method, is that
        // it only ever receives bytes our own `serialize` produced and that were kept out of
        // reach of anyone else; untrusted code goes through `compile`.
        let module = unsafe { wasmtime::Module::deserialize(&self.shared.engine, bytes) }
            .map_err(|e| Error::Compile { engine: NAME, message: format!("{e:#}") })?;
        Ok(Arc::new(WasmtimeModule::new(self.shared.clone(), module)))
    }
}

/// The engine's epoch ticker: a thread, started by the first call that has a deadline, that
/// increments the epoch every `interval` while at least one such call runs and parks otherwise.
/// It holds only a weak reference to the engine and ends when the engine is dropped.
pub(crate) struct Ticker {
    interval: Duration,
    /// Calls with a deadline running now.
    active: AtomicUsize,
    /// The thread, once started, or why it could not be.
    thread: OnceLock<Result<Thread, String>>,
}

/// Keeps the ticker going while a call with a deadline runs.
pub(crate) struct Ticking<'a>(&'a Ticker);

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Marks a call with a deadline as running, starting or waking the ticker.
    pub(crate) fn ticking(self: &Arc<Self>) -> Result<Ticking<'_>, Trap> {
        let ticker = &self.ticker;
        let thread = ticker.thread.get_or_init(|| {
            let weak = Arc::downgrade(self);
            let interval = ticker.interval;
            std::thread::Builder::new()
                .name("wasmtime-epoch".into())
                .spawn(move || tick(weak, interval))
                .map(|handle| handle.thread().clone())
                .map_err(|e| e.to_string())
        });
        let thread = thread
            .as_ref()
            .map_err(|e| Trap::guest(format!("cannot enforce the call deadline: no epoch ticker thread: {e}")))?;
        if ticker.active.fetch_add(1, Ordering::SeqCst) == 0 {
            thread.unpark();
        }
        Ok(Ticking(ticker))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Wake the ticker so that it sees the engine is gone and ends.
        if let Some(Ok(thread)) = self.ticker.thread.get() {
            thread.unpark();
        }
    }
}

/// The ticker thread's loop.
fn tick(engine: Weak<Shared>, interval: Duration) {
    loop {
        let Some(shared) = engine.upgrade() else { return };
        let idle = shared.ticker.active.load(Ordering::SeqCst) == 0;
        drop(shared);
        if idle {
            // `ticking` and `Drop for Shared` unpark us; a wake-up between the check and the
            // park is not lost (the token makes `park` return at once).
            std::thread::park();
            continue;
        }
        std::thread::sleep(interval);
        match engine.upgrade() {
            Some(shared) => shared.engine.increment_epoch(),
            None => return,
        }
    }
}
