//! An in-memory embedder and a scripted exchange: run a plugin against a list of steps
//! (request and response headers, bodies, trailers, callout answers, ticks) and get back
//! everything that happened. Tests and `pwhost run` use it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use abi::{LogLevel, PeerType, Status};
use crate::attributes::{Connection, ScriptedStream};
use crate::foreign::ForeignEffect;
use proxy_wasm_host::{
    quote, quote_map, trap_text, Action, CallbackRecord, CompiledModule, Embedder, Error, ForeignCx, GrpcCall, HeaderMap,
    HttpCall, HttpCallResponse, LocalReply, ManualClock, MemoryStream, MetricValue, PluginHost, PluginInfo, PluginVm,
    PropertyCx, StatSample, StreamEffect, StreamRef, Trace, Vm, VmConfig, VmToken, WorkerVm,
};

/// Locks a mutex, recovering the data if a thread panicked while holding it: each field here
/// is whole after every operation, so a poisoned lock carries no torn state.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A log line a plugin wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The plugin's name ("" before it had a root context).
    pub plugin: String,
    /// The level.
    pub level: LogLevel,
    /// The message.
    pub message: String,
}

/// An [`Embedder`] that keeps everything in memory: logs, callouts sent, properties, and
/// clocks that only move when told: the wall clock plugins read, and the clock of the host's
/// failure policy ([`ScriptedEmbedder::clock`], which a host running exchanges is given with
/// [`PluginHost::with_clock`]).
pub struct ScriptedEmbedder {
    logs: Mutex<Vec<LogRecord>>,
    http_calls: Mutex<Vec<HttpCall>>,
    foreign: Arc<Mutex<Vec<ForeignEffect>>>,
    pending: Mutex<VecDeque<(VmToken, u32)>>,
    grpc_calls: Mutex<Vec<GrpcCall>>,
    /// gRPC calls and streams the plugin cancelled (or closed, a unary call): no step answers
    /// them any more.
    grpc_forgotten: Mutex<Vec<(VmToken, u32)>>,
    properties: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    upstreams: Mutex<Option<Vec<String>>>,
    now: AtomicU64,
    clock: Arc<ManualClock>,
    log_level: Mutex<LogLevel>,
}

impl Default for ScriptedEmbedder {
    fn default() -> Self {
        ScriptedEmbedder {
            logs: Mutex::default(),
            http_calls: Mutex::default(),
            foreign: Arc::default(),
            pending: Mutex::default(),
            grpc_calls: Mutex::default(),
            grpc_forgotten: Mutex::default(),
            properties: Mutex::default(),
            upstreams: Mutex::default(),
            // 2024-01-01T00:00:00Z: a fixed, plausible wall clock.
            now: AtomicU64::new(1_704_067_200_000_000_000),
            clock: Arc::new(ManualClock::new()),
            log_level: Mutex::new(LogLevel::Trace),
        }
    }
}

impl ScriptedEmbedder {
    /// A new embedder with no properties, any upstream accepted, and the clock at
    /// 2024-01-01T00:00:00Z.
    pub fn new() -> Arc<Self> {
        Arc::new(ScriptedEmbedder::default())
    }

    /// Sets a property (path segments joined by 0 bytes) every context can read.
    pub fn set_property(&self, path: &[u8], value: &[u8]) {
        lock(&self.properties).insert(path.to_vec(), value.to_vec());
    }

    /// Accepts callouts only to these upstreams (others get BAD_ARGUMENT, gRPC PARSE_FAILURE).
    pub fn set_upstreams(&self, upstreams: Vec<String>) {
        *lock(&self.upstreams) = Some(upstreams);
    }

    /// Sets the level `proxy_get_log_level` answers and below which logs are dropped.
    pub fn set_log_level(&self, level: LogLevel) {
        *lock(&self.log_level) = level;
    }

    /// Moves the wall clock and the failure policy's clock forward.
    pub fn advance(&self, nanos: u64) {
        self.now.fetch_add(nanos, Ordering::Relaxed);
        self.clock.advance(std::time::Duration::from_nanos(nanos));
    }

    /// The clock a host running exchanges reads for its failure policy (backoffs, the
    /// crash-loop window): give it to the host with [`PluginHost::with_clock`], so that the
    /// `advance` step moves it. It starts at 0.
    pub fn clock(&self) -> Arc<ManualClock> {
        self.clock.clone()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        lock(&self.logs).clone()
    }

    /// Every HTTP callout sent so far.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        lock(&self.http_calls).clone()
    }

    /// Every proxy-specific foreign function call so far (`set_envoy_filter_state`,
    /// `declare_property`, `clear_route_cache`: see [`crate::foreign`]).
    pub fn foreign_effects(&self) -> Vec<ForeignEffect> {
        lock(&self.foreign).clone()
    }

    /// Every gRPC call or stream opened so far.
    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        lock(&self.grpc_calls).clone()
    }

    /// Takes the oldest HTTP callout still waiting for an answer: (VM, call id).
    pub fn take_pending_call(&self) -> Option<(VmToken, u32)> {
        lock(&self.pending).pop_front()
    }

    /// The gRPC calls cancelled since the last time, taken.
    fn take_grpc_forgotten(&self) -> Vec<(VmToken, u32)> {
        std::mem::take(&mut *lock(&self.grpc_forgotten))
    }

    fn upstream_known(&self, upstream: &str) -> bool {
        lock(&self.upstreams).as_ref().is_none_or(|u| u.iter().any(|x| x == upstream))
    }
}

