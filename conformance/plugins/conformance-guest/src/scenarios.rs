//! The scenarios, by callback. Each name below is a plugin configuration; the expected
//! statuses and values come from the ABI reference (`shared/abi-reference.md`).
//!
//! - `canary`: adds `x-canary: ok` to the request (the runner's check that a host still works).
//! - `lifecycle`: no host calls; shows the callbacks and their arguments.
//! - `log`, `time`, `configuration`: logging and levels; the clock and ticks; the
//!   configuration buffers in `proxy_on_vm_start` and `proxy_on_configure`.
//! - `buffers`, `headers`, `trailers`: bodies, header maps, trailers; `header-values`: several
//!   values under one key, pseudo-header order, read-only callout maps.
//! - `stream-control`, `local-response`: resuming, closing, replying locally.
//! - `http-call`, `grpc`: callouts and their answers, which come to the root context;
//!   `http-call-checks`: `proxy_http_call`'s refusals and ids; `grpc-unary`: a unary gRPC
//!   call that fails; `get-status`: `proxy_get_status` during and after callout callbacks.
//! - `shared-data`, `queue`, `queue-producer` / `queue-consumer`, `metrics`.
//! - `properties`, `context`, `deferred-done`, `foreign`, `tcp`; `misc`: names as bytes,
//!   properties on a root context, the empty property path, effective context 0, a foreign
//!   function's unwanted result.
//! - `actions`: the raw values a stream callback may answer, picked by the request's `:path`
//!   (`/h2` headers answer 2, `/b3` bodies answer 3, `/t5` trailers 5, `/reply` a local reply
//!   with CONTINUE, `/stop-all` headers 1 and a resume in the next tick).
//! - `availability`: when each part of a stream is the plugin's (held from its callback until
//!   it continues or the plugin resumes; the access log's maps; none in done and delete).
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
    // Past the end: OK with nothing (exports.cc get_buffer_bytes: "don't overread").
    bytes("VM configuration from past its end", get_buffer(VM_CONFIGURATION, size + 1, 1), b"");
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
            // Envoy's getBuffer answers the VM configuration in every callback.
            bytes("VM configuration in proxy_on_configure", get_buffer(VM_CONFIGURATION, 0, 2), b"vm");
        }
        "time" | "stream-control" | "deferred-done" | "get-status" | "availability" | "actions" => {
            status("set the tick period", set_tick_period(10), OK);
        }
        "queue-consumer" => {
            let (s, id) = register_queue("jobs");
            status("register the consumer's queue", s, OK);
            state(|st| st.queue = id);
        }
        "misc" => misc_configure(),
        "trap-on-restart" => trap_on_restart("configure"),
        _ => {}
    }
    true
}

/// `misc` in `proxy_on_configure` (a root context, no stream).
fn misc_configure() {
    // Envoy's setProperty needs a stream's info: NOT_FOUND on a root context.
    status("set a property on the root context", set_property(b"x", b"1"), NOT_FOUND);
    // An empty path names nothing Envoy can serialize.
    status("get the empty property path", get_property(b"").0, SERIALIZATION_FAILURE);
    // Names are bytes: a queue, a metric named "\xff"; a foreign function so named is none.
    let (s, queue) = register_queue([0xff]);
    status("register a queue named \\xff", s, OK);
    value("resolve it", resolve_queue("", [0xff]), queue);
    status("define a counter named \\xff", define_metric(COUNTER, [0xff]).0, OK);
    status("call a foreign function named \\xff", call_foreign([0xff], b"").0, NOT_FOUND);
    // A results pointer of 0: the result is not wanted, nothing is allocated.
    status("call echo without wanting the result", call_foreign_unwanted("echo", b"x"), OK);
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
            status("set the plugin configuration in a stream", set_buffer(PLUGIN_CONFIGURATION, 0, 0, b"x"), NOT_FOUND);
            bytes("VM configuration in a stream", get_buffer(VM_CONFIGURATION, 0, 2), b"vm");
        }
        "headers" => headers(num_headers),
        "header-values" => return header_values(context),
        "availability" => state(|s| s.waiting = context),
        "actions" => {
            let path = request_header(":path");
            state(|s| s.path = path.clone());
            if path == "/stop-all" {
                state(|s| s.waiting = context);
            }
            if path == "/reply" {
                let none = encode_map(&[]);
                status("a local reply, then CONTINUE", send_local_response(403, "stop", "", &none, -1), OK);
                return CONTINUE;
            }
            return actions_answer("headers");
        }
        "stream-control" => {
            state(|s| s.waiting = context);
            return PAUSE;
        }
        "local-response" => return local_response(),
        "http-call" => return http_call(context),
        "http-call-checks" => http_call_checks(),
        "grpc" => return grpc_calls(context),
        "grpc-unary" => return grpc_unary(context),
        "get-status" => return get_status_calls(context),
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
        "misc" => misc_stream(context),
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
    // Envoy answers the first value (Context::getHeaderMapValue, entry[0]).
    bytes("get x-multi (the first of two values)", map_value(REQUEST_HEADERS, "x-multi"), b"a");
    status("get a missing header", map_value(REQUEST_HEADERS, "x-missing").0, NOT_FOUND);
    status("get from map type 99", map_value(99, "x-a").0, BAD_ARGUMENT);
    status("get a response header during the request", map_value(RESPONSE_HEADERS, ":status").0, BAD_ARGUMENT);
    status("get a request trailer before any", map_value(REQUEST_TRAILERS, "x").0, BAD_ARGUMENT);
    let pairs = encode_map(&[(":path", "/a"), ("x-a", "1"), ("x-multi", "a"), ("x-multi", "b")]);
    // Envoy's HeaderMapImpl::byteSize: key and value lengths added up, 5+2 + 3+1 + 7+1 + 7+1.
    value("the map's size", map_size(REQUEST_HEADERS), 27);
    bytes("the map's pairs", map_pairs(REQUEST_HEADERS), &pairs);
    status("the size of map type 99", map_size(99).0, BAD_ARGUMENT);
    status("add x-added", add_map_value(REQUEST_HEADERS, "x-added", "1"), OK);
    status("add a second x-a", add_map_value(REQUEST_HEADERS, "x-a", "2"), OK);
    bytes("x-a keeps its first value", map_value(REQUEST_HEADERS, "x-a"), b"1");
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

