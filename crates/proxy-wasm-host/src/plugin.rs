//! Loading plugins and making VMs: [`PluginHost`] compiles each module once (cached by
//! sha256), keys VMs by (vm_id, engine, VM configuration, code hash, and the plugin for a VM
//! model of its own), starts a base VM to validate each plugin's configuration, and makes one
//! clone per worker ([`WorkerVm`]), which applies the failure policy ([`crate::policy`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abi::{AbiVersion, MapLimits};
use sha2::{Digest, Sha256};

use crate::engine::{allocator_callback, callback_exports, check_imports};
use crate::policy::{bad_config, FaultState, Jitter, VmMonitor};
use crate::services::lock;
use crate::stats::{parse_samples, HostStats, MemoryGauge, VmStats};
use crate::{
    Clock, Embedder, Engine, Error, FailurePolicy, Limits, Module, PluginInfo, Services, StatSample, Stream, SystemClock,
    Trace, Vm, VmHost, VmHostConfig, VmModel,
};
use crate::{Action, CapabilityRestriction, PrecompiledCache};

/// A validated, compiled plugin module.
pub struct CompiledModule {
    module: Arc<dyn Module>,
    abi: AbiVersion,
    sha256: [u8; 32],
    engine: &'static str,
}

impl CompiledModule {
    /// The engine's compiled module.
    pub fn module(&self) -> &Arc<dyn Module> {
        &self.module
    }

    /// The ABI version the module declares.
    pub fn abi_version(&self) -> AbiVersion {
        self.abi
    }

    /// The sha256 of the module's bytes.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The sha256 in hex.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The engine that compiled it.
    pub fn engine(&self) -> &'static str {
        self.engine
    }
}

/// Checks that a compiled module is a Proxy-Wasm plugin this host can run: exactly one ABI
/// marker, only imports the host provides (with the ABI's signatures), callbacks exported with
/// their version's signatures, and an allocator export.
pub fn validate(module: &dyn Module) -> Result<AbiVersion, Error> {
    let abi = abi::detect_version(module.exports().iter().map(|e| e.name.as_str()))?;
    check_imports(module.imports())?;
    let verdicts = callback_exports(module.exports());
    for callback in abi::Callback::for_version(abi) {
        if let Some(verdict) = &verdicts[callback as usize] {
            verdict.clone()?;
        }
    }
    if !module.exports().iter().any(|e| e.name == "malloc" || e.name == "proxy_on_memory_allocate") {
        return Err(Error::NoAllocator);
    }
    Ok(abi)
}

/// The bytes `engine` compiles: for a Wasm engine, a module that is not a Wasm binary (it lacks
/// the `\0asm` magic) is read as the text format and parsed into a binary here, once, for every
/// engine (engines receive binaries only, [`Engine::compile`]); a text module that does not parse
/// is an [`Error::Text`] with the parser's message and the line and column. For the Null VM (not
/// [`sandboxed`](crate::Capabilities::sandboxed)) the bytes pass as they are: a native library or
/// a static plugin's name.
pub fn module_binary<'a>(engine: &dyn Engine, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, Error> {
    if !engine.capabilities().sandboxed || bytes.starts_with(b"\0asm") {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    wat::parse_bytes(bytes).map_err(|e| Error::Text(e.to_string()))
}

/// What every VM of a [`PluginHost`] is made with.
#[derive(Clone)]
struct VmEnv {
    embedder: Arc<dyn Embedder>,
    services: Arc<Services>,
    trace: Option<Trace>,
    stats: Arc<HostStats>,
    clock: Arc<dyn Clock>,
    seed: u64,
    /// One callback in this many is timed for the callback-duration histogram.
    callback_timing: u32,
}

/// By default one callback in this many on each thread is timed (see
/// [`PluginHost::with_callback_timing`]).
pub const DEFAULT_CALLBACK_TIMING: u32 = 64;

/// What the VMs of one [`PluginVm`] report to: their fault state and stats, and the `vm` label.
struct Watch {
    fault: Arc<FaultState>,
    stats: VmStats,
    label: String,
}

