//! The scenarios, by callback. Each name below is a plugin configuration; the expected
//! statuses and values come from the ABI reference (`shared/abi-reference.md`).
//!
//! - `canary`: adds `x-canary: ok` to the request (the runner's check that a host still works).
//! - `lifecycle`: no host calls; shows the callbacks and their arguments.
//! - `log`, `time`, `configuration`: logging and levels; the clock and ticks; the
//!   configuration buffers in `proxy_on_vm_start` and `proxy_on_configure`.
//! - `buffers`, `headers`, `trailers`: bodies, header maps, trailers.
//! - `stream-control`, `local-response`: resuming, closing, replying locally.
//! - `http-call`, `grpc`: callouts and their answers.
//! - `shared-data`, `queue`, `queue-producer` / `queue-consumer`, `metrics`.
//! - `properties`, `context`, `deferred-done`, `foreign`, `tcp`.
//! - `wasi` (Wasm only): every WASI function through raw imports; `std` (wasip1 only): the
//!   same through Rust's standard library.
//! - `hidden-headers`, `hidden-properties`, `upstreams`, `restricted`: the security policy
//!   (see `security.rs`).
//! - `trap:<callback>`: traps in that callback; `reject-configuration`: refuses its
//!   configuration. A VM configuration of `reject` makes `proxy_on_vm_start` refuse.
//! - `count`: logs each request's number in this VM (`request 1 in this VM`, ...), so that a
//!   transcript shows what a VM remembers; `trap-every:<n>`: the same, and traps in
//!   `proxy_on_request_headers` on every n-th request the VM sees (the failure policy's
//!   subject).
//! - `trap-on-restart`: traps in `proxy_on_configure` when the plugin starts for the third time
//!   or later with this vm_id (after the base VM and the first worker VM: in every restart),
//!   and in every `proxy_on_request_headers`. A VM configuration of `trap-on-restart` does the
//!   same in `proxy_on_vm_start`. Starts are counted in shared data.

use crate::host::*;
use crate::{bytes, fail, state, status, trap, value};

/// `proxy_on_vm_start`: with a VM configuration, checks the configuration buffers; refuses a
/// VM configuration of `reject`, traps on `trap`.
pub fn vm_start(_root: u32, size: usize) -> bool {
    if size == 0 {
        return true;
    }
    let (s, config) = get_buffer(VM_CONFIGURATION, 0, size);
    status("get the VM configuration", s, OK);
    if config.len() != size {
        fail(format!("the VM configuration has {} bytes, proxy_on_vm_start said {size}", config.len()));
    }
    value("the VM configuration's status", buffer_status(VM_CONFIGURATION), (size, 0));
    status("VM configuration from past its end", get_buffer(VM_CONFIGURATION, size + 1, 1).0, BAD_ARGUMENT);
    status("plugin configuration in proxy_on_vm_start", get_buffer(PLUGIN_CONFIGURATION, 0, 1).0, NOT_FOUND);
    status("set the read-only VM configuration", set_buffer(VM_CONFIGURATION, 0, 0, b"x"), BAD_ARGUMENT);
    match config.as_slice() {
        b"trap" => trap(),
        b"reject" => false,
        b"trap-on-restart" => {
            trap_on_restart("vm_start");
            true
        }
        _ => true,
    }
}

/// Counts a start in shared data (key `starts:<what>`) and traps from the third on: every
/// restart after the base VM and the first worker VM.
pub fn trap_on_restart(what: &str) {
    let key = format!("starts:{what}");
    let (s, old, cas) = get_shared_data(&key);
    let n: u32 = if s == OK { String::from_utf8_lossy(&old).parse().unwrap_or(0) } else { 0 };
    status("count the starts", set_shared_data(&key, &(n + 1).to_string(), cas), OK);
    if n >= 2 {
        trap();
    }
}