impl Embedder for ScriptedEmbedder {
    fn log(&self, plugin: Option<&PluginInfo>, level: LogLevel, message: &str) {
        lock(&self.logs).push(LogRecord {
            plugin: plugin.map_or(String::new(), |p| p.name.clone()),
            level,
            message: message.to_string(),
        });
    }

    fn log_level(&self, _plugin: Option<&PluginInfo>) -> LogLevel {
        *lock(&self.log_level)
    }

    fn now_nanos(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    fn get_property(&self, _cx: PropertyCx<'_>, path: &[u8]) -> Result<Vec<u8>, Status> {
        lock(&self.properties).get(path).cloned().ok_or(Status::NotFound)
    }

    fn http_call(&self, call: &HttpCall) -> Result<(), Status> {
        if !self.upstream_known(&call.upstream) {
            return Err(Status::BadArgument);
        }
        lock(&self.http_calls).push(call.clone());
        lock(&self.pending).push_back((call.vm, call.id));
        Ok(())
    }

    fn grpc_call(&self, call: &GrpcCall) -> Result<(), Status> {
        // Envoy parses an empty upstream as an empty GrpcService, for which it cannot make a
        // client (BAD_ARGUMENT); an unknown cluster is PARSE_FAILURE.
        if call.upstream.is_empty() {
            return Err(Status::BadArgument);
        }
        if !self.upstream_known(&call.upstream) {
            return Err(Status::ParseFailure);
        }
        lock(&self.grpc_calls).push(call.clone());
        Ok(())
    }

    fn grpc_send(&self, _vm: VmToken, _id: u32, _message: &[u8], _end_stream: bool) -> Result<(), Status> {
        Ok(())
    }

    fn grpc_cancel(&self, vm: VmToken, id: u32) -> Result<(), Status> {
        lock(&self.grpc_forgotten).push((vm, id));
        Ok(())
    }

    fn grpc_close(&self, vm: VmToken, id: u32) -> Result<(), Status> {
        // Closing a unary call cancels it; a stream stays until its remote close.
        if !is_grpc_stream(id) {
            lock(&self.grpc_forgotten).push((vm, id));
        }
        Ok(())
    }

    fn callout_dropped(&self, vm: VmToken, id: u32) {
        lock(&self.pending).retain(|p| *p != (vm, id));
    }
}

/// One step of a scripted exchange. Stream steps go to the exchange's current stream, which
/// the first of them creates (an HTTP stream, or a TCP connection for
/// [`Step::NewConnection`]); [`Step::Finish`] ends it, and the next stream step starts another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Request headers arrive.
    RequestHeaders {
        /// The headers.
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        /// Whether the request ends here.
        end_of_stream: bool,
    },
    /// A request body chunk arrives.
    RequestBody {
        /// The chunk.
        body: Vec<u8>,
        /// Whether the request ends here.
        end_of_stream: bool,
    },
    /// Request trailers arrive.
    RequestTrailers(Vec<(Vec<u8>, Vec<u8>)>),
    /// Response headers arrive.
    ResponseHeaders {
        /// The headers.
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        /// Whether the response ends here.
        end_of_stream: bool,
    },
    /// A response body chunk arrives.
    ResponseBody {
        /// The chunk.
        body: Vec<u8>,
        /// Whether the response ends here.
        end_of_stream: bool,
    },
    /// Response trailers arrive.
    ResponseTrailers(Vec<(Vec<u8>, Vec<u8>)>),
    /// A TCP connection opens: `proxy_on_new_connection`.
    NewConnection,
    /// Bytes from the client arrive on the TCP connection.
    DownstreamData {
        /// The bytes.
        data: Vec<u8>,
        /// Whether the client closed its side after them.
        end_of_stream: bool,
    },
    /// Bytes from the server arrive on the TCP connection.
    UpstreamData {
        /// The bytes.
        data: Vec<u8>,
        /// Whether the server closed its side after them.
        end_of_stream: bool,
    },
    /// The client side of the TCP connection closed.
    DownstreamClose(PeerType),
    /// The server side of the TCP connection closed.
    UpstreamClose(PeerType),
    /// The current stream ends: an HTTP stream gets `proxy_on_log`, `proxy_on_done`,
    /// `proxy_on_delete` (Envoy's order); a TCP connection `proxy_on_done`, `proxy_on_log`,
    /// `proxy_on_delete`.
    Finish,
    /// The oldest pending HTTP callout gets this answer.
    HttpCallResponse {
        /// Response headers.
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        /// Response body.
        body: Vec<u8>,
        /// Response trailers.
        trailers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// The oldest pending HTTP callout fails: a reset (the reason shows only in the step
    /// line; the plugin sees Envoy's "reset").
    HttpCallFailure(String),
    /// The oldest pending HTTP callout times out: Envoy's router answers it with a local 504
    /// (`:status` 504, `content-length` 24, `content-type` text/plain, body
    /// `upstream request timeout`), which reaches the plugin as an answer, not a failure.
    HttpCallTimeout,
    /// The oldest open gRPC stream receives initial metadata (a unary call gets none).
    GrpcInitialMetadata(Vec<(Vec<u8>, Vec<u8>)>),
    /// The oldest open gRPC call or stream receives a message; a unary call's is its answer,
    /// which ends it.
    GrpcMessage(Vec<u8>),
    /// The oldest open gRPC stream receives trailing metadata (a unary call gets none).
    GrpcTrailingMetadata(Vec<(Vec<u8>, Vec<u8>)>),
    /// The oldest open gRPC call or stream finishes with this status and message: a unary
    /// call's failure, a stream's remote close.
    GrpcClose {
        /// The gRPC status code.
        status: u32,
        /// The status message.
        message: String,
    },
    /// Every root context with a tick period gets a tick.
    Tick,
    /// The host calls the plugin's `proxy_on_foreign_function` on its root context.
    ForeignFunction {
        /// The function id.
        function_id: u32,
        /// Its arguments (FOREIGN_FUNCTION_ARGUMENTS).
        arguments: Vec<u8>,
    },
    /// The current stream ends, then every VM shuts down: `proxy_on_done` on each root
    /// context; those answering false stay until they call `proxy_done`.
    Shutdown,
    /// Time passes: the embedder's wall clock and the host's policy clock move forward.
    Advance(std::time::Duration),
    /// The plugin's configuration is reloaded ([`PluginVm::reload`]), with a new plugin
    /// configuration when given: a plugin that rejects it stays as it was; otherwise its
    /// failures and crash-loop state are cleared and its next stream runs in a fresh VM.
    ReloadConfiguration(Option<Vec<u8>>),
}

impl Step {
    /// The step's name in exchange files, for example `request_headers`.
    pub fn name(&self) -> &'static str {
        match self {
            Step::RequestHeaders { .. } => "request_headers",
            Step::RequestBody { .. } => "request_body",
            Step::RequestTrailers(_) => "request_trailers",
            Step::ResponseHeaders { .. } => "response_headers",
            Step::ResponseBody { .. } => "response_body",
            Step::ResponseTrailers(_) => "response_trailers",
            Step::NewConnection => "new_connection",
            Step::DownstreamData { .. } => "downstream_data",
            Step::UpstreamData { .. } => "upstream_data",
            Step::DownstreamClose(_) => "downstream_close",
            Step::UpstreamClose(_) => "upstream_close",
            Step::Finish => "finish",
            Step::HttpCallResponse { .. } => "http_call_response",
            Step::HttpCallFailure(_) => "http_call_failure",
            Step::HttpCallTimeout => "http_call_timeout",
            Step::GrpcInitialMetadata(_) => "grpc_initial_metadata",
            Step::GrpcMessage(_) => "grpc_message",
            Step::GrpcTrailingMetadata(_) => "grpc_trailing_metadata",
            Step::GrpcClose { .. } => "grpc_close",
            Step::Tick => "tick",
            Step::ForeignFunction { .. } => "foreign_function",
            Step::Shutdown => "shutdown",
            Step::Advance(_) => "advance",
            Step::ReloadConfiguration(_) => "reload_configuration",
        }
    }

