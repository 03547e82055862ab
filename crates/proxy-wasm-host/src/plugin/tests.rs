//! The failure policy, the crash-loop limit, the VM models and the stats, on a fake engine
//! whose plugin fails when and how a test says (the same rules run on every real engine in the
//! conformance suite).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abi::{Callback, StreamType};

use super::*;
use crate::engine::{HostBox, HostPtr};
use crate::{
    Backoff, CrashLoop, DefaultEmbedder, Export, FailurePolicy, Import, Instance, ManualClock, MemoryStream, ReloadConfig,
    StreamEffect, Trap, TrapKind,
};

/// How the fake plugin misbehaves. Instances are numbered from 0 in the order made (the base VM
/// is 0, the first worker's VM 1, ...).
#[derive(Default)]
struct Script {
    /// `proxy_on_request_headers` fails on every `n`-th request an instance sees.
    fail_every: Option<u32>,
    /// How a failing callback fails.
    kind: Option<TrapKind>,
    /// From this instance on, this callback traps while the plugin starts.
    start_traps: Option<(u32, Callback)>,
    /// From this instance on, `proxy_on_configure` answers false.
    configure_refuses_from: Option<u32>,
    /// Instances made so far.
    made: AtomicU32,
}

struct FakeModule(Arc<Script>);

impl Module for FakeModule {
    fn imports(&self) -> &[Import] {
        &[]
    }

    fn exports(&self) -> &[Export] {
        &[]
    }

    fn instantiate(&self, host: VmHost) -> Result<Box<dyn Instance>, Error> {
        let number = self.0.made.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(FakeInstance { host: HostBox::new(host), script: self.0.clone(), number, requests: 0 }))
    }
}

struct FakeInstance {
    host: HostBox<VmHost>,
    script: Arc<Script>,
    number: u32,
    requests: u32,
}

// SAFETY: the state is in `self.host`, a `HostBox`: at a fixed address while this instance
// lives; the fake makes no reference to it of its own.
unsafe impl Instance for FakeInstance {
    fn has(&self, callback: Callback) -> bool {
        !matches!(callback, Callback::Initialize | Callback::Start | Callback::Main | Callback::OnRequestHeadersV010 | Callback::OnResponseHeadersV010)
    }

    fn call(&mut self, callback: Callback, _args: &[u64]) -> Result<u64, Trap> {
        let kind = self.script.kind.clone().unwrap_or(TrapKind::Guest);
        if let Some((from, c)) = self.script.start_traps {
            if c == callback && self.number >= from {
                return Err(Trap::new(kind, "start trap"));
            }
        }
        match callback {
            Callback::OnConfigure => Ok(u64::from(self.script.configure_refuses_from.is_none_or(|from| self.number < from))),
            Callback::OnVmStart | Callback::OnDone => Ok(1),
            Callback::OnRequestHeaders => {
                self.requests += 1;
                match self.script.fail_every {
                    Some(n) if self.requests.is_multiple_of(n) => {
                        Err(Trap::new(kind, format!("request {}", self.requests)).with_backtrace(vec!["on_request".into(), "handler".into()]))
                    }
                    _ => Ok(0),
                }
            }
            _ => Ok(0),
        }
    }

    fn host_ptr(&mut self) -> HostPtr {
        HostPtr::new(self.host.ptr())
    }

    fn memory_size(&mut self) -> u64 {
        65536 * (1 + u64::from(self.requests))
    }
}

/// A host on a manual clock with the fake plugin `script`, and its compiled module.
fn host(script: Script) -> (PluginHost, Arc<CompiledModule>, Arc<ManualClock>, Arc<Script>) {
    let clock = Arc::new(ManualClock::new());
    let host = PluginHost::new(Arc::new(NoEngine), Arc::new(DefaultEmbedder)).with_clock(clock.clone()).with_seed(7);
    let script = Arc::new(script);
    let code = Arc::new(CompiledModule {
        module: Arc::new(FakeModule(script.clone())),
        abi: AbiVersion::V021,
        sha256: [1; 32],
        engine: "fake",
    });
    (host, code, clock, script)
}