/// `proxy_on_configure`, after the scenario was read.
pub fn configure(scenario: &str, _root: u32, size: usize) -> bool {
    match scenario {
        "reject-configuration" => return false,
        "configuration" => {
            value("the plugin configuration's status", buffer_status(PLUGIN_CONFIGURATION), (size, 0));
            bytes("part of the plugin configuration", get_buffer(PLUGIN_CONFIGURATION, 3, 4), b"figu");
            bytes("the plugin configuration's end", get_buffer(PLUGIN_CONFIGURATION, size, 10), b"");
            status("VM configuration in proxy_on_configure", get_buffer(VM_CONFIGURATION, 0, 1).0, NOT_FOUND);
        }
        "time" | "stream-control" | "deferred-done" | "grpc" => {
            status("set the tick period", set_tick_period(10), OK);
        }
        "queue-consumer" => {
            let (s, id) = register_queue("jobs");
            status("register the consumer's queue", s, OK);
            state(|st| st.queue = id);
        }
        "trap-on-restart" => trap_on_restart("configure"),
        _ => {}
    }
    true
}

/// The value of request header `name`, or empty.
fn request_header(name: &str) -> String {
    String::from_utf8_lossy(&map_value(REQUEST_HEADERS, name).1).into_owned()
}

/// `proxy_on_request_headers`.
pub fn request_headers(scenario: &str, context: u32, num_headers: usize, _end_of_stream: bool) -> u32 {
    match scenario {
        "canary" => status("add x-canary", add_map_value(REQUEST_HEADERS, "x-canary", "ok"), OK),
        "log" => log_levels(),
        "time" => {
            value("the time", current_time(), 1_704_067_200_000_000_000);
        }
        "configuration" => {
            status("plugin configuration in a stream", get_buffer(PLUGIN_CONFIGURATION, 0, 1).0, NOT_FOUND);
        }
        "headers" => headers(num_headers),
        "stream-control" => {
            state(|s| s.waiting = context);
            return PAUSE;
        }
        "local-response" => return local_response(),
        "http-call" => return http_call(context),
        "grpc" => return grpc_calls(context),
        "shared-data" => shared_data(),
        "queue" => queue(),
        "queue-producer" => {
            let (s, id) = resolve_queue("consumer", "jobs");
            status("resolve the consumer's queue", s, OK);
            status("enqueue a job", enqueue(id, &request_header(":path")), OK);
        }
        "metrics" => metrics(),
        "properties" => properties(),
        "context" => effective_context(context),
        "foreign" => foreign(),
        "wasi" => crate::wasi::all(),
        "std" => crate::wasi::std_io(),
        "hidden-headers" => return crate::security::hidden_headers(context, num_headers),
        "hidden-properties" => crate::security::hidden_properties(),
        "upstreams" => crate::security::upstreams(),
        "restricted" => crate::security::restricted(),
        "count" => {
            count_request();
        }
        "trap-on-restart" => trap(),
        other => {
            if let Some(n) = other.strip_prefix("trap-every:") {
                let every: u32 = n.parse().unwrap_or(0);
                if every != 0 && count_request().is_multiple_of(every) {
                    trap();
                }
            }
        }
    }
    CONTINUE
}

/// Counts a request in this VM and logs its number.
fn count_request() -> u32 {
    let n = state(|s| {
        s.requests += 1;
        s.requests
    });
    status("log the request's number", log(INFO, &format!("request {n} in this VM")), OK);
    n
}

fn log_levels() {
    for level in 0..=5 {
        status("log at each level", log(level, &format!("level {level}")), OK);
    }
    status("log at level 6", log(6, "no such level"), BAD_ARGUMENT);
    status("log an empty message", log(INFO, ""), OK);
    // The scripted embedder logs everything: TRACE.
    value("the log level", get_log_level(), 0);
}

