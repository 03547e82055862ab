//! Callouts: HTTP calls, gRPC calls and streams, and `proxy_get_status`, as proxy-wasm-cpp-host
//! (`src/exports.cc`) and Envoy's `Context` (`httpCall`, `grpcCall`, `grpcStream`,
//! `grpcSend`, `grpcCancel`, `grpcClose`) answer them.
//!
//! A callout belongs to the root context of the context that made it: its callbacks come to
//! that root (the Go SDK panics otherwise; the Rust SDK finds the stream by the call's token),
//! and it outlives the stream that asked. Ids are Envoy's, typed by their low two bits: HTTP
//! calls 4, 8, ...; gRPC calls 5, 9, ...; gRPC streams 6, 10, ... (see `CalloutKind`).
//!
//! Every guest range (inputs and return pointers) is checked before the call is made
//! ([`Status::InvalidMemoryAccess`]), so a bad pointer never leaves a callout in flight that
//! the plugin cannot know about. A malformed map reads as empty (`PairsUtil::toPairs`).

use abi::{MapLimits, Status};

use crate::host::{CalloutKind, Callout};
use crate::memory::return_bytes;
use crate::{GrpcCall, HeaderMap, HostCx, HostResult, HttpCall};

/// A serialized header map from the guest, decoded as the C++ host decodes it
/// (`PairsUtil::toPairs`): malformed or over the limits reads as no pairs, with no error. An
/// HTTP call with such headers then lacks `:path`, `:method` and `:authority`.
fn decode_headers(bytes: &[u8], limits: MapLimits) -> HeaderMap {
    HeaderMap::from_pairs(abi::decode_map_lenient(bytes, limits))
}

/// `proxy_get_status`: the (code, message) of the effective context's root: (0, "") at first;
/// (11 BROKEN_CONNECTION, "reset") in the callback of a failed HTTP call and the gRPC status
/// and message in `proxy_on_grpc_close`, after which the message is cleared and the code
/// stays. Always OK (`exports.cc` `get_status` asks the root context; the Rust SDK's
/// `get_grpc_status` panics on anything else). A successful HTTP call does not touch it: the
/// HTTP status is the answer's `:status`.
pub fn proxy_get_status(
    cx: &mut dyn HostCx,
    return_code: u64,
    return_message_ptr: u64,
    return_message_size: u64,
) -> HostResult {
    let (code, message) = {
        let (mem, host) = cx.parts();
        mem.check(return_code, 4)?;
        host.root_mut().map(|r| r.status.clone()).unwrap_or_default()
    };
    // Checks both words before it allocates; may run the guest's allocator.
    return_bytes(cx, return_message_ptr, return_message_size, &message)?;
    let (mut mem, _) = cx.parts();
    mem.write_u32(return_code, code)?;
    Ok(())
}

/// The largest timeout Envoy takes: it reads the word as a C `int` and refuses a negative one.
const MAX_TIMEOUT_MS: u32 = i32::MAX as u32;

/// `proxy_http_call`: sends an HTTP callout through the embedder for the effective context's
/// root, and writes its id (4, 8, 12, ...). The answer comes to that root context in
/// `proxy_on_http_call_response`, even when the stream that asked has ended.
///
/// Checks in the C++ host's order (`exports.cc` `http_call`, Envoy's `Context::httpCall`): the
/// four inputs and the id slot in memory ([`Status::InvalidMemoryAccess`]); the id slot is
/// written with 0, which it keeps on every failure; a timeout of 2^31 ms or more (negative as
/// a C `int`) is [`Status::BadArgument`]; a non-UTF-8 upstream names no cluster
/// ([`Status::BadArgument`]); headers lacking `:method`, `:path` or `:authority` (malformed
/// headers read as none) are [`Status::BadArgument`]; the embedder answers
/// [`Status::BadArgument`] for an unknown upstream and [`Status::InternalFailure`] when it
/// cannot send (that id is used up, as Envoy's is). A timeout of 0 means none.
/// An upstream outside the plugin's allowed upstreams ([`PluginPolicy`](crate::PluginPolicy))
/// gets the unknown upstream's `BadArgument`, and is counted
/// ([`SecurityStats::callouts_refused`](crate::SecurityStats)).
#[allow(clippy::too_many_arguments)]
pub fn proxy_http_call(
    cx: &mut dyn HostCx,
    upstream_ptr: u64,
    upstream_size: u64,
    headers_ptr: u64,
    headers_size: u64,
    body_ptr: u64,
    body_size: u64,
    trailers_ptr: u64,
    trailers_size: u64,
    timeout_ms: u32,
    return_call_id: u64,
) -> HostResult {
    let (mut mem, host) = cx.parts();
    let upstream = mem.read(upstream_ptr, upstream_size)?.to_vec();
    let headers = decode_headers(mem.read(headers_ptr, headers_size)?, host.map_limits);
    let body = mem.read(body_ptr, body_size)?.to_vec();
    let trailers = decode_headers(mem.read(trailers_ptr, trailers_size)?, host.map_limits);
    // Envoy writes 0 first, to check the slot before it starts anything.
    mem.write_u32(return_call_id, 0)?;
    if timeout_ms > MAX_TIMEOUT_MS {
        return Err(Status::BadArgument.into());
    }
    let upstream = String::from_utf8(upstream).map_err(|_| Status::BadArgument)?;
    for required in [&b":method"[..], b":path", b":authority"] {
        if headers.get(required).is_none() {
            return Err(Status::BadArgument.into());
        }
    }
    crate::security::check_upstream(host, &upstream, false)?;
    let root = host.effective_root().ok_or(Status::BadArgument)?;
    let call = HttpCall {
        id: host.next_callout_id(CalloutKind::Http),
        vm: host.token(),
        context_id: root,
        origin: host.effective(),
        upstream,
        headers,
        body,
        trailers,
        timeout_ms,
    };
    match host.embedder.http_call(&call) {
        Ok(()) => {}
        // Envoy allocates the id only once the cluster and headers passed: a send that failed
        // used one up, an unknown upstream did not.
        Err(Status::InternalFailure) => {
            host.take_callout_id(CalloutKind::Http, call.id);
            return Err(Status::InternalFailure.into());
        }
        Err(status) => return Err(status.into()),
    }
    host.take_callout_id(CalloutKind::Http, call.id);
    host.http_calls.insert(call.id, Callout::new(root, call.origin, false));
    mem.write_u32(return_call_id, call.id)?;
    Ok(())
}