    /// The step as a transcript shows it: its name and its input.
    fn describe(&self) -> String {
        let map = |pairs: &[(Vec<u8>, Vec<u8>)]| quote_map(&map(pairs));
        let eos = |end: bool| if end { " end_of_stream" } else { "" };
        let detail = match self {
            Step::RequestHeaders { headers, end_of_stream } | Step::ResponseHeaders { headers, end_of_stream } => {
                format!("{}{}", map(headers), eos(*end_of_stream))
            }
            Step::RequestBody { body, end_of_stream }
            | Step::ResponseBody { body, end_of_stream }
            | Step::DownstreamData { data: body, end_of_stream }
            | Step::UpstreamData { data: body, end_of_stream } => {
                format!("{}{}", quote(body), eos(*end_of_stream))
            }
            Step::RequestTrailers(t)
            | Step::ResponseTrailers(t)
            | Step::GrpcInitialMetadata(t)
            | Step::GrpcTrailingMetadata(t) => map(t),
            Step::DownstreamClose(peer) | Step::UpstreamClose(peer) => peer.name().to_string(),
            Step::HttpCallResponse { headers, body, trailers } => {
                format!("{} {} {}", map(headers), quote(body), map(trailers))
            }
            Step::HttpCallFailure(reason) => quote(reason.as_bytes()),
            Step::GrpcMessage(m) => quote(m),
            Step::GrpcClose { status, message } => format!("{status} {}", quote(message.as_bytes())),
            Step::ForeignFunction { function_id, arguments } => {
                format!("{function_id} {}", quote(arguments))
            }
            Step::Advance(by) => format!("{by:?}"),
            Step::ReloadConfiguration(configuration) => configuration.as_deref().map(quote).unwrap_or_default(),
            Step::NewConnection | Step::Finish | Step::Tick | Step::Shutdown | Step::HttpCallTimeout => String::new(),
        };
        if detail.is_empty() {
            format!("> {}", self.name())
        } else {
            format!("> {} {detail}", self.name())
        }
    }

    /// Whether the step goes to the current stream (creating one if there is none).
    fn is_stream_step(&self) -> bool {
        matches!(
            self,
            Step::RequestHeaders { .. }
                | Step::RequestBody { .. }
                | Step::RequestTrailers(_)
                | Step::ResponseHeaders { .. }
                | Step::ResponseBody { .. }
                | Step::ResponseTrailers(_)
                | Step::NewConnection
                | Step::DownstreamData { .. }
                | Step::UpstreamData { .. }
                | Step::DownstreamClose(_)
                | Step::UpstreamClose(_)
        )
    }
}

