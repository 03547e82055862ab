//! Running a case on an engine and judging it.
//!
//! Each case runs in a fresh [`PluginHost`] (its own services, VMs and trace) that shares the
//! engine's compiled modules with the other cases. Its transcript is the trace of every VM
//! (callbacks, host calls, allocations, steps and effects), a load or start error if any, and
//! the stream's final state. Then a canary plugin runs in the same host, to show that the case
//! left it working. A case passes when the transcript equals the golden one, the guest reported
//! no failed check (a log line starting `FAIL`), and the canary passed.

use std::fmt::Write as _;
use std::sync::Arc;

use proxy_wasm_harness::{run_exchange, transcript_error, Exchange, Outcome, ScriptedEmbedder, Step};
use proxy_wasm_host::{quote, quote_map, Engine, MetricValue, PluginHost, PluginInfo, Trace};

use crate::case::{Case, Guest};
use crate::Target;

/// How a case went on an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything as expected.
    Pass,
    /// Something differed: why, in lines.
    Fail(String),
    /// The engine cannot run this case, and why.
    Unsupported(String),
}

/// A case's result on an engine: the verdict and the transcript it produced.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The verdict.
    pub verdict: Verdict,
    /// The transcript (empty when unsupported).
    pub transcript: String,
}

/// An engine with the host whose compiled modules every case shares.
pub struct EngineRun {
    engine: Arc<dyn Engine>,
    base: PluginHost,
}

impl EngineRun {
    /// Ready to run cases on `engine`.
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        let base = PluginHost::new(engine.clone(), ScriptedEmbedder::new());
        EngineRun { engine, base }
    }

    /// The engine's name.
    pub fn name(&self) -> &'static str {
        self.engine.name()
    }

    /// Runs `case` and judges it against `golden` (the expected transcript, if there is one
    /// yet). Without a golden transcript the case fails unless blessing.
    pub fn run(&self, case: &Case, golden: Option<&str>) -> CaseResult {
        let caps = self.engine.capabilities();
        if let Some(why) = case.unsupported(caps) {
            return CaseResult { verdict: Verdict::Unsupported(why.to_string()), transcript: String::new() };
        }
        let bytes = match guest_bytes(&case.guest, caps.sandboxed) {
            Ok(b) => b,
            Err(e) => return CaseResult { verdict: Verdict::Fail(e), transcript: String::new() },
        };
        let embedder = ScriptedEmbedder::new();
        let trace = Trace::new();
        let host =
            self.base.sharing_modules(embedder.clone()).with_trace(trace.clone()).with_clock(embedder.clock()).with_seed(0);
        let mut transcript = String::new();
        let outcome = match host.load(&bytes) {
            Err(e) => {
                let _ = writeln!(transcript, "! load: {}", transcript_error(&e));
                None
            }
            Ok(code) => match run_exchange(&host, &embedder, &code, &case.exchange) {
                Ok(out) => {
                    transcript.push_str(&trace.render());
                    Some(out)
                }
                Err(e) => {
                    transcript.push_str(&trace.render());
                    let _ = writeln!(transcript, "! start: {}", transcript_error(&e));
                    None
                }
            },
        };
        if let Some(out) = &outcome {
            final_state(&mut transcript, out);
        }

        let mut problems = Vec::new();
        let failed_checks: Vec<String> =
            embedder.logs().into_iter().filter(|l| l.message.starts_with("FAIL")).map(|l| l.message).collect();
        for f in failed_checks {
            problems.push(format!("the guest reported a failed check: {f}"));
        }
        if let Err(e) = canary(&host, &embedder, caps.sandboxed) {
            problems.push(format!("the host was left broken: a canary plugin in the same host failed: {e}"));
        }
        match golden {
            Some(expected) if expected != transcript => problems.push(diff(expected, &transcript)),
            Some(_) => {}
            None => problems.push(format!("no golden transcript yet ({}); run with --bless, then read it", case.transcript_path().display())),
        }
        let verdict = if problems.is_empty() { Verdict::Pass } else { Verdict::Fail(problems.join("\n")) };
        CaseResult { verdict, transcript }
    }
}

/// The bytes of a case's guest for a Wasm engine (`sandboxed`) or a native one.
pub fn guest_bytes(guest: &Guest, sandboxed: bool) -> Result<Vec<u8>, String> {
    match guest {
        Guest::Wat(text) => wat::parse_str(text).map_err(|e| format!("the case's WAT does not parse: {e}")),
        // Natively the conformance guest is a static plugin of the Null VM, by name.
        Guest::Crate { name: name @ "conformance_guest", .. } if !sandboxed && NULL_VM => {
            proxy_wasm_harness::if_engine!(null {
                proxy_wasm_harness::proxy_wasm_null::NullVm::register(name, conformance_guest::symbol);
            });
            Ok(name.as_bytes().to_vec())
        }
        Guest::Sdk(plugin) => guest_plugins::bytes(if sandboxed { Target::Wasm32 } else { Target::Native }, plugin.name),
        Guest::Crate { name, wasip1 } => {
            let target = match (sandboxed, wasip1) {
                (false, _) => Target::Native,
                (true, false) => Target::Wasm32,
                (true, true) => Target::Wasip1,
            };
            guest_plugins::bytes(target, name)
        }
    }
}