/// `header-values`, request headers: a `:`-key added after regular headers goes in front (Envoy
/// keeps pseudo-headers first), then a callout whose answer's maps are read-only.
fn header_values(context: u32) -> u32 {
    status("add a pseudo-header", add_map_value(REQUEST_HEADERS, ":x", "1"), OK);
    bytes(
        "the pseudo-header sits with the others",
        map_pairs(REQUEST_HEADERS),
        &encode_map(&[(":path", "/"), (":x", "1"), ("x-a", "1")]),
    );
    let (s, id) = crate::host::http_call("auth", &callout_headers(), "", &[], 1000);
    status("a callout", s, OK);
    state(|st| {
        st.calls.push(id);
        st.waiting = context;
    });
    PAUSE
}

/// `header-values`, the callout's answer: its maps read, but neither change nor have a size
/// (Envoy's `Context::getMap` has no callout or gRPC map).
fn header_values_answer() {
    bytes("the answer's :status", map_value(CALL_RESPONSE_HEADERS, ":status"), b"200");
    status("add to the answer's headers", add_map_value(CALL_RESPONSE_HEADERS, "x", "1"), BAD_ARGUMENT);
    status("replace in the answer's headers", replace_map_value(CALL_RESPONSE_HEADERS, ":status", "1"), BAD_ARGUMENT);
    status("remove from the answer's trailers", remove_map_value(CALL_RESPONSE_TRAILERS, "t"), BAD_ARGUMENT);
    status("set the answer's headers", set_map_pairs(CALL_RESPONSE_HEADERS, &encode_map(&[])), BAD_ARGUMENT);
    status("the size of the answer's headers", map_size(CALL_RESPONSE_HEADERS).0, BAD_ARGUMENT);
    bytes("the answer's :status, unchanged", map_value(CALL_RESPONSE_HEADERS, ":status"), b"200");
    let stream = state(|s| s.waiting);
    status("act on the stream that called", set_effective_context(stream), OK);
    status("resume the request", continue_stream(HTTP_REQUEST), OK);
}

/// `proxy_on_response_headers`.
pub fn response_headers(scenario: &str, _context: u32, _num_headers: usize, _end_of_stream: bool) -> u32 {
    if scenario == "restricted" {
        crate::security::restricted_response_headers();
    }
    if scenario == "hidden-headers" {
        crate::security::hidden_response_headers(_num_headers);
    }
    if scenario == "availability" {
        status("request headers in response headers", map_value(REQUEST_HEADERS, ":path").0, BAD_ARGUMENT);
        bytes("response headers in their callback", map_value(RESPONSE_HEADERS, ":status"), b"200");
        return PAUSE;
    }
    if scenario == "header-values" {
        // Two set-cookie values: the first comes back whole (joining them would corrupt it).
        bytes("get set-cookie", map_value(RESPONSE_HEADERS, "set-cookie"), b"a=1, Path=/");
        bytes(
            "both set-cookie values in the pairs",
            map_pairs(RESPONSE_HEADERS),
            &encode_map(&[(":status", "200"), ("set-cookie", "a=1, Path=/"), ("set-cookie", "b=2"), ("x-r", "1")]),
        );
        status("replace set-cookie", replace_map_value(RESPONSE_HEADERS, "set-cookie", "c=3"), OK);
        bytes(
            "one set-cookie, moved to the end",
            map_pairs(RESPONSE_HEADERS),
            &encode_map(&[(":status", "200"), ("x-r", "1"), ("set-cookie", "c=3")]),
        );
    }
    if scenario == "headers" {
        // A malformed or oversize map reads as empty (PairsUtil::toPairs) and empties the map.
        status("set a malformed map", set_map_pairs(RESPONSE_HEADERS, &[5, 0, 0, 0]), OK);
        bytes("the map emptied by the malformed set", map_pairs(RESPONSE_HEADERS), b"");
        let many: Vec<(&str, &str)> = vec![("k", "v"); 1025];
        status("set 1025 pairs (over the limit)", set_map_pairs(RESPONSE_HEADERS, &encode_map(&many)), OK);
        bytes("the map emptied by the oversize set", map_pairs(RESPONSE_HEADERS), b"");
        let pairs = encode_map(&[(":status", "201"), ("x-set", "1")]);
        status("set map type 99", set_map_pairs(99, &pairs), BAD_ARGUMENT);
        status("set the response headers", set_map_pairs(RESPONSE_HEADERS, &pairs), OK);
        bytes("the new :status", map_value(RESPONSE_HEADERS, ":status"), b"201");
        // The request headers callback continued: Envoy let go of them (decodeHeaders).
        status("request headers are gone after CONTINUE", map_value(REQUEST_HEADERS, "x-a").0, BAD_ARGUMENT);
        // getHeaderMapPairs of a map that is not there: OK, nothing.
        bytes("response trailers during response headers", map_pairs(RESPONSE_TRAILERS), b"");
    }
    CONTINUE
}