/// Instantiates `code` with a fresh [`VmHost`] and runs its start functions. `role` labels the
/// VM in the trace (`base`, `worker` or `stream`); `watch`, when given, receives its failures
/// and stats.
fn make_vm(code: &CompiledModule, config: &VmConfig, env: &VmEnv, role: &str, watch: Option<&Watch>) -> Result<Vm, Error> {
    let mut host = VmHost::new(
        VmHostConfig {
            vm_id: config.vm_id.clone(),
            vm_configuration: config.configuration.clone(),
            environment: config.environment.clone(),
            map_limits: config.map_limits,
            limits: config.limits,
            capabilities: config.capabilities.clone(),
        },
        code.abi,
        env.embedder.clone(),
        env.services.clone(),
    );
    if let Some(trace) = &env.trace {
        host.set_trace(Some(trace), format!("{role}, vm_id {:?}", config.vm_id));
    }
    host.set_allocator(allocator_callback(code.module.exports()));
    if let Some(w) = watch {
        host.monitor = Some(VmMonitor::new(
            w.fault.clone(),
            env.stats.clone(),
            &w.stats,
            code.engine,
            env.callback_timing,
        ));
    }
    let instance = code.module.instantiate(host)?;
    Vm::start(instance, code.engine)
}

/// The settings of a VM: what makes two VMs interchangeable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmConfig {
    /// The VM id: plugins with the same VM id (and code and configuration) share a VM, and
    /// shared data and queues are scoped by it.
    pub vm_id: String,
    /// The VM configuration handed to `proxy_on_vm_start`.
    pub configuration: Vec<u8>,
    /// The WASI environment the plugin sees.
    pub environment: Vec<(String, String)>,
    /// Memory and CPU limits.
    pub limits: Limits,
    /// Limits on serialized maps from the guest.
    pub map_limits: MapLimits,
    /// The host functions and callbacks the VM's guest may use (Envoy's
    /// `capability_restriction_config`; unrestricted by default). Restrictions apply to the
    /// whole VM, as in the reference host, so plugins with different restrictions never share
    /// one: the restriction is part of the VM's key.
    pub capabilities: CapabilityRestriction,
}

/// Loads plugins and makes their VMs. One per process (or per engine); share it with `Arc`.
pub struct PluginHost {
    engine: Arc<dyn Engine>,
    env: VmEnv,
    cache: Option<PrecompiledCache>,
    modules: Arc<Mutex<HashMap<[u8; 32], Arc<CompiledModule>>>>,
    vms: Mutex<HashMap<VmKey, Arc<PluginVm>>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct VmKey {
    vm_id: String,
    engine: &'static str,
    configuration: Vec<u8>,
    code: [u8; 32],
    /// The plugin (model, name, root id) for a VM model of its own; `None` for a shared VM.
    own: Option<(VmModel, String, String)>,
    capabilities: CapabilityRestriction,
}

/// A seed from the system's random source, for backoff jitter.
fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    // Without a random source the jitter is merely predictable, not wrong.
    let _ = getrandom::getrandom(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// The reload settings plugins sharing a VM must agree on (they fail and reload together).
fn reload_policy(p: &PluginInfo) -> Option<(crate::Backoff, crate::CrashLoop)> {
    (p.failure_policy_in_force() == FailurePolicy::FailReload).then_some((p.reload_config.backoff, p.reload_config.crash_loop))
}

/// Refuses `plugin` beside `others` in one VM when they disagree on how the VM reloads.
fn check_agreement(others: &[PluginInfo], plugin: &PluginInfo, vm_id: &str) -> Result<(), Error> {
    match others.iter().find(|o| o.root_id != plugin.root_id) {
        Some(first) if reload_policy(first) != reload_policy(plugin) => Err(bad_config(
            &plugin.name,
            "failure_policy",
            format!(
                "({}) differs from that of plugin `{}` ({}) in the same VM (vm_id `{vm_id}`): plugins sharing a VM fail and reload together, so they must agree on FAIL_RELOAD and its reload_config.backoff and crash_loop; give this one `vm_model: PER_PLUGIN` or another vm_id",
                plugin.failure_policy_in_force().name(),
                first.name,
                first.failure_policy_in_force().name()
            ),
        )),
        _ => Ok(()),
    }
}

impl PluginHost {
    /// A host for plugins on `engine`, serving `embedder`, on the system's clock.
    pub fn new(engine: Arc<dyn Engine>, embedder: Arc<dyn Embedder>) -> Self {
        let services = Services::new();
        PluginHost {
            engine,
            env: VmEnv {
                embedder,
                stats: HostStats::new(services.clone()),
                services,
                trace: None,
                clock: Arc::new(SystemClock::default()),
                seed: random_seed(),
                callback_timing: DEFAULT_CALLBACK_TIMING,
            },
            cache: None,
            modules: Arc::default(),
            vms: Mutex::new(HashMap::new()),
        }
    }

    /// A host on the same engine that shares this one's compiled modules (so nothing is
    /// compiled twice) but nothing else: its own embedder, services, stats, VMs and no trace.
    pub fn sharing_modules(&self, embedder: Arc<dyn Embedder>) -> Self {
        PluginHost {
            modules: self.modules.clone(),
            cache: self.cache.clone(),
            ..PluginHost::new(self.engine.clone(), embedder)
        }
    }

    /// Records every VM this host makes from now on in `trace`: their callbacks, host calls
    /// and guest allocations.
    pub fn with_trace(mut self, trace: Trace) -> Self {
        self.env.trace = Some(trace);
        self
    }

    /// Reads `clock` for the failure policy (backoffs, the crash-loop window) instead of the
    /// system's; set it before adding plugins. Tests and scripted exchanges use a
    /// [`ManualClock`](crate::ManualClock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.env.clock = clock;
        self
    }

    /// Seeds the backoff jitter (from the system's random source by default), so that a run
    /// repeats its reload times exactly; set it before adding plugins.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.env.seed = seed;
        self
    }

