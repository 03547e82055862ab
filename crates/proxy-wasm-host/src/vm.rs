//! [`Vm`]: one instance of a plugin module on one thread, its root and stream contexts, and
//! every callback the host makes into it, in the documented order.
//!
//! A trap in any callback marks the VM failed: no guest code runs in it again. Its streams
//! then go on per their plugin's policy ([`PluginInfo::fails_open`]): unfiltered, or with a
//! local 503 reply. The failure is logged through `tracing` and reported to the plugin's fault
//! state; [`WorkerVm`](crate::WorkerVm) applies the rest of the policy ([`crate::policy`]).

use std::sync::Arc;

use abi::{AbiVersion, BufferType, Callback, MapType, PeerType, StreamType};

use crate::host::{root_plugin, CallData, Callout, Context, ContextKind, RootContext, StreamContext, StreamPhase};
use crate::capabilities::CallbackSet;
use crate::engine::{DeadlineSlot, HostPtr, Watchdog};
use crate::{
    Error, HeaderMap, Instance, LocalReply, Mailbox, MemoryStream, Notification, PluginInfo, Stream, StreamEffect,
    Trap, TrapKind, VmHost, VmToken,
};

/// What a stream callback's answer means for the embedder's filter chain, as Envoy reads the
/// guest's raw value (proxy-wasm-cpp-host `ContextBase::convertVmCallResultTo*Status`, then
/// Envoy's `convertFilter*Status`). The raw value shows in a trace as the callback's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Go on with the filter chain: 0 from any callback, and 2 (ContinueAndEndStream) from a
    /// headers callback, which Envoy treats as continue.
    Continue,
    /// Stop this direction until the plugin resumes it (`proxy_continue_stream`). From a headers
    /// callback: stop all iteration, so the direction's body and trailers wait for the resume
    /// too (1 unless [`PluginInfo::allow_on_headers_stop_iteration`], 3, 4 and above, or a
    /// local reply sent in the callback); from a body callback: stop and buffer, the next body
    /// callback of that direction gets everything buffered (1); from trailers or TCP data: any
    /// non-zero value, or a local reply.
    Pause,
    /// From a headers callback answering 1 with [`PluginInfo::allow_on_headers_stop_iteration`]:
    /// only the headers wait; body callbacks go on (Envoy's StopIteration).
    PauseHeaders,
    /// From a body callback answering 2: stop and keep the data buffered for the next filter,
    /// but the next body callback sees only its new chunk (Envoy's StopIterationAndWatermark).
    PauseWatermark,
    /// From a body callback answering 3 or more, or sending a local reply: stop, and the chunk is
    /// not kept (Envoy's StopIterationNoBuffer).
    StopNoBuffer,
}

impl Action {
    /// How transcripts name it.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Continue => "CONTINUE",
            Action::Pause => "PAUSE",
            Action::PauseHeaders => "PAUSE_HEADERS",
            Action::PauseWatermark => "PAUSE_WATERMARK",
            Action::StopNoBuffer => "STOP_NO_BUFFER",
        }
    }

    /// Whether the direction stops.
    pub const fn pauses(self) -> bool {
        !matches!(self, Action::Continue)
    }

    /// Whether the plugin keeps the data of a stopped body callback to read later.
    const fn holds_data(self) -> bool {
        matches!(self, Action::Pause | Action::PauseWatermark)
    }
}

/// The kinds of stream callback, which read the guest's answer differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Headers,
    Body,
    Trailers,
    Network,
}

impl Family {
    /// The guest's raw answer as Envoy reads it; `reply_sent`: the callback sent a local reply.
    fn action(self, raw: u64, reply_sent: bool, allow_on_headers_stop_iteration: bool) -> Action {
        // An i32 result: -1 reads as 0xffffffff, past every known value.
        let raw = raw as u32;
        match self {
            Family::Headers => match raw {
                _ if reply_sent => Action::Pause,
                0 | 2 => Action::Continue,
                1 if allow_on_headers_stop_iteration => Action::PauseHeaders,
                _ => Action::Pause,
            },
            Family::Body => match raw {
                _ if reply_sent => Action::StopNoBuffer,
                0 => Action::Continue,
                1 => Action::Pause,
                2 => Action::PauseWatermark,
                _ => Action::StopNoBuffer,
            },
            Family::Trailers if reply_sent => Action::Pause,
            Family::Trailers | Family::Network => {
                if raw == 0 {
                    Action::Continue
                } else {
                    Action::Pause
                }
            }
        }
    }

    /// What a fail-closed stream's callback answers once the VM failed (the C++ host's
    /// `CHECK_FAIL_HTTP` / `CHECK_FAIL_NET` stop values).
    fn failed(self) -> Action {
        match self {
            Family::Body => Action::StopNoBuffer,
            _ => Action::Pause,
        }
    }
}

/// The answer to an HTTP callout, delivered with [`Vm::on_http_call_response`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpCallResponse {
    /// Response headers, with `:status`.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
    /// Response trailers.
    pub trailers: HeaderMap,
}

/// One VM: an engine instance and its contexts.
pub struct Vm {
    instance: Box<dyn Instance>,
    /// The instance's host state ([`Instance::host_ptr`]), reached with a load: see
    /// [`host`](Self::host).
    host: HostPtr,
    /// The VM's CPU deadline in the host's watchdog, when it has one and the engine can be
    /// interrupted.
    deadline: Option<DeadlineSlot>,
    engine: &'static str,
    token: VmToken,
    abi: AbiVersion,
    failure: Option<Trap>,
    /// Root id -> root context id, in start order.
    roots: Vec<(String, u32)>,
    /// How many context ids were given ([`next_id`](Self::next_id)): past `u32::MAX`, the ids
    /// have wrapped around.
    next_context: u64,
    /// The callbacks the module exports and the VM's capability restriction allows.
    callable: CallbackSet,
}

/// What `proxy_get_status` answers for a callout that failed without a response: Envoy's
/// `BROKEN_CONNECTION` (11).
pub const FAILED_CALLOUT_STATUS: u32 = 11;

/// The reply a fail-closed plugin's streams get when its VM fails: a 503 `wasm_fail_stream`,
/// with gRPC status 14 (UNAVAILABLE) for a gRPC request, as Envoy answers.
pub fn vm_failed_reply(grpc: bool) -> LocalReply {
    LocalReply {
        status: 503,
        details: "wasm_fail_stream".into(),
        body: Vec::new(),
        headers: HeaderMap::new(),
        grpc_status: grpc.then_some(GRPC_UNAVAILABLE),
    }
}

/// The answer to a call of a VM that failed earlier, naming that failure.
#[cold]
fn failed_earlier(t: &Trap) -> Trap {
    Trap::new(t.kind.clone(), format!("VM failed earlier: {}", t.message))
}

/// `instance`'s call of `callback` under the VM's CPU deadline `slot`: out of line, as most VMs
/// have none ([`Vm::call_engine`] keeps the plain call inline).
#[inline(never)]
fn call_with_deadline(instance: &mut dyn Instance, slot: &DeadlineSlot, callback: Callback, args: &[u64]) -> Result<u64, Trap> {
    let armed = slot.arm()?;
    let result = instance.call(callback, args);
    let fired = armed.disarm();
    result.map_err(|trap| deadline_trap(trap, fired, slot.deadline()))
}

/// The trap of a call the watchdog may have stopped: a deadline trap that says so when it fired
/// (the engine only knows it was interrupted).
fn deadline_trap(trap: Trap, fired: bool, deadline: std::time::Duration) -> Trap {
    if fired && trap.kind == TrapKind::Deadline {
        Trap::deadline(format!("the call ran longer than its {deadline:?} deadline")).with_backtrace(trap.backtrace)
    } else {
        trap
    }
}

/// The trap of a call during which the engine refused to grow memory at the limit: the guest
/// trapped on its own after `memory.grow` answered -1 (Rust's and C's allocators abort), so the
/// VM failed for its memory limit.
fn memory_limit_trap(trap: Trap, requested: u64, limit: u64) -> Trap {
    let message = format!(
        "the guest trapped ({}) after memory.grow to {requested} bytes was refused at the limit of {limit} bytes",
        trap.message
    );
    Trap::new(TrapKind::MemoryLimit, message).with_backtrace(trap.backtrace)
}

/// gRPC's UNAVAILABLE status code.
const GRPC_UNAVAILABLE: i32 = 14;

