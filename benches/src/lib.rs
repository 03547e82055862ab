//! Shared pieces of the benchmarks: the guest modules they run.

/// A guest exporting the HTTP stream callbacks as no-ops, with a bump allocator that resets
/// when it reaches the end of its page: the cheapest plugin, so a benchmark measures the host.
pub const EMPTY_PLUGIN_WAT: &str = r#"
(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.const 131072))
      (then (global.set $heap (i32.const 65536))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
"#;

/// The same empty plugin as native Rust, for the Null VM (registered as `empty` by
/// [`register_empty_native`]), and called directly as the Null VM's baseline.
pub mod empty_native {
    /// `proxy_abi_version_0_2_1`.
    pub extern "C-unwind" fn marker() {}

    /// `proxy_on_memory_allocate`: a Vec's buffer, leaked to the host (never called by the
    /// empty lifecycle).
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
    proxy_wasm_null::NullVm::register("empty", empty_native::lookup);
}
