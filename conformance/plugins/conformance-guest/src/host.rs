//! The host functions as the guest imports them, and thin wrappers that return the raw status
//! with any value handed back. Enum arguments stay raw `u32`s so that scenarios can pass values
//! the ABI does not define.

use std::ptr::null_mut;

pub use guest_abi::*;
use guest_abi::sys::*;

/// Takes ownership of bytes the host allocated through `proxy_on_memory_allocate`.
fn owned(ptr: *mut u8, size: usize) -> Vec<u8> {
    if ptr.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host copied `size` bytes into a block our allocator made for exactly `size`
    // bytes (a Vec's capacity, see `crate::proxy_on_memory_allocate`), and gave it to us.
    unsafe { Vec::from_raw_parts(ptr, size, size) }
}

/// A status with bytes the host handed back (empty unless OK).
pub type Bytes = (u32, Vec<u8>);

macro_rules! returning_bytes {
    ($call:ident($($arg:expr),*)) => {{
        let (mut ptr, mut size) = (null_mut(), 0usize);
        // SAFETY: the out-pointers point at our locals; every input pointer comes with its
        // slice's length.
        let status = unsafe { $call($($arg,)* &mut ptr, &mut size) };
        (status, owned(ptr, size))
    }};
}

pub fn log(level: u32, message: &str) -> u32 {
    // SAFETY: pointer and length describe `message`.
    unsafe { proxy_log(level, message.as_ptr(), message.len()) }
}

pub fn get_log_level() -> (u32, u32) {
    let mut level = 0;
    // SAFETY: the out-pointer points at a local.
    let s = unsafe { proxy_get_log_level(&mut level) };
    (s, level)
}

pub fn current_time() -> (u32, u64) {
    let mut t = 0;
    // SAFETY: the out-pointer points at a local.
    let s = unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    (s, t)
}

pub fn set_tick_period(ms: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_set_tick_period_milliseconds(ms) }
}

pub fn get_buffer(t: u32, start: usize, max: usize) -> Bytes {
    returning_bytes!(proxy_get_buffer_bytes(t, start, max))
}

pub fn set_buffer(t: u32, start: usize, size: usize, value: &[u8]) -> u32 {
    // SAFETY: pointer and length describe `value`.
    unsafe { proxy_set_buffer_bytes(t, start, size, value.as_ptr(), value.len()) }
}

/// The status, then the buffer's (size, flags).
pub fn buffer_status(t: u32) -> (u32, (usize, u32)) {
    let (mut size, mut flags) = (0, 0);
    // SAFETY: the out-pointers point at locals.
    let s = unsafe { proxy_get_buffer_status(t, &mut size, &mut flags) };
    (s, (size, flags))
}

pub fn map_size(t: u32) -> (u32, usize) {
    let mut size = 0;
    // SAFETY: the out-pointer points at a local.
    let s = unsafe { proxy_get_header_map_size(t, &mut size) };
    (s, size)
}

pub fn map_pairs(t: u32) -> Bytes {
    returning_bytes!(proxy_get_header_map_pairs(t))
}

pub fn set_map_pairs(t: u32, map: &[u8]) -> u32 {
    // SAFETY: pointer and length describe `map`.
    unsafe { proxy_set_header_map_pairs(t, map.as_ptr(), map.len()) }
}

pub fn map_value(t: u32, key: &str) -> Bytes {
    returning_bytes!(proxy_get_header_map_value(t, key.as_ptr(), key.len()))
}

pub fn add_map_value(t: u32, key: &str, value: &str) -> u32 {
    // SAFETY: pointers and lengths describe `key` and `value`.
    unsafe { proxy_add_header_map_value(t, key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
}

pub fn replace_map_value(t: u32, key: &str, value: &str) -> u32 {
    // SAFETY: pointers and lengths describe `key` and `value`.
    unsafe { proxy_replace_header_map_value(t, key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
}

pub fn remove_map_value(t: u32, key: &str) -> u32 {
    // SAFETY: pointer and length describe `key`.
    unsafe { proxy_remove_header_map_value(t, key.as_ptr(), key.len()) }
}

pub fn continue_stream(t: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_continue_stream(t) }
}

pub fn close_stream(t: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_close_stream(t) }
}

pub fn send_local_response(status: u32, details: &str, body: &str, headers: &[u8], grpc_status: i32) -> u32 {
    // SAFETY: pointers and lengths describe the three slices.
    unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            grpc_status,
        )
    }
}

/// The status, then the call's (code, message).
pub fn get_status() -> (u32, (u32, Vec<u8>)) {
    let mut code = 0;
    let (s, message) = returning_bytes!(proxy_get_status(&mut code));
    (s, (code, message))
}

pub fn http_call(upstream: &str, headers: &[u8], body: &str, trailers: &[u8], timeout_ms: u32) -> (u32, u32) {
    http_call_with_slot(upstream, headers, body, trailers, timeout_ms, 0)
}