/// Whether a stream's request is gRPC: its `content-type` starts with `application/grpc`.
fn is_grpc(stream: &mut dyn Stream) -> bool {
    stream
        .map(MapType::HttpRequestHeaders)
        .and_then(|h| h.get(b"content-type"))
        .is_some_and(|v| v.starts_with(b"application/grpc"))
}

impl Vm {
    /// Wraps a fresh instance and runs its start functions as the C++ host does
    /// (`src/wasm.cc` `WasmBase::startVm`): `_initialize`, then `main(0, 0)` if exported, else
    /// `__main_void()` if exported (a WASI reactor's way to run its `main`); or `_start` when
    /// there is no `_initialize`. Meanwhile a guest may call only the host functions Envoy's V8
    /// runtime allows during start ([`abi::HostFunctionId::allowed_in`]); any other call traps
    /// ([`TrapKind::Restricted`]) and the VM does not start.
    ///
    /// When the VM's limits set a CPU deadline and the engine can be interrupted, every call
    /// into the VM from here on is watched by the process's [`Watchdog`]; an engine that cannot
    /// be interrupted ([`Capabilities::interrupt`](crate::Capabilities::interrupt) false) runs
    /// without a deadline.
    pub fn start(instance: Box<dyn Instance>, engine: &'static str) -> Result<Vm, Error> {
        let mut instance = instance;
        let (token, abi) = (instance.host().token, instance.host().abi);
        let deadline = instance
            .host()
            .limits
            .call_deadline
            .and_then(|d| instance.interrupt_handle().map(|i| Watchdog::global().slot(i, d)));
        let callable = instance.host().capabilities.callback_set().intersection(instance.exported());
        let host = instance.host_ptr();
        let mut vm = Vm {
            instance,
            host,
            deadline,
            engine,
            token,
            abi,
            failure: None,
            roots: Vec::new(),
            next_context: 0,
            callable,
        };
        vm.host().restricted = Some(abi::RestrictedPhase::Start);
        let started = vm.run_start_functions();
        vm.host().restricted = None;
        started?;
        Ok(vm)
    }

    /// The start functions, while host calls are restricted to the C++ host's start list
    /// ([`abi::RestrictedPhase::Start`]).
    fn run_start_functions(&mut self) -> Result<(), Error> {
        if self.instance.has(Callback::Initialize) {
            self.call_checked(Callback::Initialize, 0, &[])?;
            if self.instance.has(Callback::Main) {
                self.call_checked(Callback::Main, 0, &[0, 0])?;
            } else if self.instance.has(Callback::MainVoid) {
                self.call_checked(Callback::MainVoid, 0, &[])?;
            }
        } else if self.instance.has(Callback::Start) {
            self.call_checked(Callback::Start, 0, &[])?;
        }
        Ok(())
    }

    /// The VM's host state, for as long as this borrow of the VM.
    #[inline(always)]
    fn host(&mut self) -> &mut VmHost {
        // SAFETY: the pointer is the instance's (the `Instance` contract: alive at this
        // address while the instance is, which `self` owns). `&mut self` means no call into the
        // instance runs (every call goes through `&mut self.instance`), so no host function
        // holds the state, and the result borrows `self`, so nothing else here makes a second
        // reference while it lives.
        unsafe { self.host.get() }
    }