    /// Times one callback in every `every` (at least 1) on each thread, across its VMs, for
    /// `proxy_wasm_plugin_callback_duration_seconds`; set it before adding plugins. The default
    /// is [`DEFAULT_CALLBACK_TIMING`]: reading the clock twice costs more than all the rest of
    /// the host's work around an empty callback, so the histogram is a sample, its buckets, sum
    /// and count those of the timed callbacks. `1` times every callback, for exact counts, at
    /// about 40 ns a callback.
    pub fn with_callback_timing(mut self, every: u32) -> Self {
        self.env.callback_timing = every.max(1);
        self
    }

    /// The clock the failure policy reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.env.clock
    }

    /// Keeps compiled modules in `cache` (for engines that can serialize them): [`load`](Self::load)
    /// takes a module from there instead of compiling it, and writes what it compiles. See
    /// [`PrecompiledCache`] for the trust rule.
    pub fn with_precompiled_cache(mut self, cache: PrecompiledCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The trace VMs of this host write to, if any.
    pub fn trace(&self) -> Option<&Trace> {
        self.env.trace.as_ref()
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Shared data, queues, metrics and foreign functions of every VM of this host.
    pub fn services(&self) -> &Arc<Services> {
        &self.env.services
    }

    /// Every stat of this host's plugins and VMs, and the plugins' own metrics, in the
    /// Prometheus text format (version 0.0.4, `text/plain; version=0.0.4`); the stats are
    /// listed in the README's stats table.
    pub fn render_stats(&self) -> String {
        self.env.stats.render()
    }

    /// The same stats as samples (name, labels, value), sorted by name and labels so that the
    /// order is the same from run to run (the exposition lists a family's series in hash-map
    /// order); a histogram's buckets stay in their rendered `le` order.
    pub fn stats(&self) -> Vec<StatSample> {
        let mut samples = parse_samples(&self.render_stats());
        let key = |s: &StatSample| (s.name.clone(), s.labels.iter().filter(|(k, _)| k != "le").cloned().collect::<Vec<_>>());
        // Stable: the buckets of one series keep their order.
        samples.sort_by_cached_key(key);
        samples
    }

    /// Compiles and validates a module, or returns the cached one with the same sha256 (of the
    /// bytes as given): from memory, else from the [`PrecompiledCache`] when the host has one
    /// (a cache file that fails its checks is an [`Error::Cache`] naming it). A module in the Wasm text format is turned into a binary first, here:
    /// engines receive binaries only ([`Engine::compile`]); see [`module_binary`].
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<CompiledModule>, Error> {
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(m) = lock(&self.modules).get(&sha256) {
            return Ok(m.clone());
        }
        let cached = match &self.cache {
            Some(cache) => cache.load(&*self.engine, &sha256)?,
            None => None,
        };
        let (module, abi) = match cached {
            Some(module) => {
                let abi = validate(&*module)?;
                (module, abi)
            }
            None => {
                let module = self.engine.compile(&module_binary(&*self.engine, bytes)?)?;
                let abi = validate(&*module)?;
                // Only modules the host would run are written.
                if let Some(cache) = &self.cache {
                    cache.store(&*self.engine, &sha256, &*module)?;
                }
                (module, abi)
            }
        };
        let compiled = Arc::new(CompiledModule { module, abi, sha256, engine: self.engine.name() });
        lock(&self.modules).insert(sha256, compiled.clone());
        Ok(compiled)
    }

    /// [`load`](Self::load) from a file; the error names the file.
    pub fn load_file(&self, path: &Path) -> Result<Arc<CompiledModule>, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("cannot read plugin {}: {e}", path.display())))?;
        self.load(&bytes)
    }

    /// A new VM of `code`, started (`_initialize` / `_start`) but with no plugin yet, outside
    /// any plugin's fault policy and stats.
    pub fn new_vm(&self, code: &CompiledModule, config: &VmConfig) -> Result<Vm, Error> {
        make_vm(code, config, &self.env, "base", None)
    }

    /// Adds a plugin: finds or makes the VM for (vm_id, engine, VM configuration, code, and the
    /// plugin itself when its [`VmModel`] is not [`VmModel::Shared`]), and starts the plugin in
    /// that VM's base instance (on this thread) so that a plugin that rejects its configuration
    /// is refused here, with the reason. A bad policy value (`fail_open` with
    /// `failure_policy`, a bad backoff or crash-loop limit, a reload policy other than the
    /// VM's other plugins') is refused first, naming the key. Workers then make their own
    /// clones with [`PluginVm::worker`].
    pub fn add_plugin(&self, code: &Arc<CompiledModule>, config: VmConfig, plugin: PluginInfo) -> Result<Arc<PluginVm>, Error> {
        plugin.check_policy()?;
        let own = (plugin.vm_model != VmModel::Shared).then(|| (plugin.vm_model, plugin.name.clone(), plugin.root_id.clone()));
        let label = match &own {
            None => config.vm_id.clone(),
            Some((_, name, _)) => format!("{}/{name}", config.vm_id),
        };
        let key = VmKey {
            vm_id: config.vm_id.clone(),
            engine: self.engine.name(),
            configuration: config.configuration.clone(),
            code: code.sha256,
            own,
            capabilities: config.capabilities.clone(),
        };
        let existing = lock(&self.vms).get(&key).cloned();
        let vm = match existing {
            Some(vm) => vm,
            None => {
                let watch = Watch {
                    fault: Arc::new(FaultState::new(self.env.clock.clone(), label.clone(), code.engine)),
                    stats: self.env.stats.vm(&label, code.engine),
                    label,
                };
                let base = make_vm(code, &config, &self.env, "base", Some(&watch))?;
                let vm = Arc::new(PluginVm {
                    code: code.clone(),
                    config,
                    model: plugin.vm_model,
                    plugins: Mutex::new(Vec::new()),
                    base: Mutex::new(base),
                    env: self.env.clone(),
                    watch,
                    workers: AtomicU32::new(0),
                });
                lock(&self.vms).entry(key).or_insert(vm).clone()
            }
        };
        check_agreement(&vm.plugins(), &plugin, &vm.config.vm_id)?;
        let mut base = lock(&vm.base);
        base.start_plugin(plugin.clone())?;
        vm.watch.stats.memory("base", base.instance().memory_size());
        drop(base);
        let stats = self.env.stats.plugin(&plugin.name, &vm.watch.label, code.engine);
        vm.watch.fault.add_plugin(&plugin, stats);
        lock(&vm.plugins).push(Arc::new(plugin));
        Ok(vm)
    }
}

