//! An end-to-end plugin built on the unmodified `proxy-wasm` SDK (0.2.x).
//!
//! One root context per plugin; its plugin configuration (a UTF-8 string read
//! in `on_configure`) names the scenario. Every scenario uses the SDK the way a
//! real plugin would and logs what it did at INFO level, so a test can compare
//! both the effects on the exchange and the log lines.
//!
//! | configuration            | what it does                                                     |
//! |--------------------------|------------------------------------------------------------------|
//! | `headers`                | reads `:path` and `x-a`; adds `x-added: 1`, sets `x-a: changed`, removes `x-remove`; adds `x-response: yes` to the response |
//! | `local`                  | `:path` starting with `/deny`: local reply 403 `denied` with `x-deny: 1` |
//! | `body`                   | buffers the request body to its end, replaces `foo` with `bar`    |
//! | `callout`                | asks upstream `auth` (`GET /check`); 200 resumes, else 403 `forbidden` with `x-auth: denied` |
//! | `tick`                   | ticks every 100 ms; CAS-increments shared data `ticks`, counter `ticks_total` |
//! | `counter`                | CAS-increments shared data `requests` on each request's headers and adds `x-request-count: <n>` |
//! | `metrics`                | counter `requests_total`, gauge `active`, histogram `latency` (42) |
//! | `queue-producer[:VM_ID]` | enqueues each request's `:path` on queue `events` of VM `VM_ID` (default: empty) |
//! | `queue-consumer`         | registers queue `events`; logs `got <item>` for each item         |
//! | `trap`                   | panics (traps) in request headers                                 |
//! | `tcp`                    | a stream (TCP) context: uppercases each downstream chunk in place, logs upstream data sizes and both closes with their peer type |
//! | `header-values`          | logs the response's `set-cookie` and all its headers, then sets `set-cookie: c=3` |
//! | `body-offsets`           | reads each request body chunk at the offset of the bytes seen before it, and one byte past the chunk; continues |
//! | `vm-configuration`       | logs `get_vm_configuration()` in `on_configure` and in each request's headers |
//! | `headers-late`           | reads the request's `:path` again in `on_http_response_headers` (after the request headers continued) |
//! | `late-local`             | sends a local 403 `late` from `on_http_response_body`, after the response started |
//! | `resume-from-root`       | ticks every 10 ms; the first tick calls `resume_http_request` from the root context (no stream) |
//! | `grpc-call`              | logs `get_grpc_status()` before any call, calls `svc.Echo/Say` on upstream `grpc`; its answer or failure logs the status and the message, then resumes |
//!
//! An empty or unknown configuration fails `on_configure`.

use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, PeerType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root { context_id, scenario: None, metrics: None, ticks_total: None })
    });
}}

/// What a root context was configured to do.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scenario {
    Headers,
    Local,
    Body,
    Callout,
    Tick,
    Counter,
    Metrics,
    QueueProducer { vm_id: String },
    QueueConsumer,
    Trap,
    Tcp,
    HeaderValues,
    BodyOffsets,
    VmConfiguration,
    HeadersLate,
    LateLocal,
    ResumeFromRoot,
    GrpcCall,
}

impl Scenario {
    fn parse(configuration: &str) -> Result<Scenario, String> {
        let (name, argument) = match configuration.split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (configuration, None),
        };
        let scenario = match name {
            "headers" => Scenario::Headers,
            "local" => Scenario::Local,
            "body" => Scenario::Body,
            "callout" => Scenario::Callout,
            "tick" => Scenario::Tick,
            "counter" => Scenario::Counter,
            "metrics" => Scenario::Metrics,
            "queue-producer" => {
                return Ok(Scenario::QueueProducer {
                    vm_id: argument.unwrap_or("").to_string(),
                })
            }
            "queue-consumer" => Scenario::QueueConsumer,
            "trap" => Scenario::Trap,
            "tcp" => Scenario::Tcp,
            "header-values" => Scenario::HeaderValues,
            "body-offsets" => Scenario::BodyOffsets,
            "vm-configuration" => Scenario::VmConfiguration,
            "headers-late" => Scenario::HeadersLate,
            "late-local" => Scenario::LateLocal,
            "resume-from-root" => Scenario::ResumeFromRoot,
            "grpc-call" => Scenario::GrpcCall,
            _ => return Err(format!("unknown scenario `{configuration}`")),
        };
        match argument {
            Some(_) => Err(format!(
                "scenario `{name}` takes no argument (got `{configuration}`)"
            )),
            None => Ok(scenario),
        }
    }
}

