//! [`VmHost`]: the host-side state of one VM, held in the engine's store so that host functions
//! reach it through their [`HostCx`](crate::HostCx).

use std::sync::Arc;

use abi::{AbiVersion, BufferType, Callback, MapLimits, MapType, Status};

use crate::capabilities::{CallbackSet, HostSet};
use crate::id_table::IdTable;
use crate::trace::TraceHandle;
use crate::CapabilityRestriction;
use crate::{Embedder, HeaderMap, Limits, Mailbox, PluginInfo, Services, Stream, Trace, VmToken};

/// The host state of one VM: its contexts, the callback running now, and handles to the
/// embedder and the shared services.
pub struct VmHost {
    pub(crate) token: VmToken,
    pub(crate) abi: AbiVersion,
    pub(crate) vm_id: String,
    pub(crate) vm_configuration: Vec<u8>,
    pub(crate) environment: Vec<(String, String)>,
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) services: Arc<Services>,
    /// Made on first need (a queue registered, or the embedder asks): most VMs never have one.
    mailbox: Option<Arc<Mailbox>>,
    pub(crate) map_limits: MapLimits,
    pub(crate) contexts: IdTable<Context>,
    pub(crate) call: CallState,
    /// Outstanding HTTP callouts, by call id.
    pub(crate) http_calls: IdTable<Callout>,
    /// Outstanding gRPC calls and streams, by id.
    pub(crate) grpc_calls: IdTable<Callout>,
    /// The last id given to an HTTP call, a gRPC call and a gRPC stream: Envoy's ids, typed by
    /// their low two bits (proxy-wasm-cpp-host `WasmBase::nextHttpCallId` and friends).
    pub(crate) last_callout: [u32; 3],
    /// This VM's metric ids (Envoy's: a new one on every `proxy_define_metric`), each to the
    /// handle of the shared metric in [`Services`](crate::Services).
    pub(crate) metric_ids: IdTable<u32>,
    /// The last metric id given to a counter, a gauge and a histogram (proxy-wasm-cpp-host
    /// `WasmBase::nextCounterMetricId` and friends: 4, 8, ...; 5, 9, ...; 6, 10, ...).
    pub(crate) last_metric: [u32; 3],
    /// Where callbacks and host calls are recorded, when tracing is on.
    pub(crate) trace: Option<TraceHandle>,
    /// A root context called `proxy_done`: the VM deletes it after the callback.
    pub(crate) roots_done: bool,
    /// The allocator export engines call (`malloc`, else `proxy_on_memory_allocate`), as the
    /// trace names it.
    pub(crate) allocator: Callback,
    /// The VM's memory and CPU limits.
    pub(crate) limits: Limits,
    /// Bytes of linear memory the guest asked for and the engine refused at the memory limit
    /// during the running callback (the largest such request), if any.
    pub(crate) memory_refused: Option<u64>,
    /// What the VM reports to its plugins' fault state and stats; `None` for a VM made by hand
    /// (not by a [`PluginHost`](crate::PluginHost)).
    pub(crate) monitor: Option<crate::policy::VmMonitor>,
    /// What the guest may call and be called with ([`CapabilityRestriction`]).
    pub(crate) capabilities: CapabilityRestriction,
    /// Host functions and callbacks whose first denial was logged already.
    pub(crate) denials_logged: (HostSet, CallbackSet),
    /// Whether a callout to an upstream outside the plugin's allow-list was logged already.
    pub(crate) callout_refusal_logged: bool,
    /// Whether a plugin started in this VM hides headers (its [`PluginPolicy`](crate::PluginPolicy)):
    /// when none does, the sanitising checks on the header paths are skipped.
    pub(crate) hides_headers: bool,
    /// Set while the start functions or the guest allocator run: only the host functions the
    /// C++ host's V8 runtime allows then may be called (see [`abi::RestrictedPhase`]).
    pub(crate) restricted: Option<abi::RestrictedPhase>,
}

/// The settings a [`VmHost`] is made with.
#[derive(Clone)]
pub struct VmHostConfig {
    /// The VM id.
    pub vm_id: String,
    /// The VM configuration handed to `proxy_on_vm_start`.
    pub vm_configuration: Vec<u8>,
    /// The WASI environment the plugin sees (never the host's).
    pub environment: Vec<(String, String)>,
    /// Limits on serialized maps from the guest.
    pub map_limits: MapLimits,
    /// The VM's memory and CPU limits, which the engine applies at instantiation and the host
    /// around each call.
    pub limits: Limits,
    /// The host functions and callbacks the guest may use (Envoy's
    /// `capability_restriction_config`); unrestricted by default.
    pub capabilities: CapabilityRestriction,
}

