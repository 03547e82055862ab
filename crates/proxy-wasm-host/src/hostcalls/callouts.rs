//! Callouts: HTTP calls, gRPC calls and streams, and `proxy_get_status`.
//!
//! The host gives every call or stream an id (never 0), hands it to the
//! [`Embedder`](crate::Embedder) and records which context made it, so that the answer goes
//! back to that context. A refused call leaves nothing recorded and writes no id.
//!
//! Order of checks in every function: the id or argument, then every guest range (inputs and
//! return pointers: [`Status::InvalidMemoryAccess`]), then the contents (names must be UTF-8:
//! [`Status::BadArgument`]; maps must decode), and only then the call to the embedder. So a
//! bad return pointer never leaves a callout in flight that the plugin cannot know about.

use abi::{MapLimits, Status};

use crate::host::{CallData, GrpcState};
use crate::memory::return_bytes;
use crate::{GrpcCall, HeaderMap, HostCx, HostResult, HttpCall};

/// A name the guest sent (upstream, service, method, ...) as text: not UTF-8 is
/// [`Status::BadArgument`].
pub(super) fn guest_text(bytes: &[u8]) -> Result<String, Status> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| Status::BadArgument)
}

/// A serialized header map from the guest: malformed is [`Status::ParseFailure`], over the
/// limits [`Status::BadArgument`] (see [`abi::MapError::status`]).
fn decode_headers(bytes: &[u8], limits: MapLimits) -> Result<HeaderMap, Status> {
    abi::decode_map(bytes, limits)
        .map(HeaderMap::from_pairs)
        .map_err(|e| e.status())
}

/// `proxy_get_status`: the HTTP status of the callout answered in
/// `proxy_on_http_call_response`, or the gRPC status in `proxy_on_grpc_close`, with its
/// message. Elsewhere [`Status::NotFound`].
pub fn proxy_get_status(
    cx: &mut dyn HostCx,
    return_code: u64,
    return_message_ptr: u64,
    return_message_size: u64,
) -> HostResult {
    let (code, message) = {
        let (mem, host) = cx.parts();
        let answer = match &host.call.data {
            CallData::HttpCallResponse { status, message, .. } => (*status, message.clone()),
            CallData::GrpcClose { status, message } => (*status, message.clone()),
            _ => return Err(Status::NotFound.into()),
        };
        mem.check(return_code, 4)?;
        answer
    };
    // Checks both words before it allocates; may run the guest's allocator.
    return_bytes(cx, return_message_ptr, return_message_size, &message)?;
    let (mut mem, _) = cx.parts();
    mem.write_u32(return_code, code)?;
    Ok(())
}

/// `proxy_http_call`: sends an HTTP callout through the embedder and writes its id.
///
/// The headers must hold `:method`, `:path` and `:authority` ([`Status::BadArgument`]
/// otherwise); the embedder answers [`Status::BadArgument`] for an unknown upstream and
/// [`Status::InternalFailure`] when it cannot send. An upstream outside the plugin's allowed
/// upstreams ([`PluginPolicy`](crate::PluginPolicy)) gets the same `BadArgument`, and is
/// counted ([`SecurityStats::callouts_refused`](crate::SecurityStats)).
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
    let upstream = mem.read(upstream_ptr, upstream_size)?;
    let headers = mem.read(headers_ptr, headers_size)?;
    let body = mem.read(body_ptr, body_size)?;
    let trailers = mem.read(trailers_ptr, trailers_size)?;
    mem.check(return_call_id, 4)?;

    let upstream = guest_text(upstream)?;
    let headers = decode_headers(headers, host.map_limits)?;
    let trailers = decode_headers(trailers, host.map_limits)?;
    for required in [&b":method"[..], b":path", b":authority"] {
        if headers.get(required).is_none() {
            return Err(Status::BadArgument.into());
        }
    }
    crate::security::check_upstream(host, &upstream, false)?;
    let call = HttpCall {
        id: host.next_callout_id(),
        vm: host.token(),
        context_id: host.effective(),
        upstream,
        headers,
        body: body.to_vec(),
        trailers,
        timeout_ms,
    };
    host.embedder.http_call(&call)?;
    host.http_calls.insert(call.id, call.context_id);
    mem.write_u32(return_call_id, call.id)?;
    Ok(())
}

