//! A plugin on the Rust `proxy-wasm` SDK 0.1.4: an ABI 0.1.0 guest as such plugins are still
//! deployed. The SDK exports `proxy_abi_version_0_1_0` and `proxy_on_memory_allocate`, reads the
//! plugin configuration with `proxy_get_configuration`, resumes with `proxy_continue_request`,
//! and its header callbacks take no `end_of_stream`. The plugin exports `_start` itself (0.1.4
//! has no `main!`); the host calls it before any callback.
//!
//! The scenarios and their log lines are those of `sdk-e2e` (on 0.2.5), so that the golden
//! transcripts of `sdk-rust-0.1/` and `sdk/` can be read side by side. The plugin configuration
//! names the scenario:
//!
//! | configuration | what it does |
//! |---------------|--------------|
//! | `headers`     | reads `:path` and `x-a`; adds `x-added: 1`, sets `x-a: changed`, removes `x-remove`; adds `x-response: yes` to the response |
//! | `local`       | `:path` starting with `/deny`: local reply 403 `denied` with `x-deny: 1` |
//! | `body`        | buffers the request body to its end, replaces `foo` with `bar` |
//! | `callout`     | asks upstream `auth` (`GET /check`); 200 resumes, else 403 `forbidden` with `x-auth: denied` |
//! | `tick`        | ticks every 100 ms; CAS-increments shared data `ticks`, counter `ticks_total` |
//!
//! An empty or unknown configuration fails `on_configure`.
//!
//! In ABI 0.1.0 a missing header reads as OK with an empty value, which this SDK hands back as
//! `Some("")` rather than `None`: the `headers` scenario logs what it gets either way.

use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};

/// The entry point 0.1.x plugins export themselves: registers the root context factory.
#[no_mangle]
pub fn _start() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root { context_id, scenario: None, ticks_total: None })
    });
}

/// What a root context was configured to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Headers,
    Local,
    Body,
    Callout,
    Tick,
}

impl Scenario {
    fn parse(configuration: &str) -> Option<Scenario> {
        Some(match configuration {
            "headers" => Scenario::Headers,
            "local" => Scenario::Local,
            "body" => Scenario::Body,
            "callout" => Scenario::Callout,
            "tick" => Scenario::Tick,
            _ => return None,
        })
    }
}

struct Root {
    context_id: u32,
    scenario: Option<Scenario>,
    ticks_total: Option<u32>,
}

/// Adds one to the decimal number in shared data `key` (absent counts as 0), retrying while
/// another writer wins the CAS race. The new value, or `None` after logging why not.
fn increment_shared(key: &str) -> Option<u64> {
    loop {
        let (value, cas) = match hostcalls::get_shared_data(key) {
            Ok(found) => found,
            Err(status) => {
                error!("tick: get_shared_data({key}) failed: {status:?}");
                return None;
            }
        };
        let current = match value {
            None => 0,
            Some(bytes) => match std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<u64>().ok()) {
                Some(n) => n,
                None => {
                    error!("tick: shared data {key} holds {bytes:?}, not a number");
                    return None;
                }
            },
        };
        let next = current + 1;
        match hostcalls::set_shared_data(key, Some(next.to_string().as_bytes()), cas) {
            Ok(()) => return Some(next),
            Err(Status::CasMismatch) => {
                info!("tick: CAS mismatch on {key}, retrying");
            }
            Err(status) => {
                error!("tick: set_shared_data({key}) failed: {status:?}");
                return None;
            }
        }
    }
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        // 0.1.4: `get_configuration`, through `proxy_get_configuration`.
        let configuration =
            self.get_configuration().and_then(|bytes| String::from_utf8(bytes).ok()).unwrap_or_default();
        let Some(scenario) = Scenario::parse(configuration.trim()) else {
            error!("root {}: unknown scenario `{configuration}`", self.context_id);
            return false;
        };
        info!("root {}: configured scenario {}", self.context_id, configuration.trim());
        if scenario == Scenario::Tick {
            self.set_tick_period(Duration::from_millis(100));
            if self.ticks_total.is_none() {
                match hostcalls::define_metric(MetricType::Counter, "ticks_total") {
                    Ok(id) => self.ticks_total = Some(id),
                    Err(status) => {
                        error!("root {}: define_metric failed: {status:?}", self.context_id);
                        return false;
                    }
                }
            }
            info!("tick: tick period 100 ms, counter ticks_total defined");
        }
        self.scenario = Some(scenario);
        true
    }

    fn on_tick(&mut self) {
        if self.scenario != Some(Scenario::Tick) {
            return;
        }
        if let Some(ticks) = increment_shared("ticks") {
            info!("tick: ticks={ticks}");
        }
        if let Some(id) = self.ticks_total {
            if let Err(status) = hostcalls::increment_metric(id, 1) {
                error!("tick: increment_metric(ticks_total) failed: {status:?}");
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        self.scenario.map(|_| ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match self.scenario? {
            Scenario::Headers => Box::new(Headers),
            Scenario::Local => Box::new(Local),
            Scenario::Body => Box::new(Body),
            Scenario::Callout => Box::new(Callout { context_id }),
            Scenario::Tick => Box::new(PassThrough),
        })
    }
}

/// HTTP context for the root-only scenario: lets every stream through untouched.
struct PassThrough;

impl Context for PassThrough {}
impl HttpContext for PassThrough {}

struct Headers;

impl Context for Headers {}

impl HttpContext for Headers {
    fn on_http_request_headers(&mut self, _num_headers: usize) -> Action {
        let path = self.get_http_request_header(":path");
        let x_a = self.get_http_request_header("x-a");
        info!(
            "headers: :path={} x-a={}",
            path.as_deref().unwrap_or("<none>"),
            x_a.as_deref().unwrap_or("<none>")
        );
        self.add_http_request_header("x-added", "1");
        self.set_http_request_header("x-a", Some("changed"));
        self.set_http_request_header("x-remove", None);
        info!("headers: added x-added, replaced x-a, removed x-remove");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize) -> Action {
        self.add_http_response_header("x-response", "yes");
        info!("headers: added x-response");
        Action::Continue
    }
}

struct Local;

impl Context for Local {}

impl HttpContext for Local {
    fn on_http_request_headers(&mut self, _num_headers: usize) -> Action {
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
        info!("body: rewrote {} bytes into {} bytes", body.len(), rewritten.len());
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
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let status = self.get_http_call_response_header(":status");
        info!(
            "callout: context {} token {token_id}: auth answered :status {} with {body_size} body bytes",
            self.context_id,
            status.as_deref().unwrap_or("<none>")
        );
        if status.as_deref() == Some("200") {
            info!("callout: allowed, resuming the request");
            // 0.1.4: `proxy_continue_request`.
            self.resume_http_request();
        } else {
            info!("callout: denied, sending 403");
            self.send_http_response(403, vec![("x-auth", "denied")], Some(b"forbidden"));
        }
    }
}

impl HttpContext for Callout {
    fn on_http_request_headers(&mut self, _num_headers: usize) -> Action {
        let headers = vec![(":method", "GET"), (":path", "/check"), (":authority", "auth")];
        match self.dispatch_http_call("auth", headers, None, vec![], Duration::from_secs(1)) {
            Ok(token_id) => {
                info!("callout: dispatched token {token_id}");
                Action::Pause
            }
            Err(status) => {
                // An authorizer fails closed when it cannot ask.
                warn!("callout: dispatch to auth failed: {status:?}");
                self.send_http_response(503, vec![("x-auth", "unavailable")], Some(b"auth unavailable"));
                Action::Pause
            }
        }
    }
}