/// [`http_call`] with the id's slot holding `slot` before the call: the status, and what the
/// slot holds after it.
pub fn http_call_with_slot(upstream: &str, headers: &[u8], body: &str, trailers: &[u8], timeout_ms: u32, slot: u32) -> (u32, u32) {
    let mut id = slot;
    // SAFETY: pointers and lengths describe the slices; the out-pointer points at a local.
    let s = unsafe {
        proxy_http_call(
            upstream.as_ptr(),
            upstream.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut id,
        )
    };
    (s, id)
}

pub fn grpc_call(upstream: &str, service: &str, method: &str, metadata: &[u8], message: &str, timeout_ms: u32) -> (u32, u32) {
    let mut id = 0;
    // SAFETY: pointers and lengths describe the slices; the out-pointer points at a local.
    let s = unsafe {
        proxy_grpc_call(
            upstream.as_ptr(),
            upstream.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            message.as_ptr(),
            message.len(),
            timeout_ms,
            &mut id,
        )
    };
    (s, id)
}

pub fn grpc_stream(upstream: &str, service: &str, method: &str, metadata: &[u8]) -> (u32, u32) {
    let mut id = 0;
    // SAFETY: pointers and lengths describe the slices; the out-pointer points at a local.
    let s = unsafe {
        proxy_grpc_stream(
            upstream.as_ptr(),
            upstream.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            &mut id,
        )
    };
    (s, id)
}

pub fn grpc_send(id: u32, message: &str, end_stream: bool) -> u32 {
    // SAFETY: pointer and length describe `message`.
    unsafe { proxy_grpc_send(id, message.as_ptr(), message.len(), u32::from(end_stream)) }
}

pub fn grpc_cancel(id: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_grpc_cancel(id) }
}

pub fn grpc_close(id: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_grpc_close(id) }
}

pub fn get_shared_data(key: &str) -> (u32, Vec<u8>, u32) {
    let (mut ptr, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: the out-pointers point at locals; the key's pointer comes with its length.
    let s = unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut size, &mut cas) };
    (s, owned(ptr, size), cas)
}

pub fn set_shared_data(key: &str, value: &str, cas: u32) -> u32 {
    // SAFETY: pointers and lengths describe `key` and `value`.
    unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) }
}

pub fn register_queue(name: impl AsRef<[u8]>) -> (u32, u32) {
    let name = name.as_ref();
    let mut id = 0;
    // SAFETY: pointer and length describe `name`; the out-pointer points at a local.
    let s = unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) };
    (s, id)
}

pub fn resolve_queue(vm_id: &str, name: impl AsRef<[u8]>) -> (u32, u32) {
    let name = name.as_ref();
    let mut id = 0;
    // SAFETY: pointers and lengths describe the slices; the out-pointer points at a local.
    let s = unsafe { proxy_resolve_shared_queue(vm_id.as_ptr(), vm_id.len(), name.as_ptr(), name.len(), &mut id) };
    (s, id)
}

pub fn enqueue(id: u32, value: &str) -> u32 {
    // SAFETY: pointer and length describe `value`.
    unsafe { proxy_enqueue_shared_queue(id, value.as_ptr(), value.len()) }
}

pub fn dequeue(id: u32) -> Bytes {
    returning_bytes!(proxy_dequeue_shared_queue(id))
}

pub fn define_metric(t: u32, name: impl AsRef<[u8]>) -> (u32, u32) {
    let name = name.as_ref();
    let mut id = 0;
    // SAFETY: pointer and length describe `name`; the out-pointer points at a local.
    let s = unsafe { proxy_define_metric(t, name.as_ptr(), name.len(), &mut id) };
    (s, id)
}

pub fn increment_metric(id: u32, delta: i64) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_increment_metric(id, delta) }
}

pub fn record_metric(id: u32, value: u64) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_record_metric(id, value) }
}

pub fn get_metric(id: u32) -> (u32, u64) {
    let mut v = 0;
    // SAFETY: the out-pointer points at a local.
    let s = unsafe { proxy_get_metric(id, &mut v) };
    (s, v)
}

pub fn get_property(path: &[u8]) -> Bytes {
    returning_bytes!(proxy_get_property(path.as_ptr(), path.len()))
}

pub fn set_property(path: &[u8], value: &[u8]) -> u32 {
    // SAFETY: pointers and lengths describe the slices.
    unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) }
}

pub fn set_effective_context(id: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_set_effective_context(id) }
}

pub fn done() -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_done() }
}

pub fn call_foreign(name: impl AsRef<[u8]>, args: &[u8]) -> Bytes {
    let name = name.as_ref();
    returning_bytes!(proxy_call_foreign_function(name.as_ptr(), name.len(), args.as_ptr(), args.len()))
}

/// [`call_foreign`] with both return pointers 0: the result is not wanted.
pub fn call_foreign_unwanted(name: &str, args: &[u8]) -> u32 {
    // SAFETY: pointers and lengths describe the slices; null return pointers are the ABI's
    // "not wanted", which the host must not write through.
    unsafe { proxy_call_foreign_function(name.as_ptr(), name.len(), args.as_ptr(), args.len(), null_mut(), null_mut()) }
}

