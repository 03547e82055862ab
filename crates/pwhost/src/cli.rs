//! The command line: `pwhost run`, `pwhost inspect`, `pwhost engines`, `pwhost completions`,
//! parsed by clap and written against output streams so that tests run it in process. The
//! work is the harness's ([`proxy_wasm_harness`]); this is flags, glue and printing.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context as _};
use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueHint};
use proxy_wasm_harness::code_source::{self, signature, Loader, SourceError};
use proxy_wasm_harness::{engines, exchange, policy, report, run_exchange, transcript_error, Outcome, ScriptedEmbedder};
use proxy_wasm_host::{quote, quote_map, quote_whole, validate, Capabilities, Engine, Error, ExternKind, MetricValue, PluginHost, Trace};

/// What the exit codes mean, shown at the end of `pwhost help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  the exchange ran and nothing trapped (inspect: the host would load the plugin)
  1  the host refused the plugin (an unknown import, no ABI marker, no allocator, code that
     fails its sha256 or signature, a precompiled-cache file that fails its checks), it did
     not start (proxy_on_vm_start or proxy_on_configure returned false), or it trapped
  2  bad input: a missing file, a module that does not compile, an exchange that does not
     parse, an engine not built in, an unknown option or a missing one; one line on stderr
     names the file, step, key or option at fault
  134  (SIGABRT, as a shell reports it) a native plugin (the Null VM) aborted the process,
       as a Rust library built with panic = \"abort\" does when it panics; the last line on
       stderr says so";

/// What `pwhost --version` prints after the name: the version, then the engines built into this
/// binary (by Cargo feature) and the Proxy-Wasm ABI versions it runs. `-V` prints the version
/// alone.
fn long_version() -> &'static str {
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let abi: Vec<&str> = proxy_wasm_host::abi::AbiVersion::ALL.iter().rev().map(|v| v.as_str()).collect();
        format!(
            "{}\nengines: {}\nProxy-Wasm ABI: {}",
            env!("CARGO_PKG_VERSION"),
            engines::built_in().join(", "),
            abi.join(", ")
        )
    });
    &TEXT
}

/// `pwhost`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "pwhost",
    version,
    long_version = long_version(),
    about = "Runs a Proxy-Wasm plugin against a scripted exchange on any engine built in, or inspects one.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the plugin against the scripted exchange and print what happened: every callback,
    /// host call and effect, then the final state of the last stream
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Print the plugin's ABI version, imports (and any this host lacks) and exports, what the
    /// engine enforces, and whether the host would load it
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),
    /// List the engines built into this binary
    Engines,
    /// Sign a module with an Ed25519 key: in a `signature` custom section placed first
    /// (--out), or as a detached signature file (--detached)
    Sign(SignArgs),
    /// Check a module's Ed25519 signature (embedded, or detached with --signature); exit 1 when
    /// it does not hold
    Verify(VerifyArgs),
    /// Make an Ed25519 key pair: NAME.key (the secret seed, mode 0600) and NAME.pub, each 64
    /// hexadecimal digits
    Keygen {
        /// Where to write: NAME.key and NAME.pub
        #[arg(long, value_name = "NAME", value_hint = ValueHint::FilePath)]
        out: PathBuf,
    },
    /// Print a completion script for a shell, for example `pwhost completions bash >
    /// /etc/bash_completion.d/pwhost`
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The engine, one of those built in (`pwhost engines`)
    #[arg(long, value_name = "NAME", value_parser = EngineName)]
    engine: String,
    /// The plugin: a .wasm module (or the text format), or for the Null VM a native plugin;
    /// required unless the exchange names its code (`plugin.code`)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    plugin: Option<PathBuf>,
    /// The exchange: a YAML file (see the README's exchange format)
    #[arg(long, value_name = "FILE.yaml", value_hint = ValueHint::FilePath)]
    exchange: PathBuf,
    /// Replaces the exchange's plugin configuration
    #[arg(long, value_name = "STRING", conflicts_with = "config_file")]
    config: Option<String>,
    /// Replaces the exchange's plugin configuration with the bytes of FILE
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    config_file: Option<PathBuf>,
    /// The longest one callback may run, in milliseconds, or `none`: replaces the exchange's
    /// `limits.call_deadline_ms` (default 5000, so a plugin looping forever fails instead of
    /// hanging the run)
    #[arg(long, value_name = "MS|none", value_parser = deadline)]
    call_deadline_ms: Option<Deadline>,
    /// Print one JSON object instead of the transcript and final state
    #[arg(long)]
    json: bool,
    /// Keep remote code (`plugin.code.remote`) in DIR, one file per SHA-256
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    cache_dir: Option<PathBuf>,
    /// Keep compiled modules in DIR (engines that can serialize them), so the next run skips
    /// compiling; DIR must be owned by this user and writable by no one else (see the README's
    /// trust rule)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    precompiled_cache: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// The secret key file (64 hexadecimal digits, from `pwhost keygen`)
    #[arg(long, value_name = "FILE.key", value_hint = ValueHint::FilePath)]
    key: PathBuf,
    /// Write the signed module here (its signature embedded)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, required_unless_present = "detached", conflicts_with = "detached")]
    out: Option<PathBuf>,
    /// Write a detached signature here instead
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    detached: Option<PathBuf>,
    /// The module (a Wasm binary)
    #[arg(value_name = "MODULE", value_hint = ValueHint::FilePath)]
    module: PathBuf,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The public key file (64 hexadecimal digits)
    #[arg(long, value_name = "FILE.pub", value_hint = ValueHint::FilePath)]
    public_key: PathBuf,
    /// A detached signature (else the module's embedded one is checked)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    signature: Option<PathBuf>,
    /// The module
    #[arg(value_name = "MODULE", value_hint = ValueHint::FilePath)]
    module: PathBuf,
}

