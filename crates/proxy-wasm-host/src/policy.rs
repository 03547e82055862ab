//! What the host does when a plugin fails: the failure policy (named as Envoy's
//! `PluginConfig.failure_policy`), the reload backoff and the crash-loop limit, the VM model,
//! and the clock the policy reads.
//!
//! # The rules
//!
//! A VM *fails* when guest code traps, runs past its CPU deadline, needs more memory than its
//! limit, or breaks the ABI so that the host cannot answer with a status; no guest code runs
//! in it again ([`Vm`](crate::Vm)). What happens next is the policy of the plugins in it:
//!
//! - [`FailurePolicy::FailClosed`] (the default, as in Envoy): every stream of the plugin gets
//!   a local 503 (`wasm_fail_stream`, gRPC UNAVAILABLE for a gRPC request; a reset once the
//!   response started), a TCP connection is closed; the VM is not replaced until the plugin's
//!   configuration is reloaded ([`PluginVm::reload`](crate::PluginVm::reload)).
//! - [`FailurePolicy::FailOpen`]: every stream of the plugin goes on unfiltered, until the
//!   configuration is reloaded. `fail_open: true` is the older spelling of this policy.
//! - [`FailurePolicy::FailReload`]: each worker makes a new VM for a new stream once the
//!   worker's backoff ([`Backoff`]) has passed since the failure; until then streams are
//!   answered as fail-closed, or as fail-open when [`ReloadConfig::fail_open`] is set. After
//!   [`CrashLoop::max_failures`] failures of the plugin (across its workers) within
//!   [`CrashLoop::window`], it stops reloading and answers every stream that way until its
//!   configuration is reloaded: the crash-loop state, entered with one error log and counted.
//!
//! Envoy's `FAIL_RELOAD` waits `[base, 1.5 base)` before each reload (a jittered lower bound
//! that does not grow) and has no crash-loop limit; this host backs off exponentially to
//! `max_interval`, as Envoy's `BackoffStrategy` message describes, and stops at the limit, as
//! issue 18 asks. Everything else follows Envoy's `PluginConfig`: `fail_open` and
//! `failure_policy` may not both be set, an unspecified policy is `FAIL_CLOSED`, the base
//! interval defaults to 1 s and the maximum to ten times the base.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abi::Callback;

use crate::services::lock;
use crate::stats::{ActiveVm, HostStats, PluginStats, VmStats};
use crate::host::root_plugin;
use crate::{Error, PluginInfo, TrapKind, VmHost};

/// What a plugin's streams get when its VM fails (Envoy's `FailurePolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailurePolicy {
    /// A local 503 for HTTP streams, TCP connections closed; no new VM until the configuration
    /// is reloaded. Envoy's default (`UNSPECIFIED` means this).
    #[default]
    FailClosed,
    /// Streams go on unfiltered; no new VM until the configuration is reloaded.
    FailOpen,
    /// A new VM per worker once its backoff has passed; meanwhile streams are answered as
    /// fail-closed (or fail-open with [`ReloadConfig::fail_open`]).
    FailReload,
}

impl FailurePolicy {
    /// Every policy.
    pub const ALL: [FailurePolicy; 3] = [FailurePolicy::FailClosed, FailurePolicy::FailOpen, FailurePolicy::FailReload];

    /// Envoy's name: `FAIL_CLOSED`, `FAIL_OPEN`, `FAIL_RELOAD`.
    pub fn name(self) -> &'static str {
        match self {
            FailurePolicy::FailClosed => "FAIL_CLOSED",
            FailurePolicy::FailOpen => "FAIL_OPEN",
            FailurePolicy::FailReload => "FAIL_RELOAD",
        }
    }

    /// The policy with Envoy's name `name`; `UNSPECIFIED` is [`FailurePolicy::FailClosed`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "UNSPECIFIED" | "FAIL_CLOSED" => Some(FailurePolicy::FailClosed),
            "FAIL_OPEN" => Some(FailurePolicy::FailOpen),
            "FAIL_RELOAD" => Some(FailurePolicy::FailReload),
            _ => None,
        }
    }
}

