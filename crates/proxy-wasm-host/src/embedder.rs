//! What an embedding proxy implements: [`Embedder`] for process-wide services (log sink, clock,
//! properties, callout dispatch) and [`Stream`] for one HTTP stream or TCP connection (its
//! headers, bodies, trailers, properties, and the effects a plugin has on it).
//!
//! [`MemoryStream`] is a complete in-memory [`Stream`]: a proxy can copy its request into one
//! and back, or implement [`Stream`] over its own objects.

use std::any::Any;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use abi::{BufferType, LogLevel, MapType, Status, StreamType};

use crate::{Error, FailurePolicy, HeaderMap, ReloadConfig, VmModel};

/// Identifies one VM instance in the process, so that callout answers can be routed back to
/// the VM that asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmToken(pub u64);

/// What the host knows of a plugin: the link between a root context and its configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's name (`plugin_name`), used in logs and errors.
    pub name: String,
    /// The root id that selects the plugin's root context inside the module (`plugin_root_id`).
    pub root_id: String,
    /// The VM id (`plugin_vm_id`): plugins with the same VM id share a VM and shared data.
    pub vm_id: String,
    /// The plugin configuration handed to `proxy_on_configure`.
    pub configuration: Vec<u8>,
    /// The older spelling of [`FailurePolicy::FailOpen`] (Envoy's deprecated `fail_open`):
    /// true may not be combined with a [`failure_policy`](Self::failure_policy).
    pub fail_open: bool,
    /// What the plugin's streams get when its VM fails (Envoy's `failure_policy`); `None` is
    /// unspecified: [`FailurePolicy::FailClosed`], or `FailOpen` with `fail_open`.
    pub failure_policy: Option<FailurePolicy>,
    /// How a [`FailurePolicy::FailReload`] plugin reloads (Envoy's `reload_config`).
    pub reload_config: ReloadConfig,
    /// Where the plugin's streams run.
    pub vm_model: VmModel,
    /// What the plugin may not see (hidden headers and properties) and the upstreams it may
    /// call out to.
    pub policy: crate::PluginPolicy,
    /// Whether a headers callback answering 1 (StopIteration) stops only the headers, so that
    /// body callbacks go on (true), or all iteration of that direction until the plugin
    /// resumes it (false, the default): Envoy's `PluginConfig.allow_on_headers_stop_iteration`
    /// (proxy-wasm-cpp-host `ContextBase::convertVmCallResultToFilterHeadersStatus`).
    pub allow_on_headers_stop_iteration: bool,
}

impl PluginInfo {
    /// The policy in force: [`failure_policy`](Self::failure_policy), else `FailOpen` for
    /// `fail_open`, else `FailClosed`.
    pub fn failure_policy_in_force(&self) -> FailurePolicy {
        match (self.failure_policy, self.fail_open) {
            (Some(p), _) => p,
            (None, true) => FailurePolicy::FailOpen,
            (None, false) => FailurePolicy::FailClosed,
        }
    }

    /// Whether a failed VM's streams of this plugin go on unfiltered: `FAIL_OPEN`, or
    /// `FAIL_RELOAD` with [`ReloadConfig::fail_open`].
    pub fn fails_open(&self) -> bool {
        match self.failure_policy_in_force() {
            FailurePolicy::FailOpen => true,
            FailurePolicy::FailClosed => false,
            FailurePolicy::FailReload => self.reload_config.fail_open,
        }
    }

    /// Refuses `fail_open` together with a `failure_policy` (as Envoy does) and a bad reload
    /// configuration, naming the key.
    pub fn check_policy(&self) -> Result<(), Error> {
        if self.fail_open && self.failure_policy.is_some() {
            return Err(Error::BadConfig {
                plugin: self.name.clone(),
                key: "fail_open".into(),
                message: "may not be set together with `failure_policy` (it is the older spelling of FAIL_OPEN)".into(),
            });
        }
        self.reload_config.validate(&self.name)
    }
}

/// Where a property is asked for.
#[derive(Clone, Copy, Debug)]
pub struct PropertyCx<'a> {
    /// The plugin whose code asks.
    pub plugin: &'a PluginInfo,
    /// The context the property is asked in (a root or stream context id).
    pub context_id: u32,
    /// The VM.
    pub vm: VmToken,
}

/// An HTTP callout the plugin asked for with `proxy_http_call`. The embedder sends it and later
/// answers through [`Vm::on_http_call_response`](crate::Vm::on_http_call_response) with `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCall {
    /// The id the host gave the call (the plugin's token).
    pub id: u32,
    /// The VM that made it.
    pub vm: VmToken,
    /// The root context that owns it; the answer goes to this context (Envoy keeps the call on
    /// the caller's root context).
    pub context_id: u32,
    /// The context whose callback made it (a stream, or the root itself).
    pub origin: u32,
    /// The upstream (cluster) name.
    pub upstream: String,
    /// Request headers, with `:method`, `:path` and `:authority`.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: HeaderMap,
    /// Timeout in milliseconds.
    pub timeout_ms: u32,
}