/// Metric ids defined by the `metrics` scenario, handed to each HTTP context.
#[derive(Clone, Copy, Debug)]
struct Metrics {
    requests_total: u32,
    active: u32,
    latency: u32,
}

struct Root {
    context_id: u32,
    scenario: Option<Scenario>,
    metrics: Option<Metrics>,
    ticks_total: Option<u32>,
}

impl Root {
    fn configure(&mut self, scenario: &Scenario) -> Result<(), Status> {
        match scenario {
            Scenario::Tick => {
                self.set_tick_period(Duration::from_millis(100));
                if self.ticks_total.is_none() {
                    self.ticks_total = Some(hostcalls::define_metric(
                        MetricType::Counter,
                        "ticks_total",
                    )?);
                }
                info!("tick: tick period 100 ms, counter ticks_total defined");
            }
            Scenario::Metrics => {
                if self.metrics.is_none() {
                    self.metrics = Some(Metrics {
                        requests_total: hostcalls::define_metric(
                            MetricType::Counter,
                            "requests_total",
                        )?,
                        active: hostcalls::define_metric(MetricType::Gauge, "active")?,
                        latency: hostcalls::define_metric(MetricType::Histogram, "latency")?,
                    });
                }
                info!("metrics: defined requests_total, active, latency");
            }
            Scenario::QueueConsumer => {
                let queue_id = self.register_shared_queue("events");
                info!("queue-consumer: registered queue events as {queue_id}");
            }
            Scenario::ResumeFromRoot => {
                self.set_tick_period(Duration::from_millis(10));
            }
            Scenario::VmConfiguration => {
                let vm = self.get_vm_configuration().map(|b| String::from_utf8_lossy(&b).into_owned());
                info!("vm-configuration: in on_configure {vm:?}");
            }
            Scenario::HeadersLate => {
                // The SDK's own panic hook logs the panic's location, a path in the cargo
                // registry that differs between machines; log only the message.
                std::panic::set_hook(Box::new(|info| {
                    let payload = info.payload();
                    let message = payload
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| payload.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    let _ = hostcalls::log(LogLevel::Critical, &format!("panicked: {message}"));
                }));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Adds one to the decimal number in shared data `key` (absent counts as 0), retrying while
/// another writer wins the CAS race; `who` prefixes the log lines. The new value, or `None`
/// after logging why not.
fn increment_shared(key: &str, who: &str) -> Option<u64> {
    loop {
        let (value, cas) = match hostcalls::get_shared_data(key) {
            Ok(found) => found,
            Err(status) => {
                error!("{who}: get_shared_data({key}) failed: {status:?}");
                return None;
            }
        };
        let current = match value {
            None => 0,
            Some(bytes) => match std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(n) => n,
                None => {
                    error!("{who}: shared data {key} holds {bytes:?}, not a number");
                    return None;
                }
            },
        };
        let next = current + 1;
        match hostcalls::set_shared_data(key, Some(next.to_string().as_bytes()), cas) {
            Ok(()) => return Some(next),
            Err(Status::CasMismatch) => {
                info!("{who}: CAS mismatch on {key}, retrying");
                continue;
            }
            Err(status) => {
                error!("{who}: set_shared_data({key}) failed: {status:?}");
                return None;
            }
        }
    }
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let configuration = match self.get_plugin_configuration() {
            Some(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    error!(
                        "root {}: plugin configuration is not UTF-8",
                        self.context_id
                    );
                    return false;
                }
            },
            None => String::new(),
        };
        let scenario = match Scenario::parse(configuration.trim()) {
            Ok(scenario) => scenario,
            Err(message) => {
                error!("root {}: {message}", self.context_id);
                return false;
            }
        };
        info!(
            "root {}: configured scenario {}",
            self.context_id,
            configuration.trim()
        );
        if let Err(status) = self.configure(&scenario) {
            error!(
                "root {}: setting up {scenario:?} failed: {status:?}",
                self.context_id
            );
            return false;
        }
        self.scenario = Some(scenario);
        true
    }

    fn on_tick(&mut self) {
        if self.scenario == Some(Scenario::ResumeFromRoot) {
            // The root context has no stream: Envoy answers OK and does nothing (the SDK
            // panics on anything else).
            info!("resume-from-root: resuming from the root context");
            let result = hostcalls::resume_http_request();
            info!("resume-from-root: {result:?}");
            self.set_tick_period(Duration::from_millis(0));
            return;
        }
        if self.scenario != Some(Scenario::Tick) {
            return;
        }
        if let Some(ticks) = increment_shared("ticks", "tick") {
            info!("tick: ticks={ticks}");
        }
        if let Some(id) = self.ticks_total {
            if let Err(status) = hostcalls::increment_metric(id, 1) {
                error!("tick: increment_metric(ticks_total) failed: {status:?}");
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        loop {
            match self.dequeue_shared_queue(queue_id) {
                Ok(Some(item)) => info!("got {}", String::from_utf8_lossy(&item)),
                Ok(None) => break,
                Err(status) => {
                    error!("queue-consumer: dequeue from {queue_id} failed: {status:?}");
                    break;
                }
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        match self.scenario {
            Some(Scenario::Tcp) => Some(ContextType::StreamContext),
            Some(_) => Some(ContextType::HttpContext),
            None => None,
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let context: Box<dyn HttpContext> = match self.scenario.as_ref()? {
            Scenario::Headers => Box::new(Headers),
            Scenario::Local => Box::new(Local),
            Scenario::Body => Box::new(Body),
            Scenario::Callout => Box::new(Callout { context_id }),
            Scenario::Metrics => Box::new(MetricsHttp { ids: self.metrics? }),
            Scenario::QueueProducer { vm_id } => Box::new(QueueProducer {
                vm_id: vm_id.clone(),
            }),
            Scenario::Trap => Box::new(Trap),
            Scenario::Counter => Box::new(Counter),
            Scenario::HeaderValues => Box::new(HeaderValues),
            Scenario::BodyOffsets => Box::new(BodyOffsets { seen: 0 }),
            Scenario::VmConfiguration => Box::new(VmConfiguration),
            Scenario::HeadersLate => Box::new(HeadersLate),
            Scenario::LateLocal => Box::new(LateLocal),
            Scenario::ResumeFromRoot => Box::new(PassThrough),
            Scenario::GrpcCall => Box::new(GrpcCall),
            Scenario::Tick | Scenario::QueueConsumer => Box::new(PassThrough),
            Scenario::Tcp => return None,
        };
        Some(context)
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        match self.scenario.as_ref()? {
            Scenario::Tcp => Some(Box::new(Tcp { context_id })),
            _ => None,
        }
    }
}

/// HTTP context for root-only scenarios: lets every stream through untouched.
struct PassThrough;

impl Context for PassThrough {}
impl HttpContext for PassThrough {}

struct Headers;

impl Context for Headers {}

impl HttpContext for Headers {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let path = self.get_http_request_header(":path");
        let x_a = self.get_http_request_header("x-a");
        info!(
            "headers: :path={} x-a={}",
            path.as_deref().unwrap_or("<none>"),
            x_a.as_deref().unwrap_or("<none>")
        );
        self.add_http_request_header("x-added", "1");
        self.set_http_request_header("x-a", Some("changed"));
        self.remove_http_request_header("x-remove");
        info!("headers: added x-added, replaced x-a, removed x-remove");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-response", "yes");
        info!("headers: added x-response");
        Action::Continue
    }
}

/// Reads request body chunks at a running offset, as plugins written against the SDK do: the
/// bytes seen in earlier chunks. Each chunk is continued, so the buffer holds only the new one
/// and the reads run past it; the SDK panics on any status but OK and NOT_FOUND.
struct BodyOffsets {
    seen: usize,
}

impl Context for BodyOffsets {}

impl HttpContext for BodyOffsets {
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let at = self.get_http_request_body(self.seen, body_size);
        let past = self.get_http_request_body(body_size + 1, 1);
        info!(
            "body-offsets: {body_size} bytes, at {} {:?}, past the chunk {:?}, end_of_stream={end_of_stream}",
            self.seen,
            at.map(|b| String::from_utf8_lossy(&b).into_owned()),
            past.map(|b| String::from_utf8_lossy(&b).into_owned())
        );
        self.seen += body_size;
        Action::Continue
    }
}

/// Sends a local reply after the response started: Envoy answers OK and resets the stream.
struct LateLocal;

impl Context for LateLocal {}

impl HttpContext for LateLocal {
    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        info!("late-local: {body_size} body bytes, replying 403");
        self.send_http_response(403, vec![], Some(b"late"));
        info!("late-local: the reply was accepted");
        Action::Continue
    }
}

/// Reads a request header in the response headers callback: Envoy has let go of the request
/// headers by then (they continued), answers BAD_ARGUMENT, and the SDK panics.
struct HeadersLate;

impl Context for HeadersLate {}

impl HttpContext for HeadersLate {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        info!("headers-late: reading :path in the response headers");
        let path = self.get_http_request_header(":path");
        info!("headers-late: :path={path:?}");
        Action::Continue
    }
}

struct VmConfiguration;

impl Context for VmConfiguration {}

impl HttpContext for VmConfiguration {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let vm = hostcalls::get_buffer(proxy_wasm::types::BufferType::VmConfiguration, 0, usize::MAX)
            .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()));
        info!("vm-configuration: in a request {vm:?}");
        Action::Continue
    }
}

