//! The command line: `pwhost run`, `pwhost inspect`, `pwhost engines`, written against
//! output streams so that tests run it in process.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use proxy_wasm_harness::{engines, exchange, report, run_exchange, transcript_error, Outcome, ScriptedEmbedder};
use proxy_wasm_host::{quote, quote_map, validate, Capabilities, Engine, Error, ExternKind, MetricValue, PluginHost, Trace};

/// The usage text, printed by `pwhost help`.
pub const USAGE: &str = "\
usage:
  pwhost run --engine NAME --plugin FILE [--config STRING | --config-file FILE] --exchange FILE.yaml [--json]
      Runs the plugin against the scripted exchange and prints what happened: every callback,
      host call and effect, then the final state of the last stream. --config replaces the
      exchange's plugin configuration. --json prints one JSON object instead. Exits 1 when the
      host refused the plugin, it did not start (a rejected configuration) or it trapped.
  pwhost inspect [--engine NAME] FILE
      Prints the plugin's ABI version, imports (and any this host lacks) and exports, and what
      the engine enforces. Exits 1 when the host would refuse the plugin.
  pwhost engines
      Lists the engines built into this binary.

Bad input (a missing file, a module that does not compile, an exchange that does not parse, an
engine not built in, an unknown option) is one line on stderr and exit code 2.
";

/// A failure for the user: a line for stderr and the exit code.
struct Failure {
    message: String,
    code: u8,
}

fn bad(message: impl Into<String>) -> Failure {
    Failure { message: message.into(), code: 2 }
}

/// Runs the command line `args` (without the program name), writing results to `out` and
/// errors to `err`, and returns the exit code.
pub fn main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut cx = Out { out, err };
    match run(args, &mut cx) {
        Ok(code) => code,
        Err(f) => {
            let _ = writeln!(cx.err, "pwhost: {}", one_line(&f.message));
            f.code
        }
    }
}

/// A message on one line: engines (and the text-format parser) write some over several, with
/// a source excerpt (`--> <anon>:1:1`, ` 1 | text`, `  | ^`) or a chain of causes. The excerpt
/// becomes `at line L, column C`; other lines are joined with "; ".
pub fn one_line(message: &str) -> String {
    let mut out = String::new();
    for line in message.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(at) = line.strip_prefix("-->") {
            let mut parts = at.trim().rsplitn(3, ':');
            let (column, line_no) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !column.is_empty() && column.bytes().all(|b| b.is_ascii_digit()) && line_no.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(&format!(" at line {line_no}, column {column}"));
            } else {
                out.push_str(&format!(" at {}", at.trim()));
            }
            continue;
        }
        let excerpt = line.starts_with('|')
            || line.split_once('|').is_some_and(|(n, _)| !n.trim().is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit()));
        if excerpt {
            continue;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(line);
    }
    out
}

/// Where a command writes.
struct Out<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

/// Writes a line to the results stream (a closed pipe is not an error worth reporting).
macro_rules! say {
    ($cx:expr, $($arg:tt)*) => {{ let _ = writeln!($cx.out, $($arg)*); }};
}

fn run(args: &[String], cx: &mut Out<'_>) -> Result<u8, Failure> {
    match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..], cx),
        Some("inspect") => cmd_inspect(&args[1..], cx),
        Some("engines") => {
            for name in engines::built_in() {
                say!(cx, "{name}");
            }
            Ok(0)
        }
        Some("help" | "-h" | "--help") => {
            let _ = write!(cx.out, "{USAGE}");
            Ok(0)
        }
        None => {
            let _ = write!(cx.err, "{USAGE}");
            Ok(2)
        }
        Some(other) => Err(bad(format!("unknown command `{other}`; run `pwhost help`"))),
    }
}

/// Options of the form `--name value` (and flags), each at most once.
struct Options<'a> {
    values: Vec<(&'a str, Option<&'a str>)>,
    positional: Vec<&'a str>,
}

impl<'a> Options<'a> {
    fn parse(args: &'a [String], with_value: &[&str], flags: &[&str]) -> Result<Self, Failure> {
        let mut values = Vec::new();
        let mut positional = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let arg = arg.as_str();
            if with_value.contains(&arg) {
                let v = it.next().ok_or_else(|| bad(format!("{arg} needs a value")))?;
                values.push((arg, Some(v.as_str())));
            } else if flags.contains(&arg) {
                values.push((arg, None));
            } else if arg.starts_with("--") {
                return Err(bad(format!("unknown option `{arg}`; run `pwhost help`")));
            } else {
                positional.push(arg);
            }
            if values.iter().filter(|(n, _)| *n == arg).count() > 1 {
                return Err(bad(format!("{arg} given twice")));
            }
        }
        Ok(Options { values, positional })
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.values.iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v)
    }

    fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| *n == name)
    }

    fn require(&self, name: &str) -> Result<&'a str, Failure> {
        self.get(name).ok_or_else(|| bad(format!("{name} is required; run `pwhost help`")))
    }
}

