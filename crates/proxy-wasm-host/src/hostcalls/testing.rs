//! A [`HostCx`] over a plain byte vector, for unit tests of host functions without an engine.

use std::sync::{Arc, Mutex};

use abi::{AbiVersion, Callback, LogLevel, MapLimits};

use crate::host::{CallData, Context, ContextKind, RootContext, StreamContext, StreamPhase};
use crate::{
    Embedder, GrpcCall, GuestMemory, HostCx, HttpCall, MemoryStream, PluginInfo, PropertyCx, Services, Status, Trap,
    VmHost, VmHostConfig, VmToken, WordSize,
};

/// Root context id in [`TestCx`].
pub const ROOT: u32 = 1;
/// HTTP stream context id in [`TestCx`].
pub const STREAM: u32 = 2;
/// TCP stream context id in [`TestCx`].
pub const TCP: u32 = 3;

/// The guest memory size of a [`TestCx`].
pub const MEM: u64 = 64 * 1024;
/// Where the bump allocator starts; tests put inputs below this.
pub const HEAP: u64 = 32 * 1024;

/// Everything a [`RecordingEmbedder`] saw.
#[derive(Default)]
pub struct Seen {
    pub logs: Vec<(LogLevel, String)>,
    pub http_calls: Vec<HttpCall>,
    pub grpc_calls: Vec<GrpcCall>,
    pub grpc_sends: Vec<(u32, Vec<u8>, bool)>,
    pub grpc_cancels: Vec<u32>,
    pub grpc_closes: Vec<u32>,
}

/// An embedder that records what it is asked and answers from fixed data.
#[derive(Default)]
pub struct RecordingEmbedder {
    pub seen: Mutex<Seen>,
    /// Properties it answers (path segments joined by 0 bytes).
    pub properties: Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>,
    /// What `http_call` and `grpc_call` answer; Ok by default.
    pub callout_result: Mutex<Option<Status>>,
}

impl Embedder for RecordingEmbedder {
    fn log(&self, _plugin: Option<&PluginInfo>, level: LogLevel, message: &str) {
        self.seen.lock().unwrap().logs.push((level, message.to_string()));
    }
    fn log_level(&self, _plugin: Option<&PluginInfo>) -> LogLevel {
        LogLevel::Debug
    }
    fn now_nanos(&self) -> u64 {
        1_700_000_000_123_456_789
    }
    fn monotonic_nanos(&self) -> u64 {
        42_000
    }
    fn get_property(&self, _cx: PropertyCx<'_>, path: &[u8]) -> Result<Vec<u8>, Status> {
        self.properties.lock().unwrap().get(path).cloned().ok_or(Status::NotFound)
    }
    fn set_property(&self, _cx: PropertyCx<'_>, path: &[u8], value: &[u8]) -> Result<(), Status> {
        let mut p = self.properties.lock().unwrap();
        match p.get_mut(path) {
            Some(v) => {
                *v = value.to_vec();
                Ok(())
            }
            None => Err(Status::NotFound),
        }
    }
    fn http_call(&self, call: &HttpCall) -> Result<(), Status> {
        if let Some(s) = *self.callout_result.lock().unwrap() {
            return Err(s);
        }
        self.seen.lock().unwrap().http_calls.push(call.clone());
        Ok(())
    }
    fn grpc_call(&self, call: &GrpcCall) -> Result<(), Status> {
        if let Some(s) = *self.callout_result.lock().unwrap() {
            return Err(s);
        }
        self.seen.lock().unwrap().grpc_calls.push(call.clone());
        Ok(())
    }
    fn grpc_send(&self, _vm: VmToken, id: u32, message: &[u8], end_stream: bool) -> Result<(), Status> {
        self.seen.lock().unwrap().grpc_sends.push((id, message.to_vec(), end_stream));
        Ok(())
    }
    fn grpc_cancel(&self, _vm: VmToken, id: u32) -> Result<(), Status> {
        self.seen.lock().unwrap().grpc_cancels.push(id);
        Ok(())
    }
    fn grpc_close(&self, _vm: VmToken, id: u32) -> Result<(), Status> {
        self.seen.lock().unwrap().grpc_closes.push(id);
        Ok(())
    }
}