impl VmHostConfig {
    /// The settings of VM `vm_id` with no VM configuration, an empty environment and the default
    /// map and VM limits.
    pub fn new(vm_id: impl Into<String>) -> Self {
        VmHostConfig {
            vm_id: vm_id.into(),
            vm_configuration: Vec::new(),
            environment: Vec::new(),
            map_limits: MapLimits::default(),
            limits: Limits::default(),
            capabilities: CapabilityRestriction::default(),
        }
    }

    /// These settings with `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// The root context id and the plugin of context `id` (a root context's own), if `id` is a
/// context of `contexts`. A free function over the map, so that a caller can hold the plugin
/// while it changes other fields of its [`VmHost`].
pub(crate) fn root_plugin(contexts: &IdTable<Context>, id: u32) -> Option<(u32, &Arc<PluginInfo>)> {
    let root = contexts.get(&id)?.root;
    match &contexts.get(&root)?.kind {
        ContextKind::Root(r) => Some((root, &r.plugin)),
        ContextKind::Stream(_) => None,
    }
}

/// One context of a VM.
pub(crate) struct Context {
    /// The root context this one belongs to (itself for a root context).
    pub root: u32,
    pub kind: ContextKind,
}

pub(crate) enum ContextKind {
    /// Boxed: roots are few, streams many, and a stream's entry stays small.
    Root(Box<RootContext>),
    Stream(StreamContext),
}

/// A root context: one plugin of the VM.
pub(crate) struct RootContext {
    pub plugin: Arc<PluginInfo>,
    /// The tick period set with `proxy_set_tick_period_milliseconds` (0: no ticks).
    pub tick_period_ms: u32,
    /// `proxy_on_done` returned false: the root waits for `proxy_done`.
    pub done_pending: bool,
    /// `proxy_done` was called after `done_pending`: the VM deletes the context.
    pub done_called: bool,
    /// What `proxy_get_status` answers from any context of this root: (0, "") at first; a
    /// failed HTTP callout sets (11, "reset") and a gRPC close its status and message for their
    /// callback, after which the message is cleared and the code stays (Envoy's
    /// `Context::status_code_` and `status_message_` on the root).
    pub status: (u32, Vec<u8>),
}

/// An HTTP stream or TCP connection.
pub(crate) struct StreamContext {
    pub stream: Box<dyn Stream>,
    pub tcp: bool,
    pub phase: StreamPhase,
    /// Its plugin's [`PluginInfo::allow_on_headers_stop_iteration`], kept here when the stream
    /// is made (a root context's plugin never changes) so headers callbacks need not look up
    /// the root.
    pub allows_stop: bool,
}

/// Which parts of a stream the plugin holds now; the host's access rules read it. As Envoy's
/// `Context` keeps a pointer to a part of the stream from the callback that delivers it until
/// that callback answers continue (`decodeHeaders`, `decodeData`, `decodeTrailers` and their
/// `encode*` twins), a part is held during its own callback and, when the callback stopped,
/// until the plugin resumes; `proxy_continue_stream` of either HTTP direction lets go of the
/// whole request side (`Context::continueStream`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StreamPhase {
    pub request_headers: bool,
    pub request_body: bool,
    pub request_trailers: bool,
    pub response_headers: bool,
    pub response_body: bool,
    pub response_trailers: bool,
    pub downstream_data: bool,
    pub upstream_data: bool,
    /// The last body callback of the request (or response) runs: a write to its missing
    /// trailers creates them (Envoy's `Context::getMap`, `addDecodedTrailers`).
    pub request_trailers_creatable: bool,
    pub response_trailers_creatable: bool,
    /// Which parts arrived at all, for `proxy_on_log` (Envoy's access-log maps).
    pub arrived: Arrived,
    /// A local reply was sent, or the failure policy ended the stream: the stream has ended.
    pub local_reply: bool,
    /// The failure policy answered the stream (counted once in the stats).
    pub policy_applied: bool,
    /// The stream was created while its plugin was failed: the policy answers every callback
    /// and no guest code runs for it.
    pub rejected: bool,
}

/// The parts of an HTTP stream `proxy_on_log` can read, if they arrived: Envoy hands the
/// access log the request headers, response headers and response trailers, never the request
/// trailers (`Context::log`, `getConstMap` in the access-log phase).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Arrived {
    pub request_headers: bool,
    pub response_headers: bool,
    pub response_trailers: bool,
}