/// `proxy_on_request_body` and `proxy_on_response_body`.
pub fn body(scenario: &str, _context: u32, buffer: u32, size: usize, end_of_stream: bool) -> u32 {
    match (scenario, buffer) {
        ("buffers", REQUEST_BODY) => return request_body(size, end_of_stream),
        ("availability", REQUEST_BODY) => {
            // The request headers callback continued: they are gone; pairs are OK and empty.
            status("request headers in the body callback", map_value(REQUEST_HEADERS, ":path").0, BAD_ARGUMENT);
            bytes("request header pairs in the body callback", map_pairs(REQUEST_HEADERS), b"");
            // Trailers that have not arrived are not created by a read.
            status("request trailers before they arrive", map_value(REQUEST_TRAILERS, "x").0, BAD_ARGUMENT);
        }
        ("actions", REQUEST_BODY) => {
            log(INFO, &format!("body callback: {size} bytes, end_of_stream {end_of_stream}"));
            return actions_answer("body");
        }
        ("availability", RESPONSE_BODY) => {
            bytes("the response body in its callback", get_buffer(RESPONSE_BODY, 0, 10), b"r");
        }
        ("buffers", RESPONSE_BODY) if end_of_stream => {
            status("append to the response body", set_buffer(RESPONSE_BODY, size, 0, b"!"), OK);
        }
        ("trailers", REQUEST_BODY) if end_of_stream => {
            status("add a trailer in the last body callback", add_map_value(REQUEST_TRAILERS, "x-t", "1"), OK);
        }
        ("local-response", RESPONSE_BODY) => {
            // Envoy answers OK and resets the stream, whose response already started.
            let none = encode_map(&[]);
            status("a local reply after the response started", send_local_response(500, "late", "", &none, -1), OK);
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
        // Past the end: OK with nothing, as the C++ host answers (the Rust SDK panics on 2).
        bytes("from past the end", get_buffer(REQUEST_BODY, 6, 1), b"");
        bytes("from far past the end, nothing asked", get_buffer(REQUEST_BODY, 100, 0), b"");
        status("buffer type 99", get_buffer(99, 0, 1).0, BAD_ARGUMENT);
        status("the status of buffer type 99", buffer_status(99).0, BAD_ARGUMENT);
        // The response body exists but holds nothing during the request (Envoy's getBuffer).
        bytes("the response body during the request", get_buffer(RESPONSE_BODY, 0, 1), b"");
        value("the response body's status during the request", buffer_status(RESPONSE_BODY), (0, 0));
        status("a callout answer outside its callback", get_buffer(CALL_RESPONSE_BODY, 0, 1).0, NOT_FOUND);
        status("prepend", set_buffer(REQUEST_BODY, 0, 0, b"<"), OK);
        // The Go SDK appends with start = MaxInt32 (appendToBuffer).
        status("append (start past the end)", set_buffer(REQUEST_BODY, 0x7fff_ffff, 0, b">"), OK);
        // Envoy's Buffer::copyFrom refuses a write in the middle.
        status("replace in the middle", set_buffer(REQUEST_BODY, 1, 5, b"HELLO"), BAD_ARGUMENT);
        bytes("the edited chunk", get_buffer(REQUEST_BODY, 0, 100), b"<hello>");
        status("set buffer type 99", set_buffer(99, 0, 0, b"x"), BAD_ARGUMENT);
        status("set the response body during the request", set_buffer(RESPONSE_BODY, 0, 0, b"x"), BAD_ARGUMENT);
        return PAUSE;
    }
    // Paused: the second callback sees everything buffered so far.
    if size != 13 {
        fail(format!("paused, the body has 13 bytes buffered, the callback said {size}"));
    }
    bytes("everything buffered", get_buffer(REQUEST_BODY, 0, 100), b"<hello> world");
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
        // Envoy's byteSize: "grpc-status" and "1".
        value("the trailers' size", map_size(RESPONSE_TRAILERS), 12);
    }
    CONTINUE
}

