//! Buffers: bodies, TCP data, callout answers, configuration and foreign-function arguments.
//!
//! Which buffer a callback may reach is decided by [`VmHost::buffer`](crate::VmHost), as
//! Envoy's `Context::getBuffer` decides it: bodies, TCP data and gRPC messages read as empty
//! outside their callback; only the plugin configuration (outside `proxy_on_configure`) and a
//! callout's body (outside a successful answer) are `NotFound`.

use abi::{BufferType, Status};

use crate::host::BufferRef;
use crate::{return_bytes, HostCx, HostResult};

/// `proxy_get_buffer_bytes`: returns bytes `start..min(start + max_size, length)` of the buffer;
/// a `start` at or past the end gives nothing, OK (`exports.cc` `get_buffer_bytes`: "don't
/// overread"). The Rust SDK reads bodies at a running offset and panics on anything but OK or
/// NOT_FOUND.
///
/// `BadArgument` for an unknown type or a `start + max_size` that overflows 64 bits (only a
/// native guest can make it; as the C++ host); `NotFound` when the buffer is absent. An empty
/// slice is returned as address 0 and length 0, without calling the allocator.
pub fn proxy_get_buffer_bytes(
    cx: &mut dyn HostCx,
    buffer_type: u32,
    start: u64,
    max_size: u64,
    return_ptr: u64,
    return_size: u64,
) -> HostResult {
    let buffer = BufferType::from_raw(buffer_type).ok_or(Status::BadArgument)?;
    let bytes = {
        let host = cx.host();
        let data: &[u8] = match host.buffer(buffer)? {
            BufferRef::Mutable(b) => b,
            BufferRef::ReadOnly(b) => b,
        };
        let len = data.len() as u64;
        let end = start.checked_add(max_size).ok_or(Status::BadArgument)?;
        // Both are at most `len`, so they fit in usize.
        let range = start.min(len) as usize..end.min(len) as usize;
        data.get(range).map_or_else(Vec::new, <[u8]>::to_vec)
    };
    return_bytes(cx, return_ptr, return_size, &bytes)
}

/// `proxy_set_buffer_bytes`: changes the buffer as Envoy's `Buffer::copyFrom` does: `start` 0
/// drains the first `size` bytes (all of them when `size` is at least the length) and prepends
/// the value, so size 0 prepends and a size of at least the length replaces everything; a
/// `start` at or past the end appends; a write in the middle (`0 < start < length`) is
/// `BadArgument` and changes nothing.
///
/// Checks in the C++ host's order (`exports.cc` `set_buffer_bytes`): an unknown type is
/// `BadArgument`; an absent buffer `NotFound` (before the value is read); the value outside
/// memory `InvalidMemoryAccess`; then a read-only buffer (configuration, callout answers,
/// foreign-function arguments) or one that holds nothing now (a body outside its callback) is
/// `BadArgument`.
pub fn proxy_set_buffer_bytes(
    cx: &mut dyn HostCx,
    buffer_type: u32,
    start: u64,
    size: u64,
    value_ptr: u64,
    value_size: u64,
) -> HostResult {
    let buffer = BufferType::from_raw(buffer_type).ok_or(Status::BadArgument)?;
    let (mem, host) = cx.parts();
    let target = host.buffer(buffer)?;
    let value = mem.read(value_ptr, value_size)?;
    let BufferRef::Mutable(data) = target else { return Err(Status::BadArgument.into()) };
    let len = data.len() as u64;
    if start == 0 {
        // At most `len`, so it fits in usize.
        let drained = size.min(len) as usize;
        data.splice(..drained, value.iter().copied());
    } else if start >= len {
        data.extend_from_slice(value);
    } else {
        return Err(Status::BadArgument.into());
    }
    Ok(())
}