/// How long a worker waits before it reloads a failed VM: exponential from
/// [`base_interval`](Self::base_interval) to [`max`](Self::max), with jitter (Envoy's
/// `BackoffStrategy` message).
///
/// The `k`-th reload in a row (`k = 0` after a VM that ran at least `max` before it failed)
/// waits a random time in `[max(c/2, base), c]` where `c = min(base * 2^k, max)`: never less
/// than the base interval, never more than the maximum. The first wait is exactly the base;
/// later ones are spread so that workers that failed together do not reload together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// The first wait. At least 1 ms (as Envoy's `base_interval`); default 1 s.
    pub base_interval: Duration,
    /// The longest wait; `None` is ten times the base (Envoy's default). Not shorter than the
    /// base.
    pub max_interval: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base_interval: Duration::from_secs(1), max_interval: None }
    }
}

impl Backoff {
    /// The longest wait: [`max_interval`](Self::max_interval), or ten times the base.
    pub fn max(&self) -> Duration {
        self.max_interval.unwrap_or_else(|| self.base_interval.saturating_mul(10))
    }

    /// Refuses a base under 1 ms or a maximum shorter than the base, naming the key.
    pub fn validate(&self, plugin: &str) -> Result<(), Error> {
        if self.base_interval < Duration::from_millis(1) {
            return Err(bad_config(
                plugin,
                "reload_config.backoff.base_interval",
                format!("must be at least 1ms, found {:?}", self.base_interval),
            ));
        }
        if let Some(max) = self.max_interval {
            if max < self.base_interval {
                return Err(bad_config(
                    plugin,
                    "reload_config.backoff.max_interval",
                    format!("({max:?}) must not be shorter than base_interval ({:?})", self.base_interval),
                ));
            }
        }
        Ok(())
    }

    /// The wait before the `attempt`-th reload in a row (from 0), from a random number.
    pub fn wait(&self, attempt: u32, random: u64) -> Duration {
        let base = self.base_interval.as_nanos();
        let max = self.max().as_nanos().max(base);
        let ceiling = base.saturating_mul(1u128 << attempt.min(64)).min(max);
        let floor = (ceiling / 2).max(base);
        let spread = ceiling - floor;
        let nanos = floor + u128::from(random) % (spread + 1);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// When a reloading plugin stops reloading: after `max_failures` failures within `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CrashLoop {
    /// Failures of the plugin (every worker's, reloads that failed to start included) that put
    /// it in the crash-loop state; at least 1. Default 10.
    pub max_failures: u32,
    /// How far back failures count; at least 1 ms. Default 60 s.
    pub window: Duration,
}

impl Default for CrashLoop {
    /// 10 failures within 60 s: a plugin that fails on every request reaches it within about 30
    /// s on one worker (the backoff spaces its reloads 1, 1-2, 2-4, 4-8, 5-10 s, ...), a
    /// plugin that crashes now and then never does.
    fn default() -> Self {
        CrashLoop { max_failures: 10, window: Duration::from_secs(60) }
    }
}

impl CrashLoop {
    /// Refuses `max_failures` 0 or a window under 1 ms, naming the key.
    pub fn validate(&self, plugin: &str) -> Result<(), Error> {
        if self.max_failures == 0 {
            return Err(bad_config(plugin, "reload_config.crash_loop.max_failures", "must be at least 1, found 0".into()));
        }
        if self.window < Duration::from_millis(1) {
            return Err(bad_config(
                plugin,
                "reload_config.crash_loop.window",
                format!("must be at least 1ms, found {:?}", self.window),
            ));
        }
        Ok(())
    }
}

/// How a `FAIL_RELOAD` plugin reloads (Envoy's `ReloadConfig`, with this host's additions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReloadConfig {
    /// The wait before each reload.
    pub backoff: Backoff,
    /// Whether streams go on unfiltered (true) or get the fail-closed answer (false, Envoy's
    /// behaviour) while a reload waits for its backoff and in the crash-loop state. Not in
    /// Envoy's `ReloadConfig`.
    pub fail_open: bool,
    /// When to stop reloading. Not in Envoy.
    pub crash_loop: CrashLoop,
}

