//! The Proxy-Wasm ABI 0.2.1 as our raw-ABI guest plugins import it (the conformance guest, the
//! bench guest, the minimal raw plugin): every host function of the `env` module, and the
//! numbers they take and return. Declared once here, so the guests cannot drift apart.
//!
//! Pointers and sizes are `usize`: 32-bit in a wasm32 module, 64-bit natively, where the Null
//! VM provides these symbols. Enum arguments stay raw `u32`s, so a guest can pass values the
//! ABI does not define.

#![no_std]
#![allow(missing_docs)]

extern crate alloc;

use alloc::vec::Vec;

/// Statuses, as the ABI numbers them.
pub const OK: u32 = 0;
pub const NOT_FOUND: u32 = 1;
pub const BAD_ARGUMENT: u32 = 2;
pub const SERIALIZATION_FAILURE: u32 = 3;
pub const PARSE_FAILURE: u32 = 4;
pub const EMPTY: u32 = 7;
pub const CAS_MISMATCH: u32 = 8;
pub const UNIMPLEMENTED: u32 = 12;

/// Log levels.
pub const INFO: u32 = 2;
pub const CRITICAL: u32 = 5;

/// Map types.
pub const REQUEST_HEADERS: u32 = 0;
pub const REQUEST_TRAILERS: u32 = 1;
pub const RESPONSE_HEADERS: u32 = 2;
pub const RESPONSE_TRAILERS: u32 = 3;
pub const GRPC_INITIAL_METADATA: u32 = 4;
pub const GRPC_TRAILING_METADATA: u32 = 5;
pub const CALL_RESPONSE_HEADERS: u32 = 6;
pub const CALL_RESPONSE_TRAILERS: u32 = 7;

/// Buffer types.
pub const REQUEST_BODY: u32 = 0;
pub const RESPONSE_BODY: u32 = 1;
pub const DOWNSTREAM_DATA: u32 = 2;
pub const UPSTREAM_DATA: u32 = 3;
pub const CALL_RESPONSE_BODY: u32 = 4;
pub const GRPC_MESSAGE: u32 = 5;
pub const VM_CONFIGURATION: u32 = 6;
pub const PLUGIN_CONFIGURATION: u32 = 7;
pub const FOREIGN_ARGUMENTS: u32 = 8;

/// Stream types.
pub const HTTP_REQUEST: u32 = 0;
pub const HTTP_RESPONSE: u32 = 1;
pub const DOWNSTREAM: u32 = 2;
pub const UPSTREAM: u32 = 3;

/// Metric types.
pub const COUNTER: u32 = 0;
pub const GAUGE: u32 = 1;
pub const HISTOGRAM: u32 = 2;

/// Actions.
pub const CONTINUE: u32 = 0;
pub const PAUSE: u32 = 1;

