//! Loading plugins and making VMs: [`PluginHost`] compiles each module once (cached by
//! sha256), keys VMs by (vm_id, engine, VM configuration, code hash), starts a base VM to
//! validate each plugin's configuration, and makes one clone per worker ([`WorkerVm`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use abi::{AbiVersion, MapLimits};
use sha2::{Digest, Sha256};

use crate::services::lock;
use crate::engine::{allocator_callback, callback_exports, check_imports};
use crate::{CapabilityRestriction, Embedder, PrecompiledCache, Engine, Error, Limits, Module, PluginInfo, Services, Stream, Trace, Vm, VmHost, VmHostConfig};

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
}

/// Instantiates `code` with a fresh [`VmHost`] and runs its start functions. `role` labels the
/// VM in the trace (`base` or `worker`).
fn make_vm(code: &CompiledModule, config: &VmConfig, env: &VmEnv, role: &str) -> Result<Vm, Error> {
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
    host.set_trace(env.trace.as_ref(), format!("{role}, vm_id {:?}", config.vm_id));
    host.set_allocator(allocator_callback(code.module.exports()));
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
    capabilities: CapabilityRestriction,
}

impl PluginHost {
    /// A host for plugins on `engine`, serving `embedder`.
    pub fn new(engine: Arc<dyn Engine>, embedder: Arc<dyn Embedder>) -> Self {
        PluginHost {
            engine,
            env: VmEnv { embedder, services: Services::new(), trace: None },
            cache: None,
            modules: Arc::default(),
            vms: Mutex::new(HashMap::new()),
        }
    }

    /// A host on the same engine that shares this one's compiled modules (so nothing is
    /// compiled twice) but nothing else: its own embedder, services, VMs and no trace.
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

    /// A new VM of `code`, started (`_initialize` / `_start`) but with no plugin yet.
    pub fn new_vm(&self, code: &CompiledModule, config: &VmConfig) -> Result<Vm, Error> {
        make_vm(code, config, &self.env, "base")
    }

    /// Adds a plugin: finds or makes the VM for (vm_id, engine, VM configuration, code), and
    /// starts the plugin in that VM's base instance (on this thread) so that a plugin that
    /// rejects its configuration is refused here, with the reason. Workers then make their
    /// own clones with [`PluginVm::worker`].
    pub fn add_plugin(&self, code: &Arc<CompiledModule>, config: VmConfig, plugin: PluginInfo) -> Result<Arc<PluginVm>, Error> {
        let key = VmKey {
            vm_id: config.vm_id.clone(),
            engine: self.engine.name(),
            configuration: config.configuration.clone(),
            code: code.sha256,
            capabilities: config.capabilities.clone(),
        };
        let existing = lock(&self.vms).get(&key).cloned();
        let vm = match existing {
            Some(vm) => vm,
            None => {
                let base = self.new_vm(code, &config)?;
                let vm = Arc::new(PluginVm {
                    code: code.clone(),
                    config,
                    plugins: Mutex::new(Vec::new()),
                    base: Mutex::new(base),
                    env: self.env.clone(),
                });
                lock(&self.vms).entry(key).or_insert(vm).clone()
            }
        };
        lock(&vm.base).start_plugin(plugin.clone())?;
        lock(&vm.plugins).push(plugin);
        Ok(vm)
    }
}

/// A VM configuration with its plugins: the template every worker clones.
pub struct PluginVm {
    code: Arc<CompiledModule>,
    config: VmConfig,
    plugins: Mutex<Vec<PluginInfo>>,
    base: Mutex<Vm>,
    env: VmEnv,
}

