//! The host's stats, kept with the `prometheus-client` crate and rendered in the Prometheus text
//! format (0.0.4) by [`PluginHost::render_stats`](crate::PluginHost::render_stats); and the
//! failure log, through the `tracing` facade.
//!
//! Per VM (labels `vm`, `engine`; `vm` is the vm_id, or `vm_id/plugin` for a plugin with a VM
//! model of its own, [`VmModel::PerPlugin`] or [`VmModel::Ephemeral`]):
//!
//! | name | type | what |
//! | --- | --- | --- |
//! | `proxy_wasm_vms_created_total` | counter | VMs made: base, worker, reloaded and per-stream |
//! | `proxy_wasm_vms_active` | gauge | VMs alive now (failed ones still finishing streams included) |
//! | `proxy_wasm_vm_memory_bytes` | gauge | linear memory of each worker's VM (label `worker`: `base`, `0`, `1`, ...), read when it is made and when a stream ends |
//!
//! Per plugin (labels `plugin`, `vm`, `engine`):
//!
//! | name | type | what |
//! | --- | --- | --- |
//! | `proxy_wasm_plugin_failures_total` | counter | VM failures, by `kind` ([`FailureKind`]) |
//! | `proxy_wasm_plugin_restarts_total` | counter | reloads tried (`FAIL_RELOAD`), whether the new VM started or not |
//! | `proxy_wasm_plugin_failed_streams_total` | counter | streams answered by the failure policy, by `outcome`: `rejected` (503 or closed) or `passed` (unfiltered) |
//! | `proxy_wasm_plugin_crash_looped` | gauge | 1 while the plugin is in the crash-loop state, else 0 |
//! | `proxy_wasm_plugin_crash_loops_total` | counter | times it entered the crash-loop state |
//! | `proxy_wasm_plugin_callback_duration_seconds` | histogram | time in callbacks on the plugin's contexts, by `callback`: a sample, one callback in N on each thread ([`PluginHost::with_callback_timing`](crate::PluginHost::with_callback_timing)) |
//!
//! The plugins' own metrics (`proxy_define_metric`) follow as `proxy_wasm_guest_<name>`, the
//! name with every character other than `[a-zA-Z0-9_:]` made `_`: counters (`_total`), gauges,
//! and histograms with Envoy's default buckets.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use abi::Callback;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType as PromType;
use prometheus_client::registry::Registry;

use crate::services::lock;
use crate::{FailureKind, MetricValue, PluginInfo, Services, Trap};

/// A label set.
type Labels = Vec<(&'static str, String)>;

/// How callback durations are bucketed: 1 µs to about 1 s, by fours.
fn callback_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 4.0, 11))
}

/// Envoy's default histogram buckets, for the plugins' own histograms.
const GUEST_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
    300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Every stat of a [`PluginHost`](crate::PluginHost), in its registry.
pub(crate) struct HostStats {
    registry: Registry,
    vms_created: Family<Labels, Counter>,
    vms_active: Family<Labels, Gauge>,
    vm_memory: Family<Labels, Gauge>,
    failures: Family<Labels, Counter>,
    restarts: Family<Labels, Counter>,
    failed_streams: Family<Labels, Counter>,
    crash_looped: Family<Labels, Gauge>,
    crash_loops: Family<Labels, Counter>,
    callbacks: Family<Labels, Histogram, fn() -> Histogram>,
    plugins: Mutex<HashMap<Labels, Arc<PluginStats>>>,
}