/// Whether the Null VM is built in, and with it the conformance guest as a static plugin.
const NULL_VM: bool = proxy_wasm_harness::if_engine!(null { true } else { false });

/// Runs the conformance guest's `canary` scenario in `host` beside what the case left there:
/// it must add its header and trap nothing.
fn canary(host: &PluginHost, embedder: &ScriptedEmbedder, sandboxed: bool) -> Result<(), String> {
    let bytes = guest_bytes(&Guest::Crate { name: "conformance_guest", wasip1: false }, sandboxed)?;
    let code = host.load(&bytes).map_err(|e| e.to_string())?;
    let exchange = Exchange {
        plugin: PluginInfo {
            name: "canary".into(),
            root_id: "canary".into(),
            vm_id: "canary".into(),
            configuration: b"canary".to_vec(),
            ..Default::default()
        },
        steps: vec![Step::RequestHeaders { headers: vec![(":path".into(), "/".into())], end_of_stream: true }],
        ..Default::default()
    };
    let mut exchange = exchange;
    exchange.vm.vm_id = "canary".into();
    let out = run_exchange(host, embedder, &code, &exchange).map_err(|e| e.to_string())?;
    if let Some(t) = out.trap {
        return Err(format!("it trapped: {t}"));
    }
    match out.stream.request_headers.get_str("x-canary") {
        Some(v) if v == "ok" => Ok(()),
        other => Err(format!("it did not add x-canary: ok (found {other:?})")),
    }
}

/// Appends the last stream's final state and the metrics to a transcript.
fn final_state(t: &mut String, out: &Outcome) {
    let s = &out.stream;
    let _ = writeln!(t, "== final ==");
    let parts: [(&str, String); 8] = [
        ("request headers", quote_map(&s.request_headers)),
        ("request body", quote(&s.request_body)),
        ("request trailers", quote_map(&s.request_trailers)),
        ("response headers", quote_map(&s.response_headers)),
        ("response body", quote(&s.response_body)),
        ("response trailers", quote_map(&s.response_trailers)),
        ("downstream data", quote(&s.downstream_data)),
        ("upstream data", quote(&s.upstream_data)),
    ];
    for (name, value) in parts {
        if value != "{}" && value != "\"\"" {
            let _ = writeln!(t, "{name}: {value}");
        }
    }
    for (name, value) in &out.metrics {
        let shown = match value {
            MetricValue::Counter(c) => format!("counter {c}"),
            MetricValue::Gauge(g) => format!("gauge {g}"),
            MetricValue::Histogram(h) => format!("histogram {h:?}"),
        };
        let _ = writeln!(t, "metric {name}: {shown}");
    }
    for line in policy_stats(out) {
        let _ = writeln!(t, "{line}");
    }
    if out.security != Default::default() {
        let _ = writeln!(t, "security: {}", security_line(&out.security));
    }
}

/// The security counters as one line: `host_calls_denied=N callbacks_skipped=N callouts_refused=N`.
pub fn security_line(s: &proxy_wasm_host::SecurityStats) -> String {
    format!("host_calls_denied={} callbacks_skipped={} callouts_refused={}", s.host_calls_denied, s.callbacks_skipped, s.callouts_refused)
}

/// The failure policy's stats as a transcript shows them: each plugin's failures, restarts,
/// failed streams and crash-loop state that are not zero, sorted, without the `engine` label
/// (the same on every engine). VMs made are in the transcript already (`[vm N: ...]`), and
/// times and memory differ from run to run.
fn policy_stats(out: &Outcome) -> Vec<String> {
    let mut lines: Vec<String> = out
        .stats
        .iter()
        .filter(|s| {
            s.name.starts_with("proxy_wasm_plugin_") && !s.name.starts_with("proxy_wasm_plugin_callback_duration") && s.value != 0.0
        })
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().filter(|(k, _)| k != "engine").map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("stat {}{{{}}} {}", s.name, labels.join(","), s.value)
        })
        .collect();
    lines.sort();
    lines
}

/// The first difference between the golden transcript and this one, with a little context.
pub fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
    let mut out = format!("the transcript differs from the golden one at line {}:\n", first + 1);
    let from = first.saturating_sub(2);
    for line in &e[from..first.min(e.len())] {
        let _ = writeln!(out, "    {line}");
    }
    for line in e.iter().skip(first).take(3) {
        let _ = writeln!(out, "  - {line}");
    }
    for line in a.iter().skip(first).take(3) {
        let _ = writeln!(out, "  + {line}");
    }
    out.trim_end().to_string()
}