fn read(path: &str, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| bad(format!("cannot read {what} `{path}`: {e}")))
}

fn engine(name: &str) -> Result<Arc<dyn Engine>, Failure> {
    engines::engine(name).map_err(|e| bad(e.to_string()))
}

fn cmd_run(args: &[String], cx: &mut Out<'_>) -> Result<u8, Failure> {
    let o = Options::parse(args, &["--engine", "--plugin", "--config", "--config-file", "--exchange"], &["--json"])?;
    if let Some(extra) = o.positional.first() {
        return Err(bad(format!("unexpected argument `{extra}`; run `pwhost help`")));
    }
    let engine = engine(o.require("--engine")?)?;
    let plugin_path = o.require("--plugin")?;
    let exchange_path = o.require("--exchange")?;
    let bytes = read(plugin_path, "plugin")?;
    let text = String::from_utf8(read(exchange_path, "exchange")?)
        .map_err(|_| bad(format!("exchange `{exchange_path}` is not UTF-8 text")))?;
    let mut exchange =
        exchange::parse(&text).map_err(|e| bad(format!("exchange `{exchange_path}` is not valid: {e}")))?;
    match (o.get("--config"), o.get("--config-file")) {
        (Some(_), Some(_)) => return Err(bad("give --config or --config-file, not both")),
        (Some(c), None) => exchange.plugin.configuration = c.as_bytes().to_vec(),
        (None, Some(f)) => exchange.plugin.configuration = read(f, "configuration file")?,
        (None, None) => {}
    }

    let embedder = ScriptedEmbedder::new();
    let trace = Trace::new();
    let host = PluginHost::new(engine.clone(), embedder.clone()).with_trace(trace.clone());
    let json = o.has("--json");
    let code = match host.load(&bytes) {
        Ok(code) => code,
        // Not a module at all: bad input.
        Err(Error::Compile { engine, message }) => {
            let how = if bytes.starts_with(b"\0asm") { "" } else { " (it is not a Wasm binary, so it was read as the text format)" };
            return Err(bad(format!("plugin `{plugin_path}` is not a valid Wasm module for {engine}{how}: {message}")));
        }
        Err(Error::Io(message)) => return Err(bad(message)),
        // A module the host refuses, as `inspect` would say.
        Err(e) => {
            let message = format!("plugin `{plugin_path}` is refused: {e}");
            report_failure(cx, json, &message, Outcome::default(), &trace);
            return Ok(1);
        }
    };
    match run_exchange(&host, &embedder, &code, &exchange) {
        Ok(out) => {
            if json {
                let mut v = report::outcome_json(&out);
                v["transcript"] = serde_json::Value::String(trace.render());
                say!(cx, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                let _ = write!(cx.out, "{}", trace.render());
                print_summary(cx, &out);
            }
            match &out.trap {
                Some(t) => {
                    let _ = writeln!(cx.err, "pwhost: plugin `{plugin_path}` trapped: {}", one_line(t));
                    Ok(1)
                }
                None => Ok(0),
            }
        }
        Err(e) => {
            // What happened before it failed: the start's callbacks, logs and metrics.
            let so_far = Outcome {
                logs: embedder.logs(),
                callouts: embedder.http_calls(),
                grpc_calls: embedder.grpc_calls(),
                metrics: host.services().metrics(),
                callbacks: trace.callbacks(),
                trap: match &e {
                    Error::Trap { trap, .. } => Some(trap.to_string()),
                    _ => None,
                },
                ..Outcome::default()
            };
            let message = format!("plugin `{plugin_path}` could not start: {e}");
            if !json {
                let _ = write!(cx.out, "{}", trace.render());
                say!(cx, "! {}", transcript_error(&e));
            }
            report_failure(cx, json, &message, so_far, &trace);
            Ok(1)
        }
    }
}

/// A plugin that was refused or did not start: with `--json`, the usual object (with what
/// happened so far) and `error`; always one line on stderr.
fn report_failure(cx: &mut Out<'_>, json: bool, message: &str, so_far: Outcome, trace: &Trace) {
    if json {
        let mut v = report::outcome_json(&so_far);
        v["error"] = serde_json::Value::String(message.to_string());
        v["transcript"] = serde_json::Value::String(trace.render());
        say!(cx, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    let _ = writeln!(cx.err, "pwhost: {}", one_line(message));
}

/// The final state after the transcript: what the last stream holds (parts left empty are
/// left out), the local reply, the metrics and the trap.
fn print_summary(cx: &mut Out<'_>, out: &Outcome) {
    let s = &out.stream;
    let text = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    say!(cx, "---");
    let parts: [(&str, String, bool); 8] = [
        ("request headers", quote_map(&s.request_headers), s.request_headers.is_empty()),
        ("request body", text(&s.request_body), s.request_body.is_empty()),
        ("request trailers", quote_map(&s.request_trailers), s.request_trailers.is_empty()),
        ("response headers", quote_map(&s.response_headers), s.response_headers.is_empty()),
        ("response body", text(&s.response_body), s.response_body.is_empty()),
        ("response trailers", quote_map(&s.response_trailers), s.response_trailers.is_empty()),
        ("downstream data", text(&s.downstream_data), s.downstream_data.is_empty()),
        ("upstream data", text(&s.upstream_data), s.upstream_data.is_empty()),
    ];
    let mut shown = false;
    for (name, value, empty) in parts {
        if !empty {
            say!(cx, "{:<18} {value}", format!("{name}:"));
            shown = true;
        }
    }
    if !shown {
        say!(cx, "(no stream data)");
    }
    if let Some(r) = &out.local_reply {
        let grpc = r.grpc_status.map_or(String::new(), |g| format!(" grpc_status={g}"));
        say!(
            cx,
            "{:<18} {} details={} body={} headers={}{grpc}",
            "local reply:",
            r.status,
            quote(r.details.as_bytes()),
            text(&r.body),
            quote_map(&r.headers)
        );
    }
    for (name, value) in &out.metrics {
        let value = match value {
            MetricValue::Counter(c) => format!("counter {c}"),
            MetricValue::Gauge(g) => format!("gauge {g}"),
            MetricValue::Histogram(h) => format!("histogram {h:?}"),
        };
        say!(cx, "metric {name}: {value}");
    }
    if let Some(t) = &out.trap {
        say!(cx, "{:<18} {t}", "trap:");
    }
}

fn cmd_inspect(args: &[String], cx: &mut Out<'_>) -> Result<u8, Failure> {
    let o = Options::parse(args, &["--engine"], &[])?;
    let [file] = o.positional.as_slice() else {
        return Err(bad("inspect takes one plugin file; run `pwhost help`"));
    };
    let name = match o.get("--engine") {
        Some(n) => n.to_string(),
        None => default_engine(file)?,
    };
    let engine = engine(&name)?;
    let bytes = read(file, "plugin")?;
    let module = engine.compile(&bytes).map_err(|e| bad(format!("plugin `{file}`: {e}")))?;
    say!(cx, "plugin:   {file} ({} bytes)", bytes.len());
    say!(cx, "engine:   {}", engine.name());
    say!(cx, "enforces: {}", enforces(engine.capabilities()));
    let verdict = validate(&*module);
    match &verdict {
        Ok(v) => say!(cx, "abi:      {v}"),
        Err(e) => say!(cx, "abi:      ? ({e})"),
    }
    say!(cx, "imports:");
    for i in module.imports() {
        let provided = matches!(i.kind, ExternKind::Func { .. }) && proxy_wasm_host::abi::host_function(&i.module, &i.name).is_some();
        let mark = if provided { "" } else { "   <- this host does not provide it" };
        say!(cx, "  {}.{} {}{mark}", i.module, i.name, i.kind.describe());
    }
    say!(cx, "exports:");
    for e in module.exports() {
        say!(cx, "  {} {}", e.name, e.kind.describe());
    }
    match verdict {
        Ok(_) => {
            say!(cx, "verdict:  loads");
            Ok(0)
        }
        Err(e) => {
            say!(cx, "verdict:  refused: {e}");
            Ok(1)
        }
    }
}

/// What the engine enforces, in words: the Null VM has no sandbox.
fn enforces(c: Capabilities) -> String {
    if !c.sandboxed {
        return "nothing: no sandbox (native code in the host process: no memory or CPU limit, and a crash takes the process down)".into();
    }
    let mut parts = vec!["a sandbox"];
    if c.memory_limit {
        parts.push("a memory limit");
    }
    if c.interrupt {
        parts.push("a CPU deadline per callback");
    }
    parts.join(", ")
}

/// The engine `inspect` uses when none is named: the Null VM for a shared library, else the
/// first Wasm engine built in.
fn default_engine(file: &str) -> Result<String, Failure> {
    let native = Path::new(file).extension().is_some_and(|e| e == "so" || e == "dylib");
    let built = engines::built_in();
    let pick = if native { built.iter().find(|n| **n == "null") } else { built.iter().find(|n| **n != "null") };
    pick.map(|n| n.to_string()).ok_or_else(|| bad("no suitable engine is built in; name one with --engine"))
}