/// Serializes a header map as the ABI does: the pair count, each key and value length (all
/// little-endian u32), then each key and value followed by a 0 byte.
pub fn encode_map(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// The host functions, as imported from the `env` module.
pub mod sys {
    #[cfg_attr(target_arch = "wasm32", link(wasm_import_module = "env"))]
    extern "C" {
        pub fn proxy_log(level: u32, message: *const u8, size: usize) -> u32;
        pub fn proxy_get_log_level(level: *mut u32) -> u32;
        pub fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
        pub fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub fn proxy_get_buffer_bytes(t: u32, start: usize, max: usize, ptr: *mut *mut u8, size: *mut usize) -> u32;
        pub fn proxy_set_buffer_bytes(t: u32, start: usize, size: usize, value: *const u8, value_size: usize) -> u32;
        pub fn proxy_get_buffer_status(t: u32, size: *mut usize, flags: *mut u32) -> u32;
        pub fn proxy_get_header_map_size(t: u32, size: *mut usize) -> u32;
        pub fn proxy_get_header_map_pairs(t: u32, ptr: *mut *mut u8, size: *mut usize) -> u32;
        pub fn proxy_set_header_map_pairs(t: u32, map: *const u8, size: usize) -> u32;
        pub fn proxy_get_header_map_value(t: u32, key: *const u8, key_size: usize, ptr: *mut *mut u8, size: *mut usize) -> u32;
        pub fn proxy_add_header_map_value(t: u32, key: *const u8, key_size: usize, value: *const u8, value_size: usize) -> u32;
        pub fn proxy_replace_header_map_value(t: u32, key: *const u8, key_size: usize, value: *const u8, value_size: usize)
            -> u32;
        pub fn proxy_remove_header_map_value(t: u32, key: *const u8, key_size: usize) -> u32;
        pub fn proxy_continue_stream(t: u32) -> u32;
        pub fn proxy_close_stream(t: u32) -> u32;
        pub fn proxy_send_local_response(
            status: u32,
            details: *const u8,
            details_size: usize,
            body: *const u8,
            body_size: usize,
            headers: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub fn proxy_get_status(code: *mut u32, ptr: *mut *mut u8, size: *mut usize) -> u32;
        pub fn proxy_http_call(
            upstream: *const u8,
            upstream_size: usize,
            headers: *const u8,
            headers_size: usize,
            body: *const u8,
            body_size: usize,
            trailers: *const u8,
            trailers_size: usize,
            timeout_ms: u32,
            call_id: *mut u32,
        ) -> u32;
        pub fn proxy_grpc_call(
            upstream: *const u8,
            upstream_size: usize,
            service: *const u8,
            service_size: usize,
            method: *const u8,
            method_size: usize,
            metadata: *const u8,
            metadata_size: usize,
            message: *const u8,
            message_size: usize,
            timeout_ms: u32,
            call_id: *mut u32,
        ) -> u32;
        pub fn proxy_grpc_stream(
            upstream: *const u8,
            upstream_size: usize,
            service: *const u8,
            service_size: usize,
            method: *const u8,
            method_size: usize,
            metadata: *const u8,
            metadata_size: usize,
            stream_id: *mut u32,
        ) -> u32;
        pub fn proxy_grpc_send(stream_id: u32, message: *const u8, message_size: usize, end_stream: u32) -> u32;
        pub fn proxy_grpc_cancel(id: u32) -> u32;
        pub fn proxy_grpc_close(id: u32) -> u32;
        pub fn proxy_get_shared_data(key: *const u8, key_size: usize, ptr: *mut *mut u8, size: *mut usize, cas: *mut u32) -> u32;
        pub fn proxy_set_shared_data(key: *const u8, key_size: usize, value: *const u8, value_size: usize, cas: u32) -> u32;
        pub fn proxy_register_shared_queue(name: *const u8, name_size: usize, id: *mut u32) -> u32;
        pub fn proxy_resolve_shared_queue(vm_id: *const u8, vm_id_size: usize, name: *const u8, name_size: usize, id: *mut u32)
            -> u32;
        pub fn proxy_enqueue_shared_queue(id: u32, value: *const u8, value_size: usize) -> u32;
        pub fn proxy_dequeue_shared_queue(id: u32, ptr: *mut *mut u8, size: *mut usize) -> u32;
        pub fn proxy_define_metric(t: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
        pub fn proxy_increment_metric(id: u32, delta: i64) -> u32;
        pub fn proxy_record_metric(id: u32, value: u64) -> u32;
        pub fn proxy_get_metric(id: u32, value: *mut u64) -> u32;
        pub fn proxy_get_property(path: *const u8, path_size: usize, ptr: *mut *mut u8, size: *mut usize) -> u32;
        pub fn proxy_set_property(path: *const u8, path_size: usize, value: *const u8, value_size: usize) -> u32;
        pub fn proxy_set_effective_context(context_id: u32) -> u32;
        pub fn proxy_done() -> u32;
        pub fn proxy_call_foreign_function(
            name: *const u8,
            name_size: usize,
            args: *const u8,
            args_size: usize,
            ptr: *mut *mut u8,
            size: *mut usize,
        ) -> u32;
    }
}