/// The engine of the fake: it compiles nothing (tests make the module themselves).
struct NoEngine;

impl Engine for NoEngine {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> crate::Capabilities {
        crate::Capabilities::default()
    }

    fn compile(&self, _bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        Err(Error::Compile { engine: "fake", message: "the fake engine compiles nothing".into() })
    }
}

fn plugin(policy: Option<FailurePolicy>) -> PluginInfo {
    PluginInfo { name: "p".into(), vm_id: "v".into(), failure_policy: policy, ..Default::default() }
}

fn reloading(base_ms: u64, max_ms: u64, max_failures: u32) -> PluginInfo {
    PluginInfo {
        reload_config: ReloadConfig {
            backoff: Backoff { base_interval: Duration::from_millis(base_ms), max_interval: Some(Duration::from_millis(max_ms)) },
            fail_open: false,
            crash_loop: CrashLoop { max_failures, window: Duration::from_secs(60) },
        },
        ..plugin(Some(FailurePolicy::FailReload))
    }
}

fn config() -> VmConfig {
    VmConfig { vm_id: "v".into(), ..Default::default() }
}

/// What a whole request got: served by the plugin, rejected (503) or passed by the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    Served,
    Rejected,
    Passed,
}

/// Runs one request (headers, then finish) on `worker`.
fn request(worker: &mut WorkerVm) -> Got {
    let root = worker.root("").unwrap();
    let s = worker.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
    let vm = worker.vm_of(s).unwrap();
    let action = vm.on_request_headers(s.id, true).unwrap();
    let failed = vm.is_failed();
    let reply = vm.memory_stream(s.id).unwrap().local_reply().cloned();
    worker.finish_stream(s).unwrap();
    match (action, reply) {
        (Action::Pause, Some(r)) => {
            assert_eq!(r.status, 503);
            Got::Rejected
        }
        (Action::Continue, None) if failed => Got::Passed,
        (Action::Continue, None) => Got::Served,
        other => panic!("unexpected answer {other:?}"),
    }
}

/// The value of the sample `name` whose labels include `labels`.
fn stat(host: &PluginHost, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = host.stats();
    let found: Vec<&StatSample> =
        samples.iter().filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v))).collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} in {samples:#?}");
    found[0].value
}

#[test]
fn fail_closed_rejects_every_later_stream_until_the_configuration_is_reloaded() {
    let (host, code, _, script) = host(Script { fail_every: Some(3), ..Default::default() });
    let vm = host.add_plugin(&code, config(), plugin(None)).unwrap();
    let mut worker = vm.worker().unwrap();
    let got: Vec<Got> = (0..6).map(|_| request(&mut worker)).collect();
    use Got::*;
    assert_eq!(got, [Served, Served, Rejected, Rejected, Rejected, Rejected]);
    assert_eq!(worker.restarts(), 0);
    assert_eq!(script.made.load(Ordering::SeqCst), 2, "no new VM");
    assert_eq!(stat(&host, "proxy_wasm_plugin_failures_total", &[("kind", "trap")]), 1.0);
    assert_eq!(stat(&host, "proxy_wasm_plugin_failed_streams_total", &[("outcome", "rejected")]), 4.0);
    assert_eq!(stat(&host, "proxy_wasm_plugin_failed_streams_total", &[("outcome", "passed")]), 0.0);

    vm.reload(plugin(None)).unwrap();
    assert_eq!(request(&mut worker), Served, "a fresh VM after the configuration reload");
    assert_eq!(script.made.load(Ordering::SeqCst), 4, "a base VM and a worker VM");
    assert_eq!(worker.restarts(), 0, "a configuration reload is not a restart");
}

