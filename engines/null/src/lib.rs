//! The Null VM: native plugins through the same host functions, lifecycle and policy as Wasm
//! plugins. Like Envoy's Null VM, and in one respect further.
//!
//! - **Static plugins**: Rust code linked into the binary, written against the raw ABI (the
//!   conformance guest is one), registered by name with [`NullVm::register`]: a function that
//!   gives each export's address by name. [`Engine::compile`] takes the registered name.
//! - **Dynamic plugins**: a plugin built as a `cdylib` from the unmodified `proxy-wasm` SDK
//!   crate. [`Engine::compile`] takes the shared library's bytes (ELF, Linux). Its undefined
//!   `proxy_*` symbols are satisfied by a small shim library, generated from the ABI table at
//!   build time and loaded with `RTLD_GLOBAL` before any plugin, in any binary, without linker
//!   flags. Each VM loads its own copy of the library, so plugins keep their globals and
//!   thread-locals per VM, as Wasm instances do.
//!
//! Guest memory is the process's memory and pointers are 64-bit: host functions see it through
//! [`GuestMemory::native`](proxy_wasm_host::GuestMemory::native).
//!
//! # No sandbox
//! The Null VM runs plugins as native code in the host process. There is **no memory limit
//! and no CPU deadline** ([`Capabilities`] says so), a bad pointer from a plugin is undefined
//! behaviour rather than `INVALID_MEMORY_ACCESS` (only null and wrapping ranges are caught),
//! and a native crash takes the process down. A Rust panic in a static plugin (whose callbacks
//! are `extern "C-unwind"`) is caught at the boundary and fails the VM like a trap; a panic in
//! an SDK plugin built with `panic = "abort"` (or through `extern "C"` callbacks) aborts the
//! process. Load only plugins you would link into the proxy itself.

mod instance;
mod module;
mod native;

use std::sync::{Arc, Mutex};

use proxy_wasm_host::{Capabilities, Engine, Error, Module};

pub use native::proxy_null_vm_instance;

/// The engine's name, as [`Engine::name`] reports it.
pub(crate) const NAME: &str = "null";

/// How a static plugin gives its exports: the address of the function exported as `name`
/// (a callback such as `proxy_on_request_headers`, an allocator, or an ABI marker), or `None`.
/// Each address must be an `extern "C"` or `extern "C-unwind"` function with the signature the
/// ABI table gives that name, with sizes as `usize` and booleans as `u32`.
pub type Lookup = fn(&str) -> Option<*const ()>;

/// The registered static plugins.
static REGISTRY: Mutex<Vec<(String, Lookup)>> = Mutex::new(Vec::new());

/// The Null VM engine. Cheap to clone; every clone is the same engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullVm;

impl NullVm {
    /// The engine.
    pub fn new() -> Self {
        NullVm
    }

    /// Registers a static plugin under `name` (replacing any earlier one of that name), so that
    /// [`Engine::compile`] of the bytes of `name` gives it.
    ///
    /// Registering vouches for the code: the Null VM calls the addresses `lookup` gives as the
    /// ABI's callbacks, with no sandbox (see the [crate docs](crate)).
    pub fn register(name: &str, lookup: Lookup) {
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry.retain(|(n, _)| n != name);
        registry.push((name.to_string(), lookup));
    }

    /// The names of the static plugins registered so far.
    pub fn registered() -> Vec<String> {
        REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(n, _)| n.clone()).collect()
    }

    fn lookup(name: &str) -> Option<Lookup> {
        REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(n, _)| n == name).map(|(_, l)| *l)
    }
}

impl Engine for NullVm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { memory_limit: false, interrupt: false, precompiled: false, cheap_clone: true, sandboxed: false }
    }

    /// `bytes` is either a shared library (an ELF image, as read from a `.so` file) or the name
    /// of a static plugin given to [`NullVm::register`].
    fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        if bytes.starts_with(b"\x7fELF") {
            return Ok(Arc::new(module::NullModule::dynamic(bytes)?));
        }
        let name = std::str::from_utf8(bytes).ok().filter(|n| !n.is_empty() && n.len() <= 256);
        match name.and_then(|n| NullVm::lookup(n).map(|l| (n, l))) {
            Some((name, lookup)) => Ok(Arc::new(module::NullModule::static_plugin(name, lookup))),
            None => Err(Error::Compile { engine: NAME, message: not_loadable(bytes, name) }),
        }
    }
}

/// Why `bytes` (`name` when they are short UTF-8) is not a plugin the Null VM can load. A Wasm
/// module (binary, or text starting with `(module`) is told to go to a Wasm engine; other bytes
/// are quoted as the static plugin name they were taken for only when they look like one (one
/// line, no surrounding blanks), else counted, so a file's contents are not echoed.
fn not_loadable(bytes: &[u8], name: Option<&str>) -> String {
    let registered = NullVm::registered();
    let registered = if registered.is_empty() { "none".to_string() } else { registered.join(", ") };
    let wat = std::str::from_utf8(bytes).is_ok_and(|t| t.trim_start().starts_with("(module"));
    if bytes.starts_with(b"\0asm") || wat {
        return format!(
            "it is a Wasm module ({} bytes), and the Null VM runs native plugins only (a shared library, or a static plugin registered with NullVm::register; registered: {registered}): run it on a Wasm engine",
            bytes.len()
        );
    }
    let looks_like_name = |n: &&str| n.trim() == *n && !n.chars().any(char::is_control);
    let shown = name.filter(looks_like_name).map_or_else(|| format!("the code ({} bytes)", bytes.len()), |n| format!("`{n}`"));
    format!("{shown} is neither a shared library (ELF) nor the name of a static plugin registered with NullVm::register (registered: {registered})")
}