/// A VM's host state over 64 KiB of plain memory, with a bump allocator from [`HEAP`].
///
/// It has root context [`ROOT`] (plugin `test`, root id `root`, vm id `vm`, configuration
/// `plugin-config`, VM configuration `vm-config`), HTTP stream [`STREAM`] and TCP stream
/// [`TCP`] under it. The current callback is `proxy_on_request_headers` on [`STREAM`] with the
/// request headers present; change [`TestCx::enter`] and the phase to test other rules.
pub struct TestCx {
    pub mem: Vec<u8>,
    pub host: VmHost,
    pub next: u64,
    /// When set, the allocator answers this address instead of bumping.
    pub alloc_answer: Option<u64>,
    /// When set, the allocator traps.
    pub alloc_traps: bool,
    pub allocations: u32,
    /// Whether the allocator records the host's restricted phase it runs in.
    pub record_phase: bool,
    /// The restricted phase of each allocation, when recorded.
    pub phases_seen: Vec<Option<abi::RestrictedPhase>>,
    pub embedder: Arc<RecordingEmbedder>,
    /// The guest's word size (wasm32 unless a test says otherwise).
    pub word: WordSize,
}

impl HostCx for TestCx {
    fn parts(&mut self) -> (GuestMemory<'_>, &mut VmHost) {
        (GuestMemory::new(&mut self.mem, self.word), &mut self.host)
    }

    fn allocate(&mut self, size: u64) -> Result<u64, Trap> {
        self.allocations += 1;
        if self.record_phase {
            self.phases_seen.push(self.host.restricted);
        }
        if self.alloc_traps {
            return Err(Trap::guest("allocator trapped"));
        }
        if let Some(a) = self.alloc_answer {
            return Ok(a);
        }
        let at = self.next;
        if at + size > MEM {
            return Ok(0);
        }
        self.next += size.max(1);
        Ok(at)
    }
}

impl Default for TestCx {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCx {
    pub fn new() -> Self {
        Self::with_version(AbiVersion::V021)
    }

    pub fn with_version(abi: AbiVersion) -> Self {
        let embedder = Arc::new(RecordingEmbedder::default());
        let config = VmHostConfig {
            vm_id: "vm".into(),
            vm_configuration: b"vm-config".to_vec(),
            environment: vec![("A".into(), "1".into()), ("BB".into(), "22".into())],
            map_limits: MapLimits::default(),
            limits: crate::Limits::default(),
            capabilities: Default::default(),
        };
        let mut host = VmHost::new(config, abi, embedder.clone(), Services::new());
        let plugin = Arc::new(PluginInfo {
            name: "test".into(),
            root_id: "root".into(),
            vm_id: "vm".into(),
            configuration: b"plugin-config".to_vec(),
            ..Default::default()
        });
        host.contexts.insert(
            ROOT,
            Context {
                root: ROOT,
                kind: ContextKind::Root(Box::new(RootContext {
                    plugin,
                    tick_period_ms: 0,
                    done_pending: false,
                    done_called: false,
                    status: (0, Vec::new()),
                })),
            },
        );
        let mut stream = MemoryStream::new();
        stream.request_headers.add(b":path", b"/");
        stream.request_headers.add(b"x-a", b"1");
        host.contexts.insert(
            STREAM,
            Context {
                root: ROOT,
                kind: ContextKind::Stream(StreamContext {
                    stream: Box::new(stream),
                    tcp: false,
                    phase: StreamPhase {
                        request_headers: true,
                        arrived: crate::host::Arrived { request_headers: true, ..Default::default() },
                        ..Default::default()
                    },
                    allows_stop: false,
                }),
            },
        );
        host.contexts.insert(
            TCP,
            Context {
                root: ROOT,
                kind: ContextKind::Stream(StreamContext {
                    stream: Box::new(MemoryStream::new()),
                    tcp: true,
                    phase: StreamPhase::default(),
                    allows_stop: false,
                }),
            },
        );
        let mut cx = TestCx {
            mem: vec![0; MEM as usize],
            host,
            next: HEAP,
            alloc_answer: None,
            alloc_traps: false,
            allocations: 0,
            record_phase: false,
            phases_seen: Vec::new(),
            embedder,
            word: WordSize::W32,
        };
        cx.enter(Callback::OnRequestHeaders, STREAM);
        cx
    }

    /// Makes `callback` on `context` the running call, with no call data.
    pub fn enter(&mut self, callback: Callback, context: u32) {
        self.host.call.callback = Some(callback);
        self.host.call.context_id = context;
        self.host.call.effective = context;
        self.host.call.data = CallData::None;
    }