/// A VM configuration with its plugins: the template every worker clones, and the fault state
/// its VMs share (the crash-loop limit counts every worker's failures).
pub struct PluginVm {
    code: Arc<CompiledModule>,
    config: VmConfig,
    model: VmModel,
    /// Shared with the root contexts of every VM made from it.
    plugins: Mutex<Vec<Arc<PluginInfo>>>,
    base: Mutex<Vm>,
    env: VmEnv,
    watch: Watch,
    workers: AtomicU32,
}

impl PluginVm {
    /// The plugins this VM runs.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        lock(&self.plugins).iter().map(|p| PluginInfo::clone(p)).collect()
    }

    /// The code.
    pub fn code(&self) -> &Arc<CompiledModule> {
        &self.code
    }

    /// Where its plugins' streams run.
    pub fn model(&self) -> VmModel {
        self.model
    }

    /// Whether its plugins are in the crash-loop state (`FAIL_RELOAD` only): no more reloads
    /// until [`reload`](Self::reload).
    pub fn crash_looped(&self) -> bool {
        self.watch.fault.crash_looped()
    }

    /// A fresh VM (labelled `role` in the trace) with every plugin started and configured.
    fn make(&self, role: &str) -> Result<Vm, Error> {
        let mut vm = make_vm(&self.code, &self.config, &self.env, role, Some(&self.watch))?;
        let plugins = lock(&self.plugins).clone();
        for plugin in plugins {
            vm.start_plugin(plugin)?;
        }
        Ok(vm)
    }

    /// A fresh instance with every plugin started and configured: a worker's clone.
    pub fn instantiate(self: &Arc<Self>) -> Result<Vm, Error> {
        self.make("worker")
    }

    /// A worker's handle: its own clone, which applies the plugins' failure policy for the
    /// streams it creates (see [`WorkerVm`]).
    pub fn worker(self: &Arc<Self>) -> Result<WorkerVm, Error> {
        let number = self.workers.fetch_add(1, Ordering::Relaxed);
        let mut current = self.instantiate()?;
        let memory = self.watch.stats.memory_gauge(&number.to_string());
        memory.set(current.instance().memory_size());
        let fault = &self.watch.fault;
        let seed = self.env.seed ^ fnv(&self.watch.label) ^ u64::from(number).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Ok(WorkerVm {
            template: self.clone(),
            current,
            current_noted: false,
            stale: false,
            retired: Vec::new(),
            streams: Vec::new(),
            restarts: 0,
            memory,
            generation: fault.generation(),
            jitter: Jitter::new(seed),
            down: None,
            attempt: 0,
            serving_since: fault.now(),
            recovered: false,
        })
    }

    /// Reloads the configuration of the plugin with `plugin.root_id` (its configuration and
    /// policy; the VM model cannot change): the plugin is started with it in a fresh base VM,
    /// so a configuration the plugin rejects is refused here and nothing changes; otherwise
    /// the crash-loop state and the failure count are cleared and every worker makes a fresh
    /// VM for its next stream. This is how a crash-looped or failed (`FAIL_CLOSED`,
    /// `FAIL_OPEN`) plugin serves again.
    pub fn reload(&self, plugin: PluginInfo) -> Result<(), Error> {
        plugin.check_policy()?;
        if plugin.vm_model != self.model {
            return Err(bad_config(
                &plugin.name,
                "vm_model",
                format!("cannot change on a reload (from {} to {}): add the plugin anew", self.model.name(), plugin.vm_model.name()),
            ));
        }
        let mut plugins = self.plugins();
        let i = plugins.iter().position(|p| p.root_id == plugin.root_id).ok_or_else(|| Error::UnknownRoot(plugin.root_id.clone()))?;
        check_agreement(&plugins, &plugin, &self.config.vm_id)?;
        plugins[i] = plugin.clone();
        let mut base = make_vm(&self.code, &self.config, &self.env, "base", Some(&self.watch))?;
        for p in &plugins {
            base.start_plugin(p.clone())?;
        }
        self.watch.stats.memory("base", base.instance().memory_size());
        *lock(&self.base) = base;
        *lock(&self.plugins) = plugins.into_iter().map(Arc::new).collect();
        let stats = self.env.stats.plugin(&plugin.name, &self.watch.label, self.code.engine);
        self.watch.fault.add_plugin(&plugin, stats);
        self.watch.fault.reset(&plugin);
        Ok(())
    }
}

