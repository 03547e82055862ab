//! How a bench binary runs: which engines (`PWBENCH_ENGINES`), how long (`PWBENCH_QUICK`),
//! where the manifest for the report goes (`PWBENCH_OUT`), and loading a plugin through our
//! layer as an embedder would.
//!
//! # The manifest
//! Each bench binary writes `manifest-<binary>.tsv` into the report directory: one line per
//! fact, tab-separated, which `cargo xtask bench` joins with criterion's estimates:
//!
//! - `workload <id> <title> <unit> <baseline>`: a workload, in report order.
//! - `ours <workload> <engine> <criterion id> <divisor>`: our layer's measurement; the time per
//!   iteration is divided by `divisor` (operations per iteration).
//! - `baseline <workload> <engine> <criterion id> <divisor>`: its baseline.
//! - `skip <workload> <engine> <reason>`: not run on this engine, and why.
//! - `memory <engine> <plugin> <bytes per VM> <VMs>`: resident memory per extra worker VM.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::Criterion;
use proxy_wasm_host::{
    Embedder, Engine, HttpCall, Limits, LogLevel, MemoryStream, PluginHost, PluginInfo, PluginVm, RootId, Status, VmConfig,
    VmModel, WorkerVm,
};

/// The engines to run: every engine built in (`proxy_wasm_harness::engines::built_in`), or
/// those of them that `PWBENCH_ENGINES` (comma-separated) names.
pub fn engines() -> Vec<&'static str> {
    let wanted = std::env::var("PWBENCH_ENGINES").unwrap_or_default();
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    proxy_wasm_harness::engines::built_in().into_iter().filter(|e| wanted.is_empty() || wanted.contains(e)).collect()
}

/// A new engine called `name` (one of [`engines`]).
pub fn engine(name: &str) -> Arc<dyn Engine> {
    proxy_wasm_harness::engines::engine(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether `PWBENCH_QUICK` asks for a short run.
pub fn quick() -> bool {
    std::env::var("PWBENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether this run measures (`cargo bench`) rather than checks that each benchmark runs once
/// (`cargo test --benches`, criterion's test mode), by criterion's own rule: `--bench` without
/// `--test`. Heavy inputs are smaller when not measuring, and no manifest is written.
pub fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list")
}

/// Criterion as every bench binary sets it up: short runs under [`quick`] (0.3 s warm-up, 0.6 s
/// measurement, 10 samples), then the command line on top.
pub fn criterion() -> Criterion {
    let c = Criterion::default();
    let c = if quick() {
        c.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(600))
            .sample_size(10)
            .nresamples(10_000)
    } else {
        c.warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(4)).sample_size(50)
    };
    c.configure_from_args()
}

/// The size of the "1 MiB" inputs: 1 MiB when measuring, 64 KiB in test mode (where each
/// benchmark runs once, unoptimised).
pub fn mib() -> usize {
    if measuring() {
        1 << 20
    } else {
        64 << 10
    }
}

/// The directory the report is written to: `PWBENCH_OUT`, else `target/bench-report` of
/// `CARGO_TARGET_DIR` or of the workspace.
pub fn out_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PWBENCH_OUT") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("bench-report")
}

/// The manifest a bench binary writes for the report (see the [module docs](self)). Lines are
/// appended as they come, so a run that stops half-way still reports what it measured. Nothing
/// is written unless [`measuring`].
pub struct Manifest {
    file: Option<Mutex<File>>,
}

impl Manifest {
    /// Starts (truncates) `manifest-<binary>.tsv`.
    pub fn create(binary: &str) -> Manifest {
        if !measuring() {
            return Manifest { file: None };
        }
        let dir = out_dir();
        let path = dir.join(format!("manifest-{binary}.tsv"));
        let file = std::fs::create_dir_all(&dir)
            .and_then(|()| OpenOptions::new().create(true).write(true).truncate(true).open(&path))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        Manifest { file: Some(Mutex::new(file)) }
    }

    fn line(&self, fields: &[&str]) {
        if let Some(file) = &self.file {
            let line: Vec<String> = fields.iter().map(|f| f.replace(['\t', '\n'], " ")).collect();
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            writeln!(file, "{}", line.join("\t")).expect("the manifest is writable");
        }
    }

    /// A workload: its id, a one-line title, what one iteration is, and what its baseline is.
    pub fn workload(&self, id: &str, title: &str, unit: &str, baseline: &str) {
        self.line(&["workload", id, title, unit, baseline]);
    }

