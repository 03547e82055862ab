//! The security-policy scenarios (the plugin's `sanitize`, `allowed_upstreams` and
//! `capability_restriction_config`), each run under a policy its case sets:
//!
//! - `hidden-headers`: tries every way a plugin can read a request header's value (the value
//!   by name in any case, the pairs, the map's size, the header count, the `request.headers`
//!   property whole and by name, writes followed by reads, a callout answer) for the hidden
//!   `authorization`, `cookie` and `x-api-key`, whose values all hold `s3cret`; any sight of
//!   the secret is a failed check. The stream keeps them: the proxy forwards them unchanged.
//! - `hidden-properties`: `source.address` and `source.port` (and `source`, their parent) read
//!   as absent; `destination.address` does not.
//! - `upstreams`: a callout to the allowed upstream goes; others get what an unknown cluster
//!   gets (`BAD_ARGUMENT` for HTTP, `PARSE_FAILURE` for gRPC).
//! - `restricted`: logging, headers, buffers, lifecycle and `proxy_on_request_headers` only:
//!   other host functions answer `INTERNAL_FAILURE`, and `proxy_on_response_headers` is never
//!   called.

use crate::host::*;
use crate::{bytes, fail, state, status, value};

/// The reference host's answer for a host function outside the allowed capabilities.
const INTERNAL_FAILURE: u32 = 10;

/// Fails the check `what` if the secret shows in `seen`.
fn no_secret(what: &str, seen: &[u8]) {
    if seen.windows(6).any(|w| w == b"s3cret") {
        fail(format!("{what}: the secret reached the plugin: {:?}", String::from_utf8_lossy(seen)));
    }
}

/// Every way to read the hidden request headers; then a callout whose answer carries them.
pub fn hidden_headers(context: u32, num_headers: usize) -> u32 {
    // The request has :path, x-a and the three hidden headers.
    if num_headers != 2 {
        fail(format!("the header count shows hidden headers: {num_headers}, not 2"));
    }
    for name in ["authorization", "Authorization", "COOKIE", "x-api-key"] {
        let (s, v) = map_value(REQUEST_HEADERS, name);
        no_secret(name, &v);
        status(&format!("the value of {name}"), s, NOT_FOUND);
    }
    let (s, pairs) = map_pairs(REQUEST_HEADERS);
    status("the pairs", s, OK);
    no_secret("the pairs", &pairs);
    bytes("the pairs", (s, pairs.clone()), &encode_map(&[(":path", "/"), ("x-a", "1")]));
    value("the map's size", map_size(REQUEST_HEADERS), pairs.len());
    let (s, all) = get_property(b"request\0headers");
    no_secret("request.headers", &all);
    bytes("request.headers", (s, all), &encode_map(&[(":path", "/"), ("x-a", "1")]));
    let (s, v) = get_property(b"request\0headers\0authorization");
    no_secret("request.headers.authorization", &v);
    status("request.headers.authorization", s, NOT_FOUND);
    status("request.total_size (it counts the hidden bytes)", get_property(b"request\0total_size").0, NOT_FOUND);
    // Writes are accepted and change nothing the proxy forwards, nor what the plugin sees.
    status("replace authorization", replace_map_value(REQUEST_HEADERS, "authorization", "mine"), OK);
    status("read it back", map_value(REQUEST_HEADERS, "authorization").0, NOT_FOUND);
    status("add a cookie", add_map_value(REQUEST_HEADERS, "cookie", "mine"), OK);
    status("remove x-api-key", remove_map_value(REQUEST_HEADERS, "x-api-key"), OK);
    let replaced = encode_map(&[(":path", "/"), ("x-a", "2"), ("authorization", "forged")]);
    status("set the pairs", set_map_pairs(REQUEST_HEADERS, &replaced), OK);
    bytes("the pairs after set", map_pairs(REQUEST_HEADERS), &encode_map(&[(":path", "/"), ("x-a", "2")]));
    // A callout whose answer carries a hidden header.
    let headers = encode_map(&[(":method", "GET"), (":path", "/check"), (":authority", "auth")]);
    let (s, id) = http_call("auth", &headers, "", &[], 1000);
    status("a callout", s, OK);
    state(|st| {
        st.calls.push(id);
        st.waiting = context;
    });
    PAUSE
}