impl PluginVm {
    /// The plugins this VM runs.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        lock(&self.plugins).clone()
    }

    /// The code.
    pub fn code(&self) -> &Arc<CompiledModule> {
        &self.code
    }

    /// A fresh instance with every plugin started and configured: a worker's clone.
    pub fn instantiate(self: &Arc<Self>) -> Result<Vm, Error> {
        let mut vm = make_vm(&self.code, &self.config, &self.env, "worker")?;
        for plugin in self.plugins() {
            vm.start_plugin(plugin)?;
        }
        Ok(vm)
    }

    /// A worker's handle: its own clone, replaced by a fresh one for new streams after a
    /// failure.
    pub fn worker(self: &Arc<Self>) -> Result<WorkerVm, Error> {
        Ok(WorkerVm { template: self.clone(), current: self.instantiate()?, retired: Vec::new(), restarts: 0 })
    }
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

/// One worker thread's VM of a [`PluginVm`]. When the VM fails, its in-flight streams stay
/// with it (and get their plugin's failure policy), and the next stream gets a fresh VM.
pub struct WorkerVm {
    template: Arc<PluginVm>,
    current: Vm,
    retired: Vec<Vm>,
    restarts: u32,
}

impl WorkerVm {
    /// The current VM: the one new streams go to.
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.current
    }

    /// How many times a failed VM was replaced.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The VM a stream lives in.
    pub fn vm_of(&mut self, stream: StreamRef) -> Option<&mut Vm> {
        self.vm_with(stream.vm)
    }

    /// This worker's VM (current or retired) with `token`, if it has one.
    pub fn vm_with(&mut self, token: crate::VmToken) -> Option<&mut Vm> {
        if self.current.token() == token {
            return Some(&mut self.current);
        }
        self.retired.iter_mut().find(|vm| vm.token() == token)
    }

    /// Whether this worker's current or a retired VM has `token`.
    pub fn owns(&self, token: crate::VmToken) -> bool {
        self.current.token() == token || self.retired.iter().any(|vm| vm.token() == token)
    }

    /// Replaces a failed current VM with a fresh clone (keeping the failed one for its
    /// in-flight streams).
    pub fn ensure_live(&mut self) -> Result<(), Error> {
        if self.current.is_failed() {
            let fresh = self.template.instantiate()?;
            let failed = std::mem::replace(&mut self.current, fresh);
            self.retired.push(failed);
            self.restarts += 1;
        }
        Ok(())
    }

    /// The root context of the plugin with `root_id`, for creating its streams. Look it up once
    /// (per filter configuration, say): it stays valid when a failed VM is replaced, since
    /// every VM of a worker starts its plugins in the same order.
    pub fn root(&mut self, root_id: &str) -> Result<RootId, Error> {
        self.current.root_context(root_id).map(RootId).ok_or_else(|| Error::UnknownRoot(root_id.to_string()))
    }

    /// Creates an HTTP stream under `root` in a live VM (`proxy_on_context_create`).
    pub fn create_http_stream(&mut self, root: RootId, stream: Box<dyn Stream>) -> Result<StreamRef, Error> {
        self.ensure_live()?;
        let id = self.current.create_http_stream(root.0, stream)?;
        Ok(StreamRef { vm: self.current.token(), id })
    }

    /// Creates a TCP connection under `root` in a live VM and calls `proxy_on_new_connection`.
    pub fn create_tcp_stream(&mut self, root: RootId, stream: Box<dyn Stream>) -> Result<(StreamRef, crate::Action), Error> {
        self.ensure_live()?;
        let (id, action) = self.current.create_tcp_stream(root.0, stream)?;
        Ok((StreamRef { vm: self.current.token(), id }, action))
    }

    /// Ends a stream (see [`Vm::finish_stream`]); a retired VM is dropped with its last
    /// stream.
    pub fn finish_stream(&mut self, stream: StreamRef) -> Result<Box<dyn Stream>, Error> {
        let vm = self.vm_of(stream).ok_or(Error::BadContext(stream.id))?;
        let data = vm.finish_stream(stream.id)?;
        self.retired.retain_mut(Vm::has_streams);
        Ok(data)
    }
}