/// A deadline on the command line: milliseconds, or no deadline.
#[derive(Clone, Copy, Debug)]
struct Deadline(Option<std::time::Duration>);

fn deadline(value: &str) -> Result<Deadline, String> {
    match value {
        "none" => Ok(Deadline(None)),
        ms => ms
            .parse::<u64>()
            .map(|ms| Deadline(Some(std::time::Duration::from_millis(ms))))
            .map_err(|_| format!("`{ms}` is not a number of milliseconds or `none`")),
    }
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The engine (default: the first Wasm engine built in; the Null VM for a .so)
    #[arg(long, value_name = "NAME", value_parser = EngineName)]
    engine: Option<String>,
    /// The plugin file
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    file: PathBuf,
}

/// An engine name: any text (the harness says what is wrong with a name it does not know, and
/// which Cargo feature builds in one it knows), with the engines built in offered to help and
/// to shell completions.
#[derive(Clone, Copy, Debug)]
struct EngineName;

impl TypedValueParser for EngineName {
    type Value = String;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(engines::built_in().into_iter().map(PossibleValue::new)))
    }
}

/// Runs the command line `args` (without the program name), writing results to `out` and
/// errors to `err`, and returns the exit code. `run`'s transcript goes to `out` line by line as
/// it happens (flushed), so what happened before a native plugin kills the process is shown.
pub fn main<I, T>(args: I, out: impl Write + Send + 'static, err: impl Write + Send + 'static) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cx = Out { out: Shared::new(out), err: Shared::new(err) };
    let args = std::iter::once(OsString::from("pwhost")).chain(args.into_iter().map(Into::into));
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage(&e, &mut cx),
    };
    match run(cli.command, &mut cx) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(cx.err, "pwhost: {}", one_line(&format!("{e:#}")));
            2
        }
    }
}

/// What clap said about the command line: help on stdout (exit 0); help when no command was
/// given on stderr (exit 2); a usage error as one line on stderr (exit 2).
fn usage(e: &clap::Error, cx: &mut Out) -> u8 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = write!(cx.out, "{}", e.render());
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = write!(cx.err, "{}", e.render());
            2
        }
        _ => {
            let _ = writeln!(cx.err, "pwhost: {}; run `pwhost help`", usage_line(&e.render().to_string()));
            2
        }
    }
}