fn headers(num_headers: usize) {
    if num_headers != 4 {
        fail(format!("expected 4 request headers, got {num_headers}"));
    }
    bytes("get x-a", map_value(REQUEST_HEADERS, "x-a"), b"1");
    bytes("get X-A (case-insensitive)", map_value(REQUEST_HEADERS, "X-A"), b"1");
    bytes("get x-multi (two values, joined)", map_value(REQUEST_HEADERS, "x-multi"), b"a, b");
    status("get a missing header", map_value(REQUEST_HEADERS, "x-missing").0, NOT_FOUND);
    status("get from map type 99", map_value(99, "x-a").0, BAD_ARGUMENT);
    status("get a response header during the request", map_value(RESPONSE_HEADERS, ":status").0, BAD_ARGUMENT);
    status("get a request trailer before any", map_value(REQUEST_TRAILERS, "x").0, BAD_ARGUMENT);
    let pairs = encode_map(&[(":path", "/a"), ("x-a", "1"), ("x-multi", "a"), ("x-multi", "b")]);
    value("the map's size", map_size(REQUEST_HEADERS), pairs.len());
    bytes("the map's pairs", map_pairs(REQUEST_HEADERS), &pairs);
    status("the size of map type 99", map_size(99).0, BAD_ARGUMENT);
    status("add x-added", add_map_value(REQUEST_HEADERS, "x-added", "1"), OK);
    status("add a second x-a", add_map_value(REQUEST_HEADERS, "x-a", "2"), OK);
    bytes("x-a has both values", map_value(REQUEST_HEADERS, "x-a"), b"1, 2");
    status("replace x-a", replace_map_value(REQUEST_HEADERS, "x-a", "3"), OK);
    bytes("x-a replaced", map_value(REQUEST_HEADERS, "x-a"), b"3");
    status("replace an absent header", replace_map_value(REQUEST_HEADERS, "x-new", "4"), OK);
    status("remove x-multi", remove_map_value(REQUEST_HEADERS, "x-multi"), OK);
    status("remove an absent header", remove_map_value(REQUEST_HEADERS, "x-absent"), OK);
    status("x-multi is gone", map_value(REQUEST_HEADERS, "x-multi").0, NOT_FOUND);
    status("add to map type 99", add_map_value(99, "k", "v"), BAD_ARGUMENT);
    status("replace in map type 99", replace_map_value(99, "k", "v"), BAD_ARGUMENT);
    status("remove from map type 99", remove_map_value(99, "k"), BAD_ARGUMENT);
}

/// `proxy_on_response_headers`.
pub fn response_headers(scenario: &str, _context: u32, _num_headers: usize, _end_of_stream: bool) -> u32 {
    if scenario == "restricted" {
        crate::security::restricted_response_headers();
    }
    if scenario == "hidden-headers" {
        crate::security::hidden_response_headers(_num_headers);
    }
    if scenario == "headers" {
        let pairs = encode_map(&[(":status", "201"), ("x-set", "1")]);
        status("set the response headers", set_map_pairs(RESPONSE_HEADERS, &pairs), OK);
        bytes("the new :status", map_value(RESPONSE_HEADERS, ":status"), b"201");
        status("set a malformed map", set_map_pairs(RESPONSE_HEADERS, &[5, 0, 0, 0]), PARSE_FAILURE);
        status("set map type 99", set_map_pairs(99, &pairs), BAD_ARGUMENT);
        let many: Vec<(&str, &str)> = vec![("k", "v"); 1025];
        status("set 1025 pairs (over the limit)", set_map_pairs(RESPONSE_HEADERS, &encode_map(&many)), BAD_ARGUMENT);
        bytes("request headers stay readable", map_value(REQUEST_HEADERS, "x-a"), b"3");
        status("response trailers during response headers", map_pairs(RESPONSE_TRAILERS).0, BAD_ARGUMENT);
    }
    CONTINUE
}

/// `proxy_on_request_body` and `proxy_on_response_body`.
pub fn body(scenario: &str, _context: u32, buffer: u32, size: usize, end_of_stream: bool) -> u32 {
    match (scenario, buffer) {
        ("buffers", REQUEST_BODY) => return request_body(size, end_of_stream),
        ("buffers", RESPONSE_BODY) if end_of_stream => {
            status("append to the response body", set_buffer(RESPONSE_BODY, size, 0, b"!"), OK);
        }
        ("trailers", REQUEST_BODY) if end_of_stream => {
            status("add a trailer in the last body callback", add_map_value(REQUEST_TRAILERS, "x-t", "1"), OK);
        }
        ("local-response", RESPONSE_BODY) => {
            let none = encode_map(&[]);
            status("a local reply after the response started", send_local_response(500, "late", "", &none, -1), BAD_ARGUMENT);
        }
        _ => {}
    }
    CONTINUE
}