/// Opens a gRPC call (`message` is `Some((ptr, size))`) or stream (`None`), as
/// `proxy_grpc_call` and `proxy_grpc_stream` share every step.
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
    let upstream = mem.read(upstream.0, upstream.1)?;
    let service = mem.read(service.0, service.1)?;
    let method = mem.read(method.0, method.1)?;
    let metadata = mem.read(metadata.0, metadata.1)?;
    let message = match message {
        Some((ptr, size)) => Some(mem.read(ptr, size)?.to_vec()),
        None => None,
    };
    mem.check(return_id, 4)?;

    let upstream = guest_text(upstream)?;
    let service = guest_text(service)?;
    let method = guest_text(method)?;
    let metadata = decode_headers(metadata, host.map_limits)?;
    let stream = message.is_none();
    crate::security::check_upstream(host, &upstream, true)?;
    let call = GrpcCall {
        id: host.next_callout_id(),
        vm: host.token(),
        context_id: host.effective(),
        upstream,
        service,
        method,
        metadata,
        message,
        timeout_ms: if stream { 0 } else { timeout_ms },
    };
    host.embedder.grpc_call(&call)?;
    host.grpc_calls.insert(
        call.id,
        GrpcState {
            context_id: call.context_id,
            stream,
        },
    );
    mem.write_u32(return_id, call.id)?;
    Ok(())
}

/// `proxy_grpc_call`: starts a unary gRPC call through the embedder and writes its id.
///
/// The embedder answers [`Status::ParseFailure`] for an unknown upstream (as Envoy) and
/// [`Status::InternalFailure`] when it cannot send.
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

/// `proxy_grpc_stream`: opens a gRPC stream through the embedder and writes its id. Statuses
/// as [`proxy_grpc_call`].
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

/// `proxy_grpc_send`: sends a message on an open gRPC stream. [`Status::NotFound`] for an
/// unknown id, [`Status::BadArgument`] for the id of a unary call.
pub fn proxy_grpc_send(
    cx: &mut dyn HostCx,
    stream_id: u32,
    message_ptr: u64,
    message_size: u64,
    end_stream: u32,
) -> HostResult {
    let (mem, host) = cx.parts();
    let state = host.grpc_calls.get(&stream_id).ok_or(Status::NotFound)?;
    if !state.stream {
        return Err(Status::BadArgument.into());
    }
    let message = mem.read(message_ptr, message_size)?;
    host.embedder
        .grpc_send(host.token(), stream_id, message, end_stream != 0)?;
    Ok(())
}

/// `proxy_grpc_cancel`: cancels a gRPC call or stream; no callback follows, so the host
/// forgets it. [`Status::NotFound`] for an unknown id.
pub fn proxy_grpc_cancel(cx: &mut dyn HostCx, call_id: u32) -> HostResult {
    let host = cx.host();
    if !host.grpc_calls.contains_key(&call_id) {
        return Err(Status::NotFound.into());
    }
    host.embedder.grpc_cancel(host.token(), call_id)?;
    host.grpc_calls.remove(&call_id);
    Ok(())
}