/// A plugin run against steps.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// The plugin (name, root id, vm id, configuration, fail-open).
    pub plugin: PluginInfo,
    /// The VM configuration.
    pub vm: VmConfig,
    /// Where the plugin's code comes from and the checks it must pass (`plugin.code`), when
    /// the exchange says; else the runner is given the module.
    pub code: Option<code_source::CodeSpec>,
    /// Properties (path segments joined by 0 bytes) every stream and root context can read.
    pub properties: Vec<(Vec<u8>, Vec<u8>)>,
    /// The upstreams callouts may go to; `None` accepts any.
    pub upstreams: Option<Vec<String>>,
    /// The connection every stream runs on (Envoy's `connection.*`, `source.*`, `destination.*`
    /// attributes).
    pub connection: Connection,
    /// More plugins of the same module, each added to this host before the steps, as a proxy
    /// adds plugins: one with another vm_id or VM configuration gets VMs of its own (for
    /// example the consumer of a queue the plugin fills), one with the same joins the first
    /// plugin's VM. Each gets a worker; all get ticks, queue notifications, callout answers
    /// and shutdown; streams go to the first plugin only.
    pub others: Vec<(PluginInfo, VmConfig)>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// What happened in an exchange.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The last stream as it ended: final headers, bodies, trailers, and every effect in order.
    pub stream: MemoryStream,
    /// The local reply of the last stream, if the plugin (or the failure policy) sent one.
    pub local_reply: Option<LocalReply>,
    /// The action each stream callback answered, by step index.
    pub actions: Vec<(usize, Action)>,
    /// HTTP callouts sent.
    pub callouts: Vec<HttpCall>,
    /// gRPC calls and streams opened.
    pub grpc_calls: Vec<GrpcCall>,
    /// Log lines.
    pub logs: Vec<LogRecord>,
    /// Metrics by name.
    pub metrics: Vec<(String, MetricValue)>,
    /// What the security policy refused: host calls denied, callbacks skipped, callouts to
    /// upstreams off the allow-list.
    pub security: proxy_wasm_host::SecurityStats,
    /// The trap that failed a VM of the exchange, if any (the engine's message).
    pub trap: Option<String>,
    /// Every callback called in the plugin's worker VMs, with its result.
    pub callbacks: Vec<CallbackRecord>,
    /// The host's stats at the end ([`PluginHost::stats`]): the failure policy's counts, VMs,
    /// callback times, memory, and the plugins' own metrics.
    pub stats: Vec<StatSample>,
    /// The proxy-specific foreign functions the plugin called, in order.
    pub foreign: Vec<ForeignEffect>,
}

fn map(pairs: &[(Vec<u8>, Vec<u8>)]) -> HeaderMap {
    HeaderMap::from_pairs(pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
}

/// The function id and name of the foreign function [`run_exchange`] registers: `echo`
/// answers its arguments.
pub const ECHO_FUNCTION: &str = "echo";

/// The state of a running exchange.
struct Run<'a> {
    exchange: &'a Exchange,
    embedder: &'a ScriptedEmbedder,
    trace: Trace,
    /// The plugin's worker first, then one per [`Exchange::others`].
    workers: Vec<WorkerVm>,
    /// Their VMs' templates, in the same order (for configuration reloads).
    plugin_vms: Vec<Arc<PluginVm>>,
    /// Streams made so far (each gets the next `connection.id`).
    streams: u64,
    stream: Option<StreamRef>,
    /// Effects of the current stream already noted.
    effects_seen: usize,
    /// Per data direction (request body, response body, downstream, upstream): the bytes
    /// already passed on, the bytes kept for the next filter but no longer shown to the plugin
    /// (its last data callback answered [`Action::PauseWatermark`]), and the plugin's last
    /// answer since nothing resumed the direction. A chunk that arrives then: after a continue
    /// the buffer passes on first, so the plugin sees only new data, as in a proxy; after
    /// [`Action::Pause`] it is added to what the plugin sees; after a watermark pause what the
    /// plugin saw is kept aside; after [`Action::StopNoBuffer`] it is dropped.
    forwarded: [Vec<u8>; 4],
    kept: [Vec<u8>; 4],
    last: [Action; 4],
    /// Per HTTP direction (request, response): its headers callback stopped all iteration
    /// ([`Action::Pause`]) and nothing resumed it; the body and trailer steps that came since,
    /// to deliver when the plugin resumes the direction (Envoy's StopAllIteration).
    stopped_all: [bool; 2],
    queued: [Vec<(usize, Step)>; 2],
    callouts_seen: usize,
    foreign_seen: usize,
    grpc_seen: usize,
    /// Open gRPC calls and streams, oldest first: (VM, id).
    grpc_open: VecDeque<(VmToken, u32)>,
    out: Outcome,
}