/// The callout's answer: its hidden headers are gone too.
pub fn hidden_headers_answer(num_headers: usize) {
    if num_headers != 1 {
        fail(format!("the answer's header count shows hidden headers: {num_headers}, not 1"));
    }
    let (s, v) = map_value(CALL_RESPONSE_HEADERS, "authorization");
    no_secret("the answer's authorization", &v);
    status("the answer's authorization", s, NOT_FOUND);
    let (s, pairs) = map_pairs(CALL_RESPONSE_HEADERS);
    no_secret("the answer's pairs", &pairs);
    bytes("the answer's pairs", (s, pairs), &encode_map(&[(":status", "200")]));
    status("resume the request", continue_stream(HTTP_REQUEST), OK);
}

/// The response headers, whose `x-api-key` is hidden as well.
pub fn hidden_response_headers(num_headers: usize) {
    if num_headers != 1 {
        fail(format!("the response header count shows hidden headers: {num_headers}, not 1"));
    }
    let (s, v) = map_value(RESPONSE_HEADERS, "X-Api-Key");
    no_secret("the response's x-api-key", &v);
    status("the response's x-api-key", s, NOT_FOUND);
    let (s, all) = get_property(b"response\0headers");
    no_secret("response.headers", &all);
    bytes("response.headers", (s, all), &encode_map(&[(":status", "200")]));
    let (s, v) = get_property(b"response\0headers\0x-api-key");
    no_secret("response.headers.x-api-key", &v);
    status("response.headers.x-api-key", s, NOT_FOUND);
    let (s, pairs) = map_pairs(RESPONSE_HEADERS);
    no_secret("the response's pairs", &pairs);
    bytes("the response's pairs", (s, pairs), &encode_map(&[(":status", "200")]));
}

/// Hidden properties, their parent, and a sibling that stays.
pub fn hidden_properties() {
    for path in [&b"source\0address"[..], b"source\0port", b"source"] {
        let (s, v) = get_property(path);
        no_secret("a hidden property", &v);
        status(&format!("{:?}", String::from_utf8_lossy(path)), s, NOT_FOUND);
    }
    bytes("destination.address", get_property(b"destination\0address"), b"192.0.2.2:8080");
}

/// Callouts to allowed and other upstreams.
pub fn upstreams() {
    let headers = encode_map(&[(":method", "GET"), (":path", "/check"), (":authority", "auth")]);
    status("a callout to the allowed upstream", http_call("auth", &headers, "", &[], 1000).0, OK);
    status("a callout to another (known) upstream", http_call("billing", &headers, "", &[], 1000).0, BAD_ARGUMENT);
    let metadata = encode_map(&[]);
    status("a gRPC call to another upstream", grpc_call("billing", "svc.Echo", "Say", &metadata, "m", 500).0, PARSE_FAILURE);
    status("a gRPC stream to another upstream", grpc_stream("billing", "svc.Echo", "Chat", &metadata).0, PARSE_FAILURE);
}

/// Host functions outside the allowed capabilities.
pub fn restricted() {
    status("log (allowed)", log(INFO, "allowed"), OK);
    bytes("a header (allowed)", map_value(REQUEST_HEADERS, ":path"), b"/");
    let headers = encode_map(&[(":method", "GET"), (":path", "/check"), (":authority", "auth")]);
    status("a callout (not allowed)", http_call("auth", &headers, "", &[], 1000).0, INTERNAL_FAILURE);
    status("a property (not allowed)", get_property(b"request\0path").0, INTERNAL_FAILURE);
    status("shared data (not allowed)", set_shared_data("k", "v", 0), INTERNAL_FAILURE);
    status("a tick period (not allowed)", set_tick_period(10), INTERNAL_FAILURE);
    status("a second callout (refused silently)", http_call("auth", &headers, "", &[], 1000).0, INTERNAL_FAILURE);
}

/// `proxy_on_response_headers` under `restricted`: it must never run.
pub fn restricted_response_headers() {
    fail("proxy_on_response_headers ran though the capabilities do not allow it".into());
}