/// A gRPC call or stream the plugin opened with `proxy_grpc_call` or `proxy_grpc_stream`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcCall {
    /// The id the host gave it.
    pub id: u32,
    /// The VM that opened it.
    pub vm: VmToken,
    /// The root context that owns it; its events go to this context.
    pub context_id: u32,
    /// The context whose callback opened it (a stream, or the root itself).
    pub origin: u32,
    /// The upstream: a cluster name, or a serialized GrpcService (lossy UTF-8).
    pub upstream: String,
    /// The service name (lossy UTF-8).
    pub service: String,
    /// The method name (lossy UTF-8).
    pub method: String,
    /// Initial metadata.
    pub metadata: HeaderMap,
    /// The request message (a unary call), or `None` for a stream.
    pub message: Option<Vec<u8>>,
    /// Timeout in milliseconds (unary calls; 0 for streams).
    pub timeout_ms: u32,
}

/// The process-wide services a proxy provides to plugins. Every method has a default, so an
/// embedder implements only what it supports; the defaults refuse callouts with
/// [`Status::Unimplemented`] and know no properties.
pub trait Embedder: Send + Sync + 'static {
    /// Receives a plugin's log line (from `proxy_log`, or WASI stdout at INFO and stderr at
    /// ERROR). `plugin` is `None` before any root context exists (during `_initialize`).
    fn log(&self, plugin: Option<&PluginInfo>, level: LogLevel, message: &str) {
        let name = plugin.map_or("", |p| p.name.as_str());
        eprintln!("[{level}] {name}: {message}");
    }

    /// The level below which the plugin need not log (`proxy_get_log_level`).
    fn log_level(&self, _plugin: Option<&PluginInfo>) -> LogLevel {
        LogLevel::Info
    }

    /// Wall-clock time in nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }

    /// Monotonic time in nanoseconds from an arbitrary start.
    fn monotonic_nanos(&self) -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
    }

    /// A property the stream did not answer (path segments joined by 0 bytes), for example
    /// `node\0id`. `Err(NotFound)` when unknown.
    fn get_property(&self, _cx: PropertyCx<'_>, _path: &[u8]) -> Result<Vec<u8>, Status> {
        Err(Status::NotFound)
    }

    /// Sets a property outside any stream. `Err(NotFound)` when unknown or read-only.
    fn set_property(&self, _cx: PropertyCx<'_>, _path: &[u8], _value: &[u8]) -> Result<(), Status> {
        Err(Status::NotFound)
    }

    /// Sends an HTTP callout. `Err(BadArgument)` for an unknown upstream, `Err(InternalFailure)`
    /// when it cannot be sent.
    fn http_call(&self, _call: &HttpCall) -> Result<(), Status> {
        Err(Status::Unimplemented)
    }

    /// Starts a gRPC call or stream. `Err(ParseFailure)` for an unknown upstream (as Envoy),
    /// `Err(BadArgument)` when no client can be made for it, `Err(InternalFailure)` when it
    /// cannot be sent.
    fn grpc_call(&self, _call: &GrpcCall) -> Result<(), Status> {
        Err(Status::Unimplemented)
    }

    /// Sends a message on a gRPC stream.
    fn grpc_send(&self, _vm: VmToken, _id: u32, _message: &[u8], _end_stream: bool) -> Result<(), Status> {
        Err(Status::Unimplemented)
    }

    /// Cancels a gRPC call or stream; no callback follows.
    fn grpc_cancel(&self, _vm: VmToken, _id: u32) -> Result<(), Status> {
        Err(Status::Unimplemented)
    }

    /// Half-closes a gRPC stream (or cancels a call) from the plugin's side.
    fn grpc_close(&self, _vm: VmToken, _id: u32) -> Result<(), Status> {
        Err(Status::Unimplemented)
    }

    /// Called when an HTTP callout or gRPC call is dropped without an answer (its VM or its
    /// root context went away), so the embedder can stop waiting for it.
    fn callout_dropped(&self, _vm: VmToken, _id: u32) {}
}

/// An embedder that uses every default: logs to stderr, no properties, no callouts.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultEmbedder;

impl Embedder for DefaultEmbedder {}

/// A local reply the plugin sent with `proxy_send_local_response`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status code.
    pub status: u32,
    /// Response code details.
    pub details: String,
    /// Body.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: HeaderMap,
    /// gRPC status, or `None` (-1 on the wire).
    pub grpc_status: Option<i32>,
}

