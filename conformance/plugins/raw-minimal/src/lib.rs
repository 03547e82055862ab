//! The smallest useful Proxy-Wasm plugin, written against the raw ABI 0.2.1
//! without the SDK.
//!
//! On request headers it logs `raw: request headers N` at INFO and adds the
//! request header `x-raw: 1`. Every other callback it exports accepts and does
//! nothing. Sizes are `usize` and booleans and enums `u32`, as in the ABI
//! reference; on wasm32 every one of them is an `i32`.

#![deny(unsafe_op_in_unsafe_fn)]

/// `LogLevel::Info` in the ABI.
const LOG_LEVEL_INFO: u32 = 2;
/// `MapType::HttpRequestHeaders` in the ABI.
const MAP_HTTP_REQUEST_HEADERS: u32 = 0;
/// `Action::Continue` in the ABI.
const ACTION_CONTINUE: u32 = 0;
/// `WasmResult::Ok` in the ABI.
const STATUS_OK: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// Marks the module as built for ABI 0.2.1.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The guest allocator the host calls to hand over bytes. The memory is
/// leaked on purpose: this plugin never receives bytes it would free.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(size.max(1));
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr
}

/// Root and stream contexts need no state here.
#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_context_id: u32) {}

/// Accepts any VM configuration.
#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_context_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

/// Accepts any plugin configuration.
#[no_mangle]
pub extern "C" fn proxy_on_configure(_context_id: u32, _plugin_configuration_size: usize) -> u32 {
    1
}

/// Logs the header count and adds `x-raw: 1`.
#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    _context_id: u32,
    num_headers: usize,
    _end_of_stream: u32,
) -> u32 {
    let mut message = b"raw: request headers ".to_vec();
    push_decimal(&mut message, num_headers);
    // SAFETY: the pointer and length describe `message`, which lives until the call returns.
    let logged = unsafe { proxy_log(LOG_LEVEL_INFO, message.as_ptr(), message.len()) };
    let (key, value) = (b"x-raw", b"1");
    // SAFETY: both pointer and length pairs describe static byte strings.
    let added = unsafe {
        proxy_add_header_map_value(
            MAP_HTTP_REQUEST_HEADERS,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    if logged != STATUS_OK || added != STATUS_OK {
        // A host that refuses either call is broken for this plugin: trap so it shows.
        std::process::abort();
    }
    ACTION_CONTINUE
}

/// The stream may be deleted right away.
#[no_mangle]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

/// Nothing to log at the end of a stream.
#[no_mangle]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

/// No per-context state to free.
#[no_mangle]
pub extern "C" fn proxy_on_delete(_context_id: u32) {}

/// Appends `n` in decimal (no `format!`: keeps the module tiny).
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let start = out.len();
    loop {
        out.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out[start..].reverse();
}
