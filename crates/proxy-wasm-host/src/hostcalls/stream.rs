//! Stream control: resume and close a direction, clear the route cache, send a local reply,
//! as Envoy's `Context::continueStream`, `closeStream`, `clearRouteCache` and
//! `sendLocalResponse` answer them.
//!
//! Every call acts on the effective context. An HTTP stream takes the HTTP_REQUEST and
//! HTTP_RESPONSE directions, a TCP connection DOWNSTREAM and UPSTREAM. A known stream type on a
//! context without it (a root context, or the other family) is OK and does nothing, as Envoy
//! has no filter callbacks to act on there; an unknown type is `BadArgument`; resuming UPSTREAM
//! is always `Unimplemented`. The Rust SDK panics on anything but OK from these calls.

use abi::{BufferType, Status, StreamType};

use crate::host::StreamContext;
use crate::{HeaderMap, HostCx, HostResult, LocalReply, StreamEffect};

/// The effective context's stream, if it is an HTTP stream (`tcp == false`) or a TCP
/// connection (`tcp == true`) as asked.
fn stream(cx: &mut dyn HostCx, tcp: bool) -> Option<&mut StreamContext> {
    cx.host().stream_mut().filter(|s| s.tcp == tcp)
}

/// Applies `Continue` or `Close` of a raw stream type to the effective stream, if it has that
/// direction. What the stream answers to the effect is returned to the plugin.
fn direction(cx: &mut dyn HostCx, stream_type: u32, effect: fn(StreamType) -> StreamEffect) -> HostResult {
    let t = StreamType::from_raw(stream_type).ok_or(Status::BadArgument)?;
    if t == StreamType::Upstream && matches!(effect(t), StreamEffect::Continue(_)) {
        // Envoy's continueStream cannot resume the upstream side of a connection.
        return Err(Status::Unimplemented.into());
    }
    let tcp = matches!(t, StreamType::Downstream | StreamType::Upstream);
    let Some(s) = stream(cx, tcp) else { return Ok(()) };
    s.stream.effect(effect(t))?;
    // Resumed or reset, the direction's buffered data is no longer the plugin's to read.
    let buffer = match t {
        StreamType::HttpRequest => BufferType::HttpRequestBody,
        StreamType::HttpResponse => BufferType::HttpResponseBody,
        StreamType::Downstream => BufferType::DownstreamData,
        StreamType::Upstream => BufferType::UpstreamData,
    };
    *s.phase.data_mut(buffer) = false;
    // Envoy's Context::continueStream lets go of the whole request side for either HTTP
    // direction, and of nothing on the response side (its headers stay readable).
    if !tcp {
        s.phase.request_headers = false;
        s.phase.request_body = false;
        s.phase.request_trailers = false;
    }
    Ok(())
}

/// `proxy_continue_stream` (0.2.x): resumes a paused direction of the effective stream, after
/// the callback returns (the embedder sees the effect).
pub fn proxy_continue_stream(cx: &mut dyn HostCx, stream_type: u32) -> HostResult {
    direction(cx, stream_type, StreamEffect::Continue)
}

/// `proxy_close_stream` (0.2.x): resets a direction of the effective stream (either HTTP
/// direction resets the whole stream; a TCP direction closes the connection).
pub fn proxy_close_stream(cx: &mut dyn HostCx, stream_type: u32) -> HostResult {
    direction(cx, stream_type, StreamEffect::Close)
}

/// `proxy_continue_request` (0.1.0): resumes the request of the effective HTTP stream; OK and
/// nothing without one.
pub fn proxy_continue_request(cx: &mut dyn HostCx) -> HostResult {
    direction(cx, StreamType::HttpRequest.raw(), StreamEffect::Continue)
}

/// `proxy_continue_response` (0.1.0): resumes the response of the effective HTTP stream; OK
/// and nothing without one.
pub fn proxy_continue_response(cx: &mut dyn HostCx) -> HostResult {
    direction(cx, StreamType::HttpResponse.raw(), StreamEffect::Continue)
}

/// `proxy_clear_route_cache` (0.1.0): tells the effective HTTP stream that routing inputs
/// changed; OK and nothing without one (`exports.cc` `clear_route_cache` always answers OK).
pub fn proxy_clear_route_cache(cx: &mut dyn HostCx) -> HostResult {
    if let Some(s) = stream(cx, false) {
        s.stream.effect(StreamEffect::ClearRouteCache)?;
    }
    Ok(())
}