impl StreamPhase {
    /// The flag of a body or data buffer.
    pub(crate) fn data_mut(&mut self, buffer: BufferType) -> &mut bool {
        match buffer {
            BufferType::HttpRequestBody => &mut self.request_body,
            BufferType::HttpResponseBody => &mut self.response_body,
            BufferType::DownstreamData => &mut self.downstream_data,
            _ => &mut self.upstream_data,
        }
    }
}

/// The kinds of callout, numbered as the low two bits of their ids (proxy-wasm-cpp-host
/// `WasmBase::CalloutType`): HTTP calls 4, 8, 12, ...; gRPC calls 5, 9, ...; gRPC streams 6,
/// 10, .... An id whose low bits are 3 is none of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CalloutKind {
    Http = 0,
    GrpcCall = 1,
    GrpcStream = 2,
}

impl CalloutKind {
    /// The kind an id's low two bits say, if any.
    pub(crate) fn of(id: u32) -> Option<CalloutKind> {
        match id & 3 {
            0 => Some(CalloutKind::Http),
            1 => Some(CalloutKind::GrpcCall),
            2 => Some(CalloutKind::GrpcStream),
            _ => None,
        }
    }
}

/// An outstanding HTTP callout, gRPC call or gRPC stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Callout {
    /// The root context that owns it: its callbacks come there, and it lives as long as that
    /// root (Envoy keeps the handler on the caller's root context).
    pub root: u32,
    /// The context that made it (a stream, or the root itself): the stream whose plugin's
    /// failure policy applies should its callback trap.
    pub origin: u32,
    /// A gRPC stream (rather than a unary call or an HTTP call).
    pub stream: bool,
    /// A gRPC stream the plugin closed (`proxy_grpc_close`): forgotten once the remote side
    /// closes too.
    pub local_closed: bool,
    /// A gRPC stream the remote side closed: forgotten once the plugin closes or cancels it
    /// (Envoy's `GrpcStreamClientHandler` keeps it until both sides closed).
    pub remote_closed: bool,
}

impl Callout {
    /// A new, open callout.
    pub(crate) fn new(root: u32, origin: u32, stream: bool) -> Callout {
        Callout { root, origin, stream, local_closed: false, remote_closed: false }
    }
}

/// The callback running now and the data only it can see.
#[derive(Default)]
pub(crate) struct CallState {
    pub callback: Option<Callback>,
    /// The context the callback was called on.
    pub context_id: u32,
    /// The context host functions act on: `context_id` unless `proxy_set_effective_context`
    /// changed it.
    pub effective: u32,
    pub data: CallData,
    /// `proxy_send_local_response` was called during this callback: a stream callback then
    /// answers stop, whatever the guest returned (the C++ host's `stopNextIteration`).
    pub reply_sent: bool,
}

impl CallState {
    /// A callback starts on `context_id`: it is the effective context, and no local reply was
    /// sent yet. The call data is set apart (most callbacks have none).
    #[inline]
    pub(crate) fn begin(&mut self, callback: Callback, context_id: u32) {
        self.callback = Some(callback);
        self.context_id = context_id;
        self.effective = context_id;
        self.reply_sent = false;
    }
}

/// Data that exists only during one callback.
#[derive(Default)]
pub(crate) enum CallData {
    #[default]
    None,
    HttpCallResponse {
        headers: HeaderMap,
        body: Vec<u8>,
        trailers: HeaderMap,
    },
    /// A failed HTTP callout: no response exists, so its maps and body do not either (Envoy's
    /// `Context::onHttpCallFailure` sets no `http_call_response_`); the root's status says why.
    HttpCallFailure,
    GrpcInitialMetadata(HeaderMap),
    GrpcTrailingMetadata(HeaderMap),
    GrpcMessage(Vec<u8>),
    ForeignArguments(Vec<u8>),
}