impl HostStats {
    pub(crate) fn new(services: Arc<Services>) -> Arc<Self> {
        let mut registry = Registry::default();
        let stats = HostStats {
            vms_created: Family::default(),
            vms_active: Family::default(),
            vm_memory: Family::default(),
            failures: Family::default(),
            restarts: Family::default(),
            failed_streams: Family::default(),
            crash_looped: Family::default(),
            crash_loops: Family::default(),
            callbacks: Family::new_with_constructor(callback_histogram as fn() -> Histogram),
            registry: Registry::default(),
            plugins: Mutex::default(),
        };
        registry.register("proxy_wasm_vms_created", "VMs made: base, worker, reloaded and per-stream", stats.vms_created.clone());
        registry.register("proxy_wasm_vms_active", "VMs alive now", stats.vms_active.clone());
        registry.register(
            "proxy_wasm_vm_memory_bytes",
            "Linear memory of each worker's VM, read when it is made and when a stream ends",
            stats.vm_memory.clone(),
        );
        registry.register("proxy_wasm_plugin_failures", "VM failures by kind", stats.failures.clone());
        registry.register("proxy_wasm_plugin_restarts", "Reloads of a failed VM tried (FAIL_RELOAD)", stats.restarts.clone());
        registry.register(
            "proxy_wasm_plugin_failed_streams",
            "Streams answered by the failure policy: rejected (503 or closed) or passed (unfiltered)",
            stats.failed_streams.clone(),
        );
        registry.register("proxy_wasm_plugin_crash_looped", "1 while the plugin is in the crash-loop state", stats.crash_looped.clone());
        registry.register("proxy_wasm_plugin_crash_loops", "Times the plugin entered the crash-loop state", stats.crash_loops.clone());
        registry.register(
            "proxy_wasm_plugin_callback_duration_seconds",
            "Time in callbacks on the plugin's contexts: a sample, one callback in N on each thread",
            stats.callbacks.clone(),
        );
        registry.register_collector(Box::new(GuestMetrics(services)));
        Arc::new(HostStats { registry, ..stats })
    }

    /// The stats in the Prometheus text format (0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, and our metrics encode without error.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// The stats of plugin `plugin` in VM `vm` on `engine`, made on first use.
    pub(crate) fn plugin(&self, plugin: &str, vm: &str, engine: &'static str) -> Arc<PluginStats> {
        let labels: Labels = vec![("plugin", plugin.to_string()), ("vm", vm.to_string()), ("engine", engine.to_string())];
        let mut plugins = lock(&self.plugins);
        if let Some(p) = plugins.get(&labels) {
            return p.clone();
        }
        let with = |key: &'static str, value: &str| {
            let mut l = labels.clone();
            l.push((key, value.to_string()));
            l
        };
        let stats = Arc::new(PluginStats {
            name: plugin.to_string(),
            restarts: self.restarts.get_or_create_owned(&labels),
            rejected: self.failed_streams.get_or_create_owned(&with("outcome", "rejected")),
            passed: self.failed_streams.get_or_create_owned(&with("outcome", "passed")),
            crash_looped: self.crash_looped.get_or_create_owned(&labels),
            crash_loops: self.crash_loops.get_or_create_owned(&labels),
            failures: FailureKind::ALL.map(|k| self.failures.get_or_create_owned(&with("kind", k.name()))),
            callback_family: self.callbacks.clone(),
            callbacks: std::array::from_fn(|_| OnceLock::new()),
            labels,
        });
        plugins.insert(stats.labels.clone(), stats.clone());
        stats
    }

    /// The stats of VM `vm` on `engine`.
    pub(crate) fn vm(&self, vm: &str, engine: &'static str) -> VmStats {
        let labels: Labels = vec![("vm", vm.to_string()), ("engine", engine.to_string())];
        VmStats {
            created: self.vms_created.get_or_create_owned(&labels),
            active: self.vms_active.get_or_create_owned(&labels),
            memory: self.vm_memory.clone(),
            labels,
        }
    }
}

/// A plugin's stats, resolved once.
pub(crate) struct PluginStats {
    name: String,
    labels: Labels,
    restarts: Counter,
    rejected: Counter,
    passed: Counter,
    crash_looped: Gauge,
    crash_loops: Counter,
    failures: [Counter; FailureKind::ALL.len()],
    callback_family: Family<Labels, Histogram, fn() -> Histogram>,
    /// Each callback's histogram, resolved on its first call.
    callbacks: [OnceLock<Histogram>; Callback::COUNT],
}

impl PluginStats {
    /// The plugin's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn failure(&self, kind: FailureKind) {
        if let Some(i) = FailureKind::ALL.iter().position(|k| *k == kind) {
            self.failures[i].inc();
        }
    }

    pub(crate) fn restart(&self) {
        self.restarts.inc();
    }

    pub(crate) fn failed_stream(&self, passed: bool) {
        if passed { &self.passed } else { &self.rejected }.inc();
    }

    pub(crate) fn crash_loop(&self, looped: bool) {
        self.crash_looped.set(i64::from(looped));
        if looped {
            self.crash_loops.inc();
        }
    }

    pub(crate) fn callback(&self, callback: Callback, took: Duration) {
        let histogram = self.callbacks[callback as usize].get_or_init(|| {
            let mut labels = self.labels.clone();
            labels.push(("callback", callback.name().to_string()));
            self.callback_family.get_or_create_owned(&labels)
        });
        histogram.observe(took.as_secs_f64());
    }
}