/// FNV-1a of a label, to tell workers of different VMs apart in the jitter seed.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A plugin's root context in the VMs of a [`WorkerVm`] (see [`WorkerVm::root`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RootId(pub u32);

/// A stream as a [`WorkerVm`] knows it: the VM it lives in and its context id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamRef {
    /// The VM the stream was created in.
    pub vm: crate::VmToken,
    /// Its context id in that VM.
    pub id: u32,
}

/// The failure a worker is handling: when its next reload may start.
#[derive(Clone, Copy, Debug)]
struct Down {
    until: Duration,
}

/// One worker thread's VMs of a [`PluginVm`], and the failure policy for the streams it
/// creates.
///
/// Streams go to the current VM ([`VmModel::Shared`], [`VmModel::PerPlugin`]) or to a fresh VM
/// each ([`VmModel::Ephemeral`]). When a VM fails, its in-flight streams stay with it and get
/// their plugin's failure answer; the worker is then *down*, and each new stream is created
/// rejected (answered whole by the policy, no guest code) unless the policy is `FAIL_RELOAD`,
/// the plugin is not crash-looped and the worker's backoff has passed since the failure: then
/// the worker makes a new VM (a restart) and the stream runs in it. A restart that cannot
/// start its VM is a failure too, and the next waits longer. A configuration reload
/// ([`PluginVm::reload`]) gives the worker a fresh VM and a clean slate.
pub struct WorkerVm {
    template: Arc<PluginVm>,
    current: Vm,
    /// The current VM's failure was noted.
    current_noted: bool,
    /// The current VM runs an older configuration and must be replaced before it serves.
    stale: bool,
    /// VMs replaced while streams still ran in them.
    retired: Vec<Vm>,
    /// The per-stream VMs of [`VmModel::Ephemeral`], each with whether its failure was noted.
    streams: Vec<(Vm, bool)>,
    restarts: u32,
    /// The current VM's `proxy_wasm_vm_memory_bytes` (labelled with the worker's number among
    /// its [`PluginVm`]'s).
    memory: MemoryGauge,
    /// The configuration generation its current VM runs.
    generation: u64,
    jitter: Jitter,
    down: Option<Down>,
    /// Reloads in a row: the backoff's exponent.
    attempt: u32,
    /// When the worker last started serving, and whether that was a recovery from a failure.
    serving_since: Duration,
    recovered: bool,
}