/// `/deny`: a local reply; `/malformed`: one with malformed headers, which go as none;
/// `/late`: continue, then try one in the response body.
fn local_response() -> u32 {
    match request_header(":path").as_str() {
        "/late" => CONTINUE,
        "/malformed" => {
            status("a local reply with malformed headers", send_local_response(403, "bad", "", &[5, 0, 0, 0], -1), OK);
            PAUSE
        }
        "/details" => {
            // White space in the details becomes `_`; a gRPC status outside 0..=16 is none;
            // a second reply does nothing (the first wins).
            let none = encode_map(&[]);
            status("a local reply", send_local_response(401, "a b\tc\nd", "", &none, 99), OK);
            status("a second local reply", send_local_response(402, "second", "", &none, -1), OK);
            CONTINUE
        }
        _ => {
            let headers = encode_map(&[("x-reason", "test")]);
            status("a local reply", send_local_response(403, "guest-denied", "denied", &headers, 14), OK);
            PAUSE
        }
    }
}

/// Callout headers.
fn callout_headers() -> Vec<u8> {
    encode_map(&[(":method", "GET"), (":path", "/check"), (":authority", "auth")])
}

/// `/`: refused callouts, then one that is answered; `/fail`: one that fails (a reset);
/// `/timeout`: one that times out (the router's 504); `/gone`: one whose stream ends first.
/// Each call is remembered with its caller, as the Go SDK remembers it on the root context.
fn http_call(context: u32) -> u32 {
    let path = request_header(":path");
    if path == "/" {
        let no_path = encode_map(&[(":method", "GET"), (":authority", "auth")]);
        status("a callout without :path", http_call_status("auth", &no_path), BAD_ARGUMENT);
        status("a callout to an unknown upstream", http_call_status("elsewhere", &callout_headers()), BAD_ARGUMENT);
        // Malformed headers read as none: no :path.
        status("a callout with malformed headers", http_call_status("auth", &[9, 0, 0, 0]), BAD_ARGUMENT);
        // Always OK: the root's status, (0, "") at first.
        value("get_status outside a callout answer", get_status(), (0, Vec::new()));
    }
    let trailers = encode_map(&[("t", "1")]);
    let (s, id) = crate::host::http_call("auth", &callout_headers(), "q", &trailers, 1500);
    status("a callout", s, OK);
    state(|st| {
        st.calls.push(id);
        st.callers.push((id, context));
        st.waiting = context;
    });
    PAUSE
}

fn http_call_status(upstream: &str, headers: &[u8]) -> u32 {
    crate::host::http_call(upstream, headers, "", &[], 1000).0
}

/// `http-call-checks`: `proxy_http_call`'s checks in Envoy's order.
fn http_call_checks() {
    // A timeout of 2^31 ms or more is negative as a C int: BAD_ARGUMENT, checked before the
    // upstream. The id slot holds 0 after every refusal (Envoy writes 0 first).
    let (s, id) = crate::host::http_call_with_slot("elsewhere", &callout_headers(), "", &[], 0x8000_0000, u32::MAX);
    status("a timeout of 2^31 ms", s, BAD_ARGUMENT);
    value("the id slot after that refusal", (OK, id), 0);
    let (s, id) = crate::host::http_call_with_slot("elsewhere", &callout_headers(), "", &[], 1000, u32::MAX);
    status("an unknown upstream", s, BAD_ARGUMENT);
    value("the id slot after that refusal", (OK, id), 0);
    let no_authority = encode_map(&[(":method", "GET"), (":path", "/")]);
    status("a callout without :authority", http_call_status("auth", &no_authority), BAD_ARGUMENT);
    let no_method = encode_map(&[(":path", "/"), (":authority", "auth")]);
    status("a callout without :method", http_call_status("auth", &no_method), BAD_ARGUMENT);
    // Presence only: an empty :path passes; a timeout of 0 means none.
    let empty_path = encode_map(&[(":method", "GET"), (":path", ""), (":authority", "auth")]);
    let (s, first) = crate::host::http_call("auth", &empty_path, "", &[], 0);
    status("an empty :path, no timeout", s, OK);
    // Envoy's ids: HTTP calls 4, 8, 12, ... (low bits 0), one after the other.
    let (s, second) = crate::host::http_call("auth", &callout_headers(), "", &[], 0x7fff_ffff);
    status("a timeout of 2^31 - 1 ms", s, OK);
    if first & 3 != 0 || second != first.wrapping_add(4) {
        fail(format!("HTTP call ids {first} and {second}: expected low bits 0 and a step of 4"));
    }
}

