//! The benchmarks' guest plugin, on the raw Proxy-Wasm ABI 0.2.1 without the SDK (so the guest
//! side of each workload is small and the same on every engine). The plugin configuration picks
//! the workload:
//!
//! - `noop`: every callback continues at once (the baseline of the stream workloads).
//! - `headers`: on request headers, reads all 20 request headers by name, adds 5, removes 2.
//! - `body`: on the last request body chunk, reads the whole body, flips the case of every ASCII
//!   letter and writes it back (`get_buffer_bytes` + `set_buffer_bytes`).
//! - `sha256`: on request headers, hashes 1 MiB (made at configure time) with [`sha256`].
//! - `shared`: on request headers, sets a shared-data key, then gets it back.
//! - `metric`: on request headers, increments a counter defined at configure time.
//! - `callout`: on request headers, sends an HTTP callout and pauses; on its answer, reads the
//!   answer's `:status` and resumes the request.
//!
//! The same source builds for wasm32 and natively (a shared library the Null VM loads, one copy
//! per VM, so statics are per VM in both). Any failed host call traps: a benchmark must not time
//! a workload that did not happen.

#![deny(unsafe_op_in_unsafe_fn)]

use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub mod sha256;
pub mod workload;

use guest_abi::sys::*;
use guest_abi::{encode_map, CALL_RESPONSE_HEADERS, CONTINUE, COUNTER, HTTP_REQUEST, OK, PAUSE, PLUGIN_CONFIGURATION, REQUEST_BODY, REQUEST_HEADERS};

/// The workloads, as [`WORKLOAD`] holds them.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Workload {
    Noop = 0,
    Headers,
    Body,
    Sha256,
    Shared,
    Metric,
    Callout,
}

impl Workload {
    fn parse(name: &[u8]) -> Option<Workload> {
        Some(match name {
            b"noop" => Workload::Noop,
            b"headers" => Workload::Headers,
            b"body" => Workload::Body,
            b"sha256" => Workload::Sha256,
            b"shared" => Workload::Shared,
            b"metric" => Workload::Metric,
            b"callout" => Workload::Callout,
            _ => return None,
        })
    }
}

/// This VM's workload (a VM runs one plugin).
static WORKLOAD: AtomicU32 = AtomicU32::new(Workload::Noop as u32);
/// The counter of the `metric` workload.
static METRIC: AtomicU32 = AtomicU32::new(0);
/// The input of the `sha256` workload.
static SHA256_INPUT: OnceLock<Vec<u8>> = OnceLock::new();
/// The last digest, kept so the hash cannot be optimised away.
static DIGEST: AtomicU32 = AtomicU32::new(0);

fn workload() -> Workload {
    match WORKLOAD.load(Ordering::Relaxed) {
        1 => Workload::Headers,
        2 => Workload::Body,
        3 => Workload::Sha256,
        4 => Workload::Shared,
        5 => Workload::Metric,
        6 => Workload::Callout,
        _ => Workload::Noop,
    }
}

/// Stops the plugin: a host call failed, so the benchmark would time the wrong thing.
fn fail() -> ! {
    std::process::abort()
}

fn check(status: u32) {
    if status != OK {
        fail();
    }
}

/// Takes ownership of bytes the host allocated through [`proxy_on_memory_allocate`].
fn owned(ptr: *mut u8, size: usize) -> Vec<u8> {
    if ptr.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host copied `size` bytes into a block our allocator made for exactly `size`
    // bytes (a Vec's capacity, see `proxy_on_memory_allocate`), and handed it to us.
    unsafe { Vec::from_raw_parts(ptr, size, size) }
}

fn header(map: u32, key: &str) -> Vec<u8> {
    let (mut ptr, mut size) = (null_mut(), 0usize);
    // SAFETY: the key is a live string; the out-pointers point at locals.
    check(unsafe { proxy_get_header_map_value(map, key.as_ptr(), key.len(), &mut ptr, &mut size) });
    owned(ptr, size)
}

/// Declares ABI 0.2.1.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The allocator the host hands bytes through: a Vec's buffer of exactly `size` bytes, which
/// [`owned`] takes back.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(size);
    let ptr = v.as_mut_ptr();
    std::mem::forget(v);
    ptr
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_context_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_context_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