impl ReloadConfig {
    /// Checks the backoff and the crash-loop limit, naming the key at fault.
    pub fn validate(&self, plugin: &str) -> Result<(), Error> {
        self.backoff.validate(plugin)?;
        self.crash_loop.validate(plugin)
    }
}

/// Where a plugin's streams run, chosen per plugin: the trade between the cost of making VMs
/// and how much plugins and streams share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VmModel {
    /// One VM per worker, shared by every plugin with the same vm_id, VM configuration and
    /// code (Envoy's model). Plugins in it share its memory and fail together.
    #[default]
    Shared,
    /// One VM per worker for this plugin alone, even beside plugins with the same vm_id (which
    /// still share shared data and queues, scoped by vm_id).
    PerPlugin,
    /// A fresh VM from the compiled module for each stream (start functions, `proxy_on_vm_start`
    /// and `proxy_on_configure` run for it), dropped when the stream ends: nothing a stream
    /// leaves in memory reaches the next. Each worker keeps one more VM of the plugin for its
    /// root context (ticks, queue notifications, foreign functions).
    Ephemeral,
}

impl VmModel {
    /// Every model.
    pub const ALL: [VmModel; 3] = [VmModel::Shared, VmModel::PerPlugin, VmModel::Ephemeral];

    /// Its name in exchange files: `SHARED`, `PER_PLUGIN`, `EPHEMERAL`.
    pub fn name(self) -> &'static str {
        match self {
            VmModel::Shared => "SHARED",
            VmModel::PerPlugin => "PER_PLUGIN",
            VmModel::Ephemeral => "EPHEMERAL",
        }
    }

    /// The model named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        VmModel::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Why a VM failed, as logs and stats name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The guest trapped (`unreachable`, an out-of-bounds access, a panic).
    Trap,
    /// A callback ran past the CPU deadline.
    CpuDeadline,
    /// The guest needed more linear memory than the limit.
    MemoryLimit,
    /// The guest used the ABI in a way the host cannot answer with a status (a host function
    /// called in a restricted phase, [`TrapKind::Restricted`]), so the host failed the VM.
    Abi,
    /// A reloaded VM's plugin refused to start: `proxy_on_vm_start` or `proxy_on_configure`
    /// returned false.
    StartRefused,
    /// The engine could not make a VM for a reload.
    Instantiate,
}

impl FailureKind {
    /// Every kind.
    pub const ALL: [FailureKind; 6] = [
        FailureKind::Trap,
        FailureKind::CpuDeadline,
        FailureKind::MemoryLimit,
        FailureKind::Abi,
        FailureKind::StartRefused,
        FailureKind::Instantiate,
    ];

    /// The `kind` label: `trap`, `cpu_deadline`, `memory_limit`, `abi`, `start_refused`,
    /// `instantiate`.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::CpuDeadline => "cpu_deadline",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::Abi => "abi",
            FailureKind::StartRefused => "start_refused",
            FailureKind::Instantiate => "instantiate",
        }
    }

    /// The kind of a trap.
    pub fn of_trap(kind: &TrapKind) -> Self {
        match kind {
            TrapKind::Guest => FailureKind::Trap,
            TrapKind::Restricted => FailureKind::Abi,
            TrapKind::Deadline => FailureKind::CpuDeadline,
            TrapKind::MemoryLimit => FailureKind::MemoryLimit,
        }
    }

    /// The kind of an error making or starting a VM.
    pub fn of_error(error: &Error) -> Self {
        match error {
            Error::Trap { trap, .. } => FailureKind::of_trap(&trap.kind),
            Error::VmStartRejected { .. } | Error::ConfigureRejected { .. } => FailureKind::StartRefused,
            _ => FailureKind::Instantiate,
        }
    }
}