#[test]
fn stats_come_sorted_by_name_and_labels_with_buckets_in_le_order() {
    let (host, code, _, _) = host(Script { fail_every: Some(3), ..Default::default() });
    let vm = host.add_plugin(&code, config(), plugin(None)).unwrap();
    let mut worker = vm.worker().unwrap();
    for _ in 0..4 {
        request(&mut worker);
    }
    let samples = host.stats();
    let key = |s: &StatSample| (s.name.clone(), s.labels.iter().filter(|(k, _)| k != "le").cloned().collect::<Vec<_>>());
    assert!(samples.windows(2).all(|w| key(&w[0]) <= key(&w[1])), "{samples:#?}");
    // A family with several series, whose render order is a hash map's.
    let outcomes = samples.iter().filter(|s| s.name == "proxy_wasm_plugin_failed_streams_total").count();
    assert!(outcomes >= 2, "{samples:#?}");
    // Buckets: each series' `le` bounds rise to +Inf, as rendered (not sorted as text).
    let buckets: Vec<&StatSample> = samples.iter().filter(|s| s.name.ends_with("_bucket")).collect();
    assert!(!buckets.is_empty(), "{samples:#?}");
    for series in buckets.chunk_by(|a, b| key(a) == key(b)) {
        let bounds: Vec<f64> = series.iter().map(|s| s.label("le").unwrap().parse::<f64>().unwrap()).collect();
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
        assert_eq!(bounds.last(), Some(&f64::INFINITY));
    }
}

#[test]
fn fail_open_passes_every_later_stream_and_the_older_spelling_means_the_same() {
    for p in [plugin(Some(FailurePolicy::FailOpen)), PluginInfo { fail_open: true, ..plugin(None) }] {
        let (host, code, _, _) = host(Script { fail_every: Some(2), ..Default::default() });
        let vm = host.add_plugin(&code, config(), p).unwrap();
        let mut worker = vm.worker().unwrap();
        let got: Vec<Got> = (0..4).map(|_| request(&mut worker)).collect();
        assert_eq!(got, [Got::Served, Got::Passed, Got::Passed, Got::Passed]);
        assert_eq!(stat(&host, "proxy_wasm_plugin_failed_streams_total", &[("outcome", "passed")]), 3.0);
    }
}

#[test]
fn a_tcp_connection_of_a_failed_fail_closed_plugin_is_closed_at_once() {
    let (host, code, _, _) = host(Script { fail_every: Some(1), ..Default::default() });
    let vm = host.add_plugin(&code, config(), plugin(None)).unwrap();
    let mut worker = vm.worker().unwrap();
    assert_eq!(request(&mut worker), Got::Rejected);
    let root = worker.root("").unwrap();
    let (s, action) = worker.create_tcp_stream(root, Box::new(MemoryStream::new())).unwrap();
    assert_eq!(action, Action::Pause);
    let effects = worker.vm_of(s).unwrap().memory_stream(s.id).unwrap().effects.clone();
    assert_eq!(effects, [StreamEffect::Close(StreamType::Downstream), StreamEffect::Close(StreamType::Upstream)]);
}

