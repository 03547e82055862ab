//! An in-memory embedder and a scripted exchange: run a plugin against a list of steps
//! (request and response headers, bodies, trailers, callout answers, ticks) and get back
//! everything that happened. Tests and `pwhost run` use it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use abi::{Action, LogLevel, Status};

use crate::services::lock;
use crate::{
    CallbackRecord, CompiledModule, Embedder, Error, GrpcCall, HeaderMap, HttpCall, HttpCallResponse, LocalReply,
    MemoryStream, MetricValue, PluginHost, PluginInfo, PropertyCx, StreamEffect, VmConfig, VmToken, WorkerVm,
};

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

/// An [`Embedder`] that keeps everything in memory: logs, callouts sent, properties, and a
/// clock that only moves when told.
pub struct ScriptedEmbedder {
    logs: Mutex<Vec<LogRecord>>,
    http_calls: Mutex<Vec<HttpCall>>,
    pending: Mutex<VecDeque<(VmToken, u32)>>,
    grpc_calls: Mutex<Vec<GrpcCall>>,
    properties: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    upstreams: Mutex<Option<Vec<String>>>,
    now: AtomicU64,
    log_level: Mutex<LogLevel>,
}

impl Default for ScriptedEmbedder {
    fn default() -> Self {
        ScriptedEmbedder {
            logs: Mutex::default(),
            http_calls: Mutex::default(),
            pending: Mutex::default(),
            grpc_calls: Mutex::default(),
            properties: Mutex::default(),
            upstreams: Mutex::default(),
            // 2024-01-01T00:00:00Z: a fixed, plausible wall clock.
            now: AtomicU64::new(1_704_067_200_000_000_000),
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

    /// Moves the wall clock forward.
    pub fn advance(&self, nanos: u64) {
        self.now.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        lock(&self.logs).clone()
    }

    /// Every HTTP callout sent so far.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        lock(&self.http_calls).clone()
    }

    /// Every gRPC call or stream opened so far.
    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        lock(&self.grpc_calls).clone()
    }

    /// Takes the oldest HTTP callout still waiting for an answer: (VM, call id).
    pub fn take_pending_call(&self) -> Option<(VmToken, u32)> {
        lock(&self.pending).pop_front()
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
        if !self.upstream_known(&call.upstream) {
            return Err(Status::ParseFailure);
        }
        lock(&self.grpc_calls).push(call.clone());
        Ok(())
    }

    fn grpc_send(&self, _vm: VmToken, _id: u32, _message: &[u8], _end_stream: bool) -> Result<(), Status> {
        Ok(())
    }

    fn grpc_cancel(&self, _vm: VmToken, _id: u32) -> Result<(), Status> {
        Ok(())
    }

    fn grpc_close(&self, _vm: VmToken, _id: u32) -> Result<(), Status> {
        Ok(())
    }

    fn callout_dropped(&self, vm: VmToken, id: u32) {
        lock(&self.pending).retain(|p| *p != (vm, id));
    }
}

/// One step of a scripted exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Request headers arrive.
    RequestHeaders {
        /// The headers.
        headers: Vec<(String, String)>,
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
    RequestTrailers(Vec<(String, String)>),
    /// Response headers arrive.
    ResponseHeaders {
        /// The headers.
        headers: Vec<(String, String)>,
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
    ResponseTrailers(Vec<(String, String)>),
    /// The oldest pending HTTP callout gets this answer.
    HttpCallResponse {
        /// Response headers.
        headers: Vec<(String, String)>,
        /// Response body.
        body: Vec<u8>,
        /// Response trailers.
        trailers: Vec<(String, String)>,
    },
    /// Every root context with a tick period gets a tick.
    Tick,
}

/// A plugin run against steps.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// The plugin (name, root id, vm id, configuration, fail-open).
    pub plugin: PluginInfo,
    /// The VM configuration.
    pub vm: VmConfig,
    /// Properties of the stream (path segments joined by 0 bytes).
    pub properties: Vec<(Vec<u8>, Vec<u8>)>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// What happened in an exchange.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The stream as it ended: final headers, bodies, trailers, and every effect in order.
    pub stream: MemoryStream,
    /// The local reply, if the plugin (or the failure policy) sent one.
    pub local_reply: Option<LocalReply>,
    /// The action each stream callback answered, by step index.
    pub actions: Vec<(usize, Action)>,
    /// HTTP callouts sent.
    pub callouts: Vec<HttpCall>,
    /// Log lines.
    pub logs: Vec<LogRecord>,
    /// Metrics by name.
    pub metrics: Vec<(String, MetricValue)>,
    /// The trap that failed the VM, if any.
    pub trap: Option<String>,
    /// Every callback called, with its result.
    pub callbacks: Vec<CallbackRecord>,
}