/// `proxy_get_buffer_status`: writes the buffer's length as a word to `return_size` and flags
/// (always 0) as a `u32` to `return_flags`. Both destinations are checked before either is
/// written.
///
/// `BadArgument` for an unknown type; `NotFound` when the buffer is absent (the same rule as
/// [`proxy_get_buffer_bytes`]).
pub fn proxy_get_buffer_status(
    cx: &mut dyn HostCx,
    buffer_type: u32,
    return_size: u64,
    return_flags: u64,
) -> HostResult {
    let buffer = BufferType::from_raw(buffer_type).ok_or(Status::BadArgument)?;
    let (mut mem, host) = cx.parts();
    let len = match host.buffer(buffer)? {
        BufferRef::Mutable(b) => b.len(),
        BufferRef::ReadOnly(b) => b.len(),
    } as u64;
    mem.check_word(return_size)?;
    mem.check(return_flags, 4)?;
    mem.write_word(return_size, len)?;
    mem.write_u32(return_flags, 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use abi::{BufferType, Callback, Status};

    use crate::host::CallData;
    use crate::hostcalls::testing::{status, TestCx, HEAP, MEM, OOB, RET_PTR, RET_SCALAR, RET_SIZE, ROOT, STREAM, TCP};
    use crate::hostcalls::{proxy_get_buffer_bytes, proxy_get_buffer_status, proxy_set_buffer_bytes};
    use crate::HeaderMap;

    /// A context in `proxy_on_request_body` with request body `hello world`.
    fn in_request_body() -> TestCx {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnRequestBody, STREAM);
        cx.phase(STREAM).request_body = true;
        cx.stream(STREAM).request_body = b"hello world".to_vec();
        cx
    }

    const BODY: u32 = BufferType::HttpRequestBody as u32;

    #[test]
    fn get_bytes_returns_the_requested_slice() {
        let cases: &[(u64, u64, &[u8])] = &[
            (0, 11, b"hello world"),
            (0, 5, b"hello"),
            (6, 100, b"world"),
            (6, u64::MAX - 6, b"world"),
            (3, 2, b"lo"),
            (10, 1, b"d"),
        ];
        for &(start, max, want) in cases {
            let mut cx = in_request_body();
            assert_eq!(status(proxy_get_buffer_bytes(&mut cx, BODY, start, max, RET_PTR, RET_SIZE)), Status::Ok);
            assert_eq!(cx.returned(RET_PTR, RET_SIZE), want, "start {start} max {max}");
            assert_eq!(u64::from(cx.u32_at(RET_PTR)), HEAP);
        }
    }

    #[test]
    fn get_bytes_returns_an_empty_slice_as_null_without_allocating() {
        for (start, max) in [(11, 5), (0, 0), (4, 0)] {
            let mut cx = in_request_body();
            cx.put(RET_PTR, &[0xaa; 16]);
            assert_eq!(status(proxy_get_buffer_bytes(&mut cx, BODY, start, max, RET_PTR, RET_SIZE)), Status::Ok);
            assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
            assert_eq!(cx.allocations, 0);
        }
    }

    #[test]
    fn get_bytes_reaches_every_buffer_in_its_callback() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnResponseBody, STREAM);
        cx.phase(STREAM).response_body = true;
        cx.stream(STREAM).response_body = b"resp".to_vec();
        let get = |cx: &mut TestCx, t: BufferType| {
            assert_eq!(status(proxy_get_buffer_bytes(cx, t.raw(), 0, 100, RET_PTR, RET_SIZE)), Status::Ok, "{t}");
            cx.returned(RET_PTR, RET_SIZE)
        };
        assert_eq!(get(&mut cx, BufferType::HttpResponseBody), b"resp");

        cx.enter(Callback::OnDownstreamData, TCP);
        cx.phase(TCP).downstream_data = true;
        cx.phase(TCP).upstream_data = true;
        cx.stream(TCP).downstream_data = b"down".to_vec();
        cx.stream(TCP).upstream_data = b"up".to_vec();
        assert_eq!(get(&mut cx, BufferType::DownstreamData), b"down");
        assert_eq!(get(&mut cx, BufferType::UpstreamData), b"up");

        cx.enter(Callback::OnHttpCallResponse, ROOT);
        cx.set_data(CallData::HttpCallResponse {
            headers: HeaderMap::new(),
            body: b"call body".to_vec(),
            trailers: HeaderMap::new(),
        });
        assert_eq!(get(&mut cx, BufferType::HttpCallResponseBody), b"call body");

        cx.enter(Callback::OnGrpcReceive, ROOT);
        cx.set_data(CallData::GrpcMessage(b"grpc".to_vec()));
        assert_eq!(get(&mut cx, BufferType::GrpcReceiveBuffer), b"grpc");

        cx.enter(Callback::OnForeignFunction, ROOT);
        cx.set_data(CallData::ForeignArguments(b"args".to_vec()));
        assert_eq!(get(&mut cx, BufferType::ForeignFunctionArguments), b"args");

        cx.enter(Callback::OnVmStart, ROOT);
        assert_eq!(get(&mut cx, BufferType::VmConfiguration), b"vm-config");

        cx.enter(Callback::OnConfigure, ROOT);
        assert_eq!(get(&mut cx, BufferType::PluginConfiguration), b"plugin-config");
    }

    /// (callback, context, buffer type): buffers that exist but hold nothing here, so read as
    /// empty (Envoy's `getBuffer` with no instance) and refuse writes.
    const EMPTY_HERE: &[(Callback, u32, u32)] = &[
        // The body has not arrived in the request headers callback.
        (Callback::OnRequestHeaders, STREAM, BufferType::HttpRequestBody as u32),
        (Callback::OnRequestHeaders, STREAM, BufferType::HttpResponseBody as u32),
        // HTTP streams have no TCP data, TCP streams no bodies.
        (Callback::OnRequestBody, STREAM, BufferType::DownstreamData as u32),
        (Callback::OnDownstreamData, TCP, BufferType::HttpRequestBody as u32),
        // Stream buffers from a root context; a gRPC message or foreign-function arguments
        // outside their callbacks.
        (Callback::OnTick, ROOT, BufferType::HttpRequestBody as u32),
        (Callback::OnTick, ROOT, BufferType::UpstreamData as u32),
        (Callback::OnTick, ROOT, BufferType::GrpcReceiveBuffer as u32),
        (Callback::OnTick, ROOT, BufferType::ForeignFunctionArguments as u32),
        (Callback::OnLog, STREAM, BufferType::HttpResponseBody as u32),
    ];

    /// (callback, context, buffer type): the only buffers that can be absent (`NotFound`).
    const ABSENT: &[(Callback, u32, u32)] = &[
        (Callback::OnTick, ROOT, BufferType::HttpCallResponseBody as u32),
        (Callback::OnRequestBody, STREAM, BufferType::HttpCallResponseBody as u32),
        (Callback::OnVmStart, ROOT, BufferType::PluginConfiguration as u32),
        (Callback::OnRequestHeaders, STREAM, BufferType::PluginConfiguration as u32),
        (Callback::OnTick, ROOT, BufferType::PluginConfiguration as u32),
    ];

    /// Sets up `callback` on `context`, with the request body present in the body callback and
    /// downstream data present in the data callback.
    fn enter(callback: Callback, context: u32) -> TestCx {
        let mut cx = TestCx::new();
        cx.enter(callback, context);
        cx.stream(STREAM).request_body = b"body".to_vec();
        cx.stream(STREAM).response_body = b"resp".to_vec();
        cx.stream(TCP).upstream_data = b"up".to_vec();
        if callback == Callback::OnRequestBody {
            cx.phase(STREAM).request_body = true;
        }
        if callback == Callback::OnDownstreamData {
            cx.phase(TCP).downstream_data = true;
            cx.stream(TCP).downstream_data = b"x".to_vec();
        }
        cx
    }

    #[test]
    fn buffers_that_hold_nothing_here_read_as_empty_and_refuse_writes() {
        for &(callback, context, t) in EMPTY_HERE {
            let mut cx = enter(callback, context);
            let what = format!("{callback} on {context}, buffer {t}");
            cx.put(RET_PTR, &[0xaa; 16]);
            assert_eq!(status(proxy_get_buffer_bytes(&mut cx, t, 0, 10, RET_PTR, RET_SIZE)), Status::Ok, "{what}");
            assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0), "{what}");
            assert_eq!(status(proxy_get_buffer_status(&mut cx, t, RET_PTR, RET_SCALAR)), Status::Ok, "{what}");
            assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SCALAR)), (0, 0), "{what}");
            let (p, n) = cx.put(100, b"x");
            assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 0, p, n)), Status::BadArgument, "{what}");
            assert_eq!(cx.allocations, 0);
        }
        // Nothing changed behind the plugin's back.
        let mut cx = enter(Callback::OnTick, ROOT);
        let (p, n) = cx.put(100, b"x");
        let _ = proxy_set_buffer_bytes(&mut cx, BufferType::HttpRequestBody.raw(), 0, 0, p, n);
        assert_eq!(cx.stream(STREAM).request_body, b"body");
    }

    #[test]
    fn absent_buffers_are_not_found_and_unknown_types_bad_arguments() {
        for &(callback, context, t) in ABSENT {
            let mut cx = enter(callback, context);
            let what = format!("{callback} on {context}, buffer {t}");
            assert_eq!(status(proxy_get_buffer_bytes(&mut cx, t, 0, 1, RET_PTR, RET_SIZE)), Status::NotFound, "{what}");
            // Absent before the value is read (exports.cc set_buffer_bytes).
            assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 0, OOB, 1)), Status::NotFound, "{what}");
            assert_eq!(status(proxy_get_buffer_status(&mut cx, t, RET_PTR, RET_SCALAR)), Status::NotFound, "{what}");
            assert_eq!(cx.allocations, 0);
        }
        for t in [9, 100, u32::MAX] {
            let mut cx = in_request_body();
            assert_eq!(status(proxy_get_buffer_bytes(&mut cx, t, 0, 1, RET_PTR, RET_SIZE)), Status::BadArgument);
            assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 0, 100, 1)), Status::BadArgument);
            assert_eq!(status(proxy_get_buffer_status(&mut cx, t, RET_PTR, RET_SCALAR)), Status::BadArgument);
            // The type is checked before memory.
            assert_eq!(status(proxy_get_buffer_bytes(&mut cx, t, 0, 1, OOB, OOB)), Status::BadArgument);
            assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 0, OOB, 1)), Status::BadArgument);
            assert_eq!(status(proxy_get_buffer_status(&mut cx, t, OOB, OOB)), Status::BadArgument);
        }
    }

    #[test]
    fn a_failed_callout_has_no_body_and_no_maps() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnHttpCallResponse, ROOT);
        cx.set_data(CallData::HttpCallFailure);
        let t = BufferType::HttpCallResponseBody.raw();
        assert_eq!(status(proxy_get_buffer_bytes(&mut cx, t, 0, 10, RET_PTR, RET_SIZE)), Status::NotFound);
        assert_eq!(status(proxy_get_buffer_status(&mut cx, t, RET_PTR, RET_SCALAR)), Status::NotFound);
        let (k, kn) = cx.put(100, b":status");
        let headers = abi::MapType::HttpCallResponseHeaders.raw();
        let got = crate::hostcalls::proxy_get_header_map_value(&mut cx, headers, k, kn, RET_PTR, RET_SIZE);
        assert_eq!(status(got), Status::BadArgument);
        let got = crate::hostcalls::proxy_get_header_map_pairs(&mut cx, headers, RET_PTR, RET_SIZE);
        assert_eq!(status(got), Status::Ok);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
    }

    #[test]
    fn the_vm_configuration_is_there_in_every_callback() {
        for (callback, context) in [(Callback::OnTick, ROOT), (Callback::OnRequestHeaders, STREAM), (Callback::OnConfigure, ROOT)] {
            let mut cx = enter(callback, context);
            let t = BufferType::VmConfiguration.raw();
            assert_eq!(status(proxy_get_buffer_bytes(&mut cx, t, 0, 100, RET_PTR, RET_SIZE)), Status::Ok, "{callback}");
            assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"vm-config");
        }
    }

    #[test]
    fn get_bytes_past_the_end_is_ok_and_empty() {
        // The SDK's running offset reads past a chunk: OK with nothing (exports.cc: "don't
        // overread"), never BAD_ARGUMENT.
        for (start, max) in [(12, 1), (100, 0), (u64::from(u32::MAX), 10), (4_294_967_280, 32)] {
            let mut cx = in_request_body();
            cx.put(RET_PTR, &[0xaa; 16]);
            let got = status(proxy_get_buffer_bytes(&mut cx, BODY, start, max, RET_PTR, RET_SIZE));
            assert_eq!(got, Status::Ok, "start {start} max {max}");
            assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
            assert_eq!(cx.allocations, 0);
        }
    }

    #[test]
    fn get_bytes_refuses_overflow_and_bad_memory() {
        let cases: &[(u64, u64, u64, u64, Status)] = &[
            // start + max_size overflowing 64 bits (a native guest).
            (u64::MAX, 1, RET_PTR, RET_SIZE, Status::BadArgument),
            (1, u64::MAX, RET_PTR, RET_SIZE, Status::BadArgument),
            (u64::MAX, u64::MAX, RET_PTR, RET_SIZE, Status::BadArgument),
            // Return pointers outside memory.
            (0, 5, OOB, RET_SIZE, Status::InvalidMemoryAccess),
            (0, 5, RET_PTR, OOB, Status::InvalidMemoryAccess),
            (0, 5, MEM - 3, RET_SIZE, Status::InvalidMemoryAccess),
            (0, 5, RET_PTR, u64::MAX - 1, Status::InvalidMemoryAccess),
            // An empty result still needs valid return pointers.
            (11, 0, OOB, RET_SIZE, Status::InvalidMemoryAccess),
            (12, 1, RET_PTR, OOB, Status::InvalidMemoryAccess),
        ];
        for &(start, max, ret_ptr, ret_size, expected) in cases {
            let mut cx = in_request_body();
            let got = status(proxy_get_buffer_bytes(&mut cx, BODY, start, max, ret_ptr, ret_size));
            assert_eq!(got, expected, "start {start} max {max} ret {ret_ptr} {ret_size}");
            assert_eq!(cx.allocations, 0);
        }
    }

    #[test]
    fn get_bytes_reports_allocator_faults() {
        for answer in [0, MEM - 4, u64::MAX - 1] {
            let mut cx = in_request_body();
            cx.alloc_answer = Some(answer);
            let got = status(proxy_get_buffer_bytes(&mut cx, BODY, 0, 5, RET_PTR, RET_SIZE));
            assert_eq!(got, Status::InvalidMemoryAccess, "allocator answered {answer}");
        }
        let mut cx = in_request_body();
        cx.alloc_traps = true;
        let trap = proxy_get_buffer_bytes(&mut cx, BODY, 0, 5, RET_PTR, RET_SIZE).unwrap_err();
        assert_eq!(trap.message, "allocator trapped");
    }

    #[test]
    fn set_bytes_prepends_appends_or_replaces_as_envoy_buffer_copy_from() {
        // (start, size, value, result) on "hello world": start 0 drains `size` bytes and
        // prepends; a start at or past the end appends (Envoy's Buffer::copyFrom).
        let cases: &[(u64, u64, &[u8], &[u8])] = &[
            (0, 0, b">> ", b">> hello world"),
            (11, 0, b"!", b"hello world!"),
            (11, 5, b"!", b"hello world!"),
            (500, 0, b"!", b"hello world!"),
            (u64::MAX, u64::MAX, b"!", b"hello world!"),
            (0, 11, b"bye", b"bye"),
            (0, 1000, b"bye", b"bye"),
            (0, u64::MAX, b"", b""),
            (0, 6, b"", b"world"),
            (0, 5, b"HELLO", b"HELLO world"),
        ];
        for &(start, size, value, want) in cases {
            let mut cx = in_request_body();
            let (p, n) = cx.put(100, value);
            assert_eq!(status(proxy_set_buffer_bytes(&mut cx, BODY, start, size, p, n)), Status::Ok);
            assert_eq!(cx.stream(STREAM).request_body, want, "start {start} size {size}");
        }
        // A write in the middle is refused and changes nothing.
        for (start, size) in [(6, 5), (6, u64::MAX), (5, 0), (1, 5), (10, 1)] {
            let mut cx = in_request_body();
            let (p, n) = cx.put(100, b"x");
            assert_eq!(status(proxy_set_buffer_bytes(&mut cx, BODY, start, size, p, n)), Status::BadArgument);
            assert_eq!(cx.stream(STREAM).request_body, b"hello world", "start {start} size {size}");
        }
    }

    #[test]
    fn set_bytes_changes_tcp_data() {
        let mut cx = enter(Callback::OnDownstreamData, TCP);
        let (p, n) = cx.put(100, b"yz");
        let t = BufferType::DownstreamData.raw();
        assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 1, 0, p, n)), Status::Ok);
        assert_eq!(cx.stream(TCP).downstream_data, b"xyz");
        assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 1, p, n)), Status::Ok);
        assert_eq!(cx.stream(TCP).downstream_data, b"yzyz");
    }

    #[test]
    fn set_bytes_refuses_read_only_buffers_and_bad_memory() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnVmStart, ROOT);
        let (p, n) = cx.put(100, b"new");
        let t = BufferType::VmConfiguration.raw();
        assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 0, p, n)), Status::BadArgument);
        assert_eq!(cx.host.vm_configuration, b"vm-config");

        // A gRPC message is the plugin's to change in its callback (Envoy hands its own buffer).
        cx.enter(Callback::OnGrpcReceive, ROOT);
        cx.set_data(CallData::GrpcMessage(b"m".to_vec()));
        let t = BufferType::GrpcReceiveBuffer.raw();
        assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 0, p, n)), Status::Ok);
        let CallData::GrpcMessage(m) = &cx.host.call.data else { panic!("the message went") };
        assert_eq!(m, b"newm");

        // Read-only buffers: the value is read first (InvalidMemoryAccess), then refused.
        cx.enter(Callback::OnTick, ROOT);
        let t = BufferType::VmConfiguration.raw();
        assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 0, OOB, 1)), Status::InvalidMemoryAccess);
        assert_eq!(status(proxy_set_buffer_bytes(&mut cx, t, 0, 0, p, n)), Status::BadArgument);

        for (ptr, len) in
            [(OOB, 1), (MEM - 1, 2), (u64::MAX, 2), (1, u64::MAX), (u64::from(u32::MAX), u64::from(u32::MAX))]
        {
            let mut cx = in_request_body();
            assert_eq!(status(proxy_set_buffer_bytes(&mut cx, BODY, 0, 0, ptr, len)), Status::InvalidMemoryAccess);
            assert_eq!(cx.stream(STREAM).request_body, b"hello world");
        }
    }

    #[test]
    fn buffer_status_writes_length_and_flags() {
        let mut cx = in_request_body();
        cx.put(RET_SCALAR, &[0xaa; 4]);
        assert_eq!(status(proxy_get_buffer_status(&mut cx, BODY, RET_SIZE, RET_SCALAR)), Status::Ok);
        assert_eq!(cx.u32_at(RET_SIZE), 11);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);

        cx.enter(Callback::OnConfigure, ROOT);
        let t = BufferType::PluginConfiguration.raw();
        assert_eq!(status(proxy_get_buffer_status(&mut cx, t, RET_SIZE, RET_SCALAR)), Status::Ok);
        assert_eq!(cx.u32_at(RET_SIZE), 13);
    }

    #[test]
    fn buffer_status_checks_both_destinations_before_writing() {
        for (ret_size, ret_flags) in [(OOB, RET_SCALAR), (RET_SIZE, OOB), (MEM - 2, RET_SCALAR), (RET_SIZE, u64::MAX)] {
            let mut cx = in_request_body();
            cx.put(RET_SIZE, &[0xaa; 4]);
            cx.put(RET_SCALAR, &[0xaa; 4]);
            assert_eq!(
                status(proxy_get_buffer_status(&mut cx, BODY, ret_size, ret_flags)),
                Status::InvalidMemoryAccess
            );
            assert_eq!((cx.u32_at(RET_SIZE), cx.u32_at(RET_SCALAR)), (0xaaaa_aaaa, 0xaaaa_aaaa));
        }
    }
}