#[test]
fn fail_reload_reloads_after_the_backoff_and_not_before() {
    let (host, code, clock, script) = host(Script { fail_every: Some(3), ..Default::default() });
    let vm = host.add_plugin(&code, config(), reloading(1000, 10_000, 100)).unwrap();
    let mut worker = vm.worker().unwrap();
    use Got::*;
    assert_eq!([request(&mut worker), request(&mut worker), request(&mut worker)], [Served, Served, Rejected]);
    assert_eq!(worker.down_until(), Some(Duration::from_secs(1)), "the first wait is the base interval");
    assert_eq!(request(&mut worker), Rejected);
    clock.advance(Duration::from_millis(999));
    assert_eq!(request(&mut worker), Rejected, "not before the backoff");
    assert_eq!(worker.restarts(), 0);
    clock.advance(Duration::from_millis(1));
    assert_eq!(request(&mut worker), Served, "after it");
    assert_eq!(worker.restarts(), 1);
    assert_eq!(worker.down_until(), None);
    assert_eq!(script.made.load(Ordering::SeqCst), 3);
    // The new VM fails on its third request, within the maximum of its start: a longer wait,
    // in [1 s, 2 s].
    assert_eq!([request(&mut worker), request(&mut worker)], [Served, Rejected]);
    let until = worker.down_until().unwrap() - Duration::from_secs(1);
    assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&until), "{until:?}");
    assert_eq!(stat(&host, "proxy_wasm_plugin_restarts_total", &[]), 1.0);
    assert_eq!(stat(&host, "proxy_wasm_plugin_failures_total", &[("kind", "trap")]), 2.0);
    assert_eq!(stat(&host, "proxy_wasm_plugin_failed_streams_total", &[("outcome", "rejected")]), 4.0);
    assert_eq!(stat(&host, "proxy_wasm_vms_created_total", &[]), 3.0);
    assert_eq!(stat(&host, "proxy_wasm_vms_active", &[]), 2.0, "the base VM and the worker's; the failed one was dropped");
}

#[test]
fn fail_reload_with_fail_open_passes_streams_while_it_waits() {
    let (host, code, clock, _) = host(Script { fail_every: Some(1), ..Default::default() });
    let mut p = reloading(1000, 1000, 100);
    p.reload_config.fail_open = true;
    let vm = host.add_plugin(&code, config(), p).unwrap();
    let mut worker = vm.worker().unwrap();
    assert_eq!(request(&mut worker), Got::Passed);
    assert_eq!(request(&mut worker), Got::Passed);
    clock.advance(Duration::from_secs(1));
    assert_eq!(request(&mut worker), Got::Passed, "reloaded, and failed again");
    assert_eq!(worker.restarts(), 1);
}

#[test]
fn the_crash_loop_limit_stops_reloads_until_the_configuration_is_reloaded() {
    let (host, code, clock, script) = host(Script { fail_every: Some(1), ..Default::default() });
    let vm = host.add_plugin(&code, config(), reloading(1000, 1000, 3)).unwrap();
    let mut worker = vm.worker().unwrap();
    let logs = capture_logs(|| {
        for _ in 0..10 {
            assert_eq!(request(&mut worker), Got::Rejected);
            clock.advance(Duration::from_secs(1));
        }
    });
    assert_eq!(worker.restarts(), 2, "failures 2 and 3 came from reloads; the third put it in the crash loop");
    assert!(vm.crash_looped());
    assert_eq!(script.made.load(Ordering::SeqCst), 4);
    assert_eq!(stat(&host, "proxy_wasm_plugin_crash_looped", &[]), 1.0);
    assert_eq!(stat(&host, "proxy_wasm_plugin_crash_loops_total", &[]), 1.0);
    assert_eq!(logs.matches("crash loop").count(), 1, "logged once: {logs}");
    assert!(logs.contains("ERROR"), "{logs}");

    vm.reload(reloading(1000, 1000, 3)).unwrap();
    assert!(!vm.crash_looped());
    assert_eq!(stat(&host, "proxy_wasm_plugin_crash_looped", &[]), 0.0);
    assert_eq!(request(&mut worker), Got::Rejected, "a fresh VM, which fails again");
    clock.advance(Duration::from_secs(1));
    assert_eq!(request(&mut worker), Got::Rejected);
    assert_eq!(worker.restarts(), 3, "reloading again");
}

#[test]
fn failures_outside_the_window_do_not_count_toward_the_limit() {
    let (host, code, clock, _) = host(Script { fail_every: Some(1), ..Default::default() });
    let mut p = reloading(1000, 1000, 3);
    p.reload_config.crash_loop.window = Duration::from_secs(10);
    let vm = host.add_plugin(&code, config(), p).unwrap();
    let mut worker = vm.worker().unwrap();
    for _ in 0..20 {
        assert_eq!(request(&mut worker), Got::Rejected);
        clock.advance(Duration::from_secs(6));
    }
    assert!(!vm.crash_looped(), "never three failures within 10 s");
    assert_eq!(worker.restarts(), 19);
}