struct HeaderValues;

impl Context for HeaderValues {}

impl HttpContext for HeaderValues {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let cookie = self.get_http_response_header("set-cookie");
        info!("header-values: set-cookie={}", cookie.as_deref().unwrap_or("<none>"));
        let all = self.get_http_response_headers();
        info!("header-values: {} response headers {all:?}", all.len());
        self.set_http_response_header("set-cookie", Some("c=3"));
        info!("header-values: set set-cookie to c=3");
        Action::Continue
    }
}

struct Local;

impl Context for Local {}

impl HttpContext for Local {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        if path.starts_with("/deny") {
            info!("local: denying {path}");
            self.send_http_response(403, vec![("x-deny", "1")], Some(b"denied"));
            return Action::Pause;
        }
        info!("local: allowing {path}");
        Action::Continue
    }
}

struct Body;

impl Context for Body {}

impl HttpContext for Body {
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            info!("body: buffering, {body_size} bytes so far");
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        let rewritten = replace_all(&body, b"foo", b"bar");
        self.set_http_request_body(0, body_size, &rewritten);
        info!(
            "body: rewrote {} bytes into {} bytes",
            body.len(),
            rewritten.len()
        );
        Action::Continue
    }
}

/// `haystack` with every non-overlapping `from` replaced by `to`, left to right.
fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