fn map(pairs: &[(String, String)]) -> HeaderMap {
    HeaderMap::from_pairs(pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
}

/// Runs `exchange` on `code` in a fresh [`PluginHost`] on `engine` with `embedder`, and
/// reports everything that happened. Errors are those of loading and starting the plugin;
/// traps during the steps are part of the outcome.
pub fn run_exchange(
    host: &PluginHost,
    embedder: &ScriptedEmbedder,
    code: &Arc<CompiledModule>,
    exchange: &Exchange,
) -> Result<Outcome, Error> {
    let plugin_vm = host.add_plugin(code, exchange.vm.clone(), exchange.plugin.clone())?;
    let mut worker: WorkerVm = plugin_vm.worker()?;
    worker.vm().set_tracing(true);
    let mut memory = MemoryStream::new();
    memory.properties.extend(exchange.properties.iter().cloned());
    let stream = worker.create_http_stream(&exchange.plugin.root_id, Box::new(memory))?;
    let mut out = Outcome::default();
    for (i, step) in exchange.steps.iter().enumerate() {
        let vm = worker.vm_of(stream).ok_or(Error::BadContext(stream.id))?;
        let s = vm.memory_stream(stream.id).ok_or(Error::BadContext(stream.id))?;
        if s.local_reply().is_some() {
            // A local reply ended the stream: later stream data never reaches the plugin.
            if !matches!(step, Step::HttpCallResponse { .. } | Step::Tick) {
                continue;
            }
        }
        let action = match step {
            Step::RequestHeaders { headers, end_of_stream } => {
                s.request_headers = map(headers);
                Some(vm.on_request_headers(stream.id, *end_of_stream)?)
            }
            Step::RequestBody { body, end_of_stream } => {
                s.request_body.extend_from_slice(body);
                Some(vm.on_request_body(stream.id, *end_of_stream)?)
            }
            Step::RequestTrailers(t) => {
                s.request_trailers = map(t);
                Some(vm.on_request_trailers(stream.id)?)
            }
            Step::ResponseHeaders { headers, end_of_stream } => {
                s.response_headers = map(headers);
                let a = vm.on_response_headers(stream.id, *end_of_stream)?;
                if let Some(s) = vm.memory_stream(stream.id) {
                    s.response_started = a == Action::Continue;
                }
                Some(a)
            }
            Step::ResponseBody { body, end_of_stream } => {
                s.response_body.extend_from_slice(body);
                Some(vm.on_response_body(stream.id, *end_of_stream)?)
            }
            Step::ResponseTrailers(t) => {
                s.response_trailers = map(t);
                Some(vm.on_response_trailers(stream.id)?)
            }
            Step::HttpCallResponse { headers, body, trailers } => {
                if let Some((_, id)) = embedder.take_pending_call() {
                    let response = HttpCallResponse { headers: map(headers), body: body.clone(), trailers: map(trailers) };
                    // A trap here is recorded as the VM's failure below.
                    let _ = vm.on_http_call_response(id, Ok(response));
                }
                None
            }
            Step::Tick => {
                for (_, root, period) in vm.roots() {
                    if period > 0 {
                        let _ = vm.on_tick(root);
                    }
                }
                None
            }
        };
        if let Some(a) = action {
            out.actions.push((i, a));
        }
        if !vm.is_failed() {
            let _ = vm.deliver();
        }
    }
    let in_current = worker.vm().token() == stream.vm;
    let vm = worker.vm_of(stream).ok_or(Error::BadContext(stream.id))?;
    out.trap = vm.failure().map(|t| t.to_string());
    if !in_current {
        // A retired (failed) VM makes no more callbacks and is dropped with its last stream.
        out.callbacks = vm.take_trace();
    }
    let mut data = worker.finish_stream(stream)?;
    if in_current {
        out.callbacks = worker.vm().take_trace();
    }
    if let Some(m) = data.as_any_mut().downcast_mut::<MemoryStream>() {
        out.stream = std::mem::take(m);
    }
    out.local_reply = out.stream.local_reply().cloned();
    out.callouts = embedder.http_calls();
    out.logs = embedder.logs();
    out.metrics = host.services().metrics();
    Ok(out)
}

impl Outcome {
    /// Whether the plugin resumed `direction` with `proxy_continue_stream` (or 0.1.0's
    /// `proxy_continue_request` / `proxy_continue_response`).
    pub fn continued(&self, direction: abi::StreamType) -> bool {
        self.stream.effects.iter().any(|e| *e == StreamEffect::Continue(direction))
    }
}