/// Opens a gRPC call (`message` is `Some((ptr, size))`) or stream (`None`), as
/// `proxy_grpc_call` and `proxy_grpc_stream` share every step. Names are taken as bytes
/// (shown lossily to the embedder): Envoy reads them as a serialized GrpcService, a cluster
/// name and two strings, with no UTF-8 rule.
#[allow(clippy::too_many_arguments)]
fn open_grpc(
    cx: &mut dyn HostCx,
    upstream: (u64, u64),
    service: (u64, u64),
    method: (u64, u64),
    metadata: (u64, u64),
    message: Option<(u64, u64)>,
    timeout_ms: u32,
    return_id: u64,
) -> HostResult {
    let (mut mem, host) = cx.parts();
    let upstream = String::from_utf8_lossy(mem.read(upstream.0, upstream.1)?).into_owned();
    let service = String::from_utf8_lossy(mem.read(service.0, service.1)?).into_owned();
    let method = String::from_utf8_lossy(mem.read(method.0, method.1)?).into_owned();
    let metadata = mem.read(metadata.0, metadata.1)?;
    let message = match message {
        Some((ptr, size)) => Some(mem.read(ptr, size)?.to_vec()),
        None => None,
    };
    mem.check(return_id, 4)?;

    let metadata = decode_headers(metadata, host.map_limits);
    let stream = message.is_none();
    crate::security::check_upstream(host, &upstream, true)?;
    let kind = if stream { CalloutKind::GrpcStream } else { CalloutKind::GrpcCall };
    let root = host.effective_root().ok_or(Status::BadArgument)?;
    let call = GrpcCall {
        id: host.next_callout_id(kind),
        vm: host.token(),
        context_id: root,
        origin: host.effective(),
        upstream,
        service,
        method,
        metadata,
        message,
        timeout_ms: if stream { 0 } else { timeout_ms },
    };
    match host.embedder.grpc_call(&call) {
        Ok(()) => {}
        // Envoy allocates the id after the cluster check: an unknown cluster (PARSE_FAILURE)
        // used none; a client it cannot make or a send that failed used one.
        Err(Status::ParseFailure) => return Err(Status::ParseFailure.into()),
        Err(status) => {
            host.take_callout_id(kind, call.id);
            return Err(status.into());
        }
    }
    host.take_callout_id(kind, call.id);
    host.grpc_calls.insert(call.id, Callout::new(root, call.origin, stream));
    mem.write_u32(return_id, call.id)?;
    Ok(())
}

/// `proxy_grpc_call`: starts a unary gRPC call through the embedder and writes its id (5, 9,
/// 13, ...). Its answer is one callback on the caller's root context:
/// `proxy_on_grpc_receive` on success, `proxy_on_grpc_close` on failure.
///
/// The embedder answers [`Status::ParseFailure`] for an unknown upstream and
/// [`Status::BadArgument`] for one it cannot make a client for (as Envoy's
/// `Context::grpcCall`), [`Status::InternalFailure`] when it cannot send.
#[allow(clippy::too_many_arguments)]
pub fn proxy_grpc_call(
    cx: &mut dyn HostCx,
    upstream_ptr: u64,
    upstream_size: u64,
    service_ptr: u64,
    service_size: u64,
    method_ptr: u64,
    method_size: u64,
    metadata_ptr: u64,
    metadata_size: u64,
    message_ptr: u64,
    message_size: u64,
    timeout_ms: u32,
    return_call_id: u64,
) -> HostResult {
    open_grpc(
        cx,
        (upstream_ptr, upstream_size),
        (service_ptr, service_size),
        (method_ptr, method_size),
        (metadata_ptr, metadata_size),
        Some((message_ptr, message_size)),
        timeout_ms,
        return_call_id,
    )
}