struct Callout {
    context_id: u32,
}

impl Context for Callout {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if num_headers == 0 {
            // A failed call (a reset): there is no response to read. The host's status says why.
            let (code, message) = self.get_grpc_status();
            info!(
                "callout: context {} token {token_id}: the call failed (status {code}, {}), sending 503",
                self.context_id,
                message.as_deref().unwrap_or("<no message>")
            );
            self.send_http_response(503, vec![("x-auth", "failed")], Some(b"auth failed"));
            return;
        }
        let status = self.get_http_call_response_header(":status");
        info!(
            "callout: context {} token {token_id}: auth answered :status {} with {body_size} body bytes",
            self.context_id,
            status.as_deref().unwrap_or("<none>")
        );
        if status.as_deref() == Some("200") {
            info!("callout: allowed, resuming the request");
            self.resume_http_request();
        } else {
            info!("callout: denied, sending 403");
            self.send_http_response(403, vec![("x-auth", "denied")], Some(b"forbidden"));
        }
    }
}

impl HttpContext for Callout {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = vec![
            (":method", "GET"),
            (":path", "/check"),
            (":authority", "auth"),
        ];
        match self.dispatch_http_call("auth", headers, None, vec![], Duration::from_secs(1)) {
            Ok(token_id) => {
                info!("callout: dispatched token {token_id}");
                Action::Pause
            }
            Err(status) => {
                // An authorizer fails closed when it cannot ask.
                warn!("callout: dispatch to auth failed: {status:?}");
                self.send_http_response(
                    503,
                    vec![("x-auth", "unavailable")],
                    Some(b"auth unavailable"),
                );
                Action::Pause
            }
        }
    }
}

/// `grpc-call`: a unary gRPC call from the request headers; the request resumes on its answer
/// or its failure.
struct GrpcCall;