/// A plugin that starts once, then traps in `callback` (or refuses its configuration) on every
/// restart: reloads are spaced by the backoff and stop at the limit; the host never panics.
#[test]
fn a_plugin_failing_to_restart_is_retried_no_faster_than_the_backoff_and_no_more_than_the_cap() {
    for (start_traps, refuses, kind) in [
        (Some((2, Callback::OnVmStart)), None, "trap"),
        (Some((2, Callback::OnConfigure)), None, "trap"),
        (None, Some(2), "start_refused"),
    ] {
        let script = Script { fail_every: Some(1), start_traps, configure_refuses_from: refuses, ..Default::default() };
        let (host, code, clock, script) = host(script);
        let vm = host.add_plugin(&code, config(), reloading(1000, 8000, 5)).unwrap();
        let mut worker = vm.worker().unwrap();
        let mut reload_times = Vec::new();
        for _ in 0..400 {
            let before = worker.restarts();
            assert_eq!(request(&mut worker), Got::Rejected);
            if worker.restarts() > before {
                reload_times.push(clock.now());
            }
            clock.advance(Duration::from_millis(100));
        }
        assert_eq!(reload_times.len(), 4, "{kind}: four failed restarts after the first failure make five: {reload_times:?}");
        let gaps: Vec<Duration> = reload_times.windows(2).map(|w| w[1] - w[0]).collect();
        // Waits of attempts 1, 2, 3 after the first (1 s): in [1, 2], [2, 4], [4, 8] s, on a
        // 100 ms grid.
        for (gap, (lo, hi)) in gaps.iter().zip([(1000, 2100), (2000, 4100), (4000, 8100)]) {
            assert!((Duration::from_millis(lo)..=Duration::from_millis(hi)).contains(gap), "{kind}: {gaps:?}");
        }
        assert_eq!(reload_times[0], Duration::from_secs(1), "{kind}");
        assert!(vm.crash_looped(), "{kind}");
        assert_eq!(script.made.load(Ordering::SeqCst), 6, "{kind}: base, worker and four restarts");
        assert_eq!(stat(&host, "proxy_wasm_plugin_failures_total", &[("kind", kind)]), if kind == "trap" { 5.0 } else { 4.0 });
        assert_eq!(stat(&host, "proxy_wasm_vms_active", &[]), 2.0, "{kind}: failed VMs are not kept");
    }
}