/// The time the fault policy reads: monotonic, from an arbitrary origin. A [`PluginHost`]
/// reads the system's by default ([`SystemClock`]); tests and scripted exchanges give it a
/// [`ManualClock`] so that backoffs and windows pass only when told.
///
/// [`PluginHost`]: crate::PluginHost
pub trait Clock: Send + Sync + 'static {
    /// Time since the clock's origin.
    fn now(&self) -> Duration;
}

/// The system's monotonic clock, from its first reading.
#[derive(Debug, Default)]
pub struct SystemClock {
    origin: std::sync::OnceLock<Instant>,
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that moves only when told ([`ManualClock::advance`]); starts at 0.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock at 0.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self.nanos.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_add(by)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// A small, seeded random number generator (SplitMix64) for backoff jitter: each worker has
/// its own, seeded from the host's seed and the worker's number, so workers are on their own
/// schedules and a seeded host repeats them exactly.
#[derive(Clone, Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Jitter(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The fault state a [`PluginVm`](crate::PluginVm)'s VMs share: the reload policy, the
/// failures within the crash-loop window, whether the plugins crash-looped, and the
/// configuration generation (bumped by a configuration reload, which starts everything afresh).
pub(crate) struct FaultState {
    clock: Arc<dyn Clock>,
    generation: AtomicU64,
    inner: Mutex<FaultInner>,
}

struct FaultInner {
    /// The reload configuration when the VM's plugins are `FAIL_RELOAD`.
    reload: Option<ReloadConfig>,
    /// Failure times within the window, oldest first.
    failures: VecDeque<Duration>,
    looped: bool,
    /// The stats of every plugin of the VM.
    plugins: Vec<Arc<PluginStats>>,
    vm: String,
    engine: &'static str,
}

impl FaultState {
    pub(crate) fn new(clock: Arc<dyn Clock>, vm: String, engine: &'static str) -> Self {
        FaultState {
            clock,
            generation: AtomicU64::new(0),
            inner: Mutex::new(FaultInner {
                reload: None,
                failures: VecDeque::new(),
                looped: false,
                plugins: Vec::new(),
                vm,
                engine,
            }),
        }
    }

    /// The time now, on the host's clock.
    pub(crate) fn now(&self) -> Duration {
        self.clock.now()
    }

    /// The configuration generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The reload configuration, when the VM's plugins reload (`FAIL_RELOAD`).
    pub(crate) fn reload(&self) -> Option<ReloadConfig> {
        lock(&self.inner).reload
    }

    /// Whether the plugins are in the crash-loop state.
    pub(crate) fn crash_looped(&self) -> bool {
        lock(&self.inner).looped
    }

    /// Adds a plugin of the VM (its stats; the first one sets the reload policy).
    /// The stats of the plugin called `name` among this VM's plugins, if it was added.
    fn plugin_stats(&self, name: &str) -> Option<Arc<PluginStats>> {
        lock(&self.inner).plugins.iter().find(|p| p.name() == name).cloned()
    }

    pub(crate) fn add_plugin(&self, plugin: &PluginInfo, stats: Arc<PluginStats>) {
        let mut inner = lock(&self.inner);
        if inner.plugins.is_empty() {
            inner.reload = (plugin.failure_policy_in_force() == FailurePolicy::FailReload).then_some(plugin.reload_config);
        }
        if !inner.plugins.iter().any(|p| Arc::ptr_eq(p, &stats)) {
            inner.plugins.push(stats);
        }
    }