/// `proxy_on_http_call_response`.
pub fn http_call_response(scenario: &str, context: u32, call_id: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
    if scenario == "hidden-headers" {
        return crate::security::hidden_headers_answer(num_headers);
    }
    if scenario == "header-values" {
        return header_values_answer();
    }
    if scenario == "get-status" {
        // A failed call: (11 BROKEN_CONNECTION, "reset") during the callback.
        value("the failed call's status", get_status(), (11, b"reset".to_vec()));
        return;
    }
    if scenario != "http-call" {
        return;
    }
    // As the Go SDK: the answer comes to the root context, which finds the caller by call id.
    if context != state(|s| s.root) {
        fail(format!("an HTTP call's answer came to context {context}, not the root context"));
        trap();
    }
    let Some(caller) = state(|s| s.callers.iter().find(|(id, _)| *id == call_id).map(|(_, c)| *c)) else {
        fail(format!("an answer to call {call_id}, which this plugin did not make"));
        return;
    };
    if state(|s| s.deleted.contains(&caller)) {
        // The caller is gone: nothing to do (the Go SDK drops the answer).
        log(INFO, &format!("call {call_id}: its stream {caller} is gone"));
        return;
    }
    if num_headers == 0 {
        // A failed call (a reset): no response exists, so no maps and no body; the root's
        // status is (11, "reset") during the callback.
        value("the failed call's status", get_status(), (11, b"reset".to_vec()));
        status("a failed call's :status", map_value(CALL_RESPONSE_HEADERS, ":status").0, BAD_ARGUMENT);
        bytes("a failed call's headers", map_pairs(CALL_RESPONSE_HEADERS), b"");
        status("a failed call's body", get_buffer(CALL_RESPONSE_BODY, 0, 10).0, NOT_FOUND);
        status("act on the caller", set_effective_context(caller), OK);
        let none = encode_map(&[]);
        status("reply 503", send_local_response(503, "callout-failed", "", &none, -1), OK);
        return;
    }
    if num_headers == 3 {
        // A timeout: the router's 504, an answer. The status code of the earlier failure stays
        // (Envoy's onHttpCallSuccess does not touch it); its message was cleared.
        value("the status after an earlier failure", get_status(), (11, Vec::new()));
        bytes("the router's :status", map_value(CALL_RESPONSE_HEADERS, ":status"), b"504");
        bytes("the router's body", get_buffer(CALL_RESPONSE_BODY, 0, body_size), b"upstream request timeout");
        status("act on the caller", set_effective_context(caller), OK);
        status("resume the request", continue_stream(HTTP_REQUEST), OK);
        return;
    }
    value("the status of a successful call", get_status(), (0, Vec::new()));
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
    status("request headers from the root context", map_value(REQUEST_HEADERS, ":path").0, BAD_ARGUMENT);
    status("act on the caller", set_effective_context(caller), OK);
    bytes("the request body in a callout answer", get_buffer(REQUEST_BODY, 0, 1), b"");
    bytes("the caller's request headers (still held)", map_value(REQUEST_HEADERS, ":path"), b"/");
    status("resume the request", continue_stream(HTTP_REQUEST), OK);
}

/// gRPC: refused calls, then a unary call and a stream that the steps answer. Ids follow
/// Envoy's scheme: gRPC calls 5, 9, ... (low bits 1), streams 6, 10, ... (low bits 2).
fn grpc_calls(context: u32) -> u32 {
    let metadata = encode_map(&[("k", "v")]);
    status("a call to an unknown upstream", grpc_call("nowhere", "svc.Echo", "Say", &metadata, "ping", 500).0, PARSE_FAILURE);
    let (s, call) = grpc_call("grpc", "svc.Echo", "Say", &metadata, "ping", 500);
    status("a unary call", s, OK);
    let (s, stream) = grpc_stream("grpc", "svc.Echo", "Chat", &encode_map(&[]));
    status("a stream", s, OK);
    if call & 3 != 1 || stream & 3 != 2 {
        fail(format!("a gRPC call id {call} (low bits not 1) or stream id {stream} (low bits not 2)"));
    }
    status("send on the stream", grpc_send(stream, "m1", false), OK);
    // Envoy's grpcSend, grpcCancel and grpcClose look at the id's type bits first.
    status("send on a unary call", grpc_send(call, "m", false), BAD_ARGUMENT);
    status("send on an unknown stream id", grpc_send(998, "m", false), NOT_FOUND);
    status("send on an id of no gRPC kind", grpc_send(999, "m", false), BAD_ARGUMENT);
    status("cancel an unknown call id", grpc_cancel(997), NOT_FOUND);
    status("cancel an unknown stream id", grpc_cancel(998), NOT_FOUND);
    status("cancel an id of no gRPC kind", grpc_cancel(999), BAD_ARGUMENT);
    status("close an unknown stream id", grpc_close(998), NOT_FOUND);
    status("close an HTTP call's id", grpc_close(4), BAD_ARGUMENT);
    let (s, cancelled) = grpc_call("grpc", "svc.Echo", "Slow", &metadata, "", 100);
    status("a third call", s, OK);
    status("cancel it", grpc_cancel(cancelled), OK);
    status("cancel it again", grpc_cancel(cancelled), NOT_FOUND);
    // Malformed metadata reads as none (PairsUtil::toPairs): the call goes without it.
    let (s, malformed) = grpc_call("grpc", "svc.Echo", "Say", &[7, 0, 0, 0], "ping", 500);
    status("a call with malformed metadata", s, OK);
    status("close that call (cancels it)", grpc_close(malformed), OK);
    status("close it again", grpc_close(malformed), NOT_FOUND);
    state(|st| {
        st.calls = vec![call, stream];
        st.waiting = context;
    });
    PAUSE
}

