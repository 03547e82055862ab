//! The command line: `pwhost run`, `pwhost inspect`, `pwhost engines`, written against
//! output streams so that tests run it in process.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use proxy_wasm_host::scripted::{run_exchange, transcript_error, ScriptedEmbedder};
use proxy_wasm_host::{validate, Capabilities, Engine, ExternKind, PluginHost, Trace};
use crate::{engines, exchange, report};

/// The usage text, printed by `pwhost help`.
pub const USAGE: &str = "\
usage:
  pwhost run --engine NAME --plugin FILE [--config STRING | --config-file FILE] --exchange FILE.yaml [--json]
      Runs the plugin against the scripted exchange and prints what happened: every callback,
      host call and effect, then the final request and response. --config replaces the
      exchange's plugin configuration. Exits 1 when the plugin trapped or was refused.
  pwhost inspect [--engine NAME] FILE
      Prints the plugin's ABI version, imports (and any this host lacks) and exports, and what
      the engine enforces. Exits 1 when the host would refuse the plugin.
  pwhost engines
      Lists the engines built into this binary.

Bad input (a missing file, a module that does not compile, an exchange that does not parse, an
engine not built in) is one line on stderr and exit code 2.
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
            let _ = writeln!(cx.err, "pwhost: {}", f.message);
            f.code
        }
    }
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
    let code = host.load(&bytes).map_err(|e| {
        bad(format!("plugin `{plugin_path}` cannot be loaded on {}: {e}", engine.name()))
    })?;
    let outcome = run_exchange(&host, &embedder, &code, &exchange);
    let json = o.has("--json");
    match outcome {
        Ok(out) => {
            if json {
                let mut v = report::outcome_json(&out);
                v["transcript"] = serde_json::Value::String(trace.render());
                say!(cx, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                let _ = write!(cx.out, "{}", trace.render());
                print_summary(cx, &out);
            }
            Ok(u8::from(out.trap.is_some()))
        }
        Err(e) => {
            if json {
                let v = serde_json::json!({"error": e.to_string(), "transcript": trace.render()});
                say!(cx, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                let _ = write!(cx.out, "{}", trace.render());
                say!(cx, "! {}", transcript_error(&e));
            }
            let _ = writeln!(cx.err, "pwhost: plugin `{plugin_path}` could not start: {e}");
            Ok(1)
        }
    }
}

fn print_summary(cx: &mut Out<'_>, out: &proxy_wasm_host::scripted::Outcome) {
    let s = &out.stream;
    let map = |m: &proxy_wasm_host::HeaderMap| {
        m.pairs()
            .iter()
            .map(|(k, v)| format!("{}: {}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    say!(cx, "---");
    say!(cx, "request headers:   {}", map(&s.request_headers));
    say!(cx, "request body:      {:?}", String::from_utf8_lossy(&s.request_body));
    say!(cx, "response headers:  {}", map(&s.response_headers));
    say!(cx, "response body:     {:?}", String::from_utf8_lossy(&s.response_body));
    if let Some(r) = &out.local_reply {
        say!(cx, "local reply:       {} {:?} ({})", r.status, String::from_utf8_lossy(&r.body), map(&r.headers));
    }
    for (name, value) in &out.metrics {
        say!(cx, "metric {name}: {value:?}");
    }
    if let Some(t) = &out.trap {
        say!(cx, "trap:              {t}");
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