/// Runs `exchange` on `code` in `host` (whose embedder is `embedder`) and reports everything
/// that happened. When the host has a trace ([`PluginHost::with_trace`]), the steps, their
/// effects and the callouts sent are noted in it beside the VMs' callbacks and host calls, and
/// [`Outcome::callbacks`] lists the callbacks; without one, that list is empty.
///
/// Errors are those of starting the plugins (a rejected configuration, a trap in
/// `proxy_on_vm_start`); traps during the steps are part of the outcome.
pub fn run_exchange(
    host: &PluginHost,
    embedder: &ScriptedEmbedder,
    code: &Arc<CompiledModule>,
    exchange: &Exchange,
) -> Result<Outcome, Error> {
    for (path, value) in &exchange.properties {
        embedder.set_property(path, value);
    }
    if let Some(upstreams) = &exchange.upstreams {
        embedder.set_upstreams(upstreams.clone());
    }
    host.services().register_foreign_function(ECHO_FUNCTION, Arc::new(|_: &ForeignCx<'_>, args: &[u8]| Ok(args.to_vec())));
    crate::foreign::register(host.services(), embedder.foreign.clone());
    // Without the host's trace, notes go to one nobody reads.
    let trace = host.trace().cloned().unwrap_or_default();
    let mut run = Run {
        exchange,
        embedder,
        trace,
        workers: Vec::new(),
        plugin_vms: Vec::new(),
        streams: 0,
        stream: None,
        effects_seen: 0,
        forwarded: Default::default(),
        kept: Default::default(),
        last: [Action::Continue; 4],
        stopped_all: [false; 2],
        queued: Default::default(),
        callouts_seen: 0,
        foreign_seen: 0,
        grpc_seen: 0,
        grpc_open: VecDeque::new(),
        out: Outcome::default(),
    };
    let plugins = std::iter::once((&exchange.plugin, &exchange.vm)).chain(exchange.others.iter().map(|(p, v)| (p, v)));
    for (plugin, vm) in plugins {
        let plugin_vm = host.add_plugin(code, vm.clone(), plugin.clone())?;
        run.workers.push(plugin_vm.worker()?);
        run.plugin_vms.push(plugin_vm);
    }
    for (i, step) in exchange.steps.iter().enumerate() {
        run.trace.note(step.describe());
        run.step(i, step)?;
        run.after_step();
    }
    run.finish()?;
    let mut out = run.out;
    out.callouts = embedder.http_calls();
    out.grpc_calls = embedder.grpc_calls();
    out.logs = embedder.logs();
    out.foreign = embedder.foreign_effects();
    out.metrics = host.services().metrics();
    out.security = host.services().security().snapshot();
    out.callbacks = run.trace.callbacks();
    out.stats = host.stats();
    Ok(out)
}

impl Run<'_> {
    /// The VM with this token among every worker's current and retired VMs.
    fn vm(&mut self, token: VmToken) -> Option<&mut Vm> {
        self.workers.iter_mut().find_map(|w| w.vm_with(token))
    }

    /// The current stream, created (HTTP, or TCP for `tcp`) if there is none.
    fn stream(&mut self, tcp: bool) -> Result<StreamRef, Error> {
        if let Some(s) = self.stream {
            return Ok(s);
        }
        let mut memory = MemoryStream::new();
        memory.properties.extend(self.exchange.properties.iter().cloned());
        self.streams += 1;
        let stream = Box::new(ScriptedStream::new(memory, self.exchange.connection.clone(), self.streams));
        let worker = &mut self.workers[0];
        let root_id = worker.root(&self.exchange.plugin.root_id)?;
        let (s, action) = if tcp {
            let (s, action) = worker.create_tcp_stream(root_id, stream)?;
            (s, Some(action))
        } else {
            (worker.create_http_stream(root_id, stream)?, None)
        };
        self.stream = Some(s);
        self.effects_seen = 0;
        self.forwarded = Default::default();
        self.kept = Default::default();
        self.last = [Action::Continue; 4];
        self.stopped_all = [false; 2];
        self.queued = Default::default();
        if let Some(action) = action {
            self.trace.note(format!("< {}", action.name()));
        }
        Ok(s)
    }

    fn step(&mut self, index: usize, step: &Step) -> Result<(), Error> {
        if step.is_stream_step() {
            let s = self.stream(matches!(step, Step::NewConnection))?;
            if let Some(dir) = http_direction(step) {
                let vm = self.workers.iter_mut().find_map(|w| w.vm_with(s.vm)).ok_or(Error::BadContext(s.id))?;
                let ended = scripted_stream(vm, s.id).ok_or(Error::BadContext(s.id))?.memory.local_reply().is_some();
                if self.stopped_all[dir] && !ended {
                    // The headers callback stopped all iteration: Envoy holds the body and
                    // trailers back until the plugin resumes the direction.
                    let which = if dir == 0 { "request" } else { "response" };
                    self.trace.note(format!("(held: the plugin stopped all iteration in {which} headers)"));
                    self.queued[dir].push((index, step.clone()));
                    return Ok(());
                }
            }
            return self.stream_step(s, index, step);
        }
        self.other_step(step)
    }

    /// A step of the current stream `s`, delivered to the plugin.
    fn stream_step(&mut self, s: StreamRef, index: usize, step: &Step) -> Result<(), Error> {
        {
            let (last, kept, forwarded) = (&mut self.last, &mut self.kept, &mut self.forwarded);
            let vm = self.workers.iter_mut().find_map(|w| w.vm_with(s.vm)).ok_or(Error::BadContext(s.id))?;
            let scripted = scripted_stream(vm, s.id).ok_or(Error::BadContext(s.id))?;
            scripted.step(step, self.embedder.now_nanos());
            let memory = &mut scripted.memory;
            if memory.local_reply().is_some() {
                // A local reply ended the stream: later stream data never reaches the plugin.
                self.trace.note("(the stream has ended with a local reply)");
                return Ok(());
            }
            let reset = |e: &StreamEffect| {
                matches!(e, StreamEffect::Close(abi::StreamType::HttpRequest | abi::StreamType::HttpResponse))
            };
            if memory.effects.iter().any(reset) {
                // Reset (proxy_close_stream, or a local reply after the response started):
                // Envoy destroys the filter; only the end of the stream follows.
                self.trace.note("(the stream has been reset)");
                return Ok(());
            }
            // A new chunk: what happens to the data before it depends on the plugin's last
            // answer for that direction.
            if let Some(dir) = data_direction(step) {
                let buffer = data_buffer(memory, dir);
                match last[dir] {
                    Action::Pause => {}
                    Action::PauseWatermark => kept[dir].append(buffer),
                    Action::StopNoBuffer => buffer.clear(),
                    Action::Continue | Action::PauseHeaders => {
                        forwarded[dir].append(&mut kept[dir]);
                        forwarded[dir].append(buffer);
                    }
                }
            }
            let action = match step {
                Step::RequestHeaders { headers, end_of_stream } => {
                    memory.request_headers = map(headers);
                    Some(vm.on_request_headers(s.id, *end_of_stream)?)
                }
                Step::RequestBody { body, end_of_stream } => {
                    memory.request_body.extend_from_slice(body);
                    Some(vm.on_request_body(s.id, *end_of_stream)?)
                }
                Step::RequestTrailers(t) => {
                    memory.request_trailers = map(t);
                    Some(vm.on_request_trailers(s.id)?)
                }
                Step::ResponseHeaders { headers, end_of_stream } => {
                    memory.response_headers = map(headers);
                    let a = vm.on_response_headers(s.id, *end_of_stream)?;
                    if let Some(m) = scripted_stream(vm, s.id) {
                        m.memory.response_started = !a.pauses();
                    }
                    Some(a)
                }
                Step::ResponseBody { body, end_of_stream } => {
                    memory.response_body.extend_from_slice(body);
                    Some(vm.on_response_body(s.id, *end_of_stream)?)
                }
                Step::ResponseTrailers(t) => {
                    memory.response_trailers = map(t);
                    Some(vm.on_response_trailers(s.id)?)
                }
                // The connection was opened by `stream` above.
                Step::NewConnection => None,
                Step::DownstreamData { data, end_of_stream } => {
                    memory.downstream_data.extend_from_slice(data);
                    Some(vm.on_downstream_data(s.id, *end_of_stream)?)
                }
                Step::UpstreamData { data, end_of_stream } => {
                    memory.upstream_data.extend_from_slice(data);
                    Some(vm.on_upstream_data(s.id, *end_of_stream)?)
                }
                Step::DownstreamClose(peer) => {
                    vm.on_downstream_close(s.id, *peer)?;
                    None
                }
                Step::UpstreamClose(peer) => {
                    vm.on_upstream_close(s.id, *peer)?;
                    None
                }
                _ => None,
            };
            if let Some(a) = action {
                self.trace.note(format!("< {}", a.name()));
                self.out.actions.push((index, a));
                if let Some(dir) = data_direction(step) {
                    last[dir] = a;
                }
                match step {
                    Step::RequestHeaders { .. } => self.stopped_all[0] = a == Action::Pause,
                    Step::ResponseHeaders { .. } => self.stopped_all[1] = a == Action::Pause,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Delivers what was held back behind a headers callback that stopped all iteration of
    /// HTTP direction `dir`, now that the plugin resumed it: every body chunk at once, in one
    /// body callback (the end of the stream when the last chunk ended it), then the trailers.
    fn release_queued(&mut self, dir: usize) -> Result<(), Error> {
        let queued = std::mem::take(&mut self.queued[dir]);
        let Some(s) = self.stream else { return Ok(()) };
        let mut body: Option<(usize, Vec<u8>, bool)> = None;
        let mut rest = Vec::new();
        for (index, step) in queued {
            match step {
                Step::RequestBody { body: chunk, end_of_stream } | Step::ResponseBody { body: chunk, end_of_stream } => {
                    let (_, data, end) = body.get_or_insert((index, Vec::new(), false));
                    data.extend_from_slice(&chunk);
                    *end = end_of_stream;
                }
                other => rest.push((index, other)),
            }
        }
        if let Some((index, data, end_of_stream)) = body {
            let step = if dir == 0 {
                Step::RequestBody { body: data, end_of_stream }
            } else {
                Step::ResponseBody { body: data, end_of_stream }
            };
            self.trace.note(format!("> (released) {}", &step.describe()[2..]));
            self.stream_step(s, index, &step)?;
            self.note_effects();
        }
        for (index, step) in rest {
            self.trace.note(format!("> (released) {}", &step.describe()[2..]));
            self.stream_step(s, index, &step)?;
            self.note_effects();
        }
        Ok(())
    }

    /// A step that is not a stream's.
    fn other_step(&mut self, step: &Step) -> Result<(), Error> {
        match step {
            Step::Finish => self.finish_stream()?,
            Step::HttpCallResponse { headers, body, trailers } => {
                let response = HttpCallResponse { headers: map(headers), body: body.clone(), trailers: map(trailers) };
                self.answer_http_call(Ok(response));
            }
            Step::HttpCallFailure(reason) => self.answer_http_call(Err(reason.clone())),
            Step::HttpCallTimeout => {
                let response = HttpCallResponse {
                    headers: map(&[
                        (":status".into(), "504".into()),
                        ("content-length".into(), "24".into()),
                        ("content-type".into(), "text/plain".into()),
                    ]),
                    body: b"upstream request timeout".to_vec(),
                    trailers: HeaderMap::new(),
                };
                self.answer_http_call(Ok(response));
            }
            Step::GrpcInitialMetadata(_) | Step::GrpcMessage(_) | Step::GrpcTrailingMetadata(_) | Step::GrpcClose { .. } => {
                self.answer_grpc(step)
            }
            Step::Tick => {
                for w in 0..self.workers.len() {
                    let vm = self.workers[w].vm();
                    for (_, root, period) in vm.roots() {
                        if period > 0 {
                            note_error(&self.trace, vm.on_tick(root));
                        }
                    }
                }
            }
            Step::ForeignFunction { function_id, arguments } => {
                let root_id = self.exchange.plugin.root_id.clone();
                let vm = self.workers[0].vm();
                let root = vm.root_context(&root_id).ok_or_else(|| Error::UnknownRoot(root_id.clone()))?;
                let result = vm.on_foreign_function(root, *function_id, arguments.clone());
                note_error(&self.trace, result);
            }
            Step::Advance(by) => self.embedder.advance(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX)),
            Step::ReloadConfiguration(configuration) => {
                let mut plugin = self.exchange.plugin.clone();
                if let Some(c) = configuration {
                    plugin.configuration = c.clone();
                }
                let result = self.plugin_vms[0].reload(plugin);
                note_error(&self.trace, result);
            }
            Step::Shutdown => {
                self.finish_stream()?;
                for w in 0..self.workers.len() {
                    let result = self.workers[w].vm().shutdown();
                    match result {
                        Ok(true) => self.trace.note("< every root context is gone"),
                        Ok(false) => self.trace.note("< a root context waits for proxy_done"),
                        Err(e) => note_error::<()>(&self.trace, Err(e)),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn answer_http_call(&mut self, response: Result<HttpCallResponse, String>) {
        let Some((token, id)) = self.embedder.take_pending_call() else {
            self.trace.note("(no HTTP callout is pending)");
            return;
        };
        let result = match self.vm(token) {
            Some(vm) => vm.on_http_call_response(id, response),
            None => Err(Error::UnknownCall(id)),
        };
        note_error(&self.trace, result);
    }

    fn answer_grpc(&mut self, step: &Step) {
        for (vm, id) in self.embedder.take_grpc_forgotten() {
            self.grpc_open.retain(|c| *c != (vm, id));
        }
        let metadata = matches!(step, Step::GrpcInitialMetadata(_) | Step::GrpcTrailingMetadata(_));
        // Metadata goes to streams only: a unary call gets its answer or its failure.
        let at = self.grpc_open.iter().position(|(_, id)| !metadata || is_grpc_stream(*id));
        let Some(at) = at else {
            self.trace.note(if metadata { "(no gRPC stream is open)" } else { "(no gRPC call is open)" });
            return;
        };
        let (token, id) = self.grpc_open[at];
        // A close ends a call or stream; a message ends a unary call.
        if matches!(step, Step::GrpcClose { .. }) || (matches!(step, Step::GrpcMessage(_)) && !is_grpc_stream(id)) {
            self.grpc_open.remove(at);
        }
        let Some(vm) = self.vm(token) else { return };
        let result = match step {
            Step::GrpcInitialMetadata(m) => vm.on_grpc_receive_initial_metadata(id, map(m)),
            Step::GrpcMessage(m) => vm.on_grpc_receive(id, m.clone()),
            Step::GrpcTrailingMetadata(m) => vm.on_grpc_receive_trailing_metadata(id, map(m)),
            Step::GrpcClose { status, message } => vm.on_grpc_close(id, *status, message.clone().into_bytes()),
            _ => Ok(()),
        };
        note_error(&self.trace, result);
    }

    /// After each step: notes the current stream's new effects and the callouts sent, and
    /// delivers queue notifications to every VM.
    fn after_step(&mut self) {
        self.note_effects();
        let calls = self.embedder.http_calls();
        for call in &calls[self.callouts_seen.min(calls.len())..] {
            self.trace.note(format!(
                "< http_call {} upstream={} headers={} body={} trailers={} timeout_ms={}",
                call.id,
                quote(call.upstream.as_bytes()),
                quote_map(&call.headers),
                quote(&call.body),
                quote_map(&call.trailers),
                call.timeout_ms
            ));
        }
        self.callouts_seen = calls.len();
        let foreign = self.embedder.foreign_effects();
        for effect in &foreign[self.foreign_seen.min(foreign.len())..] {
            self.trace.note(format!("< {}", effect.describe()));
        }
        self.foreign_seen = foreign.len();
        let grpc = self.embedder.grpc_calls();
        for call in &grpc[self.grpc_seen.min(grpc.len())..] {
            self.trace.note(format!(
                "< grpc_{} {} upstream={} service={} method={} metadata={}{}",
                if call.message.is_some() { "call" } else { "stream" },
                call.id,
                quote(call.upstream.as_bytes()),
                quote(call.service.as_bytes()),
                quote(call.method.as_bytes()),
                quote_map(&call.metadata),
                call.message.as_ref().map_or(String::new(), |m| format!(" message={}", quote(m))),
            ));
            self.grpc_open.push_back((call.vm, call.id));
        }
        self.grpc_seen = grpc.len();
        for w in 0..self.workers.len() {
            let vm = self.workers[w].vm();
            if !vm.is_failed() {
                let result = vm.deliver();
                note_error(&self.trace, result);
            }
        }
        // Callouts of a VM that failed meanwhile are dropped: forget them.
        let failed: Vec<VmToken> = self.workers.iter_mut().filter_map(|w| w.vm().is_failed().then(|| w.vm().token())).collect();
        self.grpc_open.retain(|(vm, _)| !failed.contains(vm));
    }

    /// Notes the current stream's effects not noted yet.
    fn note_effects(&mut self) {
        let Some(s) = self.stream else { return };
        let (trace, seen) = (self.trace.clone(), &mut self.effects_seen);
        let seen_now = *seen;
        let Some(memory) =
            self.workers.iter_mut().find_map(|w| w.vm_with(s.vm)).and_then(|vm| scripted_stream(vm, s.id)).map(|s| &mut s.memory)
        else {
            return;
        };
        let mut resumed = Vec::new();
        for effect in memory.effects.get(seen_now..).unwrap_or_default() {
            if let StreamEffect::Continue(t) = effect {
                self.last[*t as usize] = Action::Continue;
                resumed.push(*t as usize);
            }
        }
        self.effects_seen = note_new_effects(&trace, seen_now, &memory.effects);
        for dir in resumed {
            if dir < 2 && self.stopped_all[dir] {
                self.stopped_all[dir] = false;
                let result = self.release_queued(dir);
                note_error(&self.trace, result);
            }
        }
    }

    /// Ends the current stream, if any, noting its final state.
    fn finish_stream(&mut self) -> Result<(), Error> {
        let Some(s) = self.stream.take() else { return Ok(()) };
        let trap = self.vm(s.vm).and_then(|vm| vm.failure().map(|t| t.to_string()));
        if trap.is_some() {
            self.out.trap = trap;
        }
        let worker = self.workers.iter_mut().find(|w| w.owns(s.vm)).ok_or(Error::BadContext(s.id))?;
        let mut data = worker.finish_stream(s)?;
        if let Some(m) = data.as_any_mut().downcast_mut::<ScriptedStream>().map(|s| &mut s.memory) {
            // Effects of proxy_on_done, proxy_on_log and proxy_on_delete.
            note_new_effects(&self.trace, self.effects_seen, &m.effects);
            // Everything passed on, what was kept aside, then what was still buffered.
            for (dir, forwarded) in self.forwarded.iter_mut().enumerate() {
                let rest = std::mem::take(data_buffer(m, dir));
                forwarded.append(&mut self.kept[dir]);
                forwarded.extend_from_slice(&rest);
                *data_buffer(m, dir) = std::mem::take(forwarded);
            }
            self.out.stream = std::mem::take(m);
        }
        self.out.local_reply = self.out.stream.local_reply().cloned();
        Ok(())
    }

    /// The end of the exchange: the stream ends if still open, and a failure of any VM is
    /// reported.
    fn finish(&mut self) -> Result<(), Error> {
        if self.stream.is_some() {
            self.trace.note("> end of exchange");
            self.finish_stream()?;
        }
        if self.out.trap.is_none() {
            self.out.trap = self.workers.iter_mut().find_map(|w| w.vm().failure().map(|t| t.to_string()));
        }
        Ok(())
    }
}

/// The stream of context `id` in `vm`, as the runner made it.
fn scripted_stream(vm: &mut Vm, id: u32) -> Option<&mut ScriptedStream> {
    vm.stream_mut(id)?.as_any_mut().downcast_mut()
}

/// The data direction a step adds to: the index of its buffer in [`data_buffer`] (the same
/// as its [`abi::StreamType`]).
fn data_direction(step: &Step) -> Option<usize> {
    match step {
        Step::RequestBody { .. } => Some(0),
        Step::ResponseBody { .. } => Some(1),
        Step::DownstreamData { .. } => Some(2),
        Step::UpstreamData { .. } => Some(3),
        _ => None,
    }
}

/// Whether a gRPC id is a stream's (Envoy's ids: streams 6, 10, ...; calls 5, 9, ...).
fn is_grpc_stream(id: u32) -> bool {
    id & 3 == 2
}

/// The HTTP direction a body or trailers step belongs to: 0 for the request, 1 for the
/// response.
fn http_direction(step: &Step) -> Option<usize> {
    match step {
        Step::RequestBody { .. } | Step::RequestTrailers(_) => Some(0),
        Step::ResponseBody { .. } | Step::ResponseTrailers(_) => Some(1),
        _ => None,
    }
}

/// The buffer of data direction `dir` (see [`data_direction`]).
fn data_buffer(m: &mut MemoryStream, dir: usize) -> &mut Vec<u8> {
    match dir {
        0 => &mut m.request_body,
        1 => &mut m.response_body,
        2 => &mut m.downstream_data,
        _ => &mut m.upstream_data,
    }
}

/// Notes an error of the host API (a failed VM refusing a callback, a trap) in the trace.
fn note_error<T>(trace: &Trace, result: Result<T, Error>) {
    if let Err(e) = result {
        trace.note(format!("< error: {}", transcript_error(&e)));
    }
}

/// Notes `effects[seen..]` and returns how many effects are noted now.
fn note_new_effects(trace: &Trace, seen: usize, effects: &[StreamEffect]) -> usize {
    for effect in effects.get(seen..).unwrap_or_default() {
        trace.note(effect_text(effect));
    }
    effects.len()
}

/// A stream effect as the transcript shows it.
fn effect_text(effect: &StreamEffect) -> String {
    match effect {
        StreamEffect::Continue(t) => format!("< effect: continue {}", t.name()),
        StreamEffect::Close(t) => format!("< effect: close {}", t.name()),
        StreamEffect::ClearRouteCache => "< effect: clear route cache".to_string(),
        StreamEffect::LocalReply(r) => format!(
            "< effect: local reply {} details={} body={} headers={}{}",
            r.status,
            quote(r.details.as_bytes()),
            quote(&r.body),
            quote_map(&r.headers),
            r.grpc_status.map_or(String::new(), |g| format!(" grpc_status={g}")),
        ),
    }
}

/// An error as a transcript shows it: the same on every engine (a trap by its kind and
/// callback, not the engine's message).
pub fn transcript_error(error: &Error) -> String {
    match error {
        Error::Trap { callback, trap } => format!("trapped in {callback} ({})", trap_text(trap)),
        Error::Compile { .. } | Error::Text(_) => "not a valid Wasm module".to_string(),
        Error::Instantiate { .. } => "could not instantiate the module".to_string(),
        Error::VmFailed(_) => "the VM has failed".to_string(),
        other => other.to_string(),
    }
}

impl Outcome {
    /// Whether the plugin resumed `direction` with `proxy_continue_stream` (or 0.1.0's
    /// `proxy_continue_request` / `proxy_continue_response`).
    pub fn continued(&self, direction: abi::StreamType) -> bool {
        self.stream.effects.contains(&StreamEffect::Continue(direction))
    }
}