#[test]
fn deadline_and_memory_limit_failures_are_counted_by_kind() {
    for (kind, name) in [(TrapKind::Deadline, "cpu_deadline"), (TrapKind::MemoryLimit, "memory_limit")] {
        let (host, code, clock, _) = host(Script { fail_every: Some(1), kind: Some(kind), ..Default::default() });
        let vm = host.add_plugin(&code, config(), reloading(1000, 1000, 100)).unwrap();
        let mut worker = vm.worker().unwrap();
        for _ in 0..5 {
            assert_eq!(request(&mut worker), Got::Rejected);
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(stat(&host, "proxy_wasm_plugin_failures_total", &[("kind", name)]), 5.0);
        assert_eq!(stat(&host, "proxy_wasm_plugin_failures_total", &[("kind", "trap")]), 0.0);
    }
}

#[test]
fn a_failing_plugin_leaves_another_plugin_of_the_host_serving() {
    let (host, code, clock, _) = host(Script { fail_every: Some(1), ..Default::default() });
    let good_code = Arc::new(CompiledModule {
        module: Arc::new(FakeModule(Arc::new(Script::default()))),
        abi: AbiVersion::V021,
        sha256: [2; 32],
        engine: "fake",
    });
    let bad = host.add_plugin(&code, config(), reloading(1000, 1000, 2)).unwrap();
    let other = PluginInfo { name: "q".into(), ..Default::default() };
    let good = host.add_plugin(&good_code, config(), other).unwrap();
    let (mut bad, mut good) = (bad.worker().unwrap(), good.worker().unwrap());
    for _ in 0..5 {
        assert_eq!(request(&mut bad), Got::Rejected);
        assert_eq!(request(&mut good), Got::Served);
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(stat(&host, "proxy_wasm_plugin_failures_total", &[("plugin", "p"), ("kind", "trap")]), 2.0);
    assert_eq!(stat(&host, "proxy_wasm_plugin_failures_total", &[("plugin", "q"), ("kind", "trap")]), 0.0);
    assert_eq!(stat(&host, "proxy_wasm_plugin_crash_looped", &[("plugin", "q")]), 0.0);
    assert_eq!(stat(&host, "proxy_wasm_plugin_crash_looped", &[("plugin", "p")]), 1.0);
}

#[test]
fn an_ephemeral_plugin_gets_a_fresh_vm_per_stream() {
    let (host, code, _, script) = host(Script { fail_every: Some(2), ..Default::default() });
    let p = PluginInfo { vm_model: VmModel::Ephemeral, ..plugin(None) };
    let vm = host.add_plugin(&code, config(), p).unwrap();
    let mut worker = vm.worker().unwrap();
    for _ in 0..5 {
        assert_eq!(request(&mut worker), Got::Served, "each VM sees one request and never its second");
    }
    assert_eq!(script.made.load(Ordering::SeqCst), 2 + 5);
    assert_eq!(stat(&host, "proxy_wasm_vms_active", &[("vm", "v/p")]), 2.0, "per-stream VMs are dropped with their stream");
    assert_eq!(stat(&host, "proxy_wasm_vms_created_total", &[("vm", "v/p")]), 7.0);
}

#[test]
fn an_ephemeral_plugin_follows_its_failure_policy_too() {
    let (host, code, clock, _) = host(Script { fail_every: Some(1), ..Default::default() });
    let p = PluginInfo { vm_model: VmModel::Ephemeral, ..reloading(1000, 1000, 100) };
    let vm = host.add_plugin(&code, config(), p).unwrap();
    let mut worker = vm.worker().unwrap();
    assert_eq!(request(&mut worker), Got::Rejected, "its VM fails");
    assert_eq!(request(&mut worker), Got::Rejected, "waiting: no VM made");
    clock.advance(Duration::from_secs(1));
    assert_eq!(request(&mut worker), Got::Rejected, "a fresh VM, which fails");
    assert_eq!(worker.restarts(), 1);
    assert!(!worker.vm().is_failed(), "the root contexts' VM is untouched");
}

#[test]
fn a_per_plugin_vm_is_not_shared_with_plugins_of_the_same_vm_id() {
    let (host, code, _, _) = host(Script::default());
    let a = host.add_plugin(&code, config(), PluginInfo { root_id: "a".into(), ..plugin(None) }).unwrap();
    let b = host.add_plugin(&code, config(), PluginInfo { root_id: "b".into(), ..plugin(None) }).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "shared by default");
    let c = PluginInfo { name: "c".into(), root_id: "c".into(), vm_model: VmModel::PerPlugin, ..plugin(None) };
    let c = host.add_plugin(&code, config(), c).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(c.plugins().len(), 1);
}

#[test]
fn bad_policy_values_are_refused_naming_the_key() {
    let (host, code, _, _) = host(Script::default());
    let both = PluginInfo { fail_open: true, ..plugin(Some(FailurePolicy::FailClosed)) };
    let e = host.add_plugin(&code, config(), both).err().unwrap();
    assert!(e.to_string().starts_with("plugin `p`: `fail_open` may not be set together with `failure_policy`"), "{e}");
    let e = host.add_plugin(&code, config(), reloading(0, 1000, 3)).err().unwrap();
    assert!(e.to_string().contains("`reload_config.backoff.base_interval` must be at least 1ms"), "{e}");
    let e = host.add_plugin(&code, config(), reloading(1000, 10, 3)).err().unwrap();
    assert!(e.to_string().contains("`reload_config.backoff.max_interval`"), "{e}");
    let e = host.add_plugin(&code, config(), reloading(1000, 1000, 0)).err().unwrap();
    assert!(e.to_string().contains("`reload_config.crash_loop.max_failures`"), "{e}");
    host.add_plugin(&code, config(), PluginInfo { root_id: "a".into(), ..reloading(1000, 1000, 3) }).unwrap();
    let e = host.add_plugin(&code, config(), PluginInfo { root_id: "b".into(), ..plugin(None) }).err().unwrap();
    assert!(e.to_string().contains("`failure_policy` (FAIL_CLOSED) differs from that of plugin `p` (FAIL_RELOAD)"), "{e}");
}

#[test]
fn every_failure_is_logged_with_the_plugin_the_vm_the_callback_the_kind_and_the_backtrace() {
    let (host, code, _, _) = host(Script { fail_every: Some(1), ..Default::default() });
    let p = PluginInfo { root_id: "r".into(), ..plugin(None) };
    let vm = host.add_plugin(&code, config(), p).unwrap();
    let mut worker = vm.worker().unwrap();
    let root = worker.root("r").unwrap();
    let logs = capture_logs(|| {
        let s = worker.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
        worker.vm_of(s).unwrap().on_request_headers(s.id, true).unwrap();
    });
    for part in [
        "ERROR",
        "plugin `p` failed in proxy_on_request_headers (trap): request 1; its VM has failed",
        "plugin=\"p\"",
        "root_id=\"r\"",
        "vm_id=\"v\"",
        "engine=\"fake\"",
        "callback=\"proxy_on_request_headers\"",
        "kind=\"trap\"",
        "backtrace=on_request <- handler",
    ] {
        assert!(logs.contains(part), "no `{part}` in {logs}");
    }
}

#[test]
fn callback_times_and_memory_are_in_the_stats() {
    let (host, code, _, _) = host(Script::default());
    let host = host.with_callback_timing(1);
    let vm = host.add_plugin(&code, config(), plugin(None)).unwrap();
    let mut worker = vm.worker().unwrap();
    request(&mut worker);
    request(&mut worker);
    let count = stat(&host, "proxy_wasm_plugin_callback_duration_seconds_count", &[("callback", "proxy_on_request_headers")]);
    assert_eq!(count, 2.0);
    assert_eq!(stat(&host, "proxy_wasm_vm_memory_bytes", &[("worker", "0")]), 3.0 * 65536.0);
    assert_eq!(stat(&host, "proxy_wasm_vm_memory_bytes", &[("worker", "base")]), 65536.0);
}

#[test]
fn callback_timing_samples_one_callback_in_n() {
    // The same requests on a fresh thread each (the sample count is per thread): timing every
    // callback, then one in 4, which times the thread's first and every fourth after it.
    let timed = |every: u32| {
        std::thread::spawn(move || {
            let (host, code, _, _) = host(Script::default());
            let host = host.with_callback_timing(every);
            let vm = host.add_plugin(&code, config(), plugin(None)).unwrap();
            let mut worker = vm.worker().unwrap();
            for _ in 0..10 {
                request(&mut worker);
            }
            let samples = host.stats();
            let counts = samples.iter().filter(|s| s.name == "proxy_wasm_plugin_callback_duration_seconds_count");
            counts.map(|s| s.value).sum::<f64>()
        })
        .join()
        .unwrap()
    };
    let all = timed(1);
    assert!(all >= 30.0, "three callbacks or more a request: {all}");
    assert_eq!(timed(4), (all / 4.0).ceil());
}

/// What `tracing` logged (on this thread) while `f` ran.
fn capture_logs(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = lock(&sink.0).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}