    /// Arranges the running call from a fuzzer's choices: `callback` on `context` (any id, known
    /// or not), the HTTP stream's phase from the bits of `phase`, and the call data picked by
    /// `data` (none, an HTTP callout answer or failure, gRPC metadata or message, foreign-function
    /// arguments), each with a little content.
    pub fn arrange(&mut self, callback: Callback, context: u32, phase: u16, data: u8) {
        use crate::HeaderMap;
        self.enter(callback, context);
        let bit = |n: u16| phase & (1 << n) != 0;
        *self.phase(STREAM) = StreamPhase {
            request_headers: bit(0),
            request_body: bit(1),
            request_trailers: bit(2),
            response_headers: bit(3),
            response_body: bit(4),
            response_trailers: bit(5),
            downstream_data: false,
            upstream_data: false,
            request_trailers_creatable: bit(9),
            response_trailers_creatable: bit(10),
            arrived: crate::host::Arrived { request_headers: bit(0), response_headers: bit(3), response_trailers: bit(5) },
            local_reply: bit(6),
            ..Default::default()
        };
        *self.phase(TCP) = StreamPhase { downstream_data: bit(7), upstream_data: bit(8), ..Default::default() };
        let headers = || HeaderMap::from_pairs([(":status", "200"), ("x-b", "2")]);
        self.host.call.data = match data % 7 {
            0 => CallData::None,
            1 => CallData::HttpCallResponse { headers: headers(), body: b"body".to_vec(), trailers: headers() },
            2 => CallData::GrpcInitialMetadata(headers()),
            3 => CallData::GrpcTrailingMetadata(headers()),
            4 => CallData::GrpcMessage(b"message".to_vec()),
            5 => CallData::HttpCallFailure,
            _ => CallData::ForeignArguments(b"args".to_vec()),
        };
        let stream = self.stream(STREAM);
        stream.request_body = b"request body".to_vec();
        stream.response_headers.add(b":status", b"200");
        stream.request_trailers.add(b"t", b"1");
        self.stream(TCP).downstream_data = b"tcp".to_vec();
    }

    /// Restricts the VM's host functions and callbacks.
    pub fn restrict(&mut self, capabilities: crate::CapabilityRestriction) {
        self.host.capabilities = capabilities;
    }

    /// Gives the plugin of [`ROOT`] (and so of every context) this policy.
    pub fn set_policy(&mut self, policy: crate::PluginPolicy) {
        // As `Vm::start_plugin` notes a plugin that hides headers.
        self.host.hides_headers |= policy.hides_any_header();
        if let Some(ContextKind::Root(r)) = self.host.contexts.get_mut(&ROOT).map(|c| &mut c.kind) {
            r.plugin = Arc::new(PluginInfo { policy, ..(*r.plugin).clone() });
        }
    }

    /// Sets the running call's data.
    #[cfg(test)]
    pub(crate) fn set_data(&mut self, data: CallData) {
        self.host.call.data = data;
    }

    /// The phase of a stream context.
    pub(crate) fn phase(&mut self, context: u32) -> &mut StreamPhase {
        match &mut self.host.contexts.get_mut(&context).unwrap().kind {
            ContextKind::Stream(s) => &mut s.phase,
            ContextKind::Root(_) => panic!("not a stream"),
        }
    }

    /// The in-memory stream of a stream context.
    pub fn stream(&mut self, context: u32) -> &mut MemoryStream {
        match &mut self.host.contexts.get_mut(&context).unwrap().kind {
            ContextKind::Stream(s) => s.stream.as_any_mut().downcast_mut().unwrap(),
            ContextKind::Root(_) => panic!("not a stream"),
        }
    }

    /// The root context.
    #[cfg(test)]
    pub(crate) fn root(&mut self) -> &mut RootContext {
        match &mut self.host.contexts.get_mut(&ROOT).unwrap().kind {
            ContextKind::Root(r) => r,
            ContextKind::Stream(_) => panic!("not a root"),
        }
    }

    /// Writes bytes at `at` and returns (at, len) as the guest would pass them.
    pub fn put(&mut self, at: u64, bytes: &[u8]) -> (u64, u64) {
        self.mem[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
        (at, bytes.len() as u64)
    }

    pub fn u32_at(&self, at: u64) -> u32 {
        u32::from_le_bytes(self.mem[at as usize..at as usize + 4].try_into().unwrap())
    }

    pub fn u64_at(&self, at: u64) -> u64 {
        u64::from_le_bytes(self.mem[at as usize..at as usize + 8].try_into().unwrap())
    }

    /// The bytes a host function returned through the (pointer, size) words at `ret_ptr` and
    /// `ret_size`.
    pub fn returned(&self, ret_ptr: u64, ret_size: u64) -> Vec<u8> {
        let p = self.u32_at(ret_ptr) as usize;
        let n = self.u32_at(ret_size) as usize;
        self.mem[p..p + n].to_vec()
    }
}

/// Return-pointer slots tests use: (pointer word, size word) pairs and a scalar slot.
pub const RET_PTR: u64 = 16_000;
pub const RET_SIZE: u64 = 16_008;
pub const RET_SCALAR: u64 = 16_016;
/// An address past the end of memory.
pub const OOB: u64 = MEM + 16;

/// The status a raw entry returned.
pub fn status(r: Result<i32, Trap>) -> Status {
    Status::from_raw(r.expect("host function trapped") as u32).expect("not a status")
}