/// `proxy_grpc_stream`: opens a gRPC stream through the embedder and writes its id (6, 10,
/// ...). Its events come to the caller's root context. Statuses as [`proxy_grpc_call`].
#[allow(clippy::too_many_arguments)]
pub fn proxy_grpc_stream(
    cx: &mut dyn HostCx,
    upstream_ptr: u64,
    upstream_size: u64,
    service_ptr: u64,
    service_size: u64,
    method_ptr: u64,
    method_size: u64,
    metadata_ptr: u64,
    metadata_size: u64,
    return_stream_id: u64,
) -> HostResult {
    open_grpc(
        cx,
        (upstream_ptr, upstream_size),
        (service_ptr, service_size),
        (method_ptr, method_size),
        (metadata_ptr, metadata_size),
        None,
        0,
        return_stream_id,
    )
}

/// `proxy_grpc_send`: sends a message on an open gRPC stream. After the message's memory
/// check: [`Status::BadArgument`] for an id that is not a stream's by its type bits,
/// [`Status::NotFound`] for an unknown stream (Envoy's `Context::grpcSend`).
pub fn proxy_grpc_send(
    cx: &mut dyn HostCx,
    stream_id: u32,
    message_ptr: u64,
    message_size: u64,
    end_stream: u32,
) -> HostResult {
    let (mem, host) = cx.parts();
    // The message first (`exports.cc` `grpc_send`), then the id.
    let message = mem.read(message_ptr, message_size)?;
    if CalloutKind::of(stream_id) != Some(CalloutKind::GrpcStream) {
        return Err(Status::BadArgument.into());
    }
    if !host.grpc_calls.contains_key(&stream_id) {
        return Err(Status::NotFound.into());
    }
    host.embedder.grpc_send(host.token(), stream_id, message, end_stream != 0)?;
    Ok(())
}

/// The kind of a gRPC call or stream id for cancel and close: [`Status::BadArgument`] for any
/// other type bits, [`Status::NotFound`] for an unknown id (Envoy's `grpcCancel`,
/// `grpcClose`).
fn grpc_id(cx: &mut dyn HostCx, id: u32) -> Result<CalloutKind, Status> {
    let kind = match CalloutKind::of(id) {
        Some(k @ (CalloutKind::GrpcCall | CalloutKind::GrpcStream)) => k,
        _ => return Err(Status::BadArgument),
    };
    if !cx.host().grpc_calls.contains_key(&id) {
        return Err(Status::NotFound);
    }
    Ok(kind)
}

/// `proxy_grpc_cancel`: cancels a gRPC call or stream; no callback follows, so the host
/// forgets it. A call or stream is still known during its last callback (Envoy forgets it
/// after the callback), so cancelling it there is OK.
pub fn proxy_grpc_cancel(cx: &mut dyn HostCx, call_id: u32) -> HostResult {
    grpc_id(cx, call_id)?;
    let host = cx.host();
    host.embedder.grpc_cancel(host.token(), call_id)?;
    host.grpc_calls.remove(&call_id);
    Ok(())
}