/// `grpc-unary`: a unary call that fails. It gets no metadata, only `proxy_on_grpc_close`.
fn grpc_unary(context: u32) -> u32 {
    // Envoy reads an empty upstream as an empty GrpcService, which makes no client.
    status("a call to an empty upstream", grpc_call("", "svc.Echo", "Say", &[], "", 0).0, BAD_ARGUMENT);
    let (s, call) = grpc_call("grpc", "svc.Echo", "Say", &[], "ping", 0);
    status("a unary call", s, OK);
    state(|st| {
        st.calls = vec![call];
        st.waiting = context;
    });
    PAUSE
}

/// A gRPC callback's context must be the root context, which made or owns the call (Envoy
/// calls back the root context; the Go SDK traps otherwise).
fn on_root(what: &str, context: u32) {
    if context != state(|s| s.root) {
        fail(format!("{what} came to context {context}, not the root context"));
        trap();
    }
}

/// gRPC initial or trailing metadata.
pub fn grpc_metadata(scenario: &str, context: u32, call_id: u32, map: u32, num_elements: usize) {
    if scenario == "grpc-unary" {
        fail(format!("metadata for unary call {call_id}"));
    }
    if scenario != "grpc" {
        return;
    }
    on_root("gRPC metadata", context);
    let (key, want) = if map == GRPC_INITIAL_METADATA { ("im", b"1") } else { ("tm", b"2") };
    if num_elements != 1 {
        fail(format!("expected 1 metadata element, got {num_elements}"));
    }
    bytes("a metadata value", map_value(map, key), want);
    let other = if map == GRPC_INITIAL_METADATA { GRPC_TRAILING_METADATA } else { GRPC_INITIAL_METADATA };
    status("the other metadata map", map_value(other, key).0, BAD_ARGUMENT);
    if state(|s| s.calls.get(1) != Some(&call_id)) {
        fail(format!("metadata for call {call_id}, which is not this plugin's stream"));
    }
}

/// A gRPC message.
pub fn grpc_receive(scenario: &str, context: u32, call_id: u32, size: usize) {
    if scenario == "grpc-unary" {
        fail(format!("a message for unary call {call_id}, which failed"));
    }
    if scenario != "grpc" {
        return;
    }
    on_root("a gRPC message", context);
    let (call, stream) = state(|s| (s.calls[0], s.calls[1]));
    if call_id == call {
        // A unary call's answer; it ends the call, no close follows (the host forgets it once
        // this callback returns). The status is untouched.
        bytes("the message", get_buffer(GRPC_MESSAGE, 0, size), b"pong");
        value("the status during a unary answer", get_status(), (0, Vec::new()));
    } else if call_id == stream {
        bytes("the stream's message", get_buffer(GRPC_MESSAGE, 0, size), b"s1");
        status("send the last message", grpc_send(stream, "bye", true), OK);
        status("half-close the stream", grpc_close(stream), OK);
    } else {
        fail(format!("a message for call {call_id}, which this plugin did not make"));
    }
}

/// A gRPC call or stream finished.
pub fn grpc_closed(scenario: &str, context: u32, call_id: u32, status_code: u32) {
    match scenario {
        "grpc" => {}
        "grpc-unary" => {
            on_root("a gRPC close", context);
            value("the failed call's status", get_status(), (14, b"unavailable".to_vec()));
            if status_code != 14 || state(|s| s.calls[0]) != call_id {
                fail(format!("call {call_id} closed with {status_code}, expected the unary call with 14"));
            }
            // Still known during its close callback (Envoy forgets it afterwards).
            status("cancel the failed call during its callback", grpc_cancel(call_id), OK);
            status("cancel it again", grpc_cancel(call_id), NOT_FOUND);
            status("act on the stream that made the call", set_effective_context(state(|s| s.waiting)), OK);
            status("resume the request", continue_stream(HTTP_REQUEST), OK);
            return;
        }
        "get-status" => {
            value("the failed call's status", get_status(), (14, b"unavailable".to_vec()));
            return;
        }
        _ => return,
    }
    on_root("a gRPC close", context);
    let (stream, waiting) = state(|s| (s.calls[1], s.waiting));
    if call_id != stream || status_code != 1 {
        fail(format!("call {call_id} closed with {status_code}, expected stream {stream} with 1"));
    }
    value("the stream's status", get_status(), (1, b"cancelled".to_vec()));
    // The unary call was answered earlier: forgotten since that callback returned.
    status("cancel the answered call", grpc_cancel(state(|s| s.calls[0])), NOT_FOUND);
    status("act on the stream that made the calls", set_effective_context(waiting), OK);
    status("resume the request", continue_stream(HTTP_REQUEST), OK);
}