/// A VM group's stats (a [`PluginVm`](crate::PluginVm)'s VMs).
#[derive(Clone)]
pub(crate) struct VmStats {
    labels: Labels,
    created: Counter,
    active: Gauge,
    memory: Family<Labels, Gauge>,
}

impl VmStats {
    /// A VM was made: counted, and active until the returned guard is dropped.
    pub(crate) fn created(&self) -> ActiveVm {
        self.created.inc();
        self.active.inc();
        ActiveVm(self.active.clone())
    }

    /// The linear memory of worker `worker`'s VM (`base` for the base VM).
    pub(crate) fn memory(&self, worker: &str, bytes: u64) {
        self.memory_gauge(worker).set(bytes);
    }

    /// The gauge of worker `worker`'s linear memory, resolved once: a worker sets it after
    /// every stream, and resolving the label set costs a hash and an allocation each time.
    pub(crate) fn memory_gauge(&self, worker: &str) -> MemoryGauge {
        let mut labels = self.labels.clone();
        labels.push(("worker", worker.to_string()));
        MemoryGauge(self.memory.get_or_create_owned(&labels))
    }
}

/// One VM's `proxy_wasm_vm_memory_bytes`, resolved ([`VmStats::memory_gauge`]).
pub(crate) struct MemoryGauge(Gauge);

impl MemoryGauge {
    /// The VM's linear memory is now `bytes` bytes. Written only when it changed: a gauge's
    /// `set` is an atomic swap, a locked instruction that waits for every store before it (in
    /// `perf`, 3% of an empty stream's time, which ends with this call), while the size
    /// rarely changes between streams and reading the gauge is a plain load. A worker's VMs
    /// write their gauge from the worker's thread.
    pub(crate) fn set(&self, bytes: u64) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if self.0.get() != bytes {
            self.0.set(bytes);
        }
    }
}

/// Keeps a VM counted in `proxy_wasm_vms_active` while it lives.
pub(crate) struct ActiveVm(Gauge);

impl Drop for ActiveVm {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The plugins' own metrics, read from [`Services`] at each render.
struct GuestMetrics(Arc<Services>);

impl std::fmt::Debug for GuestMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuestMetrics")
    }
}

/// A metric name as Prometheus allows it: `proxy_wasm_guest_` and the name with every other
/// character than `[a-zA-Z0-9_:]` made `_`.
pub(crate) fn guest_metric_name(name: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    format!("proxy_wasm_guest_{clean}")
}

impl Collector for GuestMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let help = "A plugin's own metric (proxy_define_metric).";
        for (name, value) in self.0.metrics() {
            let name = guest_metric_name(&name);
            match value {
                MetricValue::Counter(c) => {
                    let counter: Counter = Counter::default();
                    counter.inc_by(c);
                    counter.encode(encoder.encode_descriptor(&name, help, None, PromType::Counter)?)?;
                }
                MetricValue::Gauge(g) => {
                    let gauge: Gauge = Gauge::default();
                    gauge.set(g);
                    gauge.encode(encoder.encode_descriptor(&name, help, None, PromType::Gauge)?)?;
                }
                MetricValue::Histogram(samples) => {
                    let histogram = Histogram::new(GUEST_BUCKETS);
                    for s in samples {
                        histogram.observe(s as f64);
                    }
                    histogram.encode(encoder.encode_descriptor(&name, help, None, PromType::Histogram)?)?;
                }
            }
        }
        Ok(())
    }
}

/// One sample of the rendered stats: the series (name and labels, as rendered) and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct StatSample {
    /// The metric name with its suffix (`_total`, `_bucket`, ...).
    pub name: String,
    /// The labels, in order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl StatSample {
    /// The series as the text format writes it: `name{k="v",...}`.
    pub fn series(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Reads the samples back from the text format (what [`HostStats::render`] wrote).
pub(crate) fn parse_samples(text: &str) -> Vec<StatSample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().ok()?,
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), Vec::new()),
                Some((name, rest)) => (name.to_string(), parse_labels(rest.strip_suffix('}')?)),
            };
            Some(StatSample { name, labels, value })
        })
        .collect()
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes in values.
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                other => value.push(other),
            }
        }
        out.push((key.trim_start_matches(',').to_string(), value));
        rest = &after[end..];
    }
    out
}

