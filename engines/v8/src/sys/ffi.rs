//! The raw C API of `shim/v8_shim.h`, declared by hand (it is small), and the shim library that
//! provides it, loaded once per process.
//!
//! `build.rs` builds the shim as a shared library with a run path to libnode's folder; this
//! crate embeds its bytes, writes them to a private file at the first use and loads it with
//! `libloading`. Nothing links libnode at build time, so any binary that depends on this crate
//! runs without `LD_LIBRARY_PATH` or an rpath of its own. The header holds the contract of each
//! function; the safe types of [`crate::sys`] are the only callers.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};
use std::sync::OnceLock;

/// An opaque compiled module of the shim.
#[repr(C)]
pub struct v8s_module {
    _opaque: [u8; 0],
}

/// An opaque VM (isolate, context, instance) of the shim.
#[repr(C)]
pub struct v8s_vm {
    _opaque: [u8; 0],
}

/// An opaque interrupt handle of the shim.
#[repr(C)]
pub struct v8s_interrupt {
    _opaque: [u8; 0],
}

/// A message the shim allocated (malloc) for the caller.
#[repr(C)]
pub struct v8s_message {
    pub ptr: *mut c_char,
    pub len: usize,
}

impl v8s_message {
    pub const fn empty() -> Self {
        v8s_message { ptr: std::ptr::null_mut(), len: 0 }
    }

    /// Takes the text out (lossy UTF-8) and frees the shim's buffer; empty if none was set.
    pub fn take(&mut self) -> String {
        if self.ptr.is_null() {
            return String::new();
        }
        // SAFETY: the shim set `ptr` to a malloc'ed buffer of `len` bytes (plus a NUL) that
        // nobody else holds; it is freed right after the copy.
        let text = unsafe { String::from_utf8_lossy(std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len)).into_owned() };
        self.free();
        text
    }

    fn free(&mut self) {
        if let Ok(shim) = shim() {
            // SAFETY: `self` was filled by the shim, which is loaded (a message exists only
            // after a shim call); it frees the buffer once and nulls `ptr`.
            unsafe { (shim.message_free)(self) };
        }
    }
}

impl Drop for v8s_message {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            self.free();
        }
    }
}

pub const V8S_OK: i32 = 0;
pub const V8S_EXCEPTION: i32 = 1;
pub const V8S_TERMINATED: i32 = 2;
pub const V8S_HOST_TRAP: i32 = 3;
pub const V8S_BAD_REQUEST: i32 = 4;

/// The row of the memory.grow import the shim handles itself.
pub const V8S_ROW_MEMORY_GROW: u32 = 0xFFFF_FFFF;
/// The row the shim calls the host with when it refused a grow at the VM's limit.
pub const V8S_ROW_MEMORY_REFUSED: u32 = 0xFFFF_FFFE;

pub type v8s_host_fn =
    unsafe extern "C" fn(vm_data: *mut c_void, row: u32, args: *const u64, nargs: usize, result: *mut i32) -> i32;

#[repr(C)]
pub struct v8s_func_import {
    pub module: *const c_char,
    pub module_len: usize,
    pub name: *const c_char,
    pub name_len: usize,
    pub row: u32,
}

#[repr(C)]
pub struct v8s_memory_import {
    pub module: *const c_char,
    pub module_len: usize,
    pub name: *const c_char,
    pub name_len: usize,
    pub initial_pages: u32,
    pub maximum_pages: u32,
    pub limit_pages: u32,
}