/// `get-status`: `proxy_get_status` answers the root context's last callout status: (0, "")
/// at first; during a failed HTTP call's callback (11, "reset"), then (11, ""); during a gRPC
/// close its status and message, then the code with an empty message.
fn get_status_calls(context: u32) -> u32 {
    value("get_status before any callout", get_status(), (0, Vec::new()));
    let (s, _) = crate::host::http_call("auth", &callout_headers(), "", &[], 1000);
    status("a callout", s, OK);
    let (s, _) = grpc_call("grpc", "svc.Echo", "Say", &[], "", 0);
    status("a gRPC call", s, OK);
    state(|st| st.waiting = context);
    PAUSE
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
pub fn queue_ready(scenario: &str, root: u32, queue_id: u32) {
    on_root("queue_ready", root);
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
    // Envoy's ids: per VM, typed by the low two bits, a step of 4.
    if (counter & 3, gauge & 3, histogram & 3) != (0, 1, 2) {
        fail(format!("metric ids {counter}, {gauge}, {histogram}: expected low bits 0, 1, 2"));
    }
    // Defining a name again gives a new id for the same metric.
    let (s, again) = define_metric(COUNTER, "requests");
    status("define the counter again", s, OK);
    if again != counter.wrapping_add(4) {
        fail(format!("the second counter id is {again}, expected {}", counter.wrapping_add(4)));
    }
    status("increment the counter through the new id", increment_metric(again, 2), OK);
    value("the counter through the first id", get_metric(counter), 2);
    status("increment the counter", increment_metric(counter, 3), OK);
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
    // 12345 has a gauge's type bits: unknown, NOT_FOUND everywhere.
    status("get an unknown metric", get_metric(12345).0, NOT_FOUND);
    status("increment an unknown metric", increment_metric(12345, 1), NOT_FOUND);
    status("record an unknown metric", record_metric(12345, 1), NOT_FOUND);
    // A histogram's type bits (12346) and type 3 (12347): increment and get look at the type
    // first (BAD_ARGUMENT); record finds no such metric.
    for id in [12346, 12347] {
        status(&format!("increment {id}"), increment_metric(id, 1), BAD_ARGUMENT);
        status(&format!("get {id}"), get_metric(id).0, BAD_ARGUMENT);
        status(&format!("record {id}"), record_metric(id, 1), NOT_FOUND);
    }
}

fn properties() {
    bytes("plugin_name", get_property(b"plugin_name"), b"props");
    bytes("plugin_root_id", get_property(b"plugin_root_id"), b"");
    bytes("plugin_vm_id", get_property(b"plugin_vm_id"), b"vm-p");
    bytes("request.path", get_property(b"request\0path"), b"/p");
    bytes("source.port (8 bytes, little-endian)", get_property(b"source\0port"), &8080u64.to_le_bytes());
    status("an unknown property", get_property(b"no\0such").0, NOT_FOUND);
    // A single-segment path: Envoy stores the set under `wasm.<path>` and looks up the first
    // segment of a get, so only these read back there.
    status("set a property", set_property(b"my_prop", b"v"), OK);
    bytes("read it back", get_property(b"my_prop"), b"v");
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

/// `misc` in a stream's request headers.
fn misc_stream(context: u32) {
    // Envoy stores it, but reads answer the plugin's own value.
    status("set plugin_name on a stream", set_property(b"plugin_name", b"other"), OK);
    bytes("plugin_name after that", get_property(b"plugin_name"), b"misc");
    status("act on the root context", set_effective_context(state(|s| s.root)), OK);
    status("request headers from the root context", map_value(REQUEST_HEADERS, ":path").0, BAD_ARGUMENT);
    // 0 goes back to the callback's own context.
    status("effective context 0", set_effective_context(0), OK);
    bytes("request headers again", map_value(REQUEST_HEADERS, ":path"), b"/");
    let _ = context;
}

fn foreign() {
    bytes("call echo", call_foreign("echo", b"abc"), b"abc");
    status("call an unknown function", call_foreign("no-such-function", b"").0, NOT_FOUND);
    // Envoy hands back the context's scratch buffer; we give it empty.
    bytes("foreign arguments outside proxy_on_foreign_function", get_buffer(FOREIGN_ARGUMENTS, 0, 1), b"");
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

/// `proxy_on_done` and `proxy_on_delete` of a stream: no part of it is the plugin's any more.
pub fn stream_end(scenario: &str, what: &str) {
    if scenario == "availability" {
        status(&format!("request headers in {what}"), map_value(REQUEST_HEADERS, ":path").0, BAD_ARGUMENT);
        bytes(&format!("request header pairs in {what}"), map_pairs(REQUEST_HEADERS), b"");
    }
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
            // Envoy's continueStream and sendLocalResponse answer OK without a stream to act on.
            status("resume from the root context", continue_stream(HTTP_REQUEST), OK);
            let none = encode_map(&[]);
            status("a local reply from the root context", send_local_response(500, "root", "", &none, -1), OK);
            status("act on the paused stream", set_effective_context(stream), OK);
            status("stream type 99", continue_stream(99), BAD_ARGUMENT);
            status("a TCP direction on an HTTP stream", continue_stream(DOWNSTREAM), OK);
            status("resume the upstream side (never)", continue_stream(UPSTREAM), UNIMPLEMENTED);
            status("close a TCP direction on an HTTP stream", close_stream(UPSTREAM), OK);
            status("close type 99", close_stream(99), BAD_ARGUMENT);
            status("resume the request", continue_stream(HTTP_REQUEST), OK);
            status("close the response", close_stream(HTTP_RESPONSE), OK);
            status("stop the ticks", set_tick_period(0), OK);
        }
        "get-status" => {
            // After the failed HTTP call, then after the gRPC close: the code stays, the
            // message was cleared when the callback returned.
            if ticks == 1 {
                value("the status after a failed callout", get_status(), (11, Vec::new()));
            } else {
                value("the status after a gRPC close", get_status(), (14, Vec::new()));
                status("act on the paused stream", set_effective_context(state(|s| s.waiting)), OK);
                status("resume the request", continue_stream(HTTP_REQUEST), OK);
                status("stop the ticks", set_tick_period(0), OK);
            }
        }
        "deferred-done" => {
            status("proxy_done: the deferred work is finished", done(), OK);
            status("stop the ticks", set_tick_period(0), OK);
        }
        "actions" => {
            let stream = state(|s| s.waiting);
            if stream != 0 {
                status("act on the stopped stream", set_effective_context(stream), OK);
                status("resume the request", continue_stream(HTTP_REQUEST), OK);
                state(|s| s.waiting = 0);
            }
            status("stop the ticks", set_tick_period(0), OK);
        }
        "availability" => {
            let stream = state(|s| s.waiting);
            status("act on the paused stream", set_effective_context(stream), OK);
            bytes("held response headers", map_value(RESPONSE_HEADERS, ":status"), b"200");
            status("resume the response", continue_stream(HTTP_RESPONSE), OK);
            // Envoy's continueStream lets go of the request side only.
            bytes("response headers after the resume", map_value(RESPONSE_HEADERS, ":status"), b"200");
            bytes("the request body after the resume", get_buffer(REQUEST_BODY, 0, 1), b"");
            status("stop the ticks", set_tick_period(0), OK);
        }
        _ => {}
    }
}

/// `actions`: the raw value `callback` (`headers`, `body`, `trailers`) answers for the current
/// stream's `:path`: `/h<N>` headers answer N (`/hneg` -1), `/b<N>` bodies and `/t<N>` trailers
/// N, `/stop-all` headers 1; anything else 0.
pub fn actions_answer(callback: &str) -> u32 {
    let path = state(|s| s.path.clone());
    let prefix = match callback {
        "headers" => "/h",
        "body" => "/b",
        _ => "/t",
    };
    if callback == "headers" && path == "/stop-all" {
        return PAUSE;
    }
    if callback == "headers" && path == "/hneg" {
        return u32::MAX;
    }
    path.strip_prefix(prefix).and_then(|n| n.parse().ok()).unwrap_or(CONTINUE)
}

/// `proxy_on_downstream_data` and `proxy_on_upstream_data`.
pub fn tcp_data(scenario: &str, _context: u32, buffer: u32, size: usize, end_of_stream: bool) -> u32 {
    if scenario == "actions" {
        // Any non-zero value stops a TCP direction (the C++ host's onDownstreamData).
        return if buffer == DOWNSTREAM_DATA && size > 0 { 2 } else { CONTINUE };
    }
    if scenario != "tcp" {
        return CONTINUE;
    }
    let other = if buffer == DOWNSTREAM_DATA { UPSTREAM_DATA } else { DOWNSTREAM_DATA };
    // Not held now, so empty (the downstream chunk was continued before the upstream data).
    bytes("the other direction's data", get_buffer(other, 0, 1), b"");
    status("HTTP headers on a TCP connection", map_value(REQUEST_HEADERS, ":path").0, BAD_ARGUMENT);
    status("an HTTP direction on a TCP connection", continue_stream(HTTP_REQUEST), OK);
    status("resume the upstream side (never)", continue_stream(UPSTREAM), UNIMPLEMENTED);
    bytes("the HTTP request body on a TCP connection", get_buffer(REQUEST_BODY, 0, 1), b"");
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

/// `proxy_on_log`: the access log's maps (request headers, response headers and trailers that
/// arrived; never the request trailers) are readable; writes and sizes are refused.
pub fn on_log(scenario: &str, _context: u32) {
    if scenario == "availability" {
        bytes("request headers in proxy_on_log", map_value(REQUEST_HEADERS, ":path"), b"/");
        bytes("response headers in proxy_on_log", map_value(RESPONSE_HEADERS, ":status"), b"200");
        status("request trailers in proxy_on_log (they arrived)", map_value(REQUEST_TRAILERS, "rt").0, NOT_FOUND);
        status("the request headers' size in proxy_on_log", map_size(REQUEST_HEADERS).0, BAD_ARGUMENT);
        return;
    }
    if scenario != "headers" {
        return;
    }
    bytes("request headers in proxy_on_log", map_value(REQUEST_HEADERS, "x-a"), b"3");
    bytes("response headers in proxy_on_log", map_value(RESPONSE_HEADERS, ":status"), b"201");
    status("write in proxy_on_log", add_map_value(REQUEST_HEADERS, "x-late", "1"), BAD_ARGUMENT);
    status("request trailers that never came", map_value(REQUEST_TRAILERS, "x").0, NOT_FOUND);
}