/// What a plugin did to a stream, beyond editing its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEffect {
    /// Resume a paused direction (`proxy_continue_stream`, `proxy_continue_request`, ...).
    Continue(StreamType),
    /// Reset a direction (`proxy_close_stream`).
    Close(StreamType),
    /// Reply from the proxy; the stream ends.
    LocalReply(LocalReply),
    /// Routing inputs changed (`proxy_clear_route_cache`, 0.1.0).
    ClearRouteCache,
}

/// One HTTP stream or TCP connection, as the host reaches it from host functions.
///
/// The host decides which map and buffer a callback may touch (and answers `BAD_ARGUMENT` or
/// `NOT_FOUND` otherwise) before it asks the stream, so an implementation only stores data.
pub trait Stream: Send + 'static {
    /// One of the four HTTP maps. `None` when this stream has no such map (a TCP connection).
    fn map(&mut self, map: MapType) -> Option<&mut HeaderMap>;

    /// The request or response body, or downstream or upstream data. `None` when this stream
    /// has no such buffer.
    fn buffer(&mut self, buffer: BufferType) -> Option<&mut Vec<u8>>;

    /// Applies an effect. `Err(status)` refuses it: the host passes the status on to the plugin
    /// for a continue or a close; a refused local reply (the response headers already went
    /// downstream) makes the host reset the stream instead (`Close(HttpResponse)`), as Envoy's
    /// `sendLocalReply` does, and the plugin gets OK.
    fn effect(&mut self, effect: StreamEffect) -> Result<(), Status>;

    /// A property of this stream (path segments joined by 0 bytes), or `None` to ask the
    /// [`Embedder`].
    fn property(&self, _path: &[u8]) -> Option<Vec<u8>> {
        None
    }

    /// Sets a property of this stream. `None` hands it to the [`Embedder`].
    fn set_property(&mut self, _path: &[u8], _value: &[u8]) -> Option<Result<(), Status>> {
        None
    }

    /// For downcasting to the embedder's own type.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A complete in-memory [`Stream`]: the data, the properties, and every effect in order.
#[derive(Clone, Debug, Default)]
pub struct MemoryStream {
    /// Request headers.
    pub request_headers: HeaderMap,
    /// Request body (what is buffered now).
    pub request_body: Vec<u8>,
    /// Request trailers.
    pub request_trailers: HeaderMap,
    /// Response headers.
    pub response_headers: HeaderMap,
    /// Response body (what is buffered now).
    pub response_body: Vec<u8>,
    /// Response trailers.
    pub response_trailers: HeaderMap,
    /// TCP bytes from the client (buffered now).
    pub downstream_data: Vec<u8>,
    /// TCP bytes from the server (buffered now).
    pub upstream_data: Vec<u8>,
    /// Properties by path (segments joined by 0 bytes); the plugin may add its own.
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    /// Effects, in order.
    pub effects: Vec<StreamEffect>,
    /// Whether response headers went downstream (a local reply is refused after that, and the
    /// host resets the stream instead).
    pub response_started: bool,
}

impl MemoryStream {
    /// An empty stream.
    pub fn new() -> Self {
        MemoryStream::default()
    }

    /// The local reply, if the plugin sent one.
    pub fn local_reply(&self) -> Option<&LocalReply> {
        self.effects.iter().rev().find_map(|e| match e {
            StreamEffect::LocalReply(r) => Some(r),
            _ => None,
        })
    }
}

impl Stream for MemoryStream {
    fn map(&mut self, map: MapType) -> Option<&mut HeaderMap> {
        match map {
            MapType::HttpRequestHeaders => Some(&mut self.request_headers),
            MapType::HttpRequestTrailers => Some(&mut self.request_trailers),
            MapType::HttpResponseHeaders => Some(&mut self.response_headers),
            MapType::HttpResponseTrailers => Some(&mut self.response_trailers),
            _ => None,
        }
    }

    fn buffer(&mut self, buffer: BufferType) -> Option<&mut Vec<u8>> {
        match buffer {
            BufferType::HttpRequestBody => Some(&mut self.request_body),
            BufferType::HttpResponseBody => Some(&mut self.response_body),
            BufferType::DownstreamData => Some(&mut self.downstream_data),
            BufferType::UpstreamData => Some(&mut self.upstream_data),
            _ => None,
        }
    }

    fn effect(&mut self, effect: StreamEffect) -> Result<(), Status> {
        if matches!(effect, StreamEffect::LocalReply(_)) && self.response_started {
            return Err(Status::BadArgument);
        }
        self.effects.push(effect);
        Ok(())
    }

    fn property(&self, path: &[u8]) -> Option<Vec<u8>> {
        self.properties.get(path).cloned()
    }

    fn set_property(&mut self, path: &[u8], value: &[u8]) -> Option<Result<(), Status>> {
        self.properties.insert(path.to_vec(), value.to_vec());
        Some(Ok(()))
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
