//! Native static plugins for the Null VM, and the direct calls that are their baselines: the
//! empty plugin ([`empty_native`]) and the header-lookup plugin ([`lookup_native`]).

/// The empty plugin as native Rust, for the Null VM (registered as `empty` by
/// [`register_empty_native`]), and called directly as the Null VM's baseline.
pub mod empty_native {
    /// `proxy_abi_version_0_2_1`.
    pub extern "C-unwind" fn marker() {}

    /// `proxy_on_memory_allocate`: a Vec's buffer of exactly `size` bytes, handed to the host
    /// (the plugin that receives it takes it back with `Vec::from_raw_parts`).
    pub extern "C-unwind" fn allocate(size: usize) -> *mut u8 {
        let mut v = Vec::<u8>::with_capacity(size);
        let p = v.as_mut_ptr();
        std::mem::forget(v);
        p
    }

    /// `proxy_on_context_create`.
    pub extern "C-unwind" fn context_create(_context: u32, _parent: u32) {}

    /// `proxy_on_vm_start` and `proxy_on_configure`: accept.
    pub extern "C-unwind" fn accept(_context: u32, _size: usize) -> u32 {
        1
    }

    /// `proxy_on_request_headers`: continue.
    pub extern "C-unwind" fn request_headers(_context: u32, _headers: usize, _end: u32) -> u32 {
        0
    }

    /// `proxy_on_done`: done.
    pub extern "C-unwind" fn done(_context: u32) -> u32 {
        1
    }

    /// `proxy_on_log` and `proxy_on_delete`.
    pub extern "C-unwind" fn context_end(_context: u32) {}

    /// The exports by name.
    pub fn lookup(name: &str) -> Option<*const ()> {
        Some(match name {
            "proxy_abi_version_0_2_1" => marker as *const (),
            "proxy_on_memory_allocate" => allocate as *const (),
            "proxy_on_context_create" => context_create as *const (),
            "proxy_on_vm_start" | "proxy_on_configure" => accept as *const (),
            "proxy_on_request_headers" => request_headers as *const (),
            "proxy_on_done" => done as *const (),
            "proxy_on_log" | "proxy_on_delete" => context_end as *const (),
            _ => return None,
        })
    }
}

/// Registers [`empty_native`] with the Null VM as `empty`.
pub fn register_empty_native() {
    proxy_wasm_harness::proxy_wasm_null::NullVm::register("empty", empty_native::lookup);
}

/// The header-lookup plugin as native Rust (registered as `lookup` by
/// [`register_lookup_native`]): on request headers it looks up
/// [`LOOKUP_HEADER`](crate::workload::LOOKUP_HEADER)
/// [`LOOKUPS_PER_CALL`](crate::modules::LOOKUPS_PER_CALL) times through the Null VM's
/// `proxy_get_header_map_value`, freeing each value. Its baseline runs the same loop against
/// [`raw_get_header_map_value`](lookup_native::raw_get_header_map_value), a plain Rust function
/// doing the same unavoidable work: find the header, allocate with the plugin's allocator, copy.
pub mod lookup_native {
    use std::hint::black_box;
    use std::sync::OnceLock;

    use crate::modules::LOOKUPS_PER_CALL;
    use crate::workload::{LOOKUP_HEADER, REQUEST_HEADERS};

    /// The type of `proxy_get_header_map_value` natively.
    pub type GetHeader = unsafe extern "C" fn(u32, *const u8, usize, *mut *mut u8, *mut usize) -> u32;

    extern "C" {
        /// The Null VM's host function (a `#[no_mangle]` symbol of `proxy-wasm-null`).
        fn proxy_get_header_map_value(t: u32, key: *const u8, key_size: usize, ptr: *mut *mut u8, size: *mut usize) -> u32;
    }

    /// [`LOOKUPS_PER_CALL`] lookups of [`LOOKUP_HEADER`] through `get`, each value freed.
    pub fn lookups(get: GetHeader) {
        for _ in 0..LOOKUPS_PER_CALL {
            let (mut ptr, mut size) = (std::ptr::null_mut(), 0usize);
            // SAFETY: the key is a live string; the out-pointers point at locals. `get` is the
            // Null VM's host function (called inside a callback) or `raw_get_header_map_value`.
            let status = unsafe { get(0, LOOKUP_HEADER.as_ptr(), LOOKUP_HEADER.len(), &mut ptr, &mut size) };
            assert!(status == 0 && !ptr.is_null(), "lookup failed with status {status}");
            // SAFETY: the value was allocated by `empty_native::allocate` for exactly `size`
            // bytes (a Vec's capacity) and handed to us.
            drop(unsafe { Vec::from_raw_parts(ptr, size, size) });
        }
    }

    /// `proxy_on_request_headers`: the lookups through the Null VM.
    pub extern "C-unwind" fn request_headers(_context: u32, _headers: usize, _end: u32) -> u32 {
        lookups(black_box(proxy_get_header_map_value as GetHeader));
        0
    }

    /// The exports by name: the empty plugin's, with [`request_headers`].
    pub fn lookup(name: &str) -> Option<*const ()> {
        match name {
            "proxy_on_request_headers" => Some(request_headers as *const ()),
            _ => super::empty_native::lookup(name),
        }
    }

    /// The request headers the baseline looks in.
    fn headers() -> &'static [(Vec<u8>, Vec<u8>)] {
        static HEADERS: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
        HEADERS.get_or_init(|| REQUEST_HEADERS.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect())
    }

    /// The baseline: a host function with the ABI's native signature that finds the key among
    /// the request headers (ASCII case-insensitively, as the ABI asks), allocates the value
    /// with the plugin's allocator and copies it in.
    ///
    /// # Safety
    /// `key` must point at `key_size` readable bytes, `ptr` and `size` at writable words.
    pub unsafe extern "C" fn raw_get_header_map_value(
        _t: u32,
        key: *const u8,
        key_size: usize,
        ptr: *mut *mut u8,
        size: *mut usize,
    ) -> u32 {
        // SAFETY: the caller passes a live key of `key_size` bytes.
        let key = unsafe { std::slice::from_raw_parts(key, key_size) };
        let Some((_, value)) = headers().iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) else { return 1 };
        let allocate = black_box(super::empty_native::allocate as extern "C-unwind" fn(usize) -> *mut u8);
        let p = allocate(value.len());
        // SAFETY: `p` is a fresh allocation of `value.len()` bytes; `ptr` and `size` are
        // writable words (the caller's locals).
        unsafe {
            std::ptr::copy_nonoverlapping(value.as_ptr(), p, value.len());
            *ptr = p;
            *size = value.len();
        }
        0
    }
}

/// Registers [`lookup_native`] with the Null VM as `lookup`.
pub fn register_lookup_native() {
    proxy_wasm_harness::proxy_wasm_null::NullVm::register("lookup", lookup_native::lookup);
}