/// `proxy_grpc_close`: cancels a unary gRPC call (forgotten at once), or half-closes a stream
/// from the plugin's side: it stays until the remote side closes it, whose
/// `proxy_on_grpc_close` still comes, and is forgotten at once if the remote side already
/// closed (Envoy's `Context::grpcClose`).
pub fn proxy_grpc_close(cx: &mut dyn HostCx, call_id: u32) -> HostResult {
    let kind = grpc_id(cx, call_id)?;
    let host = cx.host();
    host.embedder.grpc_close(host.token(), call_id)?;
    let forget = match host.grpc_calls.get_mut(&call_id) {
        Some(call) if kind == CalloutKind::GrpcStream && !call.remote_closed => {
            call.local_closed = true;
            false
        }
        _ => true,
    };
    if forget {
        host.grpc_calls.remove(&call_id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use abi::{encode_map, MapLimits, Status};

    use crate::hostcalls::testing::{status, TestCx, MEM, OOB, RET_PTR, RET_SCALAR, RET_SIZE, ROOT, STREAM};
    use crate::hostcalls::{
        proxy_get_status, proxy_grpc_call, proxy_grpc_cancel, proxy_grpc_close, proxy_grpc_send, proxy_grpc_stream,
        proxy_http_call,
    };
    use crate::{GrpcCall, HeaderMap, HttpCall, TrapKind};

    const UPSTREAM: u64 = 1000;
    const HEADERS: u64 = 1100;
    const BODY: u64 = 1500;
    const TRAILERS: u64 = 1600;
    const SERVICE: u64 = 2000;
    const METHOD: u64 = 2100;
    const MESSAGE: u64 = 2200;

    fn request_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            (":method", "GET"),
            (":path", "/check"),
            (":authority", "authz"),
            ("x-id", "7"),
        ]
    }

    /// Where an HTTP call's inputs live in guest memory.
    struct HttpArgs {
        upstream: (u64, u64),
        headers: (u64, u64),
        body: (u64, u64),
        trailers: (u64, u64),
        timeout: u32,
        ret: u64,
    }

    fn http_args(cx: &mut TestCx, headers: &[(&str, &str)]) -> HttpArgs {
        HttpArgs {
            upstream: cx.put(UPSTREAM, b"authz_cluster"),
            headers: cx.put(HEADERS, &encode_map(headers)),
            body: cx.put(BODY, b"payload"),
            trailers: cx.put(TRAILERS, &encode_map(&[("t", "1")])),
            timeout: 5000,
            ret: RET_SCALAR,
        }
    }

    fn http_call(cx: &mut TestCx, a: &HttpArgs) -> Status {
        status(proxy_http_call(
            cx,
            a.upstream.0,
            a.upstream.1,
            a.headers.0,
            a.headers.1,
            a.body.0,
            a.body.1,
            a.trailers.0,
            a.trailers.1,
            a.timeout,
            a.ret,
        ))
    }

    fn http_calls_seen(cx: &TestCx) -> Vec<HttpCall> {
        cx.embedder.seen.lock().unwrap().http_calls.clone()
    }

    fn grpc_calls_seen(cx: &TestCx) -> Vec<GrpcCall> {
        cx.embedder.seen.lock().unwrap().grpc_calls.clone()
    }

    #[test]
    fn malformed_trailers_and_metadata_read_as_empty_and_the_call_goes() {
        // HTTP trailers: the call goes without them (PairsUtil::toPairs gives no pairs).
        let mut cx = TestCx::new();
        let mut a = http_args(&mut cx, &request_headers());
        a.trailers = cx.put(TRAILERS, &[1, 0, 0, 0]);
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        let calls = http_calls_seen(&cx);
        assert_eq!(calls.len(), 1);
        assert!(calls[0].trailers.is_empty());
        // gRPC metadata, malformed or over the limits: the call or stream opens without it.
        for stream in [false, true] {
            for over_limits in [false, true] {
                let mut cx = TestCx::new();
                let mut a = grpc_args(&mut cx);
                if over_limits {
                    cx.host.map_limits = MapLimits { max_pairs: 0, max_bytes: 1 << 20 };
                } else {
                    a.metadata.1 += 1;
                }
                let got = if stream { grpc_stream(&mut cx, &a) } else { grpc_call(&mut cx, &a) };
                assert_eq!(got, Status::Ok, "stream {stream}, over the limits {over_limits}");
                let calls = grpc_calls_seen(&cx);
                assert_eq!(calls.len(), 1);
                assert!(calls[0].metadata.is_empty());
            }
        }
    }

    #[test]
    fn http_call_sends_the_call_and_writes_its_id() {
        let mut cx = TestCx::new();
        let a = http_args(&mut cx, &request_headers());
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        // Envoy's HTTP call ids: 4, 8, 12, ...
        assert_eq!(id, 4);
        let expected = HttpCall {
            id,
            vm: cx.host.token(),
            // The call belongs to the stream's root; the stream made it.
            context_id: ROOT,
            origin: STREAM,
            upstream: "authz_cluster".into(),
            headers: HeaderMap::from_pairs(request_headers()),
            body: b"payload".to_vec(),
            trailers: HeaderMap::from_pairs([("t", "1")]),
            timeout_ms: 5000,
        };
        assert_eq!(http_calls_seen(&cx), vec![expected]);
        let call = cx.host.http_calls.get(&id).copied().unwrap();
        assert_eq!((call.root, call.origin, call.stream), (ROOT, STREAM, false));

        // A second call gets another id; empty body and trailers (address 0, length 0) are fine.
        let a = HttpArgs {
            body: (0, 0),
            trailers: (0, 0),
            ..a
        };
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        let second = cx.u32_at(RET_SCALAR);
        assert_eq!(second, 8);
        let seen = http_calls_seen(&cx);
        assert_eq!(seen[1].body, b"");
        assert!(seen[1].trailers.is_empty());
        assert_eq!(cx.host.http_calls.len(), 2);
    }

    #[test]
    fn callouts_outside_the_allowed_upstreams_get_the_unknown_cluster_status_and_are_counted() {
        let mut cx = TestCx::new();
        cx.set_policy(crate::PluginPolicy::default().allow_upstreams(["authz_cluster"]));
        let a = http_args(&mut cx, &request_headers());
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        let other = HttpArgs { upstream: cx.put(UPSTREAM + 64, b"evil_cluster"), ..http_args(&mut cx, &request_headers()) };
        cx.put(RET_SCALAR, &[0xaa; 4]);
        assert_eq!(http_call(&mut cx, &other), Status::BadArgument);
        assert_eq!(http_call(&mut cx, &other), Status::BadArgument);
        assert_eq!(cx.u32_at(RET_SCALAR), 0, "no id: the slot keeps the 0 written first");
        let g = grpc_args(&mut cx);
        assert_eq!(grpc_call(&mut cx, &g), Status::ParseFailure);
        assert_eq!(http_calls_seen(&cx).len(), 1);
        assert!(grpc_calls_seen(&cx).is_empty());
        assert_eq!(cx.host.services.security().snapshot().callouts_refused, 3);
        let logs = cx.embedder.seen.lock().unwrap().logs.clone();
        let refusals: Vec<_> = logs.iter().filter(|(_, m)| m.contains("refused")).collect();
        assert_eq!(refusals.len(), 1, "logged once per VM: {logs:?}");
        assert!(refusals[0].1.contains("upstream `evil_cluster`"), "{}", refusals[0].1);
    }

    #[test]
    fn http_call_from_a_root_context_belongs_to_it() {
        let mut cx = TestCx::new();
        cx.enter(abi::Callback::OnTick, ROOT);
        let a = http_args(&mut cx, &request_headers());
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        assert_eq!((http_calls_seen(&cx)[0].context_id, http_calls_seen(&cx)[0].origin), (ROOT, ROOT));
        assert_eq!(cx.host.http_calls.get(&id).map(|c| c.root), Some(ROOT));
    }

    #[test]
    fn http_call_checks_in_envoys_order_and_writes_0_first() {
        // A timeout of 2^31 ms or more is BAD_ARGUMENT, even with an unknown upstream; the id
        // slot holds 0 after every refusal once memory was fine.
        let mut cx = TestCx::new();
        *cx.embedder.callout_result.lock().unwrap() = Some(Status::BadArgument);
        let mut a = http_args(&mut cx, &request_headers());
        a.timeout = 1 << 31;
        cx.put(RET_SCALAR, &[0xaa; 4]);
        assert_eq!(http_call(&mut cx, &a), Status::BadArgument);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        // An unknown upstream uses no id; a failed send uses one.
        a.timeout = 0;
        cx.put(RET_SCALAR, &[0xaa; 4]);
        assert_eq!(http_call(&mut cx, &a), Status::BadArgument);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        *cx.embedder.callout_result.lock().unwrap() = Some(Status::InternalFailure);
        assert_eq!(http_call(&mut cx, &a), Status::InternalFailure);
        *cx.embedder.callout_result.lock().unwrap() = None;
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        assert_eq!(cx.u32_at(RET_SCALAR), 8, "the failed send used 4");
        // A :path with an empty value passes (presence only); a timeout of 0 is none.
        let mut cx = TestCx::new();
        let a = http_args(&mut cx, &[(":method", "GET"), (":path", ""), (":authority", "a")]);
        let a = HttpArgs { timeout: 0, ..a };
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        assert_eq!(http_calls_seen(&cx)[0].timeout_ms, 0);
    }

    #[test]
    fn http_call_refusals_leave_no_call_behind() {
        type Edit = fn(&mut TestCx, &mut HttpArgs);
        let cases: Vec<(&str, Edit, Status)> = vec![
            (
                "upstream out of bounds",
                |_, a| a.upstream = (OOB, 4),
                Status::InvalidMemoryAccess,
            ),
            (
                "upstream length overflows",
                |_, a| a.upstream = (u64::MAX - 1, 4),
                Status::InvalidMemoryAccess,
            ),
            (
                "headers out of bounds",
                |_, a| a.headers = (MEM - 2, 8),
                Status::InvalidMemoryAccess,
            ),
            (
                "body length overflows",
                |_, a| a.body = (1, u64::MAX),
                Status::InvalidMemoryAccess,
            ),
            (
                "trailers out of bounds",
                |_, a| a.trailers = (OOB, 1),
                Status::InvalidMemoryAccess,
            ),
            (
                "return id out of bounds",
                |_, a| a.ret = MEM - 2,
                Status::InvalidMemoryAccess,
            ),
            (
                "return id overflows",
                |_, a| a.ret = u64::MAX - 1,
                Status::InvalidMemoryAccess,
            ),
            // A malformed map reads as empty (PairsUtil::toPairs): no :path, so BAD_ARGUMENT.
            ("malformed headers", |_, a| a.headers.1 -= 1, Status::BadArgument),
            (
                "headers over the pair limit",
                |cx, _| {
                    cx.host.map_limits = MapLimits {
                        max_pairs: 2,
                        max_bytes: 1 << 20,
                    }
                },
                Status::BadArgument,
            ),
            (
                "headers over the byte limit",
                |cx, _| {
                    cx.host.map_limits = MapLimits {
                        max_pairs: 1024,
                        max_bytes: 16,
                    }
                },
                Status::BadArgument,
            ),
            (
                "upstream not UTF-8",
                |cx, a| a.upstream = cx.put(UPSTREAM, &[0xff, 0xfe]),
                Status::BadArgument,
            ),
            (
                "no :method",
                |cx, a| a.headers = cx.put(HEADERS, &encode_map(&[(":path", "/"), (":authority", "a")])),
                Status::BadArgument,
            ),
            (
                "no :path",
                |cx, a| a.headers = cx.put(HEADERS, &encode_map(&[(":method", "GET"), (":authority", "a")])),
                Status::BadArgument,
            ),
            (
                "no :authority",
                |cx, a| a.headers = cx.put(HEADERS, &encode_map(&[(":method", "GET"), (":path", "/")])),
                Status::BadArgument,
            ),
            ("empty headers", |_, a| a.headers = (0, 0), Status::BadArgument),
            (
                "unknown upstream",
                |cx, _| *cx.embedder.callout_result.lock().unwrap() = Some(Status::BadArgument),
                Status::BadArgument,
            ),
            (
                "send failed",
                |cx, _| *cx.embedder.callout_result.lock().unwrap() = Some(Status::InternalFailure),
                Status::InternalFailure,
            ),
        ];
        for (name, edit, expected) in cases {
            let mut cx = TestCx::new();
            cx.mem[RET_SCALAR as usize..RET_SCALAR as usize + 4].copy_from_slice(&[0xaa; 4]);
            let mut a = http_args(&mut cx, &request_headers());
            edit(&mut cx, &mut a);
            assert_eq!(http_call(&mut cx, &a), expected, "{name}");
            assert!(http_calls_seen(&cx).is_empty(), "{name}: a call was sent");
            assert!(cx.host.http_calls.is_empty(), "{name}: a call was recorded");
            // Envoy writes 0 into the slot before anything but the memory checks.
            let slot = if expected == Status::InvalidMemoryAccess { 0xaaaa_aaaa } else { 0 };
            if a.ret == RET_SCALAR {
                assert_eq!(cx.u32_at(RET_SCALAR), slot, "{name}: the id slot");
            }
        }
    }

    /// Where a gRPC call's inputs live in guest memory.
    struct GrpcArgs {
        upstream: (u64, u64),
        service: (u64, u64),
        method: (u64, u64),
        metadata: (u64, u64),
        message: (u64, u64),
        timeout: u32,
        ret: u64,
    }

    fn grpc_args(cx: &mut TestCx) -> GrpcArgs {
        GrpcArgs {
            upstream: cx.put(UPSTREAM, b"grpc_cluster"),
            service: cx.put(SERVICE, b"pkg.Service"),
            method: cx.put(METHOD, b"Check"),
            metadata: cx.put(HEADERS, &encode_map(&[("md", "v")])),
            message: cx.put(MESSAGE, b"\x0a\x03abc"),
            timeout: 250,
            ret: RET_SCALAR,
        }
    }

    fn grpc_call(cx: &mut TestCx, a: &GrpcArgs) -> Status {
        status(proxy_grpc_call(
            cx,
            a.upstream.0,
            a.upstream.1,
            a.service.0,
            a.service.1,
            a.method.0,
            a.method.1,
            a.metadata.0,
            a.metadata.1,
            a.message.0,
            a.message.1,
            a.timeout,
            a.ret,
        ))
    }

    fn grpc_stream(cx: &mut TestCx, a: &GrpcArgs) -> Status {
        status(proxy_grpc_stream(
            cx,
            a.upstream.0,
            a.upstream.1,
            a.service.0,
            a.service.1,
            a.method.0,
            a.method.1,
            a.metadata.0,
            a.metadata.1,
            a.ret,
        ))
    }

    fn expected_grpc(cx: &TestCx, id: u32, message: Option<&[u8]>, timeout_ms: u32) -> GrpcCall {
        GrpcCall {
            id,
            vm: cx.host.token(),
            context_id: ROOT,
            origin: STREAM,
            upstream: "grpc_cluster".into(),
            service: "pkg.Service".into(),
            method: "Check".into(),
            metadata: HeaderMap::from_pairs([("md", "v")]),
            message: message.map(<[u8]>::to_vec),
            timeout_ms,
        }
    }

    #[test]
    fn grpc_call_and_stream_are_sent_and_recorded() {
        let mut cx = TestCx::new();
        let a = grpc_args(&mut cx);
        assert_eq!(grpc_call(&mut cx, &a), Status::Ok);
        let call = cx.u32_at(RET_SCALAR);
        assert_eq!(grpc_stream(&mut cx, &a), Status::Ok);
        let stream = cx.u32_at(RET_SCALAR);
        // Envoy's ids: gRPC calls 5, 9, ...; gRPC streams 6, 10, ...
        assert_eq!((call, stream), (5, 6));
        assert_eq!(
            grpc_calls_seen(&cx),
            vec![
                expected_grpc(&cx, call, Some(b"\x0a\x03abc"), 250),
                expected_grpc(&cx, stream, None, 0)
            ]
        );
        let c = *cx.host.grpc_calls.get(&call).unwrap();
        assert_eq!((c.root, c.origin, c.stream), (ROOT, STREAM, false));
        let s = *cx.host.grpc_calls.get(&stream).unwrap();
        assert_eq!((s.root, s.origin, s.stream), (ROOT, STREAM, true));
        // Names are bytes: not UTF-8 is no refusal (Envoy takes them as they are).
        let a = GrpcArgs { service: cx.put(SERVICE, &[b'a', 0xff]), method: cx.put(METHOD, &[0x80]), ..a };
        assert_eq!(grpc_call(&mut cx, &a), Status::Ok);
        assert_eq!(cx.u32_at(RET_SCALAR), 9);
    }

    #[test]
    fn grpc_refusals_leave_nothing_behind() {
        type Edit = fn(&mut TestCx, &mut GrpcArgs);
        let cases: Vec<(&str, Edit, Status)> = vec![
            (
                "upstream out of bounds",
                |_, a| a.upstream = (OOB, 1),
                Status::InvalidMemoryAccess,
            ),
            (
                "service length overflows",
                |_, a| a.service = (u64::MAX, 1),
                Status::InvalidMemoryAccess,
            ),
            (
                "method out of bounds",
                |_, a| a.method = (MEM - 1, 2),
                Status::InvalidMemoryAccess,
            ),
            (
                "metadata length overflows",
                |_, a| a.metadata = (8, u64::MAX - 4),
                Status::InvalidMemoryAccess,
            ),
            (
                "return id out of bounds",
                |_, a| a.ret = OOB,
                Status::InvalidMemoryAccess,
            ),
            (
                "no client for the upstream",
                |cx, _| *cx.embedder.callout_result.lock().unwrap() = Some(Status::BadArgument),
                Status::BadArgument,
            ),
            (
                "unknown upstream",
                |cx, _| *cx.embedder.callout_result.lock().unwrap() = Some(Status::ParseFailure),
                Status::ParseFailure,
            ),
            (
                "send failed",
                |cx, _| *cx.embedder.callout_result.lock().unwrap() = Some(Status::InternalFailure),
                Status::InternalFailure,
            ),
        ];
        for (name, edit, expected) in cases {
            for stream in [false, true] {
                let mut cx = TestCx::new();
                cx.mem[RET_SCALAR as usize..RET_SCALAR as usize + 4].copy_from_slice(&[0xaa; 4]);
                let mut a = grpc_args(&mut cx);
                edit(&mut cx, &mut a);
                let got = if stream {
                    grpc_stream(&mut cx, &a)
                } else {
                    grpc_call(&mut cx, &a)
                };
                assert_eq!(got, expected, "{name} (stream: {stream})");
                assert!(grpc_calls_seen(&cx).is_empty(), "{name}: a call was sent");
                assert!(cx.host.grpc_calls.is_empty(), "{name}: a call was recorded");
                assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa, "{name}: an id was written");
            }
        }
        // Only a unary call reads its message.
        let mut cx = TestCx::new();
        let a = GrpcArgs {
            message: (OOB, 4),
            ..grpc_args(&mut cx)
        };
        assert_eq!(grpc_call(&mut cx, &a), Status::InvalidMemoryAccess);
        let a = GrpcArgs {
            message: (u64::MAX, 2),
            ..a
        };
        assert_eq!(grpc_call(&mut cx, &a), Status::InvalidMemoryAccess);
        assert!(cx.host.grpc_calls.is_empty());
        assert_eq!(grpc_stream(&mut cx, &a), Status::Ok);
    }

    /// A TestCx with one unary call and one stream open: (cx, call id, stream id).
    fn with_call_and_stream() -> (TestCx, u32, u32) {
        let mut cx = TestCx::new();
        let a = grpc_args(&mut cx);
        assert_eq!(grpc_call(&mut cx, &a), Status::Ok);
        let call = cx.u32_at(RET_SCALAR);
        assert_eq!(grpc_stream(&mut cx, &a), Status::Ok);
        let stream = cx.u32_at(RET_SCALAR);
        (cx, call, stream)
    }

    #[test]
    fn grpc_send_sends_on_a_stream_only() {
        let (mut cx, call, stream) = with_call_and_stream();
        let (p, n) = cx.put(MESSAGE, b"msg-1");
        assert_eq!(status(proxy_grpc_send(&mut cx, stream, p, n, 0)), Status::Ok);
        assert_eq!(status(proxy_grpc_send(&mut cx, stream, 0, 0, 7)), Status::Ok);
        // By type bits first (Envoy's grpcSend): not a stream's id is BAD_ARGUMENT.
        let cases = [
            (call, p, n, Status::BadArgument),
            (999, p, n, Status::BadArgument),
            (0, p, n, Status::BadArgument),
            (998, p, n, Status::NotFound),
            (stream, OOB, 1, Status::InvalidMemoryAccess),
            (stream, u64::MAX - 2, 4, Status::InvalidMemoryAccess),
            // Memory before the id (exports.cc grpc_send): a bad message with a bad id.
            (999, OOB, 1, Status::InvalidMemoryAccess),
        ];
        for (id, ptr, len, expected) in cases {
            assert_eq!(
                status(proxy_grpc_send(&mut cx, id, ptr, len, 1)),
                expected,
                "id {id} ptr {ptr}"
            );
        }
        let sends = cx.embedder.seen.lock().unwrap().grpc_sends.clone();
        assert_eq!(
            sends,
            vec![(stream, b"msg-1".to_vec(), false), (stream, Vec::new(), true)]
        );
        // Sending with end_stream keeps the stream until the remote side closes it.
        assert!(cx.host.grpc_calls.contains_key(&stream));
    }

    #[test]
    fn grpc_cancel_forgets_calls_and_streams() {
        let (mut cx, call, stream) = with_call_and_stream();
        assert_eq!(status(proxy_grpc_cancel(&mut cx, call)), Status::Ok);
        assert_eq!(status(proxy_grpc_cancel(&mut cx, stream)), Status::Ok);
        assert!(cx.host.grpc_calls.is_empty());
        for id in [call, stream, 997, 998] {
            assert_eq!(status(proxy_grpc_cancel(&mut cx, id)), Status::NotFound, "id {id}");
        }
        // Neither a gRPC call's nor a stream's type bits: BAD_ARGUMENT (an HTTP call id too).
        for id in [999, 4, 0] {
            assert_eq!(status(proxy_grpc_cancel(&mut cx, id)), Status::BadArgument, "id {id}");
            assert_eq!(status(proxy_grpc_close(&mut cx, id)), Status::BadArgument, "id {id}");
        }
        assert_eq!(cx.embedder.seen.lock().unwrap().grpc_cancels, vec![call, stream]);
    }

    #[test]
    fn grpc_close_forgets_a_call_and_keeps_a_stream() {
        let (mut cx, call, stream) = with_call_and_stream();
        assert_eq!(status(proxy_grpc_close(&mut cx, call)), Status::Ok);
        assert_eq!(status(proxy_grpc_close(&mut cx, stream)), Status::Ok);
        assert!(!cx.host.grpc_calls.contains_key(&call));
        assert!(cx.host.grpc_calls.contains_key(&stream));
        assert_eq!(status(proxy_grpc_close(&mut cx, call)), Status::NotFound);
        assert_eq!(status(proxy_grpc_close(&mut cx, 998)), Status::NotFound);
        assert_eq!(status(proxy_grpc_close(&mut cx, 999)), Status::BadArgument);
        assert_eq!(cx.embedder.seen.lock().unwrap().grpc_closes, vec![call, stream]);
        // Closed by the plugin only: it waits for the remote close.
        assert!(cx.host.grpc_calls.get(&stream).unwrap().local_closed);
    }

    #[test]
    fn grpc_close_forgets_a_stream_the_remote_side_closed() {
        // Envoy keeps a remotely closed stream until the plugin closes (or cancels) it.
        let (mut cx, _, stream) = with_call_and_stream();
        cx.host.grpc_calls.get_mut(&stream).unwrap().remote_closed = true;
        assert_eq!(status(proxy_grpc_send(&mut cx, stream, 0, 0, 0)), Status::Ok);
        assert_eq!(status(proxy_grpc_close(&mut cx, stream)), Status::Ok);
        assert!(!cx.host.grpc_calls.contains_key(&stream));
        assert_eq!(status(proxy_grpc_close(&mut cx, stream)), Status::NotFound);
    }

    fn get_status(cx: &mut TestCx) -> Status {
        status(proxy_get_status(cx, RET_SCALAR, RET_PTR, RET_SIZE))
    }

    #[test]
    fn get_status_answers_the_roots_status_from_any_of_its_contexts() {
        // At first (0, ""), OK, anywhere (exports.cc get_status asks the root context).
        for (callback, context) in [(abi::Callback::OnRequestHeaders, STREAM), (abi::Callback::OnTick, ROOT)] {
            let mut cx = TestCx::new();
            cx.enter(callback, context);
            cx.put(RET_SCALAR, &[0xaa; 4]);
            assert_eq!(get_status(&mut cx), Status::Ok, "{callback}");
            assert_eq!((cx.u32_at(RET_SCALAR), cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0, 0));
            assert_eq!(cx.allocations, 0);
        }
        // The root's status, read from its stream: a failed call's (11, "reset").
        let mut cx = TestCx::new();
        cx.root().status = (11, b"reset".to_vec());
        assert_eq!(get_status(&mut cx), Status::Ok);
        assert_eq!(cx.u32_at(RET_SCALAR), 11);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"reset");
        assert_eq!(cx.allocations, 1);
    }

    #[test]
    fn get_status_refusals() {
        // Bad return pointers: nothing allocated, nothing written.
        let cases = [
            (OOB, RET_PTR, RET_SIZE),
            (RET_SCALAR, MEM - 3, RET_SIZE),
            (RET_SCALAR, RET_PTR, u64::MAX - 1),
        ];
        for (code, ptr, size) in cases {
            let mut cx = TestCx::new();
            cx.root().status = (14, b"unavailable".to_vec());
            assert_eq!(
                status(proxy_get_status(&mut cx, code, ptr, size)),
                Status::InvalidMemoryAccess
            );
            assert_eq!(cx.allocations, 0);
            assert_eq!(cx.u32_at(RET_SCALAR), 0);
        }
        // The allocator answers 0: INVALID_MEMORY_ACCESS; it traps: the trap.
        let mut cx = TestCx::new();
        cx.root().status = (14, b"unavailable".to_vec());
        cx.alloc_answer = Some(0);
        assert_eq!(get_status(&mut cx), Status::InvalidMemoryAccess);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        cx.alloc_answer = Some(MEM - 1);
        assert_eq!(get_status(&mut cx), Status::InvalidMemoryAccess);
        cx.alloc_answer = None;
        cx.alloc_traps = true;
        let trap = proxy_get_status(&mut cx, RET_SCALAR, RET_PTR, RET_SIZE).unwrap_err();
        assert_eq!(trap.kind, TrapKind::Guest);
        assert_eq!(trap.message, "allocator trapped");
    }
}