impl WorkerVm {
    /// The current VM: the one new streams go to (for [`VmModel::Ephemeral`], the VM of the
    /// plugins' root contexts: ticks, queue notifications, foreign functions).
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.current
    }

    /// How many reloads were tried (`FAIL_RELOAD`), whether or not the new VM started.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// When the worker may next reload, on the host's clock: `Some` while it is down after a
    /// failure (for a policy other than `FAIL_RELOAD`, or in the crash-loop state, it never
    /// reloads however late it is), `None` while it serves.
    pub fn down_until(&self) -> Option<Duration> {
        self.down.map(|d| d.until)
    }

    /// The VM a stream lives in.
    pub fn vm_of(&mut self, stream: StreamRef) -> Option<&mut Vm> {
        self.vm_with(stream.vm)
    }

    /// This worker's VM (current, retired or per-stream) with `token`, if it has one.
    pub fn vm_with(&mut self, token: crate::VmToken) -> Option<&mut Vm> {
        if self.current.token() == token {
            return Some(&mut self.current);
        }
        if let Some(vm) = self.retired.iter_mut().find(|vm| vm.token() == token) {
            return Some(vm);
        }
        self.streams.iter_mut().map(|(vm, _)| vm).find(|vm| vm.token() == token)
    }

    /// Whether this worker has a VM with `token`.
    pub fn owns(&self, token: crate::VmToken) -> bool {
        self.current.token() == token
            || self.retired.iter().any(|vm| vm.token() == token)
            || self.streams.iter().any(|(vm, _)| vm.token() == token)
    }

    /// The root context of the plugin with `root_id`, for creating its streams. Look it up once
    /// (per filter configuration, say): it stays valid when a VM is replaced, since every VM
    /// of a worker starts its plugins in the same order.
    pub fn root(&mut self, root_id: &str) -> Result<RootId, Error> {
        self.current.root_context(root_id).map(RootId).ok_or_else(|| Error::UnknownRoot(root_id.to_string()))
    }

    /// Creates an HTTP stream under `root` (`proxy_on_context_create`), in a live VM or, while
    /// the plugin is down, answered by its failure policy.
    pub fn create_http_stream(&mut self, root: RootId, stream: Box<dyn Stream>) -> Result<StreamRef, Error> {
        Ok(self.create(root, stream, false)?.0)
    }

    /// Creates a TCP connection under `root` and calls `proxy_on_new_connection` (or, while the
    /// plugin is down, answers it by the failure policy: closed, or continued).
    pub fn create_tcp_stream(&mut self, root: RootId, stream: Box<dyn Stream>) -> Result<(StreamRef, Action), Error> {
        let (s, action) = self.create(root, stream, true)?;
        Ok((s, action.unwrap_or(Action::Continue)))
    }

    /// Inlined into its two callers: returned through memory, its large `Result` was written a
    /// field at a time and read back 16 bytes at a time on every stream (a store-forwarding
    /// stall, 5% of an empty stream's time in `perf`).
    #[inline(always)]
    fn create(&mut self, root: RootId, stream: Box<dyn Stream>, tcp: bool) -> Result<(StreamRef, Option<Action>), Error> {
        if self.admit() {
            if self.template.model != VmModel::Ephemeral {
                let (id, action) = open(&mut self.current, root, stream, tcp)?;
                return Ok((StreamRef { vm: self.current.token(), id }, action));
            }
            match self.template.make("stream") {
                Ok(mut vm) => {
                    let (id, action) = open(&mut vm, root, stream, tcp)?;
                    let s = StreamRef { vm: vm.token(), id };
                    self.streams.push((vm, false));
                    return Ok((s, action));
                }
                Err(e) => {
                    let now = self.template.watch.fault.now();
                    self.start_failed(&e, now);
                }
            }
        }
        let (id, action) = self.current.create_rejected_stream(root.0, stream, tcp)?;
        Ok((StreamRef { vm: self.current.token(), id }, action))
    }

    /// Whether a new stream may run guest code: brings the worker up to date (a configuration
    /// reload, failures to note, a reload whose backoff has passed) and answers.
    fn admit(&mut self) -> bool {
        self.refresh();
        self.note_failures();
        let Some(down) = self.down else { return true };
        let fault = self.template.watch.fault.clone();
        if fault.reload().is_none() || fault.crash_looped() {
            return false;
        }
        let now = fault.now();
        if now < down.until {
            return false;
        }
        self.restarts += 1;
        fault.restarted();
        if self.current.is_failed() || self.stale {
            match self.template.make("worker") {
                Ok(vm) => self.replace_current(vm),
                Err(e) => {
                    self.start_failed(&e, now);
                    return false;
                }
            }
        }
        self.down = None;
        self.serving_since = now;
        self.recovered = true;
        true
    }

    /// Picks up a configuration reload: a fresh VM and a clean slate.
    fn refresh(&mut self) {
        let generation = self.template.watch.fault.generation();
        if generation == self.generation {
            return;
        }
        let fault = self.template.watch.fault.clone();
        self.generation = generation;
        self.down = None;
        self.attempt = 0;
        self.recovered = false;
        self.serving_since = fault.now();
        // Failures of VMs of the older configuration are not this one's.
        for (_, noted) in &mut self.streams {
            *noted = true;
        }
        match self.template.make("worker") {
            Ok(vm) => self.replace_current(vm),
            Err(e) => {
                self.current_noted = true;
                self.stale = true;
                self.start_failed(&e, fault.now());
            }
        }
    }

    /// Notes a failure of the current VM or of a per-stream VM: the worker goes down.
    #[inline]
    fn note_failures(&mut self) {
        // The common case, a live shared VM, decided without a call.
        if self.streams.is_empty() && (self.current_noted || !self.current.is_failed()) {
            return;
        }
        self.note_new_failures();
    }

    fn note_new_failures(&mut self) {
        let mut failed_at: Option<Duration> = None;
        let mut note = |vm: &mut Vm, noted: &mut bool| {
            if vm.is_failed() && !*noted {
                *noted = true;
                let at = vm.failed_at().unwrap_or_default();
                failed_at = Some(failed_at.map_or(at, |f| f.min(at)));
            }
        };
        note(&mut self.current, &mut self.current_noted);
        for (vm, noted) in &mut self.streams {
            note(vm, noted);
        }
        if let (Some(at), None) = (failed_at, self.down) {
            self.went_down(at);
        }
    }

    /// The worker's plugin failed at `at`: down until the backoff for this failure passes.
    fn went_down(&mut self, at: Duration) {
        let reload = self.template.watch.fault.reload();
        let max = reload.map_or(Duration::MAX, |r| r.backoff.max());
        self.attempt = if self.recovered && at.saturating_sub(self.serving_since) < max { self.attempt.saturating_add(1) } else { 0 };
        let wait = reload.map_or(Duration::ZERO, |r| r.backoff.wait(self.attempt, self.jitter.next()));
        self.down = Some(Down { until: at.saturating_add(wait) });
    }

    /// Making or starting a VM failed at `now` (a trap was already logged and counted by the
    /// VM itself): the worker is down, or stays down for a longer wait.
    fn start_failed(&mut self, error: &Error, now: Duration) {
        let fault = self.template.watch.fault.clone();
        if !matches!(error, Error::Trap { .. }) {
            fault.failed_outside_vm(crate::FailureKind::of_error(error), now, error);
        }
        match self.down {
            None => self.went_down(now),
            Some(_) => {
                self.attempt = self.attempt.saturating_add(1);
                let wait = fault.reload().map_or(Duration::ZERO, |r| r.backoff.wait(self.attempt, self.jitter.next()));
                self.down = Some(Down { until: now.saturating_add(wait) });
            }
        }
    }

    /// Makes `vm` current; the old one is kept while streams still run in it.
    fn replace_current(&mut self, vm: Vm) {
        let mut old = std::mem::replace(&mut self.current, vm);
        if old.has_streams() {
            self.retired.push(old);
        }
        self.current_noted = false;
        self.stale = false;
        self.memory.set(self.current.instance().memory_size());
    }

    /// Ends a stream (see [`Vm::finish_stream`]), noting a failure of its VM; a retired or
    /// per-stream VM is dropped with its last stream.
    pub fn finish_stream(&mut self, stream: StreamRef) -> Result<Box<dyn Stream>, Error> {
        // Not `ok_or`: the error would be built (and dropped) on every stream's end.
        let Some(vm) = self.vm_of(stream) else { return Err(Error::BadContext(stream.id)) };
        let data = vm.finish_stream(stream.id)?;
        self.note_failures();
        if !self.streams.is_empty() {
            self.streams.retain_mut(|(vm, _)| vm.has_streams());
        }
        if !self.retired.is_empty() {
            self.retired.retain_mut(Vm::has_streams);
        }
        self.memory.set(self.current.instance().memory_size());
        Ok(data)
    }
}

/// Creates a stream in a live VM: (context id, the answer to `proxy_on_new_connection` for TCP).
fn open(vm: &mut Vm, root: RootId, stream: Box<dyn Stream>, tcp: bool) -> Result<(u32, Option<Action>), Error> {
    if tcp {
        let (id, action) = vm.create_tcp_stream(root.0, stream)?;
        Ok((id, Some(action)))
    } else {
        Ok((vm.create_http_stream(root.0, stream)?, None))
    }
}

#[cfg(test)]
mod tests;