/// Declares [`Shim`]: one function pointer per C function, resolved from the loaded library.
macro_rules! shim_api {
    ($( $field:ident = $symbol:literal : fn($($arg:ty),*) $(-> $ret:ty)?; )*) => {
        /// The shim's C API, resolved once. Each field is the C function of the same name in
        /// `v8_shim.h` (`v8s_` prefix dropped).
        pub struct Shim {
            $( pub $field: unsafe extern "C" fn($($arg),*) $(-> $ret)?, )*
        }

        impl Shim {
            /// Resolves every function of `library`.
            ///
            /// # Safety
            /// `library` is the shim built by `build.rs` from `v8_shim.h`, whose functions have
            /// the signatures declared here.
            unsafe fn resolve(library: &libloading::Library) -> Result<Shim, libloading::Error> {
                Ok(Shim {
                    $(
                        // SAFETY: the caller's promise: the symbol has this signature.
                        $field: *unsafe { library.get::<unsafe extern "C" fn($($arg),*) $(-> $ret)?>($symbol) }?,
                    )*
                })
            }
        }
    };
}

shim_api! {
    platform_init = b"v8s_platform_init\0": fn(*const c_char, usize, i32, *mut v8s_message) -> i32;
    module_compile = b"v8s_module_compile\0": fn(*const u8, usize, *mut v8s_message) -> *mut v8s_module;
    module_free = b"v8s_module_free\0": fn(*mut v8s_module);
    vm_new = b"v8s_vm_new\0": fn(v8s_host_fn, *mut c_void, *mut v8s_message) -> *mut v8s_vm;
    vm_free = b"v8s_vm_free\0": fn(*mut v8s_vm);
    vm_instantiate = b"v8s_vm_instantiate\0": fn(*mut v8s_vm, *const v8s_module, *const v8s_func_import, usize, *const v8s_memory_import, *mut v8s_message) -> i32;
    vm_export = b"v8s_vm_export\0": fn(*mut v8s_vm, *const c_char, usize) -> i32;
    vm_call = b"v8s_vm_call\0": fn(*mut v8s_vm, i32, *const i32, usize, *mut i32, *mut i32, *mut v8s_message) -> i32;
    vm_memory = b"v8s_vm_memory\0": fn(*mut v8s_vm, *mut *mut u8, *mut usize);
    vm_interrupt = b"v8s_vm_interrupt\0": fn(*mut v8s_vm) -> *mut v8s_interrupt;
    interrupt_fire = b"v8s_interrupt_fire\0": fn(*const v8s_interrupt);
    interrupt_free = b"v8s_interrupt_free\0": fn(*mut v8s_interrupt);
    message_free = b"v8s_message_free\0": fn(*mut v8s_message);
}

/// The shim library's bytes, built by `build.rs`.
static SHIM_LIBRARY: &[u8] = include_bytes!(env!("PROXY_WASM_V8_SHIM"));

/// Where the build found libnode (the shim's run path), for error messages.
pub const LIBNODE_DIR: &str = env!("PROXY_WASM_V8_LIBNODE");

/// The shim, loaded at the first call (with libnode, through its run path), or why it could not
/// be.
pub fn shim() -> Result<&'static Shim, String> {
    static SHIM: OnceLock<Result<Shim, String>> = OnceLock::new();
    SHIM.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Shim, String> {
    let path = std::env::temp_dir().join(format!("proxy-wasm-v8-shim-{}.so", std::process::id()));
    std::fs::write(&path, SHIM_LIBRARY).map_err(|e| format!("cannot write the V8 shim library to {}: {e}", path.display()))?;
    // SAFETY: the library is our own shim; loading it loads libnode, whose initialisers set up
    // nothing that runs code of ours (V8 starts only at `v8s_platform_init`).
    let library = unsafe { libloading::Library::new(&path) };
    let _ = std::fs::remove_file(&path);
    let library = library.map_err(|e| {
        format!("cannot load the V8 shim (libnode.so.108 is looked for in {LIBNODE_DIR}, where `cargo xtask setup` unpacks it): {e}")
    })?;
    // SAFETY: the library is the shim built from `v8_shim.h`, which declares these signatures.
    let shim = unsafe { Shim::resolve(&library) }.map_err(|e| format!("the V8 shim lacks a function: {e}"))?;
    // V8 is never disposed (see `v8s_platform_init`): the library stays loaded for the process.
    std::mem::forget(library);
    Ok(shim)
}