/// A clap usage error on one line: its message and details, without the `error: ` prefix,
/// tips, the usage and the pointer to `--help`.
fn usage_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() || line.starts_with("tip:") {
            continue;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    parts.join(" ")
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
struct Out {
    out: Shared,
    err: Shared,
}

/// An output stream that a streaming transcript also writes to.
#[derive(Clone)]
struct Shared(Arc<Mutex<dyn Write + Send>>);

impl Shared {
    fn new(w: impl Write + Send + 'static) -> Self {
        Shared(Arc::new(Mutex::new(w)))
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// What `main` wrote, for running `pwhost` in process (tests): a buffer every clone shares.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// A new, empty buffer.
    pub fn new() -> Self {
        Capture::default()
    }

    /// What was written, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a line to the results stream (a closed pipe is not an error worth reporting).
macro_rules! say {
    ($cx:expr, $($arg:tt)*) => {{ let _ = writeln!($cx.out, $($arg)*); }};
}

/// Runs a command: `Ok` with the exit code once it has reported (0, or 1 for a plugin that was
/// refused, did not start or trapped); `Err` for bad input (exit 2).
fn run(command: Command, cx: &mut Out) -> anyhow::Result<u8> {
    match command {
        Command::Run(args) => cmd_run(args, cx),
        Command::Inspect(args) => cmd_inspect(args, cx),
        Command::Sign(args) => cmd_sign(args, cx),
        Command::Verify(args) => cmd_verify(args, cx),
        Command::Keygen { out } => cmd_keygen(&out, cx),
        Command::Engines => {
            for name in engines::built_in() {
                say!(cx, "{name}");
            }
            Ok(0)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pwhost", &mut cx.out);
            Ok(0)
        }
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} `{}`", path.display()))
}

fn engine(name: &str) -> anyhow::Result<Arc<dyn Engine>> {
    Ok(engines::engine(name)?)
}

fn cmd_run(args: RunArgs, cx: &mut Out) -> anyhow::Result<u8> {
    let engine = engine(&args.engine)?;
    if !engine.capabilities().sandboxed {
        crate::abort::note_native_aborts();
    }
    let exchange_path = args.exchange.display();
    let text = String::from_utf8(read(&args.exchange, "exchange")?)
        .map_err(|_| anyhow!("exchange `{exchange_path}` is not UTF-8 text"))?;
    let mut exchange = exchange::parse_in(&text, args.exchange.parent()).with_context(|| format!("exchange `{exchange_path}` is not valid"))?;
    let (bytes, plugin_name) = match (&args.plugin, &mut exchange.code) {
        (Some(path), None) => (read(path, "plugin")?, path.display().to_string()),
        (None, Some(spec)) => {
            policy::resolve_paths(spec, args.exchange.parent().unwrap_or(Path::new(".")));
            let mut loader = Loader::new();
            if let Some(dir) = &args.cache_dir {
                loader = loader.with_cache_dir(dir);
            }
            match loader.load(spec) {
                Ok(loaded) => (loaded.bytes, loaded.origin),
                // The bytes are there but fail a check: the host refuses the plugin.
                Err(e @ (SourceError::HashMismatch { .. } | SourceError::Signature { .. } | SourceError::CacheTampered { .. })) => {
                    let message = format!("the plugin code of exchange `{exchange_path}` is refused: {e}");
                    report_failure(cx, args.json, &message, Outcome::default(), &Trace::new());
                    return Ok(1);
                }
                Err(e) => return Err(e).with_context(|| format!("exchange `{exchange_path}`: `plugin.code`")),
            }
        }
        (Some(_), Some(_)) => bail!("exchange `{exchange_path}` names the plugin's code (`plugin.code`): give no --plugin"),
        (None, None) => bail!("no plugin: give --plugin FILE, or name the code in the exchange (`plugin.code`)"),
    };
    let plugin_path = plugin_name.as_str();
    if let Some(c) = &args.config {
        exchange.plugin.configuration = c.as_bytes().to_vec();
    }
    if let Some(f) = &args.config_file {
        exchange.plugin.configuration = read(f, "configuration file")?;
    }
    if let Some(Deadline(deadline)) = args.call_deadline_ms {
        for vm in std::iter::once(&mut exchange.vm).chain(exchange.others.iter_mut().map(|(_, vm)| vm)) {
            vm.limits.call_deadline = deadline;
        }
    }

    let embedder = ScriptedEmbedder::new();
    let trace = Trace::new();
    // The failure policy reads the exchange's clock (moved by `advance` steps), and reload
    // jitter is seeded so that a run repeats exactly. A run is a handful of callbacks, so every
    // one is timed (the library's default samples one in 64, which a short run may never reach).
    let mut host = PluginHost::new(engine.clone(), embedder.clone())
        .with_trace(trace.clone())
        .with_clock(embedder.clock())
        .with_seed(0)
        .with_callback_timing(1);
    if let Some(dir) = &args.precompiled_cache {
        host = host.with_precompiled_cache(proxy_wasm_host::PrecompiledCache::open(dir)?);
    }
    let json = args.json;
    if !json {
        // Each line out as it happens: a native plugin that aborts leaves what came before.
        let mut out = cx.out.clone();
        trace.stream_to(move |line| {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
    }
    let code = match host.load(&bytes) {
        Ok(code) => code,
        // Not a module at all: bad input.
        Err(e @ (Error::Compile { .. } | Error::Text(_))) => return Err(not_a_module(&plugin_path, &bytes, e)),
        Err(e @ Error::Io(_)) => return Err(e).with_context(|| format!("cannot load plugin `{plugin_path}`")),
        // A module the host refuses, as `inspect` would say.
        Err(e) => {
            let message = format!("plugin `{plugin_path}` is refused: {e}");
            report_failure(cx, json, &message, Outcome::default(), &trace);
            return Ok(1);
        }
    };
    // The host's own diagnostics (a plugin's failure, the crash-loop state) go through
    // `tracing`; here they end on stderr, after the run.
    let result = with_diagnostics(cx.err.clone(), || run_exchange(&host, &embedder, &code, &exchange));
    match result {
        Ok(out) => {
            if json {
                let mut v = report::outcome_json(&out);
                v["transcript"] = serde_json::Value::String(trace.render());
                say!(cx, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                trace.finish_stream();
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
                stats: host.stats(),
                callbacks: trace.callbacks(),
                trap: match &e {
                    Error::Trap { trap, .. } => Some(trap.to_string()),
                    _ => None,
                },
                ..Outcome::default()
            };
            let message = format!("plugin `{plugin_path}` could not start: {e}");
            if !json {
                trace.finish_stream();
                say!(cx, "! {}", transcript_error(&e));
            }
            report_failure(cx, json, &message, so_far, &trace);
            Ok(1)
        }
    }
}

/// Runs `f` with the host's `tracing` diagnostics (error level and above: a plugin's failure,
/// the crash-loop state) written to `err` as they happen, one line each.
fn with_diagnostics<R>(err: Shared, f: impl FnOnce() -> R) -> R {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || err.clone())
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::ERROR)
        .finish();
    tracing::subscriber::with_default(subscriber, f)
}

/// A plugin that was refused or did not start: with `--json`, the usual object (with what
/// happened so far) and `error`; always one line on stderr.
fn report_failure(cx: &mut Out, json: bool, message: &str, so_far: Outcome, trace: &Trace) {
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
fn print_summary(cx: &mut Out, out: &Outcome) {
    let s = &out.stream;
    // Bodies as the transcript quotes them: non-UTF-8 bytes escaped, never replaced.
    let text = |b: &[u8]| quote_whole(b);
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
    let s = &out.security;
    if *s != Default::default() {
        say!(
            cx,
            "{:<18} host_calls_denied={} callbacks_skipped={} callouts_refused={}",
            "security:",
            s.host_calls_denied,
            s.callbacks_skipped,
            s.callouts_refused
        );
    }
    for sample in out.stats.iter().filter(|s| policy_stat(s)) {
        say!(cx, "stat {} {}", sample.series(), sample.value);
    }
    if let Some(t) = &out.trap {
        say!(cx, "{:<18} {t}", "trap:");
    }
}

/// A stat of the failure policy worth a line in the summary: a plugin's failures, restarts,
/// failed streams or crash-loop state, when not zero (`--json` has every stat).
fn policy_stat(s: &proxy_wasm_host::StatSample) -> bool {
    s.name.starts_with("proxy_wasm_plugin_") && !s.name.starts_with("proxy_wasm_plugin_callback_duration") && s.value != 0.0
}

fn cmd_inspect(args: InspectArgs, cx: &mut Out) -> anyhow::Result<u8> {
    let file = args.file.display();
    let name = match args.engine {
        Some(n) => n,
        None => default_engine(&args.file)?,
    };
    let engine = engine(&name)?;
    let bytes = read(&args.file, "plugin")?;
    let binary = proxy_wasm_host::module_binary(&*engine, &bytes).map_err(|e| not_a_module(&file, &bytes, e))?;
    let module = engine.compile(&binary).map_err(|e| not_a_module(&file, &bytes, e))?;
    say!(cx, "plugin:   {file} ({} bytes)", bytes.len());
    say!(cx, "engine:   {}", engine.name());
    say!(cx, "enforces: {}", enforces(engine.capabilities()));
    let verdict = validate(&*module);
    match &verdict {
        Ok(v) => say!(cx, "abi:      {v}"),
        // Why is the verdict's line, below.
        Err(_) => say!(cx, "abi:      ? (see the verdict)"),
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

/// The one wording `run` and `inspect` share for a plugin file (`bytes`) that is not a module
/// the engine compiles: empty, a binary it refuses, or (not being a binary) text that does not
/// parse.
fn not_a_module(path: &dyn std::fmt::Display, bytes: &[u8], e: Error) -> anyhow::Error {
    if bytes.is_empty() {
        return anyhow!("plugin `{path}` is empty");
    }
    match e {
        Error::Text(message) => anyhow!("plugin `{path}` is not a Wasm binary, nor valid Wasm text: {message}"),
        Error::Compile { .. } => anyhow!("plugin `{path}` is {e}"),
        e => anyhow!("plugin `{path}`: {e}"),
    }
}

fn cmd_sign(args: SignArgs, cx: &mut Out) -> anyhow::Result<u8> {
    let key = code_source::read_secret_key(&args.key)?;
    let module = read(&args.module, "module")?;
    let what = |e: signature::SignatureError| anyhow!("cannot sign `{}`: {e}", args.module.display());
    let (path, bytes) = match (&args.out, &args.detached) {
        (_, Some(detached)) => (detached, signature::sign_detached(&module, &key).map_err(what)?),
        (Some(out), None) => (out, signature::sign_embedded(&module, &key).map_err(what)?),
        (None, None) => bail!("give --out FILE (embedded) or --detached FILE"),
    };
    std::fs::write(path, &bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
    say!(cx, "signed {} with key {} -> {} ({} bytes)", args.module.display(), key.public_key().to_hex(), path.display(), bytes.len());
    Ok(0)
}

fn cmd_verify(args: VerifyArgs, cx: &mut Out) -> anyhow::Result<u8> {
    let key = code_source::read_public_key(&args.public_key)?;
    let module = read(&args.module, "module")?;
    let detached = args.signature.as_ref().map(|p| read(p, "signature")).transpose()?;
    match signature::verify(&module, detached.as_deref(), &key) {
        Ok(payload) => {
            say!(cx, "signature OK (Ed25519): {} signed by {}, covering sha256 {}", args.module.display(), key.to_hex(), signature::hex(&payload.hash));
            Ok(0)
        }
        Err(e) => {
            let what = match &args.signature {
                Some(s) => format!("{} (detached signature {})", args.module.display(), s.display()),
                None => args.module.display().to_string(),
            };
            let _ = writeln!(cx.err, "pwhost: {what}: signature check failed: {e}");
            Ok(1)
        }
    }
}

fn cmd_keygen(out: &Path, cx: &mut Out) -> anyhow::Result<u8> {
    let key = code_source::SecretKey::generate()?;
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    for path in [&secret, &public] {
        if path.exists() {
            bail!("`{}` exists; keygen does not overwrite keys", path.display());
        }
    }
    write_private(&secret, format!("{}\n", key.to_hex()).as_bytes())?;
    std::fs::write(&public, format!("{}\n", key.public_key().to_hex())).with_context(|| format!("cannot write `{}`", public.display()))?;
    say!(cx, "wrote {} (secret, keep it) and {} (public {})", secret.display(), public.display(), key.public_key().to_hex());
    Ok(0)
}

/// Writes a file only its owner can read (mode 0600 where the system has modes).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write `{}`", path.display()))
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
fn default_engine(file: &Path) -> anyhow::Result<String> {
    let native = file.extension().is_some_and(|e| e == "so" || e == "dylib");
    let built = engines::built_in();
    let pick = if native { built.iter().find(|n| **n == "null") } else { built.iter().find(|n| **n != "null") };
    pick.map(|n| n.to_string()).ok_or_else(|| anyhow!("no suitable engine is built in; name one with --engine"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_keep_their_message_and_details_on_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --exchange <FILE.yaml>\n\nUsage: pwhost run --engine <NAME> --plugin <FILE> --exchange <FILE.yaml>\n\nFor more information, try '--help'.\n";
        assert_eq!(usage_line(rendered), "the following required arguments were not provided: --exchange <FILE.yaml>");
        let rendered = "error: unexpected argument '--verbose' found\n\n  tip: to pass '--verbose' as a value, use '-- --verbose'\n\nUsage: pwhost run [OPTIONS]\n";
        assert_eq!(usage_line(rendered), "unexpected argument '--verbose' found");
    }
}