fn request_body(size: usize, end_of_stream: bool) -> u32 {
    if !end_of_stream {
        value("the first chunk's status", buffer_status(REQUEST_BODY), (5, 0));
        if size != 5 {
            fail(format!("the first chunk has 5 bytes, the callback said {size}"));
        }
        bytes("bytes 0..3", get_buffer(REQUEST_BODY, 0, 3), b"hel");
        bytes("bytes 2.. (capped at the end)", get_buffer(REQUEST_BODY, 2, 100), b"llo");
        bytes("from the end", get_buffer(REQUEST_BODY, 5, 1), b"");
        status("from past the end", get_buffer(REQUEST_BODY, 6, 1).0, BAD_ARGUMENT);
        status("buffer type 99", get_buffer(99, 0, 1).0, BAD_ARGUMENT);
        status("the status of buffer type 99", buffer_status(99).0, BAD_ARGUMENT);
        status("the response body during the request", get_buffer(RESPONSE_BODY, 0, 1).0, NOT_FOUND);
        status("the response body's status during the request", buffer_status(RESPONSE_BODY).0, NOT_FOUND);
        status("a callout answer outside its callback", get_buffer(CALL_RESPONSE_BODY, 0, 1).0, NOT_FOUND);
        status("prepend", set_buffer(REQUEST_BODY, 0, 0, b"<"), OK);
        status("append (start past the end)", set_buffer(REQUEST_BODY, 100, 0, b">"), OK);
        status("replace in the middle", set_buffer(REQUEST_BODY, 1, 5, b"HELLO"), OK);
        bytes("the edited chunk", get_buffer(REQUEST_BODY, 0, 100), b"<HELLO>");
        status("set buffer type 99", set_buffer(99, 0, 0, b"x"), BAD_ARGUMENT);
        status("set the response body during the request", set_buffer(RESPONSE_BODY, 0, 0, b"x"), NOT_FOUND);
        return PAUSE;
    }
    // Paused: the second callback sees everything buffered so far.
    if size != 13 {
        fail(format!("paused, the body has 13 bytes buffered, the callback said {size}"));
    }
    bytes("everything buffered", get_buffer(REQUEST_BODY, 0, 100), b"<HELLO> world");
    status("replace it all", set_buffer(REQUEST_BODY, 0, 100, b"replaced"), OK);
    CONTINUE
}

/// `proxy_on_response_trailers`.
pub fn response_trailers(scenario: &str, _context: u32, num_trailers: usize) -> u32 {
    if scenario == "trailers" {
        if num_trailers != 1 {
            fail(format!("expected 1 response trailer, got {num_trailers}"));
        }
        bytes("get a response trailer", map_value(RESPONSE_TRAILERS, "grpc-status"), b"0");
        status("replace it", replace_map_value(RESPONSE_TRAILERS, "grpc-status", "1"), OK);
        value("the trailers' size", map_size(RESPONSE_TRAILERS), encode_map(&[("grpc-status", "1")]).len());
    }
    CONTINUE
}

/// `/deny`: a local reply (after a malformed one is refused); `/late`: continue, then try one
/// in the response body.
fn local_response() -> u32 {
    if request_header(":path") == "/late" {
        return CONTINUE;
    }
    let headers = encode_map(&[("x-reason", "test")]);
    status("a local reply with malformed headers", send_local_response(403, "bad", "", &[5, 0, 0, 0], -1), PARSE_FAILURE);
    status("a local reply", send_local_response(403, "guest-denied", "denied", &headers, 14), OK);
    PAUSE
}

/// Callout headers.
fn callout_headers() -> Vec<u8> {
    encode_map(&[(":method", "GET"), (":path", "/check"), (":authority", "auth")])
}

/// `/`: refused callouts, then one that is answered; `/fail`: one that fails; `/gone`: one
/// whose stream ends first.
fn http_call(context: u32) -> u32 {
    let path = request_header(":path");
    if path == "/" {
        let no_path = encode_map(&[(":method", "GET"), (":authority", "auth")]);
        status("a callout without :path", http_call_status("auth", &no_path), BAD_ARGUMENT);
        status("a callout to an unknown upstream", http_call_status("elsewhere", &callout_headers()), BAD_ARGUMENT);
        status("a callout with malformed headers", http_call_status("auth", &[9, 0, 0, 0]), PARSE_FAILURE);
        status("get_status outside a callout answer", get_status().0, NOT_FOUND);
    }
    let trailers = encode_map(&[("t", "1")]);
    let (s, id) = crate::host::http_call("auth", &callout_headers(), "q", &trailers, 1500);
    status("a callout", s, OK);
    state(|st| {
        st.calls.push(id);
        st.waiting = context;
    });
    PAUSE
}