/// A buffer as a host function reaches it.
pub(crate) enum BufferRef<'a> {
    /// A stream buffer (or a gRPC message) the plugin may change.
    Mutable(&'a mut Vec<u8>),
    /// A buffer the plugin may only read (configuration, callout answers, arguments), or one
    /// that holds nothing now (a body outside its callback).
    ReadOnly(&'a [u8]),
}

impl VmHost {
    /// A host state for a new VM.
    pub fn new(config: VmHostConfig, abi: AbiVersion, embedder: Arc<dyn Embedder>, services: Arc<Services>) -> Self {
        VmHost {
            token: services.next_vm_token(),
            abi,
            vm_id: config.vm_id,
            vm_configuration: config.vm_configuration,
            environment: config.environment,
            embedder,
            services,
            mailbox: None,
            map_limits: config.map_limits,
            contexts: IdTable::default(),
            call: CallState::default(),
            http_calls: IdTable::default(),
            grpc_calls: IdTable::default(),
            last_callout: [CalloutKind::Http as u32, CalloutKind::GrpcCall as u32, CalloutKind::GrpcStream as u32],
            metric_ids: IdTable::default(),
            last_metric: [0, 1, 2],
            trace: None,
            roots_done: false,
            allocator: Callback::Malloc,
            limits: config.limits,
            memory_refused: None,
            monitor: None,
            capabilities: config.capabilities,
            denials_logged: (HostSet::EMPTY, CallbackSet::EMPTY),
            callout_refusal_logged: false,
            hides_headers: false,
            restricted: None,
        }
    }

    /// The mailbox through which queue notifications reach this VM (made on the first call).
    pub(crate) fn mailbox(&mut self) -> &Arc<Mailbox> {
        self.mailbox.get_or_insert_with(Arc::default)
    }

    /// The VM's limits: an engine applies [`Limits::max_memory_bytes`] when it instantiates the
    /// module; the host arms [`Limits::call_deadline`] around each call.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The guest allocator the engine calls for [`HostCx::allocate`](crate::HostCx::allocate):
    /// [`Callback::Malloc`] or [`Callback::OnMemoryAllocate`], chosen by the host
    /// ([`allocator_callback`](crate::engine::allocator_callback)).
    pub fn allocator(&self) -> Callback {
        self.allocator
    }

    /// Sets the guest allocator (see [`allocator`](Self::allocator)); the host sets it from the
    /// module's exports before instantiating, and so must anyone who makes a `VmHost` by hand.
    pub fn set_allocator(&mut self, callback: Callback) {
        self.allocator = callback;
    }

    /// The largest growth of linear memory (in bytes) the engine refused at the memory limit
    /// during the running (or last) callback, if any ([`note_memory_refused`](Self::note_memory_refused)).
    pub fn memory_refused(&self) -> Option<u64> {
        self.memory_refused
    }

    /// Tells the host that the engine refused to grow linear memory to `requested_bytes` because
    /// of [`Limits::max_memory_bytes`] (the guest's `memory.grow` got -1). Should the running
    /// callback then trap, its trap is a
    /// [`TrapKind::MemoryLimit`](crate::TrapKind::MemoryLimit) one that names the limit.
    pub fn note_memory_refused(&mut self, requested_bytes: u64) {
        self.memory_refused = Some(self.memory_refused.map_or(requested_bytes, |r| r.max(requested_bytes)));
    }

    /// Records this VM's callbacks and host calls in `trace` (labelled `label`), or stops
    /// recording.
    pub fn set_trace(&mut self, trace: Option<&Trace>, label: impl Into<String>) {
        self.trace = trace.map(|t| t.register_vm(label.into()));
    }

    /// The host functions and callbacks this VM's guest may use.
    pub fn capabilities(&self) -> &CapabilityRestriction {
        &self.capabilities
    }

    /// The ABI version of the guest.
    pub fn abi_version(&self) -> AbiVersion {
        self.abi
    }

    /// This VM's token.
    pub fn token(&self) -> VmToken {
        self.token
    }

    /// The VM id.
    pub fn vm_id(&self) -> &str {
        &self.vm_id
    }

    /// The callback running now, if any.
    pub fn current_callback(&self) -> Option<Callback> {
        self.call.callback
    }

    /// The context host functions act on now.
    pub(crate) fn effective(&self) -> u32 {
        self.call.effective
    }

    /// The plugin of the effective context (its root's), if any.
    pub(crate) fn plugin(&self) -> Option<&Arc<PluginInfo>> {
        root_plugin(&self.contexts, self.call.effective).map(|(_, plugin)| plugin)
    }

    /// The effective context's plugin when its [`PluginPolicy`](crate::PluginPolicy) hides
    /// headers in `map` (see [`PluginPolicy::sanitizes`](crate::PluginPolicy)); `None`, the
    /// common case, when the plugin sees the map whole.
    pub(crate) fn sanitizing(&self, map: MapType) -> Option<Arc<PluginInfo>> {
        self.sanitizing_of(self.call.effective, map).cloned()
    }

    /// [`sanitizing`](Self::sanitizing) without taking a reference on the plugin: for a
    /// lookup that only asks whether one key is hidden.
    pub(crate) fn hides_header_in(&self, map: MapType) -> Option<&PluginInfo> {
        self.sanitizing_of(self.call.effective, map).map(|p| &**p)
    }

    /// The plugin of context `id` when it hides headers in `map`: what the sanitising checks
    /// of host functions (on the effective context) and of callbacks' header counts share.
    pub(crate) fn sanitizing_of(&self, id: u32, map: MapType) -> Option<&Arc<PluginInfo>> {
        if !self.hides_headers {
            return None;
        }
        root_plugin(&self.contexts, id).map(|(_, plugin)| plugin).filter(|p| p.policy.sanitizes(map))
    }

    /// The root context of the effective context.
    pub(crate) fn root_mut(&mut self) -> Option<&mut RootContext> {
        let root = self.contexts.get(&self.call.effective)?.root;
        match &mut self.contexts.get_mut(&root)?.kind {
            ContextKind::Root(r) => Some(r),
            ContextKind::Stream(_) => None,
        }
    }

    /// The effective context's stream, if it is a stream context.
    pub(crate) fn stream_mut(&mut self) -> Option<&mut StreamContext> {
        match &mut self.contexts.get_mut(&self.call.effective)?.kind {
            ContextKind::Stream(s) => Some(s),
            ContextKind::Root(_) => None,
        }
    }

    /// The id the next callout of `kind` gets (never 0, never one in use), without taking it:
    /// [`take_callout_id`](Self::take_callout_id) takes it once the call is made.
    pub(crate) fn next_callout_id(&self, kind: CalloutKind) -> u32 {
        let mut id = self.last_callout[kind as usize];
        loop {
            id = id.wrapping_add(4);
            if id != 0 && !self.http_calls.contains_key(&id) && !self.grpc_calls.contains_key(&id) {
                return id;
            }
        }
    }

    /// A new id of this VM for the shared metric `handle` of type `kind`.
    pub(crate) fn new_metric_id(&mut self, kind: abi::MetricType, handle: u32) -> u32 {
        let last = &mut self.last_metric[kind.raw() as usize];
        *last = last.wrapping_add(4);
        self.metric_ids.insert(*last, handle);
        *last
    }

    /// Marks `id` (from [`next_callout_id`](Self::next_callout_id)) used up.
    pub(crate) fn take_callout_id(&mut self, kind: CalloutKind, id: u32) {
        self.last_callout[kind as usize] = id;
    }

    /// The root context of the effective context, by id.
    pub(crate) fn effective_root(&self) -> Option<u32> {
        self.contexts.get(&self.call.effective).map(|c| c.root)
    }

    /// The header map `map` as the current callback may reach it, as Envoy's `Context::getMap`
    /// (`write`: changes and the size) and `getConstMap` (reads) give it.
    ///
    /// A stream map is reachable while the plugin holds it ([`StreamPhase`]): from the callback
    /// that delivers it until that callback continues, or until the plugin resumes. A write to
    /// the missing trailers of a direction whose last body callback runs creates them. In
    /// `proxy_on_log` reads see what arrived of the request headers, response headers and
    /// response trailers (never the request trailers) and a missing map is `NotFound`; every
    /// write there is `BadArgument`. Callout and gRPC maps exist only in their own callback,
    /// and never for `write` (Envoy's `getMap` has none of them). Anything else is
    /// `BadArgument`.
    pub(crate) fn map(&mut self, map: MapType, write: bool) -> Result<&mut HeaderMap, Status> {
        let in_log = self.call.callback == Some(Callback::OnLog);
        let missing = if in_log { Status::NotFound } else { Status::BadArgument };
        if in_log && write {
            return Err(Status::BadArgument);
        }
        match map {
            MapType::HttpRequestHeaders
            | MapType::HttpRequestTrailers
            | MapType::HttpResponseHeaders
            | MapType::HttpResponseTrailers => {
                let s = self.stream_mut().ok_or(missing)?;
                if s.tcp {
                    return Err(missing);
                }
                let p = &mut s.phase;
                let reachable = if in_log {
                    match map {
                        MapType::HttpRequestHeaders => p.arrived.request_headers,
                        MapType::HttpResponseHeaders => p.arrived.response_headers,
                        MapType::HttpResponseTrailers => p.arrived.response_trailers,
                        _ => false,
                    }
                } else {
                    match map {
                        MapType::HttpRequestHeaders => p.request_headers,
                        MapType::HttpResponseHeaders => p.response_headers,
                        MapType::HttpRequestTrailers => {
                            if write && p.request_trailers_creatable {
                                p.request_trailers = true;
                            }
                            p.request_trailers
                        }
                        _ => {
                            if write && p.response_trailers_creatable {
                                p.response_trailers = true;
                            }
                            p.response_trailers
                        }
                    }
                };
                if !reachable {
                    return Err(missing);
                }
                s.stream.map(map).ok_or(missing)
            }
            // Callout answers and gRPC metadata are read-only (Envoy's `getMap` has none of them).
            _ if write => Err(Status::BadArgument),
            MapType::HttpCallResponseHeaders | MapType::HttpCallResponseTrailers => match &mut self.call.data {
                CallData::HttpCallResponse { headers, trailers, .. } => {
                    Ok(if map == MapType::HttpCallResponseHeaders { headers } else { trailers })
                }
                _ => Err(missing),
            },
            MapType::GrpcReceiveInitialMetadata => match &mut self.call.data {
                CallData::GrpcInitialMetadata(m) => Ok(m),
                _ => Err(missing),
            },
            MapType::GrpcReceiveTrailingMetadata => match &mut self.call.data {
                CallData::GrpcTrailingMetadata(m) => Ok(m),
                _ => Err(missing),
            },
        }
    }

    /// The buffer `buffer` as the current callback may reach it, as Envoy's
    /// `Context::getBuffer` gives it.
    ///
    /// Body, TCP data and gRPC message buffers always exist: during their callback (or while
    /// the plugin holds the data, its callback having stopped and nothing resumed) they hold
    /// the data and may be changed; anywhere else (another direction, a headers callback, a
    /// root context, a TCP context for HTTP bodies) they hold nothing and read as empty. The VM
    /// configuration is there in every callback. Foreign-function arguments are empty outside
    /// `proxy_on_foreign_function` (Envoy hands back the context's scratch buffer, possibly
    /// stale; we never expose stale data). Only two can be absent (`NotFound`): the plugin
    /// configuration outside `proxy_on_configure`, and a callout's body outside a successful
    /// call's `proxy_on_http_call_response`.
    pub(crate) fn buffer(&mut self, buffer: BufferType) -> Result<BufferRef<'_>, Status> {
        const NOTHING: &[u8] = &[];
        let callback = self.call.callback;
        match buffer {
            BufferType::HttpRequestBody
            | BufferType::HttpResponseBody
            | BufferType::DownstreamData
            | BufferType::UpstreamData => {
                let Some(s) = self.stream_mut() else { return Ok(BufferRef::ReadOnly(NOTHING)) };
                let held = match buffer {
                    BufferType::HttpRequestBody => s.phase.request_body && !s.tcp,
                    BufferType::HttpResponseBody => s.phase.response_body && !s.tcp,
                    BufferType::DownstreamData => s.phase.downstream_data && s.tcp,
                    _ => s.phase.upstream_data && s.tcp,
                };
                match s.stream.buffer(buffer) {
                    Some(data) if held => Ok(BufferRef::Mutable(data)),
                    _ => Ok(BufferRef::ReadOnly(NOTHING)),
                }
            }
            BufferType::VmConfiguration => Ok(BufferRef::ReadOnly(&self.vm_configuration)),
            BufferType::PluginConfiguration if callback == Some(Callback::OnConfigure) => {
                let root = self.call.context_id;
                match self.contexts.get(&root).map(|c| &c.kind) {
                    Some(ContextKind::Root(r)) => Ok(BufferRef::ReadOnly(&r.plugin.configuration)),
                    _ => Err(Status::NotFound),
                }
            }
            BufferType::PluginConfiguration => Err(Status::NotFound),
            BufferType::HttpCallResponseBody => match &self.call.data {
                CallData::HttpCallResponse { body, .. } => Ok(BufferRef::ReadOnly(body)),
                _ => Err(Status::NotFound),
            },
            // Envoy hands the plugin its own message buffer, which it may change like a body.
            BufferType::GrpcReceiveBuffer => match &mut self.call.data {
                CallData::GrpcMessage(m) => Ok(BufferRef::Mutable(m)),
                _ => Ok(BufferRef::ReadOnly(NOTHING)),
            },
            BufferType::ForeignFunctionArguments => match &self.call.data {
                CallData::ForeignArguments(a) => Ok(BufferRef::ReadOnly(a)),
                _ => Ok(BufferRef::ReadOnly(NOTHING)),
            },
        }
    }
}