/// `proxy_grpc_close`: closes a gRPC call or half-closes a stream from the plugin's side.
/// A unary call is forgotten at once; a stream stays until the remote side closes it.
/// [`Status::NotFound`] for an unknown id.
pub fn proxy_grpc_close(cx: &mut dyn HostCx, call_id: u32) -> HostResult {
    let host = cx.host();
    let state = *host.grpc_calls.get(&call_id).ok_or(Status::NotFound)?;
    host.embedder.grpc_close(host.token(), call_id)?;
    if !state.stream {
        host.grpc_calls.remove(&call_id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use abi::{encode_map, MapLimits, Status};

    use crate::host::CallData;
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
    fn http_call_sends_the_call_and_writes_its_id() {
        let mut cx = TestCx::new();
        let a = http_args(&mut cx, &request_headers());
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        assert_ne!(id, 0);
        let expected = HttpCall {
            id,
            vm: cx.host.token(),
            context_id: STREAM,
            upstream: "authz_cluster".into(),
            headers: HeaderMap::from_pairs(request_headers()),
            body: b"payload".to_vec(),
            trailers: HeaderMap::from_pairs([("t", "1")]),
            timeout_ms: 5000,
        };
        assert_eq!(http_calls_seen(&cx), vec![expected]);
        assert_eq!(cx.host.http_calls.get(&id), Some(&STREAM));

        // A second call gets another id; empty body and trailers (address 0, length 0) are fine.
        let a = HttpArgs {
            body: (0, 0),
            trailers: (0, 0),
            ..a
        };
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        let second = cx.u32_at(RET_SCALAR);
        assert_ne!(second, id);
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
        assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa, "no id written");
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
    fn http_call_records_the_effective_context() {
        let mut cx = TestCx::new();
        cx.enter(abi::Callback::OnTick, ROOT);
        let a = http_args(&mut cx, &request_headers());
        assert_eq!(http_call(&mut cx, &a), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        assert_eq!(http_calls_seen(&cx)[0].context_id, ROOT);
        assert_eq!(cx.host.http_calls.get(&id), Some(&ROOT));
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
            ("malformed headers", |_, a| a.headers.1 -= 1, Status::ParseFailure),
            (
                "malformed trailers",
                |cx, a| a.trailers = cx.put(TRAILERS, &[1, 0, 0, 0]),
                Status::ParseFailure,
            ),
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
            assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa, "{name}: an id was written");
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
            context_id: STREAM,
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
        assert!(call != 0 && stream != 0 && call != stream);
        assert_eq!(
            grpc_calls_seen(&cx),
            vec![
                expected_grpc(&cx, call, Some(b"\x0a\x03abc"), 250),
                expected_grpc(&cx, stream, None, 0)
            ]
        );
        let c = cx.host.grpc_calls[&call];
        assert_eq!((c.context_id, c.stream), (STREAM, false));
        let s = cx.host.grpc_calls[&stream];
        assert_eq!((s.context_id, s.stream), (STREAM, true));
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
            ("malformed metadata", |_, a| a.metadata.1 += 1, Status::ParseFailure),
            (
                "metadata over the limits",
                |cx, _| {
                    cx.host.map_limits = MapLimits {
                        max_pairs: 0,
                        max_bytes: 1 << 20,
                    }
                },
                Status::BadArgument,
            ),
            (
                "upstream not UTF-8",
                |cx, a| a.upstream = cx.put(UPSTREAM, &[0xc3]),
                Status::BadArgument,
            ),
            (
                "service not UTF-8",
                |cx, a| a.service = cx.put(SERVICE, &[b'a', 0xff]),
                Status::BadArgument,
            ),
            (
                "method not UTF-8",
                |cx, a| a.method = cx.put(METHOD, &[0x80]),
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
        let cases = [
            (call, p, n, Status::BadArgument),
            (stream + call + 100, p, n, Status::NotFound),
            (0, p, n, Status::NotFound),
            (stream, OOB, 1, Status::InvalidMemoryAccess),
            (stream, u64::MAX - 2, 4, Status::InvalidMemoryAccess),
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
        for id in [call, stream, 0, 999] {
            assert_eq!(status(proxy_grpc_cancel(&mut cx, id)), Status::NotFound, "id {id}");
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
        assert_eq!(status(proxy_grpc_close(&mut cx, 999)), Status::NotFound);
        assert_eq!(cx.embedder.seen.lock().unwrap().grpc_closes, vec![call, stream]);
    }

    fn http_answer(status: u32, message: &[u8]) -> CallData {
        CallData::HttpCallResponse {
            headers: HeaderMap::new(),
            body: Vec::new(),
            trailers: HeaderMap::new(),
            status,
            message: message.to_vec(),
        }
    }

    fn get_status(cx: &mut TestCx) -> Status {
        status(proxy_get_status(cx, RET_SCALAR, RET_PTR, RET_SIZE))
    }

    #[test]
    fn get_status_answers_in_the_answer_callbacks() {
        let cases = [
            (http_answer(503, b"upstream reset"), 503, &b"upstream reset"[..]),
            (
                CallData::GrpcClose {
                    status: 14,
                    message: b"unavailable".to_vec(),
                },
                14,
                b"unavailable",
            ),
        ];
        for (data, code, message) in cases {
            let mut cx = TestCx::new();
            cx.set_data(data);
            assert_eq!(get_status(&mut cx), Status::Ok);
            assert_eq!(cx.u32_at(RET_SCALAR), code);
            assert_eq!(cx.returned(RET_PTR, RET_SIZE), message);
            assert_eq!(cx.allocations, 1);
        }
        // An empty message is address 0 and length 0, without allocating.
        let mut cx = TestCx::new();
        cx.set_data(CallData::GrpcClose {
            status: 0,
            message: Vec::new(),
        });
        cx.put(RET_PTR, &[0xaa; 8]);
        assert_eq!(get_status(&mut cx), Status::Ok);
        assert_eq!(
            (cx.u32_at(RET_SCALAR), cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)),
            (0, 0, 0)
        );
        assert_eq!(cx.allocations, 0);
    }

    #[test]
    fn get_status_refusals() {
        // Elsewhere: NOT_FOUND.
        for data in [
            CallData::None,
            CallData::GrpcMessage(b"m".to_vec()),
            CallData::ForeignArguments(Vec::new()),
        ] {
            let mut cx = TestCx::new();
            cx.set_data(data);
            assert_eq!(get_status(&mut cx), Status::NotFound);
        }
        // Bad return pointers: nothing allocated, nothing written.
        let cases = [
            (OOB, RET_PTR, RET_SIZE),
            (RET_SCALAR, MEM - 3, RET_SIZE),
            (RET_SCALAR, RET_PTR, u64::MAX - 1),
        ];
        for (code, ptr, size) in cases {
            let mut cx = TestCx::new();
            cx.set_data(http_answer(200, b"ok"));
            assert_eq!(
                status(proxy_get_status(&mut cx, code, ptr, size)),
                Status::InvalidMemoryAccess
            );
            assert_eq!(cx.allocations, 0);
            assert_eq!(cx.u32_at(RET_SCALAR), 0);
        }
        // The allocator answers 0: INVALID_MEMORY_ACCESS; it traps: the trap.
        let mut cx = TestCx::new();
        cx.set_data(http_answer(200, b"ok"));
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