    /// The engine's name.
    pub fn engine(&self) -> &'static str {
        self.engine
    }

    /// This VM's token (callouts carry it so answers can be routed back).
    pub fn token(&self) -> VmToken {
        self.token
    }

    /// The guest's ABI version.
    pub fn abi_version(&self) -> AbiVersion {
        self.abi
    }

    /// Why the VM failed, if it has.
    pub fn failure(&self) -> Option<&Trap> {
        self.failure.as_ref()
    }

    /// Whether the VM has failed.
    pub fn is_failed(&self) -> bool {
        self.failure.is_some()
    }

    /// When the VM failed, on the failure policy's clock (`None` if it has not, or was made
    /// outside a [`PluginHost`](crate::PluginHost)).
    pub(crate) fn failed_at(&mut self) -> Option<std::time::Duration> {
        self.host().monitor.as_ref().and_then(|m| m.failed_at())
    }

    /// The instance, for engine-specific inspection (memory size, interrupt handle).
    pub fn instance(&mut self) -> &mut dyn Instance {
        &mut *self.instance
    }

    /// The mailbox through which queue notifications reach this VM; set its waker to learn
    /// when [`Vm::deliver`] has work.
    pub fn mailbox(&mut self) -> Arc<Mailbox> {
        self.host().mailbox().clone()
    }

    /// The root context id of the plugin with `root_id`.
    pub fn root_context(&self, root_id: &str) -> Option<u32> {
        self.roots.iter().find(|(r, _)| r == root_id).map(|(_, id)| *id)
    }

    /// Every root context: (root id, context id, tick period in ms).
    pub fn roots(&mut self) -> Vec<(String, u32, u32)> {
        let roots = self.roots.clone();
        let host = self.host();
        roots
            .into_iter()
            .filter_map(|(root_id, id)| match host.contexts.get(&id).map(|c| &c.kind) {
                Some(ContextKind::Root(r)) => Some((root_id, id, r.tick_period_ms)),
                _ => None,
            })
            .collect()
    }

    /// Whether the host calls `callback` (on `context_id`): the module exports it and the VM's
    /// [`CapabilityRestriction`](crate::CapabilityRestriction) allows it. An exported callback
    /// the restriction does not allow is never called, as if it were not exported; the skip is
    /// counted, and logged the first time.
    #[inline]
    fn exports(&mut self, callback: Callback, context_id: u32) -> bool {
        if self.callable.contains(callback) {
            return true;
        }
        if self.instance.has(callback) {
            crate::security::skip_callback(self.host(), callback, context_id);
        }
        false
    }

    /// A new context id: the one after the last given, skipping 0 (no context: the parent id of
    /// a root context) and, once the count has passed `u32::MAX` and the ids wrap around, ids
    /// still in use, as the reference host's `WasmBase::allocContextId` skips them ("prevent
    /// reuse"). A long-lived VM wraps after 2^32 streams, half a day at 100,000 a second;
    /// before that every id is new, so the common path makes no lookup.
    #[inline]
    fn next_id(&mut self) -> u32 {
        self.next_context += 1;
        match u32::try_from(self.next_context) {
            Ok(id) => id,
            Err(_) => self.next_id_wrapped(),
        }
    }

    /// [`next_id`](Self::next_id) once the ids have wrapped around.
    #[cold]
    fn next_id_wrapped(&mut self) -> u32 {
        loop {
            // The count modulo 2^32.
            let id = self.next_context as u32;
            if id != 0 && !self.host().contexts.contains_key(&id) {
                return id;
            }
            self.next_context += 1;
        }
    }

    /// Calls a callback with its call state set, and fails the VM on a trap.
    ///
    /// The plain path (no trace, no timing sample this time, no root to reap) sets the call
    /// state, calls, and clears it; everything else is on [`invoke_observed`](Self::invoke_observed)
    /// and [`settle`](Self::settle), out of line, as every stream callback comes through here.
    #[inline(always)]
    fn invoke(&mut self, callback: Callback, context_id: u32, args: &[u64]) -> Result<u64, Trap> {
        if let Some(t) = &self.failure {
            return Err(failed_earlier(t));
        }
        let host = self.host();
        host.call.begin(callback, context_id);
        host.memory_refused = None;
        if host.trace.is_some() || host.monitor.as_ref().is_some_and(crate::policy::VmMonitor::times_next_callback) {
            return self.invoke_observed(callback, context_id, args);
        }
        let result = self.call_engine(callback, args);
        let host = self.host();
        host.call.callback = None;
        match result {
            Ok(v) if !host.roots_done => Ok(v),
            result => self.settle(callback, context_id, result, None),
        }
    }

    /// The engine's call, under the VM's CPU deadline when it has one.
    #[inline(always)]
    fn call_engine(&mut self, callback: Callback, args: &[u64]) -> Result<u64, Trap> {
        match &self.deadline {
            None => self.instance.call(callback, args),
            Some(slot) => call_with_deadline(&mut *self.instance, slot, callback, args),
        }
    }

    /// [`invoke`](Self::invoke) of a callback that is traced, timed for the callback-duration
    /// sample, or both (the call state is set already).
    #[cold]
    #[inline(never)]
    fn invoke_observed(&mut self, callback: Callback, context_id: u32, args: &[u64]) -> Result<u64, Trap> {
        let host = self.host();
        let trace = host.trace.as_ref().map(|t| (t.clone(), t.begin_callback(callback, context_id, args)));
        let timed = trace.is_none() || host.monitor.as_ref().is_some_and(crate::policy::VmMonitor::times_next_callback);
        let started = timed.then(std::time::Instant::now);
        let result = self.call_engine(callback, args);
        let host = self.host();
        host.call.callback = None;
        if let Some(started) = started {
            crate::policy::observe_callback(host, context_id, callback, started.elapsed());
        }
        self.settle(callback, context_id, result, trace)
    }

    /// After a call: a trap fails the VM ([`trapped`](Self::trapped)); roots that called
    /// `proxy_done` are reaped; the trace records the outcome.
    fn settle(
        &mut self,
        callback: Callback,
        context_id: u32,
        result: Result<u64, Trap>,
        trace: Option<(crate::trace::TraceHandle, usize)>,
    ) -> Result<u64, Trap> {
        let host = self.host();
        let reap = std::mem::take(&mut host.roots_done);
        let refused = host.memory_refused.take();
        match result {
            Ok(v) => {
                if let Some((trace, index)) = trace {
                    trace.end_callback(index, &Ok(v));
                }
                if reap {
                    self.reap_done_roots();
                }
                Ok(v)
            }
            Err(trap) => Err(self.trapped(callback, context_id, trap, refused, trace)),
        }
    }

    /// A callback trapped: the trap (a guest trap after a `memory.grow` the memory limit
    /// `refused` is a memory-limit one), recorded in the trace, and the VM failed.
    #[cold]
    fn trapped(
        &mut self,
        callback: Callback,
        context_id: u32,
        trap: Trap,
        refused: Option<u64>,
        trace: Option<(crate::trace::TraceHandle, usize)>,
    ) -> Trap {
        let trap = match refused {
            Some(requested) if trap.kind == TrapKind::Guest => {
                memory_limit_trap(trap, requested, self.host().limits.max_memory_bytes)
            }
            _ => trap,
        };
        if let Some((trace, index)) = trace {
            trace.end_callback(index, &Err(trap.clone()));
        }
        self.fail(callback, context_id, &trap);
        trap
    }

    /// [`invoke`](Self::invoke) with `data` readable during the call (a callout's answer, a
    /// foreign function's arguments); the plain path never touches call data.
    fn invoke_with(&mut self, callback: Callback, context_id: u32, args: &[u64], data: CallData) -> Result<u64, Trap> {
        self.host().call.data = data;
        let result = self.invoke(callback, context_id, args);
        self.host().call.data = CallData::None;
        result
    }

    /// [`invoke`](Self::invoke) with the trap as an [`Error`] naming the callback.
    fn call_checked(&mut self, callback: Callback, context_id: u32, args: &[u64]) -> Result<u64, Error> {
        self.invoke(callback, context_id, args).map_err(|trap| Error::Trap { callback, trap })
    }

    /// Calls an optional callback: skipped (answering `default`) when not exported.
    fn call_optional(&mut self, callback: Callback, context_id: u32, args: &[u64], default: u64) -> Result<u64, Error> {
        if self.failure.is_none() && !self.exports(callback, context_id) {
            return Ok(default);
        }
        self.call_checked(callback, context_id, args)
    }

    /// Calls an optional callback whose answer the host does not use: skipped when the VM has
    /// failed or the callback is not exported; a trap fails the VM, which is all the caller
    /// learns of it.
    #[inline(always)]
    fn notify(&mut self, callback: Callback, context_id: u32, args: &[u64]) {
        if self.failure.is_none() && self.exports(callback, context_id) {
            let _ = self.invoke(callback, context_id, args);
        }
    }

    /// Fails the VM: logged through `tracing` (the plugin, root id, vm_id, engine, callback,
    /// kind, message and backtrace) and reported to the plugin's fault state and stats.
    fn fail(&mut self, callback: Callback, context_id: u32, trap: &Trap) {
        let engine = self.engine;
        let host = self.host();
        let plugin = root_plugin(&host.contexts, context_id).map(|(root, p)| (root, p.clone()));
        crate::stats::log_failure(plugin.as_ref().map(|(_, p)| &**p), &host.vm_id, engine, callback, trap);
        if let Some(monitor) = host.monitor.as_mut() {
            monitor.failed(plugin.as_ref().map(|(root, p)| (*root, &**p)), crate::FailureKind::of_trap(&trap.kind));
        }
        self.failure = Some(trap.clone());
    }

    /// Deletes root contexts that called `proxy_done` after their `proxy_on_done` returned false.
    fn reap_done_roots(&mut self) {
        loop {
            let host = self.host();
            let done = host.contexts.iter().find_map(|(id, c)| match &c.kind {
                ContextKind::Root(r) if r.done_called => Some(id),
                _ => None,
            });
            let Some(id) = done else { return };
            if let Some(Context { kind: ContextKind::Root(r), .. }) = host.contexts.get_mut(&id) {
                r.done_called = false;
                r.done_pending = false;
            }
            // Errors fail the VM; nothing more to do for this root either way.
            self.notify(Callback::OnDelete, id, &[u64::from(id)]);
            self.delete_root(id);
        }
    }

    /// Forgets root context `id` and drops the callouts it owns (Envoy's root `Context`
    /// destructor cancels them), telling the embedder.
    fn delete_root(&mut self, id: u32) {
        let host = self.host();
        host.contexts.remove(&id);
        let token = host.token;
        let dropped: Vec<u32> = host
            .http_calls
            .iter()
            .chain(host.grpc_calls.iter())
            .filter(|(_, c)| c.root == id)
            .map(|(k, _)| k)
            .collect();
        for call in dropped {
            host.http_calls.remove(&call);
            host.grpc_calls.remove(&call);
            host.embedder.callout_dropped(token, call);
        }
        self.roots.retain(|(_, r)| *r != id);
    }

    /// Starts a plugin in this VM: creates its root context (`proxy_on_context_create(root, 0)`),
    /// then calls `proxy_on_vm_start` with the VM configuration and `proxy_on_configure` with
    /// the plugin configuration. Either returning false (or trapping) is an error naming it. The
    /// plugin is a [`PluginInfo`] or an `Arc` of one (shared with the root context, not copied).
    pub fn start_plugin(&mut self, plugin: impl Into<Arc<PluginInfo>>) -> Result<u32, Error> {
        let plugin: Arc<PluginInfo> = plugin.into();
        if let Some(t) = &self.failure {
            return Err(Error::VmFailed(t.to_string()));
        }
        if self.root_context(&plugin.root_id).is_some() {
            return Err(Error::DuplicateRoot(plugin.root_id.clone()));
        }
        let id = self.next_id();
        let configuration_len = plugin.configuration.len() as u64;
        self.roots.push((plugin.root_id.clone(), id));
        let host = self.host();
        let vm_configuration_len = host.vm_configuration.len() as u64;
        host.hides_headers |= plugin.policy.hides_any_header();
        host.contexts.insert(
            id,
            Context {
                root: id,
                kind: ContextKind::Root(Box::new(RootContext {
                    plugin: plugin.clone(),
                    tick_period_ms: 0,
                    done_pending: false,
                    done_called: false,
                    status: (0, Vec::new()),
                })),
            },
        );
        self.call_optional(Callback::OnContextCreate, id, &[u64::from(id), 0], 0)?;
        if self.call_optional(Callback::OnVmStart, id, &[u64::from(id), vm_configuration_len], 1)? == 0 {
            return Err(Error::VmStartRejected { vm_id: self.host().vm_id.clone() });
        }
        if self.call_optional(Callback::OnConfigure, id, &[u64::from(id), configuration_len], 1)? == 0 {
            return Err(Error::ConfigureRejected { plugin: plugin.name.clone() });
        }
        Ok(id)
    }

    fn root_plugin(&mut self, root: u32) -> Result<Arc<PluginInfo>, Error> {
        match self.host().contexts.get(&root).map(|c| &c.kind) {
            Some(ContextKind::Root(r)) => Ok(r.plugin.clone()),
            _ => Err(Error::BadContext(root)),
        }
    }

    /// Adds a stream context under root context `root` (`BadContext` if `root` is not one),
    /// with the root's plugin's flags the stream callbacks read kept in it.
    #[inline(always)]
    fn add_stream(&mut self, root: u32, stream: Box<dyn Stream>, tcp: bool, rejected: bool) -> Result<u32, Error> {
        let allows_stop = match self.host().contexts.get(&root) {
            Some(Context { kind: ContextKind::Root(r), .. }) => r.plugin.allow_on_headers_stop_iteration,
            _ => return Err(Error::BadContext(root)),
        };
        let id = self.next_id();
        let phase = StreamPhase { rejected, ..StreamPhase::default() };
        let context = || Context { root, kind: ContextKind::Stream(StreamContext { stream, tcp, phase, allows_stop }) };
        self.host().contexts.insert_with(id, context);
        Ok(id)
    }

    fn new_stream(&mut self, root: u32, stream: Box<dyn Stream>, tcp: bool) -> Result<u32, Error> {
        let id = self.add_stream(root, stream, tcp, false)?;
        // A trap here fails the VM; the stream's callbacks then follow the plugin's policy.
        self.notify(Callback::OnContextCreate, id, &[u64::from(id), u64::from(root)]);
        Ok(id)
    }

    /// Creates a stream the failure policy answers whole (its plugin has failed on this
    /// worker): no guest code runs for it, every callback gets the plugin's failure answer
    /// (a TCP connection is answered at once, as `proxy_on_new_connection` would be).
    pub(crate) fn create_rejected_stream(&mut self, root: u32, stream: Box<dyn Stream>, tcp: bool) -> Result<(u32, Option<Action>), Error> {
        let id = self.add_stream(root, stream, tcp, true)?;
        let action = if tcp { Some(self.fail_stream(id, Family::Network)?) } else { None };
        Ok((id, action))
    }

    /// Creates an HTTP stream context under the root context `root`
    /// (`proxy_on_context_create(id, root)`), with `stream` as its data.
    pub fn create_http_stream(&mut self, root: u32, stream: Box<dyn Stream>) -> Result<u32, Error> {
        self.new_stream(root, stream, false)
    }

    /// Creates a TCP connection context under `root` and calls `proxy_on_new_connection`.
    pub fn create_tcp_stream(&mut self, root: u32, stream: Box<dyn Stream>) -> Result<(u32, Action), Error> {
        let id = self.new_stream(root, stream, true)?;
        let action = self.stream_callback(id, Callback::OnNewConnection, &[u64::from(id)], Family::Network)?;
        Ok((id, action))
    }

    fn stream_context(&mut self, id: u32) -> Result<&mut StreamContext, Error> {
        match self.host().contexts.get_mut(&id).map(|c| &mut c.kind) {
            Some(ContextKind::Stream(s)) => Ok(s),
            _ => Err(Error::BadContext(id)),
        }
    }

    /// Whether any stream context is open.
    pub fn has_streams(&mut self) -> bool {
        self.host().contexts.values().any(|c| matches!(c.kind, ContextKind::Stream(_)))
    }

    /// The stream of context `id`.
    pub fn stream_mut(&mut self, id: u32) -> Option<&mut dyn Stream> {
        self.stream_context(id).ok().map(|s| &mut *s.stream)
    }

    /// The stream of context `id` as a [`MemoryStream`], if it is one.
    pub fn memory_stream(&mut self, id: u32) -> Option<&mut MemoryStream> {
        self.stream_mut(id)?.as_any_mut().downcast_mut()
    }

    /// What a stream gets once the VM has failed: unfiltered (fail-open), or ended once
    /// (fail-closed) as the C++ host ends it: an HTTP stream with a local 503, or reset
    /// (`Close(HttpResponse)`) when its response started and the reply is refused; a TCP
    /// connection closed in both directions.
    fn fail_stream(&mut self, id: u32, family: Family) -> Result<Action, Error> {
        let Some(root) = self.host().contexts.get(&id).map(|c| c.root) else { return Err(Error::BadContext(id)) };
        let plugin = self.root_plugin(root)?;
        let passed = plugin.fails_open();
        let host = self.host();
        if let Some(Context { kind: ContextKind::Stream(s), .. }) = host.contexts.get_mut(&id) {
            if !std::mem::replace(&mut s.phase.policy_applied, true) {
                if let Some(monitor) = host.monitor.as_mut() {
                    monitor.failed_stream(root, &plugin, passed);
                }
            }
        }
        if passed {
            return Ok(Action::Continue);
        }
        let s = self.stream_context(id)?;
        if !s.phase.local_reply {
            s.phase.local_reply = true;
            if s.tcp {
                let _ = s.stream.effect(StreamEffect::Close(StreamType::Downstream));
                let _ = s.stream.effect(StreamEffect::Close(StreamType::Upstream));
            } else {
                let reply = vm_failed_reply(is_grpc(&mut *s.stream));
                if s.stream.effect(StreamEffect::LocalReply(reply)).is_err() {
                    let _ = s.stream.effect(StreamEffect::Close(StreamType::HttpResponse));
                }
            }
        }
        Ok(family.failed())
    }

    fn stream_callback(&mut self, id: u32, callback: Callback, args: &[u64], family: Family) -> Result<Action, Error> {
        let s = self.stream_context(id)?;
        let (rejected, allows_stop) = (s.phase.rejected, s.allows_stop);
        self.run_stream_callback(id, callback, args, family, rejected, allows_stop)
    }

    /// [`stream_callback`](Self::stream_callback) with what it reads of the stream context
    /// (whether it was rejected, whether its plugin allows a headers callback to stop
    /// iteration) read already. Inlined: every HTTP stream's headers come through here.
    #[inline(always)]
    fn run_stream_callback(
        &mut self,
        id: u32,
        callback: Callback,
        args: &[u64],
        family: Family,
        rejected: bool,
        allows_stop: bool,
    ) -> Result<Action, Error> {
        if self.failure.is_some() || rejected {
            return self.fail_stream(id, family);
        }
        if !self.exports(callback, id) {
            return Ok(Action::Continue);
        }
        match self.invoke(callback, id, args) {
            Ok(v) => {
                let reply_sent = self.host().call.reply_sent;
                Ok(family.action(v, reply_sent, family == Family::Headers && allows_stop))
            }
            Err(_) => self.fail_stream(id, family),
        }
    }

    /// The plugin of context `id` (through its root context), when its
    /// [`PluginPolicy`](crate::PluginPolicy) hides headers in `map`.
    fn sanitizing(&mut self, id: u32, map: MapType) -> Option<Arc<PluginInfo>> {
        self.host().sanitizing_of(id, map).cloned()
    }

    /// The number of headers of `map` the plugin sees: its hidden headers are not counted.
    fn visible_len(plugin: &Option<Arc<PluginInfo>>, map: Option<&HeaderMap>) -> u64 {
        map.map_or(0, |m| match plugin {
            Some(p) => p.policy.visible_len(m),
            None => m.len(),
        }) as u64
    }

    fn headers_callback(&mut self, id: u32, map: MapType, end_of_stream: bool) -> Result<Action, Error> {
        let plugin = self.sanitizing(id, map);
        let s = self.stream_context(id)?;
        match map {
            MapType::HttpRequestHeaders => {
                s.phase.request_headers = true;
                s.phase.arrived.request_headers = true;
            }
            _ => {
                s.phase.response_headers = true;
                s.phase.arrived.response_headers = true;
            }
        }
        let n = Self::visible_len(&plugin, s.stream.map(map).map(|m| &*m));
        let (rejected, allows_stop) = (s.phase.rejected, s.allows_stop);
        let legacy = self.abi_version() == AbiVersion::V010;
        let request = map == MapType::HttpRequestHeaders;
        let callback = match (request, legacy) {
            (true, false) => Callback::OnRequestHeaders,
            (true, true) => Callback::OnRequestHeadersV010,
            (false, false) => Callback::OnResponseHeaders,
            (false, true) => Callback::OnResponseHeadersV010,
        };
        let args = [u64::from(id), n, u64::from(end_of_stream)];
        let args = if legacy { &args[..2] } else { &args[..] };
        let action = self.run_stream_callback(id, callback, args, Family::Headers, rejected, allows_stop)?;
        // Continued, the headers are no longer the plugin's (Envoy's decodeHeaders).
        self.release_if_continued(id, action, |p| match map {
            MapType::HttpRequestHeaders => &mut p.request_headers,
            _ => &mut p.response_headers,
        });
        Ok(action)
    }

    /// After a stream callback: when it continued, the part it delivered (`part` of the phase)
    /// is let go of, as Envoy clears its pointer when the callback answers continue.
    fn release_if_continued(&mut self, id: u32, action: Action, part: impl FnOnce(&mut StreamPhase) -> &mut bool) {
        if action == Action::Continue {
            if let Ok(s) = self.stream_context(id) {
                *part(&mut s.phase) = false;
            }
        }
    }

    /// Request headers arrived (put them in the stream first): `proxy_on_request_headers`.
    pub fn on_request_headers(&mut self, id: u32, end_of_stream: bool) -> Result<Action, Error> {
        self.headers_callback(id, MapType::HttpRequestHeaders, end_of_stream)
    }

    /// Response headers arrived: `proxy_on_response_headers`.
    pub fn on_response_headers(&mut self, id: u32, end_of_stream: bool) -> Result<Action, Error> {
        self.headers_callback(id, MapType::HttpResponseHeaders, end_of_stream)
    }

    fn body_callback(&mut self, id: u32, buffer: BufferType, end_of_stream: bool) -> Result<Action, Error> {
        let s = self.stream_context(id)?;
        let callback = match buffer {
            BufferType::HttpRequestBody => {
                s.phase.request_body = true;
                // The last body callback may add trailers when the request has none.
                s.phase.request_trailers_creatable = end_of_stream;
                Callback::OnRequestBody
            }
            BufferType::HttpResponseBody => {
                s.phase.response_body = true;
                s.phase.response_trailers_creatable = end_of_stream;
                Callback::OnResponseBody
            }
            BufferType::DownstreamData => {
                s.phase.downstream_data = true;
                Callback::OnDownstreamData
            }
            _ => {
                s.phase.upstream_data = true;
                Callback::OnUpstreamData
            }
        };
        let size = s.stream.buffer(buffer).map_or(0, |b| b.len()) as u64;
        let family = if s.tcp { Family::Network } else { Family::Body };
        let action = self.stream_callback(id, callback, &[u64::from(id), size, u64::from(end_of_stream)], family)?;
        // The data stays reachable after its callback only while the plugin holds it.
        if let Ok(s) = self.stream_context(id) {
            *s.phase.data_mut(buffer) = action.holds_data();
            s.phase.request_trailers_creatable = false;
            s.phase.response_trailers_creatable = false;
        }
        Ok(action)
    }

    /// A request body chunk arrived (the stream's request body holds everything buffered so
    /// far): `proxy_on_request_body`.
    pub fn on_request_body(&mut self, id: u32, end_of_stream: bool) -> Result<Action, Error> {
        self.body_callback(id, BufferType::HttpRequestBody, end_of_stream)
    }

    /// A response body chunk arrived: `proxy_on_response_body`.
    pub fn on_response_body(&mut self, id: u32, end_of_stream: bool) -> Result<Action, Error> {
        self.body_callback(id, BufferType::HttpResponseBody, end_of_stream)
    }

    /// TCP bytes from the client arrived (buffered in the stream): `proxy_on_downstream_data`.
    pub fn on_downstream_data(&mut self, id: u32, end_of_stream: bool) -> Result<Action, Error> {
        self.body_callback(id, BufferType::DownstreamData, end_of_stream)
    }

    /// TCP bytes from the server arrived: `proxy_on_upstream_data`.
    pub fn on_upstream_data(&mut self, id: u32, end_of_stream: bool) -> Result<Action, Error> {
        self.body_callback(id, BufferType::UpstreamData, end_of_stream)
    }

    fn trailers_callback(&mut self, id: u32, map: MapType) -> Result<Action, Error> {
        let plugin = self.sanitizing(id, map);
        let s = self.stream_context(id)?;
        let callback = if map == MapType::HttpRequestTrailers {
            s.phase.request_trailers = true;
            Callback::OnRequestTrailers
        } else {
            s.phase.response_trailers = true;
            s.phase.arrived.response_trailers = true;
            Callback::OnResponseTrailers
        };
        let n = Self::visible_len(&plugin, s.stream.map(map).map(|m| &*m));
        let action = self.stream_callback(id, callback, &[u64::from(id), n], Family::Trailers)?;
        self.release_if_continued(id, action, |p| match map {
            MapType::HttpRequestTrailers => &mut p.request_trailers,
            _ => &mut p.response_trailers,
        });
        Ok(action)
    }

    /// Request trailers arrived: `proxy_on_request_trailers`.
    pub fn on_request_trailers(&mut self, id: u32) -> Result<Action, Error> {
        self.trailers_callback(id, MapType::HttpRequestTrailers)
    }

    /// Response trailers arrived: `proxy_on_response_trailers`.
    pub fn on_response_trailers(&mut self, id: u32) -> Result<Action, Error> {
        self.trailers_callback(id, MapType::HttpResponseTrailers)
    }

    fn close_callback(&mut self, id: u32, callback: Callback, peer: PeerType) -> Result<(), Error> {
        let rejected = self.stream_context(id)?.phase.rejected;
        if !rejected {
            self.notify(callback, id, &[u64::from(id), u64::from(peer.raw())]);
        }
        Ok(())
    }

    /// The client side of a TCP connection closed: `proxy_on_downstream_connection_close`.
    pub fn on_downstream_close(&mut self, id: u32, peer: PeerType) -> Result<(), Error> {
        self.close_callback(id, Callback::OnDownstreamConnectionClose, peer)
    }

    /// The server side of a TCP connection closed: `proxy_on_upstream_connection_close`.
    pub fn on_upstream_close(&mut self, id: u32, peer: PeerType) -> Result<(), Error> {
        self.close_callback(id, Callback::OnUpstreamConnectionClose, peer)
    }

    /// Ends a stream in Envoy's order: an HTTP stream gets `proxy_on_log` (the access log runs
    /// before the filter is destroyed; Envoy's `Context::log`, then `onDestroy`), then
    /// `proxy_on_done` and `proxy_on_delete`; a TCP connection gets `proxy_on_done`,
    /// `proxy_on_log`, `proxy_on_delete` (`Context::onCloseTCP`). Gives its data back. The
    /// callouts it made go on: they belong to its root context.
    pub fn finish_stream(&mut self, id: u32) -> Result<Box<dyn Stream>, Error> {
        let s = self.stream_context(id)?;
        // A stream the failure policy rejected never reached the plugin: it gets no callback.
        let rejected = s.phase.rejected;
        // The stream is over: the plugin holds no part of it any more. proxy_on_log reads the
        // parts that arrived (the access-log maps); proxy_on_done and proxy_on_delete see none.
        s.phase = StreamPhase { arrived: s.phase.arrived, local_reply: s.phase.local_reply, ..StreamPhase::default() };
        let order = if s.tcp {
            [Callback::OnDone, Callback::OnLog, Callback::OnDelete]
        } else {
            [Callback::OnLog, Callback::OnDone, Callback::OnDelete]
        };
        let id64 = u64::from(id);
        // proxy_on_done's answer is ignored for a stream, as Envoy ignores it; a trap fails the
        // VM (the callbacks after it are skipped), and the stream is ended all the same.
        if !rejected {
            for callback in order {
                self.notify(callback, id, &[id64]);
            }
        }
        // Its callouts belong to its root and go on (Envoy keeps them on the root context).
        let host = self.host();
        match host.contexts.remove(&id).map(|c| c.kind) {
            Some(ContextKind::Stream(s)) => Ok(s.stream),
            _ => Err(Error::BadContext(id)),
        }
    }

    fn root_callback(&mut self, root: u32, callback: Callback, args: &[u64], data: CallData) -> Result<(), Error> {
        self.root_plugin(root)?;
        if let Some(t) = &self.failure {
            return Err(Error::VmFailed(t.to_string()));
        }
        if !self.exports(callback, root) {
            return Ok(());
        }
        self.invoke_with(callback, root, args, data).map(drop).map_err(|trap| Error::Trap { callback, trap })
    }

    /// A tick of root context `root`: `proxy_on_tick`.
    pub fn on_tick(&mut self, root: u32) -> Result<(), Error> {
        self.root_callback(root, Callback::OnTick, &[u64::from(root)], CallData::None)
    }

    /// Calls back into the plugin with a foreign function (0.2.x): `proxy_on_foreign_function`,
    /// with `arguments` readable as FOREIGN_FUNCTION_ARGUMENTS.
    pub fn on_foreign_function(&mut self, root: u32, function_id: u32, arguments: Vec<u8>) -> Result<(), Error> {
        let args = [u64::from(root), u64::from(function_id), arguments.len() as u64];
        self.root_callback(root, Callback::OnForeignFunction, &args, CallData::ForeignArguments(arguments))
    }

    /// Delivers pending queue notifications (`proxy_on_queue_ready`) and returns how many.
    /// Call it on this VM's thread when the mailbox's waker fires.
    pub fn deliver(&mut self) -> Result<usize, Error> {
        let mailbox = self.mailbox();
        let mut n = 0;
        while let Some(Notification::QueueReady { context_id, queue_id }) = mailbox.take() {
            n += 1;
            let args = [u64::from(context_id), u64::from(queue_id)];
            self.root_callback(context_id, Callback::OnQueueReady, &args, CallData::None)?;
        }
        Ok(n)
    }

    /// `map` (a callout answer's, the plugin's alone) without the headers the plugin of
    /// `context` may not see, when it sanitises callout answers.
    fn sanitized(&mut self, context: u32, kind: MapType, map: HeaderMap) -> HeaderMap {
        match self.sanitizing(context, kind) {
            Some(p) => p.policy.visible(&map),
            None => map,
        }
    }

    /// An outstanding HTTP callout, removed from the table: it is answered once.
    fn take_http_call(&mut self, id: u32) -> Result<Callout, Error> {
        let Some(call) = self.host().http_calls.remove(&id) else { return Err(Error::UnknownCall(id)) };
        Ok(call)
    }

    /// An open gRPC call or stream (one the remote side closed gets no more events). It stays
    /// known during its callbacks, as Envoy forgets it only after the callback.
    fn grpc_call(&mut self, id: u32) -> Result<Callout, Error> {
        match self.host().grpc_calls.get(&id) {
            Some(call) if !call.remote_closed => Ok(*call),
            _ => Err(Error::UnknownCall(id)),
        }
    }

    /// Calls a callout's callback on the root context that owns it. An answer for a root that
    /// is gone is dropped.
    fn callout_callback(&mut self, call: Callout, callback: Callback, args: &[u64], data: CallData) -> Result<(), Error> {
        if !self.has_context(call.root) {
            return Ok(());
        }
        if let Some(t) = &self.failure {
            return Err(Error::VmFailed(t.to_string()));
        }
        if !self.exports(callback, call.root) {
            return Ok(());
        }
        match self.invoke_with(callback, call.root, args, data) {
            Ok(_) => Ok(()),
            Err(trap) => {
                // The stream that made the call gets its plugin's failure policy at once (in
                // Envoy it stays paused until its next event or timeout). No action goes back to
                // the embedder here, so a fail-open stream is resumed by effect, or it would
                // wait forever.
                let origin = call.origin;
                if origin != call.root && self.stream_context(origin).is_ok() && self.fail_stream(origin, Family::Headers)? == Action::Continue {
                    let s = self.stream_context(origin)?;
                    let directions = if s.tcp {
                        [StreamType::Downstream, StreamType::Upstream]
                    } else {
                        [StreamType::HttpRequest, StreamType::HttpResponse]
                    };
                    for direction in directions {
                        let _ = s.stream.effect(StreamEffect::Continue(direction));
                    }
                }
                Err(Error::Trap { callback, trap })
            }
        }
    }

    /// Whether context `id` still exists.
    fn has_context(&mut self, id: u32) -> bool {
        self.host().contexts.contains_key(&id)
    }

    /// Sets the status `proxy_get_status` answers on root `root` for one callback, then clears
    /// its message and keeps its code, as Envoy does after the callback (`onHttpCallFailure`,
    /// `onGrpcCloseWrapper`).
    fn with_status(&mut self, root: u32, code: u32, message: Vec<u8>, call: impl FnOnce(&mut Self) -> Result<(), Error>) -> Result<(), Error> {
        self.set_root_status(root, |status| *status = (code, message));
        let result = call(self);
        self.set_root_status(root, |status| status.1.clear());
        result
    }

    fn set_root_status(&mut self, root: u32, f: impl FnOnce(&mut (u32, Vec<u8>))) {
        if let Some(Context { kind: ContextKind::Root(r), .. }) = self.host().contexts.get_mut(&root) {
            f(&mut r.status);
        }
    }

    /// Answers the HTTP callout `call_id`: `proxy_on_http_call_response` on the root context
    /// that owns it (Envoy's `onHttpCallSuccess` / `onHttpCallFailure`), with the answer's maps
    /// and body readable from any context of that root. `Err(_)` is a failed call (a reset, a
    /// response over the buffer limit; a timeout is an answer, the router's 504): the callback
    /// gets no headers, no body and no trailers, the call's maps and body do not exist, and
    /// `proxy_get_status` answers (11 BROKEN_CONNECTION, "reset") during it and keeps 11 after.
    /// A successful answer leaves the status as it was.
    pub fn on_http_call_response(&mut self, call_id: u32, response: Result<HttpCallResponse, String>) -> Result<(), Error> {
        let call = self.take_http_call(call_id)?;
        let plugin = self.sanitizing(call.root, MapType::HttpCallResponseHeaders);
        match response {
            Ok(mut r) => {
                // The answer is the plugin's alone: hidden headers are dropped from it outright.
                if let Some(p) = &plugin {
                    r.headers = p.policy.visible(&r.headers);
                    r.trailers = p.policy.visible(&r.trailers);
                }
                let args = [
                    u64::from(call.root),
                    u64::from(call_id),
                    r.headers.len() as u64,
                    r.body.len() as u64,
                    r.trailers.len() as u64,
                ];
                let data = CallData::HttpCallResponse { headers: r.headers, body: r.body, trailers: r.trailers };
                self.callout_callback(call, Callback::OnHttpCallResponse, &args, data)
            }
            Err(_) => {
                let args = [u64::from(call.root), u64::from(call_id), 0, 0, 0];
                self.with_status(call.root, FAILED_CALLOUT_STATUS, b"reset".to_vec(), |vm| {
                    vm.callout_callback(call, Callback::OnHttpCallResponse, &args, CallData::HttpCallFailure)
                })
            }
        }
    }

    /// gRPC initial metadata for stream `call_id`; a unary call has none (Envoy's
    /// `GrpcCallClientHandler` reports only success or failure): [`Error::UnknownCall`].
    pub fn on_grpc_receive_initial_metadata(&mut self, call_id: u32, metadata: HeaderMap) -> Result<(), Error> {
        let call = self.grpc_stream(call_id)?;
        let metadata = self.sanitized(call.root, MapType::GrpcReceiveInitialMetadata, metadata);
        let args = [u64::from(call.root), u64::from(call_id), metadata.len() as u64];
        self.callout_callback(call, Callback::OnGrpcReceiveInitialMetadata, &args, CallData::GrpcInitialMetadata(metadata))
    }

    /// A gRPC message for call or stream `call_id` (readable, and writable, as
    /// GRPC_RECEIVE_BUFFER). For a unary call it is the answer, and the call ends with it
    /// (no close follows).
    pub fn on_grpc_receive(&mut self, call_id: u32, message: Vec<u8>) -> Result<(), Error> {
        let call = self.grpc_call(call_id)?;
        let args = [u64::from(call.root), u64::from(call_id), message.len() as u64];
        let result = self.callout_callback(call, Callback::OnGrpcReceive, &args, CallData::GrpcMessage(message));
        // Envoy forgets an answered unary call after the callback (`onGrpcReceiveWrapper`).
        if !call.stream {
            self.host().grpc_calls.remove(&call_id);
        }
        result
    }

    /// gRPC trailing metadata for stream `call_id`; a unary call has none: [`Error::UnknownCall`].
    pub fn on_grpc_receive_trailing_metadata(&mut self, call_id: u32, metadata: HeaderMap) -> Result<(), Error> {
        let call = self.grpc_stream(call_id)?;
        let metadata = self.sanitized(call.root, MapType::GrpcReceiveTrailingMetadata, metadata);
        let args = [u64::from(call.root), u64::from(call_id), metadata.len() as u64];
        self.callout_callback(call, Callback::OnGrpcReceiveTrailingMetadata, &args, CallData::GrpcTrailingMetadata(metadata))
    }

    /// The open gRPC stream `call_id`.
    fn grpc_stream(&mut self, call_id: u32) -> Result<Callout, Error> {
        match self.grpc_call(call_id)? {
            call if call.stream => Ok(call),
            _ => Err(Error::UnknownCall(call_id)),
        }
    }

    /// gRPC call or stream `call_id` finished with `status` and `message`: the failure of a
    /// unary call, or the remote close of a stream. `proxy_on_grpc_close` on the owning root,
    /// during which `proxy_get_status` answers (status, message); after it the message is
    /// cleared and the code stays (Envoy's `onGrpcCloseWrapper`; a plugin without
    /// `proxy_on_grpc_close` leaves the status as it was). Afterwards a unary call is
    /// forgotten, and so is a stream the plugin closed too; a stream the plugin has not closed
    /// stays known (sending on it is OK) until it closes or cancels it, as Envoy's
    /// `GrpcStreamClientHandler` keeps it.
    pub fn on_grpc_close(&mut self, call_id: u32, status: u32, message: Vec<u8>) -> Result<(), Error> {
        let call = self.grpc_call(call_id)?;
        if let Some(c) = self.host().grpc_calls.get_mut(&call_id) {
            c.remote_closed = call.stream;
        }
        let args = [u64::from(call.root), u64::from(call_id), u64::from(status)];
        let result = if self.instance.has(Callback::OnGrpcClose) {
            self.with_status(call.root, status, message, |vm| {
                vm.callout_callback(call, Callback::OnGrpcClose, &args, CallData::None)
            })
        } else {
            Ok(())
        };
        let host = self.host();
        if host.grpc_calls.get(&call_id).is_some_and(|c| !c.stream || c.local_closed) {
            host.grpc_calls.remove(&call_id);
        }
        result
    }

    /// Shuts the VM's plugins down: `proxy_on_done` on every root context; those that answer
    /// true are deleted (`proxy_on_delete`), the others stay until they call `proxy_done`.
    /// Returns whether every root context is gone.
    pub fn shutdown(&mut self) -> Result<bool, Error> {
        for (_, id) in self.roots.clone() {
            if let Some(t) = &self.failure {
                return Err(Error::VmFailed(t.to_string()));
            }
            let done = self.call_optional(Callback::OnDone, id, &[u64::from(id)], 1)? != 0;
            if done {
                self.call_optional(Callback::OnDelete, id, &[u64::from(id)], 0)?;
                self.delete_root(id);
            } else if let Some(Context { kind: ContextKind::Root(r), .. }) = self.host().contexts.get_mut(&id) {
                r.done_pending = true;
            }
        }
        Ok(self.roots.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HostBox;
    use crate::{DefaultEmbedder, Services, VmHostConfig};

    /// An instance that exports `exports`, traps in `trap_in` and answers 1 (true) from
    /// every other callback that returns a value, except stream callbacks (CONTINUE).
    /// In `trap_in` it traps; with `refuse_memory` it first notes a refused `memory.grow` (as an
    /// engine does at the limit); in `spin_in` it runs until interrupted, then answers a deadline
    /// trap as an engine does.
    struct Fake {
        host: HostBox<VmHost>,
        exports: Vec<Callback>,
        trap_in: Callback,
        refuse_memory: bool,
        spin_in: Option<Callback>,
        interrupted: Arc<FakeInterrupt>,
        /// Every callback called, in order.
        called: Arc<std::sync::Mutex<Vec<Callback>>>,
    }

    #[derive(Default)]
    struct FakeInterrupt(std::sync::atomic::AtomicBool);

    impl crate::Interrupt for FakeInterrupt {
        fn interrupt(&self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Fake {
        fn new(host: VmHost, exports: Vec<Callback>, trap_in: Callback) -> Self {
            Fake {
                host: HostBox::new(host),
                exports,
                trap_in,
                refuse_memory: false,
                spin_in: None,
                interrupted: Arc::default(),
                called: Arc::default(),
            }
        }
    }

    // SAFETY: the state is in `self.host`, a `HostBox`: at a fixed address while the fake lives;
    // the fake makes a reference to it only in `call`, for a statement.
    unsafe impl Instance for Fake {
        fn has(&self, callback: Callback) -> bool {
            self.exports.contains(&callback)
        }

        fn call(&mut self, callback: Callback, _args: &[u64]) -> Result<u64, Trap> {
            use std::sync::atomic::Ordering;
            self.called.lock().unwrap().push(callback);
            self.interrupted.0.store(false, Ordering::SeqCst);
            if self.spin_in == Some(callback) {
                while !self.interrupted.0.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                return Err(Trap::deadline("interrupted"));
            }
            match callback {
                c if c == self.trap_in => {
                    if self.refuse_memory {
                        // SAFETY: the fake's call, as an engine's host function would: the `Vm`
                        // holds no reference to the state during a call.
                        unsafe { self.host.get() }.note_memory_refused(3 << 16);
                    }
                    Err(Trap::guest("unreachable"))
                }
                Callback::OnVmStart | Callback::OnConfigure | Callback::OnDone => Ok(1),
                _ => Ok(0),
            }
        }

        fn host_ptr(&mut self) -> HostPtr {
            HostPtr::new(self.host.ptr())
        }

        fn memory_size(&mut self) -> u64 {
            0
        }

        fn interrupt_handle(&self) -> Option<Arc<dyn crate::Interrupt>> {
            Some(self.interrupted.clone())
        }
    }

    /// A started fail-closed plugin in a VM whose `trap_in` traps: the VM and its root.
    fn fail_closed_vm(trap_in: Callback) -> (Vm, u32) {
        let config = VmHostConfig::new("");
        let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
        let exports = vec![
            Callback::OnNewConnection,
            Callback::OnDownstreamData,
            Callback::OnUpstreamData,
            Callback::OnRequestHeaders,
            Callback::OnResponseHeaders,
            Callback::OnResponseBody,
        ];
        let mut vm = Vm::start(Box::new(Fake::new(host, exports, trap_in)), "fake").unwrap();
        let root = vm.start_plugin(PluginInfo { fail_open: false, ..Default::default() }).unwrap();
        (vm, root)
    }

    #[test]
    fn a_fail_closed_tcp_connection_is_closed_not_sent_an_http_reply() {
        let (mut vm, root) = fail_closed_vm(Callback::OnDownstreamData);
        let (id, _) = vm.create_tcp_stream(root, Box::new(MemoryStream::new())).unwrap();
        assert_eq!(vm.on_downstream_data(id, false).unwrap(), Action::Pause);
        assert!(vm.is_failed());
        assert_eq!(vm.on_upstream_data(id, false).unwrap(), Action::Pause);
        let stream = vm.memory_stream(id).unwrap();
        assert_eq!(stream.local_reply(), None);
        assert_eq!(
            stream.effects,
            [StreamEffect::Close(StreamType::Downstream), StreamEffect::Close(StreamType::Upstream)],
            "closed once"
        );
    }

    #[test]
    fn a_fail_closed_http_stream_gets_a_503_or_a_reset_once_its_response_started() {
        let (mut vm, root) = fail_closed_vm(Callback::OnRequestHeaders);
        let id = vm.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
        assert_eq!(vm.on_request_headers(id, true).unwrap(), Action::Pause);
        assert_eq!(vm.on_response_headers(id, true).unwrap(), Action::Pause);
        assert_eq!(vm.memory_stream(id).unwrap().effects, [StreamEffect::LocalReply(vm_failed_reply(false))]);

        let (mut vm, root) = fail_closed_vm(Callback::OnResponseBody);
        let id = vm.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
        assert_eq!(vm.on_request_headers(id, true).unwrap(), Action::Continue);
        assert_eq!(vm.on_response_headers(id, false).unwrap(), Action::Continue);
        vm.memory_stream(id).unwrap().response_started = true;
        // A failed VM's body callbacks stop without buffering (the C++ host's CHECK_FAIL_HTTP).
        assert_eq!(vm.on_response_body(id, true).unwrap(), Action::StopNoBuffer);
        // Too late for a reply: the stream is reset rather than held forever.
        assert_eq!(vm.memory_stream(id).unwrap().effects, [StreamEffect::Close(StreamType::HttpResponse)]);
    }

    /// Context ids wrap past `u32::MAX` as the reference host's do, skipping 0 and every id
    /// still in use (the root's, an open stream's).
    #[test]
    fn context_ids_wrap_around_skipping_0_and_ids_in_use() {
        let (mut vm, root) = fail_closed_vm(Callback::OnDelete);
        assert_eq!(root, 1);
        let open = vm.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
        assert_eq!(open, 2);
        vm.next_context = u64::from(u32::MAX - 2);
        let ids: Vec<u32> = (0..4)
            .map(|_| {
                let id = vm.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
                vm.finish_stream(id).unwrap();
                id
            })
            .collect();
        assert_eq!(ids, [u32::MAX - 1, u32::MAX, 3, 4]);
        assert!(vm.stream_context(open).is_ok(), "the open stream is untouched");
        assert!(vm.root_plugin(root).is_ok(), "so is the root");
    }

    #[test]
    fn a_part_of_the_stream_is_let_go_of_when_its_callback_continues() {
        let (mut vm, root) = fail_closed_vm(Callback::OnDelete);
        let id = vm.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
        assert_eq!(vm.on_request_headers(id, false).unwrap(), Action::Continue);
        let p = vm.stream_context(id).unwrap().phase;
        assert!(!p.request_headers, "released after CONTINUE, as Envoy's decodeHeaders");
        assert!(p.arrived.request_headers, "still there for proxy_on_log");
        assert_eq!(vm.on_response_body(id, true).unwrap(), Action::Continue);
        let p = vm.stream_context(id).unwrap().phase;
        assert!(!p.response_body && !p.response_trailers_creatable);
    }

    #[test]
    fn raw_answers_read_as_envoy_reads_them() {
        use Action::*;
        // (family, raw, reply sent, allow_on_headers_stop_iteration, action)
        let cases = [
            (Family::Headers, 0, false, false, Continue),
            (Family::Headers, 1, false, false, Pause),
            (Family::Headers, 1, false, true, PauseHeaders),
            (Family::Headers, 2, false, false, Continue),
            (Family::Headers, 3, false, false, Pause),
            (Family::Headers, 7, false, false, Pause),
            (Family::Headers, 0xffff_ffff, false, false, Pause),
            (Family::Headers, 0, true, false, Pause),
            (Family::Body, 0, false, false, Continue),
            (Family::Body, 1, false, false, Pause),
            (Family::Body, 2, false, false, PauseWatermark),
            (Family::Body, 3, false, false, StopNoBuffer),
            (Family::Body, 9, false, false, StopNoBuffer),
            (Family::Body, 0, true, false, StopNoBuffer),
            (Family::Trailers, 0, false, false, Continue),
            (Family::Trailers, 5, false, false, Pause),
            (Family::Trailers, 0, true, false, Pause),
            (Family::Network, 0, false, false, Continue),
            (Family::Network, 2, false, false, Pause),
        ];
        for (family, raw, reply, allow, want) in cases {
            assert_eq!(family.action(raw, reply, allow), want, "{family:?} {raw} reply {reply} allow {allow}");
        }
    }

    #[test]
    fn a_fail_closed_grpc_request_gets_unavailable() {
        let (mut vm, root) = fail_closed_vm(Callback::OnRequestHeaders);
        let mut stream = MemoryStream::new();
        stream.request_headers.add(b"content-type", b"application/grpc+proto");
        let id = vm.create_http_stream(root, Box::new(stream)).unwrap();
        assert_eq!(vm.on_request_headers(id, true).unwrap(), Action::Pause);
        let reply = vm.memory_stream(id).unwrap().local_reply().cloned().unwrap();
        assert_eq!((reply.status, reply.grpc_status), (503, Some(14)));
        assert_eq!(vm_failed_reply(false).grpc_status, None);
    }

    #[test]
    fn a_call_past_its_deadline_is_stopped_by_the_watchdog_and_says_so() {
        let limits = crate::Limits { call_deadline: Some(std::time::Duration::from_millis(20)), ..Default::default() };
        let host = VmHost::new(VmHostConfig::new("").with_limits(limits), AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
        let mut fake = Fake::new(host, vec![Callback::OnTick], Callback::OnDelete);
        fake.spin_in = Some(Callback::OnTick);
        let mut vm = Vm::start(Box::new(fake), "fake").unwrap();
        let root = vm.start_plugin(PluginInfo::default()).unwrap();
        let err = vm.on_tick(root).unwrap_err();
        let Error::Trap { trap, .. } = err else { panic!("{err}") };
        assert_eq!(trap.kind, TrapKind::Deadline);
        assert!(trap.message.contains("ran longer than its 20ms deadline"), "{trap}");
    }

    #[test]
    fn a_trap_after_a_refused_memory_grow_is_a_memory_limit_trap() {
        let limits = crate::Limits { max_memory_bytes: 2 << 16, ..Default::default() };
        let host = VmHost::new(VmHostConfig::new("").with_limits(limits), AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
        let mut fake = Fake::new(host, vec![Callback::OnTick], Callback::OnTick);
        fake.refuse_memory = true;
        let mut vm = Vm::start(Box::new(fake), "fake").unwrap();
        let root = vm.start_plugin(PluginInfo::default()).unwrap();
        let Error::Trap { trap, .. } = vm.on_tick(root).unwrap_err() else { panic!() };
        assert_eq!(trap.kind, TrapKind::MemoryLimit);
        assert!(trap.message.contains("196608 bytes was refused at the limit of 131072 bytes"), "{trap}");
        assert!(trap.to_string().starts_with("memory limit exceeded"), "{trap}");
    }

    #[test]
    fn a_trap_without_a_refused_grow_stays_a_guest_trap() {
        let host = VmHost::new(VmHostConfig::new(""), AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
        let mut vm = Vm::start(Box::new(Fake::new(host, vec![Callback::OnTick], Callback::OnTick)), "fake").unwrap();
        let root = vm.start_plugin(PluginInfo::default()).unwrap();
        let Error::Trap { trap, .. } = vm.on_tick(root).unwrap_err() else { panic!() };
        assert_eq!(trap.kind, TrapKind::Guest);
    }

    /// An embedder that keeps its log lines.
    #[derive(Default)]
    struct Logs(std::sync::Mutex<Vec<String>>);

    impl crate::Embedder for Logs {
        fn log(&self, _plugin: Option<&PluginInfo>, _level: abi::LogLevel, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    #[test]
    fn a_callback_outside_the_restriction_is_never_called() {
        let mut config = VmHostConfig::new("");
        config.capabilities = crate::CapabilityRestriction::allow(["proxy_on_response_headers", "lifecycle"]).unwrap();
        let logs = Arc::new(Logs::default());
        let services = Services::new();
        let host = VmHost::new(config, AbiVersion::V021, logs.clone(), services.clone());
        let exports = vec![Callback::OnContextCreate, Callback::OnRequestHeaders, Callback::OnResponseHeaders, Callback::OnTick];
        let fake = Fake::new(host, exports, Callback::OnDelete);
        let called = fake.called.clone();
        let mut vm = Vm::start(Box::new(fake), "fake").unwrap();
        let root = vm.start_plugin(PluginInfo::default()).unwrap();
        let id = vm.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
        // Not allowed: the stream goes on as if the plugin did not export it.
        assert_eq!(vm.on_request_headers(id, true).unwrap(), Action::Continue);
        assert_eq!(vm.on_request_headers(id, true).unwrap(), Action::Continue);
        assert_eq!(vm.on_response_headers(id, true).unwrap(), Action::Continue);
        vm.on_tick(root).unwrap();
        assert_eq!(
            *called.lock().unwrap(),
            [Callback::OnContextCreate, Callback::OnContextCreate, Callback::OnResponseHeaders],
            "neither proxy_on_request_headers nor proxy_on_tick was called"
        );
        let logs = logs.0.lock().unwrap();
        assert_eq!(logs.len(), 2, "one line per callback: {logs:?}");
        assert!(logs[0].starts_with("callback `proxy_on_request_headers` not called: it is not among the VM's allowed capabilities (lifecycle, proxy_on_response_headers)"), "{}", logs[0]);
        assert!(logs[1].starts_with("callback `proxy_on_tick` not called"), "{}", logs[1]);
        assert_eq!(services.security().snapshot().callbacks_skipped, 3);
    }
}