/// Logs a VM failure through `tracing` at error level, with everything an operator needs: the
/// plugin, its root id, the vm_id, the engine, the callback, the kind, the engine's message
/// and the Wasm backtrace (innermost first) where the engine gives one.
pub(crate) fn log_failure(plugin: Option<&PluginInfo>, vm_id: &str, engine: &str, callback: Callback, trap: &Trap) {
    let kind = FailureKind::of_trap(&trap.kind);
    let name = plugin.map_or("", |p| p.name.as_str());
    let root_id = plugin.map_or("", |p| p.root_id.as_str());
    let backtrace: Cow<'_, str> = if trap.backtrace.is_empty() {
        Cow::Borrowed("(none)")
    } else {
        Cow::Owned(trap.backtrace.iter().map(|f| crate::error::demangled(f)).collect::<Vec<_>>().join(" <- "))
    };
    tracing::error!(
        plugin = name,
        root_id,
        vm_id,
        engine,
        callback = callback.name(),
        kind = kind.name(),
        backtrace = %backtrace,
        "plugin `{name}` failed in {callback} ({}): {trap}; its VM has failed",
        kind.name()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_back_with_escapes() {
        let s = parse_samples("# HELP x y\n# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 3\ny 2.5\nz_bucket{le=\"+Inf\"} 7\n");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "x_total");
        assert_eq!(s[0].labels, vec![("a".to_string(), "1".to_string()), ("b".to_string(), "q\"\\\n".to_string())]);
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].series(), "y");
        assert_eq!(s[2].label("le"), Some("+Inf"));
    }

    #[test]
    fn guest_metric_names_are_made_valid() {
        assert_eq!(guest_metric_name("wasmcustom.requests-total"), "proxy_wasm_guest_wasmcustom_requests_total");
    }

    use abi::MetricType;

    #[test]
    fn the_registry_renders_every_family_in_the_text_format() {
        let services = Services::new();
        let id = services.define_metric(MetricType::Counter, b"hits.ok");
        services.increment_metric(id, 3).unwrap();
        let g = services.define_metric(MetricType::Gauge, b"depth");
        services.record_metric(g, 5).unwrap();
        let h = services.define_metric(MetricType::Histogram, b"sizes");
        services.record_metric(h, 7).unwrap();
        let stats = HostStats::new(services);
        let p = stats.plugin("authz", "v", "fake");
        p.failure(FailureKind::CpuDeadline);
        p.failed_stream(false);
        p.callback(Callback::OnTick, Duration::from_micros(3));
        let vm = stats.vm("v", "fake");
        let guard = vm.created();
        vm.memory("0", 65536);
        let text = stats.render();
        for line in [
            "# TYPE proxy_wasm_vms_created_total counter",
            "proxy_wasm_vms_created_total{vm=\"v\",engine=\"fake\"} 1",
            "proxy_wasm_vms_active{vm=\"v\",engine=\"fake\"} 1",
            "proxy_wasm_vm_memory_bytes{vm=\"v\",engine=\"fake\",worker=\"0\"} 65536",
            "proxy_wasm_plugin_failures_total{plugin=\"authz\",vm=\"v\",engine=\"fake\",kind=\"cpu_deadline\"} 1",
            "proxy_wasm_plugin_failures_total{plugin=\"authz\",vm=\"v\",engine=\"fake\",kind=\"trap\"} 0",
            "proxy_wasm_plugin_failed_streams_total{plugin=\"authz\",vm=\"v\",engine=\"fake\",outcome=\"rejected\"} 1",
            "proxy_wasm_plugin_crash_looped{plugin=\"authz\",vm=\"v\",engine=\"fake\"} 0",
            "proxy_wasm_plugin_callback_duration_seconds_count{plugin=\"authz\",vm=\"v\",engine=\"fake\",callback=\"proxy_on_tick\"} 1",
            "# TYPE proxy_wasm_guest_hits_ok_total counter",
            "proxy_wasm_guest_hits_ok_total 3",
            "proxy_wasm_guest_depth 5",
            "proxy_wasm_guest_sizes_bucket{le=\"10\"} 1",
        ] {
            assert!(text.contains(line), "no `{line}` in:\n{text}");
        }
        drop(guard);
        assert!(stats.render().contains("proxy_wasm_vms_active{vm=\"v\",engine=\"fake\"} 0"));
        let samples = parse_samples(&stats.render());
        assert!(samples.iter().any(|s| s.name == "proxy_wasm_plugin_restarts_total" && s.label("plugin") == Some("authz")));
    }
}