/// Reads the workload from the plugin configuration and prepares it; an unknown one is refused.
#[no_mangle]
pub extern "C" fn proxy_on_configure(_context_id: u32, size: usize) -> u32 {
    let (mut ptr, mut got) = (null_mut(), 0usize);
    // SAFETY: the out-pointers point at locals.
    check(unsafe { proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &mut ptr, &mut got) });
    let Some(w) = Workload::parse(&owned(ptr, got)) else { return 0 };
    WORKLOAD.store(w as u32, Ordering::Relaxed);
    match w {
        Workload::Sha256 => {
            SHA256_INPUT.get_or_init(|| sha256::sha256_input(sha256::SHA256_INPUT_LEN));
        }
        Workload::Metric => {
            let (name, mut id) = ("bench_requests", 0);
            // SAFETY: the name is a live string; the out-pointer points at a local.
            check(unsafe { proxy_define_metric(COUNTER, name.as_ptr(), name.len(), &mut id) });
            METRIC.store(id, Ordering::Relaxed);
        }
        _ => {}
    }
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_context_id: u32, _num_headers: usize, _end_of_stream: u32) -> u32 {
    match workload() {
        Workload::Noop | Workload::Body => CONTINUE,
        Workload::Headers => {
            let mut total = 0;
            for (name, _) in workload::REQUEST_HEADERS {
                total += header(REQUEST_HEADERS, name).len();
            }
            if total == 0 {
                fail();
            }
            for (name, value) in workload::ADDED_HEADERS {
                // SAFETY: pointers and lengths describe live strings.
                check(unsafe {
                    proxy_add_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len(), value.as_ptr(), value.len())
                });
            }
            for name in workload::REMOVED_HEADERS {
                // SAFETY: pointer and length describe a live string.
                check(unsafe { proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len()) });
            }
            CONTINUE
        }
        Workload::Sha256 => {
            let input = SHA256_INPUT.get().map_or(&[][..], Vec::as_slice);
            let digest = sha256::sha256(std::hint::black_box(input));
            DIGEST.store(u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]), Ordering::Relaxed);
            CONTINUE
        }
        Workload::Shared => {
            let (key, value) = ("bench-key", "0123456789abcdef");
            // SAFETY: pointers and lengths describe live strings.
            check(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), 0) });
            let (mut ptr, mut size, mut cas) = (null_mut(), 0usize, 0u32);
            // SAFETY: the key is a live string; the out-pointers point at locals.
            check(unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut size, &mut cas) });
            if owned(ptr, size) != value.as_bytes() {
                fail();
            }
            CONTINUE
        }
        Workload::Metric => {
            // SAFETY: no pointers.
            check(unsafe { proxy_increment_metric(METRIC.load(Ordering::Relaxed), 1) });
            CONTINUE
        }
        Workload::Callout => {
            let upstream = workload::CALLOUT_UPSTREAM;
            let headers = encode_map(&[(":method", "GET"), (":path", "/check"), (":authority", upstream)]);
            let mut id = 0;
            // SAFETY: pointers and lengths describe live buffers (empty body and trailers are
            // null with length 0); the out-pointer points at a local.
            check(unsafe {
                proxy_http_call(
                    upstream.as_ptr(),
                    upstream.len(),
                    headers.as_ptr(),
                    headers.len(),
                    std::ptr::null(),
                    0,
                    std::ptr::null(),
                    0,
                    1000,
                    &mut id,
                )
            });
            PAUSE
        }
    }
}

/// The `body` workload: flips the case of every ASCII letter of the whole body, once it is all
/// there.
#[no_mangle]
pub extern "C" fn proxy_on_request_body(_context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    if workload() != Workload::Body || end_of_stream == 0 {
        return CONTINUE;
    }
    let (mut ptr, mut size) = (null_mut(), 0usize);
    // SAFETY: the out-pointers point at locals.
    check(unsafe { proxy_get_buffer_bytes(REQUEST_BODY, 0, body_size, &mut ptr, &mut size) });
    let mut body = owned(ptr, size);
    if body.len() != body_size {
        fail();
    }
    for b in &mut body {
        if b.is_ascii_alphabetic() {
            *b ^= 0x20;
        }
    }
    // SAFETY: pointer and length describe `body`.
    check(unsafe { proxy_set_buffer_bytes(REQUEST_BODY, 0, body_size, body.as_ptr(), body.len()) });
    CONTINUE
}

/// The `callout` workload: reads the answer's status and resumes the request.
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _context_id: u32,
    _call_id: u32,
    _num_headers: usize,
    _body_size: usize,
    _num_trailers: usize,
) {
    if header(CALL_RESPONSE_HEADERS, ":status") != b"200" {
        fail();
    }
    // SAFETY: no pointers.
    check(unsafe { proxy_continue_stream(HTTP_REQUEST) });
}

#[no_mangle]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_delete(_context_id: u32) {}