/// The response code details as Envoy keeps them: every space, tab, form feed, vertical tab,
/// newline and carriage return becomes `_` (`StringUtil::replaceAllEmptySpace`).
fn details_text(details: &[u8]) -> String {
    let replaced: Vec<u8> =
        details.iter().map(|&b| if matches!(b, b' ' | b'\t' | 0x0c | 0x0b | b'\n' | b'\r') { b'_' } else { b }).collect();
    String::from_utf8_lossy(&replaced).into_owned()
}

/// `proxy_send_local_response`: replies from the proxy instead of the upstream on the
/// effective HTTP stream, which then ends. Always OK once the three inputs are read
/// (`InvalidMemoryAccess` otherwise), as `exports.cc` `send_local_response` and Envoy's
/// `Context::sendLocalResponse` answer; the Rust SDK panics on anything else.
///
/// Headers that do not decode read as none (`PairsUtil::toPairs`). A `grpc_status` outside
/// 0 to 16 means none (the SDKs pass -1). The details have their white space replaced by `_`.
/// Without an HTTP stream nothing happens. The first reply of a stream wins: a later one does
/// nothing (Envoy queues it, and it finds the response started; the client has the first). A
/// stream that refuses the reply because its response already went downstream is reset
/// instead (Envoy's `DownstreamFilterManager::sendLocalReply`), and the plugin still gets OK.
/// The callback that sent the reply answers stop, whatever it returns.
#[allow(clippy::too_many_arguments)]
pub fn proxy_send_local_response(
    cx: &mut dyn HostCx,
    status_code: u32,
    details_ptr: u64,
    details_size: u64,
    body_ptr: u64,
    body_size: u64,
    headers_ptr: u64,
    headers_size: u64,
    grpc_status: i32,
) -> HostResult {
    let reply = {
        let (mem, host) = cx.parts();
        let details = mem.read(details_ptr, details_size)?;
        let body = mem.read(body_ptr, body_size)?;
        let headers_bytes = mem.read(headers_ptr, headers_size)?;
        let mut headers = HeaderMap::new();
        headers.set_all(abi::decode_map_lenient(headers_bytes, host.map_limits));
        LocalReply {
            status: status_code,
            details: details_text(details),
            body: body.to_vec(),
            headers,
            grpc_status: (0..=16).contains(&grpc_status).then_some(grpc_status),
        }
    };
    // The callback that sent it answers stop, whatever it returns (exports.cc
    // send_local_response: stopNextIteration).
    cx.host().call.reply_sent = true;
    let Some(s) = stream(cx, false) else { return Ok(()) };
    if s.phase.local_reply {
        return Ok(());
    }
    s.phase.local_reply = true;
    if s.stream.effect(StreamEffect::LocalReply(reply)).is_err() {
        let _ = s.stream.effect(StreamEffect::Close(StreamType::HttpResponse));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use abi::{Callback, Status, StreamType};

    use crate::hostcalls::testing::{status, TestCx, MEM, OOB, ROOT, STREAM, TCP};
    use crate::hostcalls::{
        proxy_clear_route_cache, proxy_close_stream, proxy_continue_request, proxy_continue_response,
        proxy_continue_stream, proxy_send_local_response,
    };
    use crate::{HeaderMap, LocalReply, StreamEffect};

    /// A TestCx running a callback on `context`.
    fn on(context: u32) -> TestCx {
        let mut cx = TestCx::new();
        let callback = match context {
            STREAM => Callback::OnRequestHeaders,
            TCP => Callback::OnDownstreamData,
            _ => Callback::OnTick,
        };
        cx.enter(callback, context);
        cx
    }

    #[test]
    fn continue_and_close_act_on_their_family_and_are_ok_elsewhere() {
        // (context, stream type, status, whether the stream gets the effect): Envoy's
        // continueStream and closeStream answer OK for a known type without filter callbacks
        // to act on; resuming UPSTREAM is UNIMPLEMENTED.
        let cases: &[(u32, u32, Status, bool)] = &[
            (STREAM, StreamType::HttpRequest as u32, Status::Ok, true),
            (STREAM, StreamType::HttpResponse as u32, Status::Ok, true),
            (STREAM, StreamType::Downstream as u32, Status::Ok, false),
            (TCP, StreamType::Downstream as u32, Status::Ok, true),
            (TCP, StreamType::HttpRequest as u32, Status::Ok, false),
            (TCP, StreamType::HttpResponse as u32, Status::Ok, false),
            (ROOT, StreamType::HttpRequest as u32, Status::Ok, false),
            (ROOT, StreamType::Downstream as u32, Status::Ok, false),
            (99, StreamType::HttpRequest as u32, Status::Ok, false),
            (STREAM, 4, Status::BadArgument, false),
            (TCP, u32::MAX, Status::BadArgument, false),
        ];
        for &(context, raw, expected, effect) in cases {
            for close in [false, true] {
                let mut cx = on(context);
                let r = if close { proxy_close_stream(&mut cx, raw) } else { proxy_continue_stream(&mut cx, raw) };
                assert_eq!(status(r), expected, "close {close} type {raw} on {context}");
                for stream in [STREAM, TCP] {
                    let effects = cx.stream(stream).effects.clone();
                    if effect && stream == context {
                        let t = StreamType::from_raw(raw).unwrap();
                        let want = if close { StreamEffect::Close(t) } else { StreamEffect::Continue(t) };
                        assert_eq!(effects, vec![want]);
                    } else {
                        assert!(effects.is_empty(), "close {close} type {raw} on {context}");
                    }
                }
            }
        }
        // UPSTREAM: closing works on a TCP connection (OK elsewhere); resuming never does.
        for context in [TCP, STREAM, ROOT] {
            let mut cx = on(context);
            assert_eq!(status(proxy_continue_stream(&mut cx, StreamType::Upstream.raw())), Status::Unimplemented);
            assert_eq!(status(proxy_close_stream(&mut cx, StreamType::Upstream.raw())), Status::Ok);
        }
        let mut cx = on(TCP);
        assert_eq!(status(proxy_close_stream(&mut cx, StreamType::Upstream.raw())), Status::Ok);
        assert_eq!(cx.stream(TCP).effects, vec![StreamEffect::Close(StreamType::Upstream)]);
    }

    #[test]
    fn v010_continue_and_route_cache_act_on_http_streams_and_are_ok_elsewhere() {
        type Call = fn(&mut TestCx) -> Result<i32, crate::Trap>;
        let calls: [(Call, StreamEffect); 3] = [
            (|cx| proxy_continue_request(cx), StreamEffect::Continue(StreamType::HttpRequest)),
            (|cx| proxy_continue_response(cx), StreamEffect::Continue(StreamType::HttpResponse)),
            (|cx| proxy_clear_route_cache(cx), StreamEffect::ClearRouteCache),
        ];
        for (call, effect) in calls {
            let mut cx = on(STREAM);
            assert_eq!(status(call(&mut cx)), Status::Ok, "{effect:?}");
            assert_eq!(cx.stream(STREAM).effects, vec![effect.clone()]);
            for context in [TCP, ROOT, 99] {
                let mut cx = on(context);
                assert_eq!(status(call(&mut cx)), Status::Ok, "{effect:?} on {context}");
            }
            let mut cx = on(TCP);
            let _ = call(&mut cx);
            assert!(cx.stream(TCP).effects.is_empty());
        }
    }

    /// Puts the details, body and headers of a local reply in memory; returns their ranges.
    fn reply_inputs(cx: &mut TestCx) -> [(u64, u64); 3] {
        [
            cx.put(100, b"denied by \xffplugin"),
            cx.put(200, b"go away"),
            cx.put(300, &abi::encode_map(&[("X-Why", "test"), ("x-why", "again")])),
        ]
    }

    #[test]
    fn local_response_records_the_reply_and_ends_the_stream() {
        // A gRPC status outside 0..=16 means none (Envoy's sendLocalResponse).
        for (grpc, want) in [(-1, None), (0, Some(0)), (16, Some(16)), (17, None), (-2, None)] {
            let mut cx = on(STREAM);
            let [(d, dn), (b, bn), (h, hn)] = reply_inputs(&mut cx);
            assert_eq!(status(proxy_send_local_response(&mut cx, 403, d, dn, b, bn, h, hn, grpc)), Status::Ok);
            let reply = LocalReply {
                status: 403,
                // White space becomes `_` (StringUtil::replaceAllEmptySpace).
                details: "denied_by_\u{fffd}plugin".into(),
                body: b"go away".to_vec(),
                headers: HeaderMap::from_pairs([("x-why", "test"), ("x-why", "again")]),
                grpc_status: want,
            };
            assert_eq!(cx.stream(STREAM).effects, vec![StreamEffect::LocalReply(reply)]);
            assert!(cx.phase(STREAM).local_reply);
        }
    }

    #[test]
    fn local_response_accepts_empty_inputs() {
        let mut cx = on(STREAM);
        assert_eq!(status(proxy_send_local_response(&mut cx, 200, 0, 0, 0, 0, 0, 0, -1)), Status::Ok);
        let reply = LocalReply {
            status: 200,
            details: String::new(),
            body: Vec::new(),
            headers: HeaderMap::new(),
            grpc_status: None,
        };
        assert_eq!(cx.stream(STREAM).local_reply(), Some(&reply));
    }

    #[test]
    fn continuing_either_http_direction_lets_go_of_the_request_side() {
        for direction in [StreamType::HttpRequest, StreamType::HttpResponse] {
            let mut cx = on(STREAM);
            let p = cx.phase(STREAM);
            (p.request_headers, p.request_body, p.request_trailers, p.response_headers) = (true, true, true, true);
            assert_eq!(status(proxy_continue_stream(&mut cx, direction.raw())), Status::Ok);
            let p = *cx.phase(STREAM);
            assert!(!p.request_headers && !p.request_body && !p.request_trailers, "{direction}");
            // Envoy's continueStream does not touch the response side's headers.
            assert!(p.response_headers, "{direction}");
        }
    }

    #[test]
    fn a_local_reply_with_malformed_or_oversized_headers_goes_without_them() {
        let mut truncated = abi::encode_map(&[("a", "1")]);
        truncated.pop();
        let too_many = abi::encode_map(&vec![("k", "v"); 1025]);
        for headers in [&truncated[..], &too_many[..], &[5, 0, 0, 0][..]] {
            let mut cx = on(STREAM);
            let [(d, dn), (b, bn), _] = reply_inputs(&mut cx);
            let (h, hn) = cx.put(2000, headers);
            assert_eq!(status(proxy_send_local_response(&mut cx, 403, d, dn, b, bn, h, hn, -1)), Status::Ok);
            let reply = cx.stream(STREAM).local_reply().cloned().expect("a reply");
            assert_eq!((reply.status, reply.headers), (403, HeaderMap::new()));
        }
    }

    #[test]
    fn local_response_refusals() {
        let bad_ranges: &[(u64, u64)] =
            &[(OOB, 1), (MEM - 1, 2), (u64::MAX, 2), (1, u64::MAX), (u64::from(u32::MAX), 1)];
        let mut cases: Vec<(u32, usize, (u64, u64), Status)> = Vec::new();
        for &range in bad_ranges {
            for input in 0..3 {
                // Memory is checked first, even outside an HTTP stream.
                cases.push((STREAM, input, range, Status::InvalidMemoryAccess));
                cases.push((ROOT, input, range, Status::InvalidMemoryAccess));
            }
        }
        for (context, input, range, expected) in cases {
            let mut cx = on(context);
            let mut inputs = reply_inputs(&mut cx);
            inputs[input] = range;
            let [(d, dn), (b, bn), (h, hn)] = inputs;
            let got = status(proxy_send_local_response(&mut cx, 403, d, dn, b, bn, h, hn, -1));
            assert_eq!(got, expected, "input {input} = {range:?} on {context}");
            assert!(cx.stream(STREAM).effects.is_empty());
            assert!(!cx.phase(STREAM).local_reply);
        }
        // Valid inputs outside an HTTP stream: OK, nothing happens.
        for context in [TCP, ROOT, 99] {
            let mut cx = on(context);
            let [(d, dn), (b, bn), (h, hn)] = reply_inputs(&mut cx);
            assert_eq!(status(proxy_send_local_response(&mut cx, 403, d, dn, b, bn, h, hn, -1)), Status::Ok);
            assert!(cx.stream(TCP).effects.is_empty());
            assert!(cx.stream(STREAM).effects.is_empty());
        }
    }

    #[test]
    fn the_first_local_reply_wins() {
        let mut cx = on(STREAM);
        let [(d, dn), (b, bn), (h, hn)] = reply_inputs(&mut cx);
        assert_eq!(status(proxy_send_local_response(&mut cx, 403, d, dn, b, bn, h, hn, -1)), Status::Ok);
        assert_eq!(status(proxy_send_local_response(&mut cx, 500, d, dn, b, bn, h, hn, -1)), Status::Ok);
        let effects = cx.stream(STREAM).effects.clone();
        assert_eq!(effects.len(), 1);
        assert!(matches!(&effects[0], StreamEffect::LocalReply(r) if r.status == 403));
        assert!(cx.host.call.reply_sent);
    }

    #[test]
    fn a_local_reply_after_the_response_started_resets_the_stream_and_is_ok() {
        let mut cx = on(STREAM);
        cx.stream(STREAM).response_started = true;
        let [(d, dn), (b, bn), (h, hn)] = reply_inputs(&mut cx);
        assert_eq!(status(proxy_send_local_response(&mut cx, 403, d, dn, b, bn, h, hn, -1)), Status::Ok);
        // Envoy's sendLocalReply resets a stream whose headers went downstream.
        assert_eq!(cx.stream(STREAM).effects, vec![StreamEffect::Close(StreamType::HttpResponse)]);
        assert!(cx.phase(STREAM).local_reply);
    }
}