fn http_call_status(upstream: &str, headers: &[u8]) -> u32 {
    crate::host::http_call(upstream, headers, "", &[], 1000).0
}

/// `proxy_on_http_call_response`.
pub fn http_call_response(scenario: &str, context: u32, call_id: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
    if scenario == "hidden-headers" {
        return crate::security::hidden_headers_answer(num_headers);
    }
    if scenario != "http-call" {
        return;
    }
    if !state(|s| s.calls.contains(&call_id)) {
        fail(format!("an answer to call {call_id}, which this plugin did not make"));
    }
    if state(|s| s.waiting) != context {
        fail("the answer came to another context than the one that called".into());
    }
    if num_headers == 0 {
        // A failed call: no headers; the status is BROKEN_CONNECTION (11, as Envoy) and the
        // message says why.
        value("the failed call's status", get_status(), (11, b"timeout".to_vec()));
        bytes("a failed call has an empty body", get_buffer(CALL_RESPONSE_BODY, 0, 10), b"");
        let none = encode_map(&[]);
        status("reply 503", send_local_response(503, "callout-failed", "", &none, -1), OK);
        return;
    }
    value("the call's status", get_status(), (200, Vec::new()));
    if (num_headers, body_size, num_trailers) != (2, 7, 1) {
        fail(format!("expected 2 headers, 7 body bytes, 1 trailer; got {num_headers}, {body_size}, {num_trailers}"));
    }
    bytes("the answer's :status", map_value(CALL_RESPONSE_HEADERS, ":status"), b"200");
    bytes(
        "the answer's headers",
        map_pairs(CALL_RESPONSE_HEADERS),
        &encode_map(&[(":status", "200"), ("x-r", "1")]),
    );
    bytes("the answer's body", get_buffer(CALL_RESPONSE_BODY, 0, body_size), b"allowed");
    bytes("the answer's trailer", map_value(CALL_RESPONSE_TRAILERS, "tr"), b"x");
    status("set the read-only answer body", set_buffer(CALL_RESPONSE_BODY, 0, 0, b"x"), BAD_ARGUMENT);
    status("the request body in a callout answer", get_buffer(REQUEST_BODY, 0, 1).0, NOT_FOUND);
    bytes("the stream's request headers", map_value(REQUEST_HEADERS, ":path"), b"/");
    status("resume the request", continue_stream(HTTP_REQUEST), OK);
}

/// gRPC: refused calls, then a unary call and a stream that the steps answer.
fn grpc_calls(context: u32) -> u32 {
    let metadata = encode_map(&[("k", "v")]);
    status("a call to an unknown upstream", grpc_call("nowhere", "svc.Echo", "Say", &metadata, "ping", 500).0, PARSE_FAILURE);
    status("a call with malformed metadata", grpc_call("grpc", "svc.Echo", "Say", &[7, 0, 0, 0], "ping", 500).0, PARSE_FAILURE);
    let (s, call) = grpc_call("grpc", "svc.Echo", "Say", &metadata, "ping", 500);
    status("a unary call", s, OK);
    let (s, stream) = grpc_stream("grpc", "svc.Echo", "Chat", &encode_map(&[]));
    status("a stream", s, OK);
    status("send on the stream", grpc_send(stream, "m1", false), OK);
    status("send on a unary call", grpc_send(call, "m", false), BAD_ARGUMENT);
    status("send on an unknown id", grpc_send(999, "m", false), NOT_FOUND);
    status("cancel an unknown id", grpc_cancel(999), NOT_FOUND);
    status("close an unknown id", grpc_close(999), NOT_FOUND);
    let (s, cancelled) = grpc_call("grpc", "svc.Echo", "Slow", &metadata, "", 100);
    status("a third call", s, OK);
    status("cancel it", grpc_cancel(cancelled), OK);
    status("cancel it again", grpc_cancel(cancelled), NOT_FOUND);
    state(|st| {
        st.calls = vec![call, stream];
        st.waiting = context;
    });
    PAUSE
}