impl Context for GrpcCall {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let (code, message) = self.get_grpc_status();
        let body = self.get_grpc_call_response_body(0, response_size);
        info!(
            "grpc-call: token {token_id}: status_code {status_code}, get_grpc_status ({code}, {}), {} message bytes: {}",
            message.as_deref().unwrap_or("<none>"),
            response_size,
            String::from_utf8_lossy(body.as_deref().unwrap_or_default())
        );
        self.resume_http_request();
    }
}

impl HttpContext for GrpcCall {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (code, message) = self.get_grpc_status();
        info!("grpc-call: get_grpc_status before any call: ({code}, {})", message.as_deref().unwrap_or("<none>"));
        match self.dispatch_grpc_call("grpc", "svc.Echo", "Say", vec![("k", b"v")], Some(b"ping"), Duration::from_secs(1)) {
            Ok(token_id) => {
                info!("grpc-call: dispatched token {token_id}");
                Action::Pause
            }
            Err(status) => {
                warn!("grpc-call: dispatch failed: {status:?}");
                Action::Continue
            }
        }
    }
}

struct MetricsHttp {
    ids: Metrics,
}

impl MetricsHttp {
    fn check(what: &str, result: Result<(), Status>) {
        if let Err(status) = result {
            error!("metrics: {what} failed: {status:?}");
        }
    }
}

impl Context for MetricsHttp {}

impl HttpContext for MetricsHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Self::check(
            "requests_total += 1",
            hostcalls::increment_metric(self.ids.requests_total, 1),
        );
        Self::check(
            "active += 1",
            hostcalls::increment_metric(self.ids.active, 1),
        );
        Self::check(
            "latency <- 42",
            hostcalls::record_metric(self.ids.latency, 42),
        );
        info!("metrics: request counted");
        Action::Continue
    }

    fn on_log(&mut self) {
        Self::check(
            "active -= 1",
            hostcalls::increment_metric(self.ids.active, -1),
        );
        info!("metrics: request done");
    }
}

struct QueueProducer {
    vm_id: String,
}

impl Context for QueueProducer {}

impl HttpContext for QueueProducer {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        match self.resolve_shared_queue(&self.vm_id, "events") {
            Some(queue_id) => match self.enqueue_shared_queue(queue_id, Some(path.as_bytes())) {
                Ok(()) => info!("queue-producer: enqueued {path} on queue {queue_id}"),
                Err(status) => {
                    error!("queue-producer: enqueue on queue {queue_id} failed: {status:?}")
                }
            },
            None => warn!(
                "queue-producer: queue events of vm `{}` not found",
                self.vm_id
            ),
        }
        Action::Continue
    }
}

struct Trap;

impl Context for Trap {}

impl HttpContext for Trap {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        info!("trap: about to panic");
        panic!("boom");
    }
}

struct Counter;

impl Context for Counter {}

impl HttpContext for Counter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match increment_shared("requests", "counter") {
            Some(n) => {
                self.add_http_request_header("x-request-count", &n.to_string());
                info!("counter: request {n}");
            }
            None => warn!("counter: request not counted"),
        }
        Action::Continue
    }
}

struct Tcp {
    context_id: u32,
}

impl Context for Tcp {}

impl StreamContext for Tcp {
    fn on_new_connection(&mut self) -> Action {
        info!("tcp: context {} new connection", self.context_id);
        Action::Continue
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        let data = self.get_downstream_data(0, data_size).unwrap_or_default();
        let upper = data.to_ascii_uppercase();
        self.set_downstream_data(0, data_size, &upper);
        info!(
            "tcp: downstream {:?} -> {:?}, end_of_stream={end_of_stream}",
            String::from_utf8_lossy(&data),
            String::from_utf8_lossy(&upper)
        );
        Action::Continue
    }

    fn on_downstream_close(&mut self, peer_type: PeerType) {
        info!("tcp: downstream closed by {peer_type:?}");
    }

    fn on_upstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        info!("tcp: upstream data {data_size} bytes, end_of_stream={end_of_stream}");
        Action::Continue
    }

    fn on_upstream_close(&mut self, peer_type: PeerType) {
        info!("tcp: upstream closed by {peer_type:?}");
    }

    fn on_log(&mut self) {
        info!("tcp: context {} done", self.context_id);
    }
}