    /// A configuration reload: the policy of `plugin` (the VM's plugins agree on it), no
    /// failures, out of the crash-loop state, and a new generation.
    pub(crate) fn reset(&self, plugin: &PluginInfo) {
        let mut inner = lock(&self.inner);
        inner.reload = (plugin.failure_policy_in_force() == FailurePolicy::FailReload).then_some(plugin.reload_config);
        inner.failures.clear();
        if inner.looped {
            inner.looped = false;
            for p in &inner.plugins {
                p.crash_loop(false);
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A failure at `at`: counted in the window; the one that reaches
    /// [`CrashLoop::max_failures`] of a reloading VM puts its plugins in the crash-loop state,
    /// logged once at error level and counted.
    pub(crate) fn record_failure(&self, at: Duration) {
        let mut inner = lock(&self.inner);
        let Some(reload) = inner.reload else { return };
        if inner.looped {
            return;
        }
        let window = reload.crash_loop.window;
        while inner.failures.front().is_some_and(|t| at.saturating_sub(*t) >= window) {
            inner.failures.pop_front();
        }
        inner.failures.push_back(at);
        if inner.failures.len() >= reload.crash_loop.max_failures as usize {
            inner.looped = true;
            inner.failures.clear();
            let names: Vec<&str> = inner.plugins.iter().map(|p| p.name()).collect();
            tracing::error!(
                vm = inner.vm.as_str(),
                engine = inner.engine,
                plugins = ?names,
                max_failures = reload.crash_loop.max_failures,
                window = ?window,
                "plugins {names:?} failed {} times within {window:?}: crash loop; no more reloads until the configuration is reloaded, and their streams are answered as fail-{}",
                reload.crash_loop.max_failures,
                if reload.fail_open { "open" } else { "closed" }
            );
            for p in &inner.plugins {
                p.crash_loop(true);
            }
        }
    }

    /// A reload was tried: counted for every plugin of the VM.
    pub(crate) fn restarted(&self) {
        for p in &lock(&self.inner).plugins {
            p.restart();
        }
    }

    /// A failure that no VM saw (a reload that could not make or start its VM without a trap):
    /// counted for every plugin of the VM and recorded at `at`.
    pub(crate) fn failed_outside_vm(&self, kind: FailureKind, at: Duration, why: &Error) {
        {
            let inner = lock(&self.inner);
            let names: Vec<&str> = inner.plugins.iter().map(|p| p.name()).collect();
            tracing::error!(
                vm = inner.vm.as_str(),
                engine = inner.engine,
                plugins = ?names,
                kind = kind.name(),
                "a new VM for plugins {names:?} could not start ({}): {why}",
                kind.name()
            );
            for p in &inner.plugins {
                p.failure(kind);
            }
        }
        self.record_failure(at);
    }
}

/// What one VM reports to its [`FaultState`] and stats: set in its [`VmHost`](crate::VmHost)
/// when a [`PluginHost`](crate::PluginHost) makes it.
pub(crate) struct VmMonitor {
    fault: Arc<FaultState>,
    stats: Arc<HostStats>,
    engine: &'static str,
    /// Plugin stats by root context id, resolved on first use.
    roots: Vec<(u32, Arc<PluginStats>)>,
    failed_at: Option<Duration>,
    /// One callback in this many is timed (see [`VmMonitor::times_next_callback`]).
    timing: u32,
    _active: ActiveVm,
}

impl VmMonitor {
    /// The monitor of a VM just made (counted as created and active).
    /// `timing`: one callback in this many is timed (see
    /// [`PluginHost::with_callback_timing`](crate::PluginHost::with_callback_timing)).
    pub(crate) fn new(
        fault: Arc<FaultState>,
        stats: Arc<HostStats>,
        vm_stats: &VmStats,
        engine: &'static str,
        timing: u32,
    ) -> Self {
        let timing = timing.max(1);
        VmMonitor { fault, stats, engine, roots: Vec::new(), failed_at: None, timing, _active: vm_stats.created() }
    }

    /// Whether to time the callback about to run: one in every `timing` callbacks on this
    /// thread, across its VMs, the thread's first included. Counted per thread rather than per
    /// VM so that short-lived VMs (an `EPHEMERAL` plugin's, a handful of callbacks each) are
    /// sampled at the same rate instead of each timing its first callback. Hosts with different
    /// rates on one thread share the count, so their rates are approximate; `1` always times.
    #[inline]
    pub(crate) fn times_next_callback(&self) -> bool {
        thread_local! {
            static UNTIMED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        if self.timing == 1 {
            return true;
        }
        UNTIMED.with(|untimed| match untimed.get().checked_sub(1) {
            Some(left) => {
                untimed.set(left);
                false
            }
            None => {
                untimed.set(self.timing - 1);
                true
            }
        })
    }

    /// When the VM failed, on the host's clock.
    pub(crate) fn failed_at(&self) -> Option<Duration> {
        self.failed_at
    }

    fn plugin_stats(&mut self, root: u32, plugin: &PluginInfo) -> &Arc<PluginStats> {
        let i = match self.roots.iter().position(|(r, _)| *r == root) {
            Some(i) => i,
            None => {
                // The fault state holds the stats of the VM's plugins already: found there by
                // name, a new VM does not hash the label set again.
                let stats = match self.fault.plugin_stats(&plugin.name) {
                    Some(stats) => stats,
                    None => {
                        let vm = lock(&self.fault.inner).vm.clone();
                        self.stats.plugin(&plugin.name, &vm, self.engine)
                    }
                };
                self.roots.push((root, stats));
                self.roots.len() - 1
            }
        };
        &self.roots[i].1
    }

    /// The VM failed in a callback of `plugin` (or of no plugin yet: start functions): counted
    /// for it (or every plugin of the VM) and recorded for the crash-loop limit.
    pub(crate) fn failed(&mut self, plugin: Option<(u32, &PluginInfo)>, kind: FailureKind) {
        let at = self.fault.now();
        self.failed_at = Some(at);
        match plugin {
            Some((root, p)) => self.plugin_stats(root, p).failure(kind),
            None => {
                for p in &lock(&self.fault.inner).plugins {
                    p.failure(kind);
                }
            }
        }
        self.fault.record_failure(at);
    }

    /// A callback on a context of `plugin` (root context `root`) took `took`.
    pub(crate) fn callback(&mut self, root: u32, plugin: &PluginInfo, callback: Callback, took: Duration) {
        self.plugin_stats(root, plugin).callback(callback, took);
    }

    /// A stream of `plugin` was answered by the failure policy: passed or rejected.
    pub(crate) fn failed_stream(&mut self, root: u32, plugin: &PluginInfo, passed: bool) {
        self.plugin_stats(root, plugin).failed_stream(passed);
    }
}

/// Records a timed callback in its plugin's stats
/// (`proxy_wasm_plugin_callback_duration_seconds`): callbacks on no plugin's context (start
/// functions) are not counted.
pub(crate) fn observe_callback(host: &mut VmHost, context_id: u32, callback: Callback, took: Duration) {
    let Some((root, plugin)) = root_plugin(&host.contexts, context_id) else { return };
    if let Some(monitor) = host.monitor.as_mut() {
        monitor.callback(root, plugin, callback, took);
    }
}

/// A configuration error naming the plugin and the key.
pub(crate) fn bad_config(plugin: &str, key: &str, message: String) -> Error {
    Error::BadConfig { plugin: plugin.to_string(), key: key.to_string(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_backoff_starts_at_the_base_and_grows_to_the_maximum_within_its_band() {
        let b = Backoff::default();
        assert_eq!(b.max(), 10 * S);
        for random in [0, 1, u64::MAX / 3, u64::MAX] {
            assert_eq!(b.wait(0, random), S, "the first wait is the base");
            let w1 = b.wait(1, random);
            assert!((S..=2 * S).contains(&w1), "{w1:?}");
            let w2 = b.wait(2, random);
            assert!((2 * S..=4 * S).contains(&w2), "{w2:?}");
            for k in [4, 5, 31, 64, 1000] {
                let w = b.wait(k, random);
                assert!((5 * S..=10 * S).contains(&w), "attempt {k}: {w:?}");
            }
        }
        assert_eq!(b.wait(2, 0), 2 * S, "the lowest of the band");
        assert_eq!(b.wait(2, 2_000_000_000), 4 * S, "the highest of the band");
        let flat = Backoff { base_interval: S, max_interval: Some(S) };
        assert!((0..70).all(|k| flat.wait(k, k.into()) == S), "max = base: no growth, no jitter");
    }

    #[test]
    fn one_callback_in_every_n_on_a_thread_is_timed_across_its_vms() {
        // On a thread of its own, so that no other test's callbacks share the count.
        std::thread::spawn(|| {
            let fault = Arc::new(FaultState::new(Arc::new(crate::ManualClock::default()), "v".into(), "fake"));
            let stats = HostStats::new(crate::Services::new());
            let vm_stats = stats.vm("v", "fake");
            let monitor = |every| VmMonitor::new(fault.clone(), stats.clone(), &vm_stats, "fake", every);
            let (t, f) = (true, false);
            let every = monitor(1);
            assert!((0..10).all(|_| every.times_next_callback()));
            let zero = monitor(0);
            assert!((0..10).all(|_| zero.times_next_callback()), "0 is taken as 1");
            // Three short-lived VMs of 3 callbacks each, one in 4 timed: the thread's first,
            // then every fourth whichever VM it falls in.
            let timed: Vec<bool> = (0..3).flat_map(|_| {
                let vm = monitor(4);
                (0..3).map(|_| vm.times_next_callback()).collect::<Vec<_>>()
            }).collect();
            assert_eq!(timed, [t, f, f, f, t, f, f, f, t]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn jitter_spreads_the_waits_of_workers_that_failed_together() {
        let b = Backoff::default();
        let waits: std::collections::HashSet<Duration> =
            (0..8).map(|w| b.wait(3, Jitter::new(w).next())).collect();
        assert!(waits.len() > 4, "{waits:?}");
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let e = Backoff { base_interval: Duration::ZERO, max_interval: None }.validate("p").unwrap_err();
        assert_eq!(e.to_string(), "plugin `p`: `reload_config.backoff.base_interval` must be at least 1ms, found 0ns");
        let e = Backoff { base_interval: S, max_interval: Some(S / 2) }.validate("p").unwrap_err();
        assert!(e.to_string().contains("`reload_config.backoff.max_interval` (500ms) must not be shorter"), "{e}");
        let e = CrashLoop { max_failures: 0, window: S }.validate("p").unwrap_err();
        assert!(e.to_string().contains("`reload_config.crash_loop.max_failures` must be at least 1"), "{e}");
        let e = CrashLoop { max_failures: 1, window: Duration::ZERO }.validate("p").unwrap_err();
        assert!(e.to_string().contains("`reload_config.crash_loop.window`"), "{e}");
        assert!(ReloadConfig::default().validate("p").is_ok());
    }

    #[test]
    fn names_round_trip() {
        for p in FailurePolicy::ALL {
            assert_eq!(FailurePolicy::from_name(p.name()), Some(p));
        }
        assert_eq!(FailurePolicy::from_name("UNSPECIFIED"), Some(FailurePolicy::FailClosed));
        assert_eq!(FailurePolicy::from_name("fail_open"), None);
        for m in VmModel::ALL {
            assert_eq!(VmModel::from_name(m.name()), Some(m));
        }
    }

    #[test]
    fn the_manual_clock_moves_only_when_told() {
        let c = ManualClock::new();
        assert_eq!(c.now(), Duration::ZERO);
        c.advance(S);
        c.advance(Duration::from_millis(5));
        assert_eq!(c.now(), Duration::from_millis(1005));
    }
}