    /// Our layer's measurement of `workload` on `engine`: criterion id `full_id`, `divisor`
    /// operations per iteration.
    pub fn ours(&self, workload: &str, engine: &str, full_id: &str, divisor: u32) {
        self.line(&["ours", workload, engine, full_id, &divisor.to_string()]);
    }

    /// The baseline of `workload` on `engine`.
    pub fn baseline(&self, workload: &str, engine: &str, full_id: &str, divisor: u32) {
        self.line(&["baseline", workload, engine, full_id, &divisor.to_string()]);
    }

    /// `workload` does not run on `engine`, because `reason`.
    pub fn skip(&self, workload: &str, engine: &str, reason: &str) {
        self.line(&["skip", workload, engine, reason]);
    }

    /// Resident memory added per extra worker VM.
    pub fn memory(&self, engine: &str, plugin: &str, bytes_per_vm: i64, vms: usize) {
        self.line(&["memory", engine, plugin, &bytes_per_vm.to_string(), &vms.to_string()]);
    }
}

/// The embedder of the benchmarks: drops log lines, accepts every HTTP callout and remembers the
/// last one's id (so the benchmark can answer it).
#[derive(Default)]
pub struct BenchEmbedder {
    /// The id of the last HTTP callout sent.
    pub last_call: AtomicU32,
}

impl Embedder for BenchEmbedder {
    fn log(&self, _plugin: Option<&PluginInfo>, _level: LogLevel, _message: &str) {}

    fn http_call(&self, call: &HttpCall) -> Result<(), Status> {
        self.last_call.store(call.id, Ordering::Relaxed);
        Ok(())
    }
}

/// A plugin loaded through our layer as an embedder loads it: a host on one engine, the plugin
/// added with its configuration, and one worker's VM with the plugin's root context.
pub struct Loaded {
    /// The host.
    pub host: PluginHost,
    /// The embedder.
    pub embedder: Arc<BenchEmbedder>,
    /// The VM template workers clone.
    pub plugin: Arc<PluginVm>,
    /// One worker's VM.
    pub worker: WorkerVm,
    /// The plugin's root context in it.
    pub root: RootId,
}

impl Loaded {
    /// Loads `code` (Wasm or WAT bytes; for the Null VM a static plugin's name or a shared
    /// library) on `engine`, configured with `configuration`, and makes one worker. Without a
    /// CPU deadline: the workloads measure the host's bookkeeping, and the `deadline` workload
    /// measures what arming the deadline adds to a call.
    pub fn new(engine: Arc<dyn Engine>, code: &[u8], configuration: &str) -> Loaded {
        Loaded::with_model(engine, code, configuration, VmModel::Shared)
    }

    /// [`new`](Self::new) with the plugin's VM model `model`.
    pub fn with_model(engine: Arc<dyn Engine>, code: &[u8], configuration: &str, model: VmModel) -> Loaded {
        let embedder = Arc::new(BenchEmbedder::default());
        let host = PluginHost::new(engine, embedder.clone());
        let code = host.load(code).unwrap_or_else(|e| panic!("the plugin loads: {e}"));
        let info = PluginInfo {
            name: "bench".into(),
            configuration: configuration.as_bytes().to_vec(),
            vm_model: model,
            ..Default::default()
        };
        let config = VmConfig { limits: Limits { call_deadline: None, ..Limits::default() }, ..VmConfig::default() };
        let plugin = host.add_plugin(&code, config, info).unwrap_or_else(|e| panic!("the plugin starts: {e}"));
        let mut worker = plugin.worker().unwrap();
        let root = worker.root("").unwrap();
        Loaded { host, embedder, plugin, worker, root }
    }
}

/// A stream carrying the workloads' request headers ([`REQUEST_HEADERS`](crate::workload::REQUEST_HEADERS))
/// and `body`.
pub fn request(body: &[u8]) -> Box<MemoryStream> {
    let mut stream = MemoryStream::new();
    stream.request_headers = proxy_wasm_host::HeaderMap::from_pairs(crate::workload::REQUEST_HEADERS);
    stream.request_body = body.to_vec();
    Box::new(stream)
}

/// The bench guest built for `target` (see `crate::guest_plugins`), built on first use.
pub fn bench_guest(target: guest_plugins::Target) -> Vec<u8> {
    guest_plugins::bytes(target, "bench-guest").unwrap_or_else(|e| panic!("{e}"))
}

/// Benchmarks one iteration closure as `name` in `group`. Our layer and the baselines go through
/// the same indirect call, so neither side gets an edge from inlining.
pub fn bench(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, name: &str, iteration: &mut dyn FnMut()) {
    group.bench_function(name, |b| b.iter(&mut *iteration));
}