/// gRPC initial or trailing metadata.
pub fn grpc_metadata(scenario: &str, _context: u32, call_id: u32, map: u32, num_elements: usize) {
    if scenario != "grpc" {
        return;
    }
    let (key, want) = if map == GRPC_INITIAL_METADATA { ("im", b"1") } else { ("tm", b"2") };
    if num_elements != 1 {
        fail(format!("expected 1 metadata element, got {num_elements}"));
    }
    bytes("a metadata value", map_value(map, key), want);
    let other = if map == GRPC_INITIAL_METADATA { GRPC_TRAILING_METADATA } else { GRPC_INITIAL_METADATA };
    status("the other metadata map", map_value(other, key).0, BAD_ARGUMENT);
    if !state(|s| s.calls.contains(&call_id)) {
        fail(format!("metadata for call {call_id}, which this plugin did not make"));
    }
}

/// A gRPC message.
pub fn grpc_receive(scenario: &str, _context: u32, call_id: u32, size: usize) {
    if scenario != "grpc" {
        return;
    }
    let (call, stream) = state(|s| (s.calls[0], s.calls[1]));
    if call_id == call {
        bytes("the message", get_buffer(GRPC_MESSAGE, 0, size), b"pong");
    } else if call_id == stream {
        bytes("the stream's message", get_buffer(GRPC_MESSAGE, 0, size), b"s1");
        status("send the last message", grpc_send(stream, "bye", true), OK);
        status("half-close the stream", grpc_close(stream), OK);
    } else {
        fail(format!("a message for call {call_id}, which this plugin did not make"));
    }
}

/// A gRPC call or stream finished.
pub fn grpc_closed(scenario: &str, _context: u32, call_id: u32, status_code: u32) {
    if scenario != "grpc" {
        return;
    }
    let (call, stream, waiting) = state(|s| (s.calls[0], s.calls[1], s.waiting));
    if call_id == call {
        value("the call's status", get_status(), (0, b"done".to_vec()));
        if status_code != 0 {
            fail(format!("the call closed with {status_code}, expected 0"));
        }
    } else if call_id == stream {
        value("the stream's status", get_status(), (1, b"cancelled".to_vec()));
        status("act on the stream that made the calls", set_effective_context(waiting), OK);
        status("resume the request", continue_stream(HTTP_REQUEST), OK);
    }
}

fn shared_data() {
    status("get a missing key", get_shared_data("k").0, NOT_FOUND);
    status("set it (cas 0)", set_shared_data("k", "v1", 0), OK);
    let (s, v, cas1) = get_shared_data("k");
    bytes("get it", (s, v), b"v1");
    if cas1 == 0 {
        fail("a stored value has cas 0".into());
    }
    status("set it with its cas", set_shared_data("k", "v2", cas1), OK);
    status("set it with a stale cas", set_shared_data("k", "v3", cas1), CAS_MISMATCH);
    let (s, v, cas2) = get_shared_data("k");
    bytes("the value the stale write did not change", (s, v), b"v2");
    if cas2 == cas1 {
        fail("a write did not change the cas".into());
    }
    status("set it empty (cas 0 always writes)", set_shared_data("k", "", 0), OK);
    bytes("get the empty value", { let (s, v, _) = get_shared_data("k"); (s, v) }, b"");
    status("set a new key with a cas", set_shared_data("new", "x", 12345), OK);
}

fn queue() {
    status("resolve a queue before it exists", resolve_queue("", "q").0, NOT_FOUND);
    let (s, id) = register_queue("q");
    status("register", s, OK);
    value("register again: the same queue", register_queue("q"), id);
    value("resolve it (this VM's vm_id is empty)", resolve_queue("", "q"), id);
    status("dequeue from the empty queue", dequeue(id).0, EMPTY);
    status("enqueue on an unknown queue", enqueue(999, "x"), NOT_FOUND);
    status("dequeue from an unknown queue", dequeue(999).0, NOT_FOUND);
    status("enqueue one", enqueue(id, "one"), OK);
    status("enqueue two", enqueue(id, "two"), OK);
    state(|st| st.queue = id);
}

/// `proxy_on_queue_ready`.
pub fn queue_ready(scenario: &str, _root: u32, queue_id: u32) {
    let id = state(|s| s.queue);
    if queue_id != id {
        fail(format!("queue_ready for queue {queue_id}, expected {id}"));
    }
    match scenario {
        "queue" => {
            let (s, item) = dequeue(id);
            status("dequeue", s, OK);
            if item != b"one" && item != b"two" {
                fail(format!("dequeued {:?}", String::from_utf8_lossy(&item)));
            }
        }
        "queue-consumer" => {
            let (s, item) = dequeue(id);
            status("dequeue a job", s, OK);
            log(INFO, &format!("consumer got {}", String::from_utf8_lossy(&item)));
            status("the queue is empty again", dequeue(id).0, EMPTY);
        }
        _ => {}
    }
}

fn metrics() {
    let (s, counter) = define_metric(COUNTER, "requests");
    status("define a counter", s, OK);
    let (s, gauge) = define_metric(GAUGE, "active");
    status("define a gauge", s, OK);
    let (s, histogram) = define_metric(HISTOGRAM, "sizes");
    status("define a histogram", s, OK);
    status("define metric type 9", define_metric(9, "bad").0, BAD_ARGUMENT);
    value("define the counter again: the same metric", define_metric(COUNTER, "requests"), counter);
    status("increment the counter", increment_metric(counter, 5), OK);
    status("increment the counter by 0", increment_metric(counter, 0), BAD_ARGUMENT);
    status("decrement the counter", increment_metric(counter, -1), BAD_ARGUMENT);
    value("the counter", get_metric(counter), 5);
    status("record onto the counter (adds)", record_metric(counter, 2), OK);
    value("the counter after record", get_metric(counter), 7);
    status("raise the gauge", increment_metric(gauge, 3), OK);
    status("lower the gauge", increment_metric(gauge, -5), OK);
    value("the gauge, as u64 bits", get_metric(gauge), (-2i64) as u64);
    status("set the gauge", record_metric(gauge, 10), OK);
    value("the gauge after record", get_metric(gauge), 10);
    status("record a sample", record_metric(histogram, 42), OK);
    status("record another", record_metric(histogram, 7), OK);
    status("increment the histogram", increment_metric(histogram, 1), BAD_ARGUMENT);
    status("get the histogram", get_metric(histogram).0, BAD_ARGUMENT);
    status("get an unknown metric", get_metric(12345).0, NOT_FOUND);
    status("increment an unknown metric", increment_metric(12345, 1), NOT_FOUND);
    status("record an unknown metric", record_metric(12345, 1), NOT_FOUND);
}

fn properties() {
    bytes("plugin_name", get_property(b"plugin_name"), b"props");
    bytes("plugin_root_id", get_property(b"plugin_root_id"), b"");
    bytes("plugin_vm_id", get_property(b"plugin_vm_id"), b"vm-p");
    bytes("request.path", get_property(b"request\0path"), b"/p");
    bytes("source.port (8 bytes, little-endian)", get_property(b"source\0port"), &8080u64.to_le_bytes());
    status("an unknown property", get_property(b"no\0such").0, NOT_FOUND);
    status("set a property", set_property(b"my\0prop", b"v"), OK);
    bytes("read it back", get_property(b"my\0prop"), b"v");
}

fn effective_context(context: u32) {
    let root = state(|s| s.root);
    status("act on an unknown context", set_effective_context(999), BAD_ARGUMENT);
    status("act on the root context", set_effective_context(root), OK);
    status("request headers from the root context", map_value(REQUEST_HEADERS, ":path").0, BAD_ARGUMENT);
    status("act on the stream again", set_effective_context(context), OK);
    bytes("request headers from the stream", map_value(REQUEST_HEADERS, ":path"), b"/");
    status("proxy_done with nothing pending", done(), NOT_FOUND);
}

fn foreign() {
    bytes("call echo", call_foreign("echo", b"abc"), b"abc");
    status("call an unknown function", call_foreign("no-such-function", b"").0, NOT_FOUND);
    status("foreign arguments outside proxy_on_foreign_function", get_buffer(FOREIGN_ARGUMENTS, 0, 1).0, NOT_FOUND);
}

/// `proxy_on_foreign_function`.
pub fn foreign_function(scenario: &str, _root: u32, function_id: u32, size: usize) {
    if scenario != "foreign" {
        return;
    }
    if function_id != 7 {
        fail(format!("function id {function_id}, expected 7"));
    }
    bytes("the arguments", get_buffer(FOREIGN_ARGUMENTS, 0, size), b"xyz");
    status("set the read-only arguments", set_buffer(FOREIGN_ARGUMENTS, 0, 0, b"x"), BAD_ARGUMENT);
}

/// `proxy_on_tick`.
pub fn tick(scenario: &str, _root: u32) {
    let ticks = state(|s| {
        s.ticks += 1;
        s.ticks
    });
    match scenario {
        "time" => {
            value("the time in a tick", current_time(), 1_704_067_200_000_000_000);
            if ticks == 2 {
                status("stop the ticks", set_tick_period(0), OK);
            }
        }
        "stream-control" => {
            let stream = state(|s| s.waiting);
            status("resume from the root context", continue_stream(HTTP_REQUEST), BAD_ARGUMENT);
            status("act on the paused stream", set_effective_context(stream), OK);
            status("stream type 99", continue_stream(99), BAD_ARGUMENT);
            status("a TCP direction on an HTTP stream", continue_stream(DOWNSTREAM), BAD_ARGUMENT);
            status("close a TCP direction on an HTTP stream", close_stream(UPSTREAM), BAD_ARGUMENT);
            status("close type 99", close_stream(99), BAD_ARGUMENT);
            status("resume the request", continue_stream(HTTP_REQUEST), OK);
            status("close the response", close_stream(HTTP_RESPONSE), OK);
            status("stop the ticks", set_tick_period(0), OK);
        }
        "deferred-done" => {
            status("proxy_done: the deferred work is finished", done(), OK);
            status("stop the ticks", set_tick_period(0), OK);
        }
        _ => {}
    }
}

/// `proxy_on_downstream_data` and `proxy_on_upstream_data`.
pub fn tcp_data(scenario: &str, _context: u32, buffer: u32, size: usize, end_of_stream: bool) -> u32 {
    if scenario != "tcp" {
        return CONTINUE;
    }
    let other = if buffer == DOWNSTREAM_DATA { UPSTREAM_DATA } else { DOWNSTREAM_DATA };
    status("the other direction's data", get_buffer(other, 0, 1).0, NOT_FOUND);
    status("HTTP headers on a TCP connection", map_value(REQUEST_HEADERS, ":path").0, BAD_ARGUMENT);
    status("an HTTP direction on a TCP connection", continue_stream(HTTP_REQUEST), BAD_ARGUMENT);
    status("the HTTP request body on a TCP connection", get_buffer(REQUEST_BODY, 0, 1).0, NOT_FOUND);
    if buffer == DOWNSTREAM_DATA {
        if !end_of_stream && size == 4 {
            bytes("the client's bytes", get_buffer(DOWNSTREAM_DATA, 0, size), b"ping");
            status("prepend", set_buffer(DOWNSTREAM_DATA, 0, 0, b">"), OK);
            return PAUSE;
        }
        // Paused, the second chunk comes with the first still buffered.
        bytes("everything buffered", get_buffer(DOWNSTREAM_DATA, 0, size), b">ping!");
        status("resume the client's direction", continue_stream(DOWNSTREAM), OK);
        return CONTINUE;
    }
    bytes("the server's bytes", get_buffer(UPSTREAM_DATA, 0, size), b"pong");
    status("replace them", set_buffer(UPSTREAM_DATA, 0, size, b"PONG"), OK);
    status("close the server's direction", close_stream(UPSTREAM), OK);
    CONTINUE
}

/// `proxy_on_log`: every map that arrived is readable; writes are refused.
pub fn on_log(scenario: &str, _context: u32) {
    if scenario != "headers" {
        return;
    }
    bytes("request headers in proxy_on_log", map_value(REQUEST_HEADERS, "x-a"), b"3");
    bytes("response headers in proxy_on_log", map_value(RESPONSE_HEADERS, ":status"), b"201");
    status("write in proxy_on_log", add_map_value(REQUEST_HEADERS, "x-late", "1"), BAD_ARGUMENT);
    status("request trailers that never came", map_value(REQUEST_TRAILERS, "x").0, NOT_FOUND);
}
