//! [`Module`]: bytes compiled and validated once by V8, shared by every VM.

use std::ptr::NonNull;

use crate::sys::ffi;
use crate::sys::wasm::{self, MemoryDecl, MemoryRewrite, MemorySource, ModuleInfo, PAGE};
use crate::sys::Error;

/// The import module name the engine's own imports use. A module that imports anything of this
/// module itself is refused.
pub const RESERVED_MODULE: &str = "proxy-wasm:v8";

/// The import a module's own memory is rewritten into (`module`, `name`).
pub const MEMORY_IMPORT: (&str, &str) = (RESERVED_MODULE, "memory");

/// The function import every `memory.grow` is rewritten into (`module`, `name`): the shim's
/// memory.grow (its row `V8S_ROW_MEMORY_GROW`).
pub const GROW_IMPORT: (&str, &str) = (RESERVED_MODULE, "memory.grow");

/// The memory a VM of the module is given at instantiation, by import.
#[derive(Debug)]
pub(crate) struct MemoryPlan {
    pub(crate) module: String,
    pub(crate) name: String,
    pub(crate) decl: MemoryDecl,
}

/// A VM's memory in pages: what [`MemoryPlan::pages`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pages {
    pub(crate) initial: u32,
    /// The module's own maximum (65536 when it declares none).
    pub(crate) maximum: u32,
    /// The VM's limit.
    pub(crate) limit: u32,
}

impl MemoryPlan {
    /// The pages of a VM limited to `limit_bytes` (rounded down to pages); an error when the
    /// memory starts above the limit.
    pub(crate) fn pages(&self, limit_bytes: u64) -> Result<Pages, Error> {
        let limit = (limit_bytes / PAGE).min(wasm::MAX_PAGES);
        let maximum = self.decl.maximum.unwrap_or(wasm::MAX_PAGES).min(wasm::MAX_PAGES);
        if self.decl.initial > limit {
            return Err(Error::MemoryLimit { initial_bytes: self.decl.initial * PAGE, limit_bytes });
        }
        // Each at most MAX_PAGES (65536), which fits.
        Ok(Pages { initial: self.decl.initial as u32, maximum: maximum as u32, limit: limit as u32 })
    }
}

/// A compiled, validated module: V8's `CompiledWasmModule`, re-created in each VM's isolate
/// without compiling again. Cheap to share: `Send + Sync`, used from any thread.
pub struct Module {
    api: &'static ffi::Shim,
    raw: NonNull<ffi::v8s_module>,
    info: ModuleInfo,
    memory: Option<MemoryPlan>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("info", &self.info).field("memory", &self.memory).finish_non_exhaustive()
    }
}

// SAFETY: the shim's module is a `CompiledWasmModule`: a shared pointer to V8's immutable,
// thread-safe NativeModule. The shim only reads it (`FromCompiledModule`), from any thread.
unsafe impl Send for Module {}
// SAFETY: as above; no method mutates it.
unsafe impl Sync for Module {}

impl Module {
    /// Compiles and validates `bytes` (a binary module). A module with a memory is compiled
    /// rewritten ([`wasm::rewrite_memory`]): a memory it defines becomes the import
    /// [`MEMORY_IMPORT`] (same limits), so that every VM can get its own maximum, and every
    /// `memory.grow` a call of [`GROW_IMPORT`], so that the host learns of a grow refused at the
    /// limit.
    ///
    /// Errors: [`Error::Compile`] with V8's message for bytes V8 refuses (always the message for
    /// the original bytes); [`Error::Unsupported`] for a 64-bit or shared memory, more than
    /// one memory, or an import of [`RESERVED_MODULE`]; [`Error::Platform`] if V8 did not start.
    pub fn compile(bytes: &[u8]) -> Result<Module, Error> {
        Module::compile_with(bytes, true)
    }

    /// Compiles `bytes` as they are, without the rewrite of [`Module::compile`]: a memory the
    /// module defines is V8's own, limited only by the module's maximum, and `memory.grow` is
    /// V8's own. For baselines that measure V8 without this crate's layer.
    pub fn compile_as_is(bytes: &[u8]) -> Result<Module, Error> {
        Module::compile_with(bytes, false)
    }

    fn compile_with(bytes: &[u8], rewrite: bool) -> Result<Module, Error> {
        let api = crate::sys::platform()?;
        let info = match ModuleInfo::parse(bytes) {
            Ok(info) => info,
            // V8's words for what it refuses; wasmparser's for what only wasmparser refuses.
            Err(why) => return Err(compile_raw(api, bytes).err().unwrap_or(Error::Unsupported(why))),
        };
        if let Some(import) = info.imports.iter().find(|i| i.module == RESERVED_MODULE) {
            return Err(Error::Unsupported(format!("the module imports `{}`.`{}`: `{RESERVED_MODULE}` is this engine's own", import.module, import.name)));
        }
        let (memory_import, memory) = match &info.memory {
            MemorySource::None => (None, None),
            MemorySource::Defined(_) if !rewrite => (None, None),
            MemorySource::Defined(decl) => (Some(MEMORY_IMPORT), Some(MemoryPlan { module: MEMORY_IMPORT.0.into(), name: MEMORY_IMPORT.1.into(), decl: *decl })),
            MemorySource::Imported { module, name, decl } => (None, Some(MemoryPlan { module: module.clone(), name: name.clone(), decl: *decl })),
        };
        let wire = match &memory {
            Some(plan) if rewrite => {
                check_memory(&plan.decl)?;
                let rewritten = wasm::rewrite_memory(bytes, MemoryRewrite { memory_import, grow_import: GROW_IMPORT });
                // Bytes that do not re-encode get V8's own words below.
                Some(rewritten.map_err(|why| compile_raw(api, bytes).err().unwrap_or(Error::Unsupported(why))))
            }
            _ => None,
        };
        let raw = match wire {
            None => compile_raw(api, bytes)?,
            Some(Err(e)) => return Err(e),
            Some(Ok(wire)) => match compile_raw(api, &wire) {
                Ok(raw) => raw,
                // Report V8's message for the bytes the user gave (offsets as in their file).
                Err(rewritten) => {
                    let original = compile_raw(api, bytes);
                    return Err(match original {
                        Err(e) => e,
                        Ok(raw) => {
                            // SAFETY: `raw` came from v8s_module_compile and is freed once.
                            unsafe { (api.module_free)(raw.as_ptr()) };
                            Error::Unsupported(format!("the module compiles, but not rewritten for the memory limit: {rewritten}"))
                        }
                    });
                }
            },
        };
        Ok(Module { api, raw, info, memory })
    }

    /// Its imports, exports and memory, as the original bytes declare them.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    pub(crate) fn raw(&self) -> *const ffi::v8s_module {
        self.raw.as_ptr()
    }

    pub(crate) fn memory_plan(&self) -> Option<&MemoryPlan> {
        self.memory.as_ref()
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: `raw` came from v8s_module_compile and is freed once, here. VMs made from it
        // hold their own reference to V8's module.
        unsafe { (self.api.module_free)(self.raw.as_ptr()) };
    }
}

/// Refuses memories this engine cannot give a per-VM limit to.
fn check_memory(decl: &MemoryDecl) -> Result<(), Error> {
    if decl.memory64 {
        return Err(Error::Unsupported("a 64-bit memory (memory64)".into()));
    }
    if decl.shared {
        return Err(Error::Unsupported("a shared memory (threads)".into()));
    }
    Ok(())
}

fn compile_raw(api: &ffi::Shim, bytes: &[u8]) -> Result<NonNull<ffi::v8s_module>, Error> {
    let mut error = ffi::v8s_message::empty();
    // SAFETY: `bytes` is a valid slice for the call (V8 copies it); `error` a valid out-param.
    let raw = unsafe { (api.module_compile)(bytes.as_ptr(), bytes.len(), &mut error) };
    NonNull::new(raw).ok_or_else(|| Error::Compile(error.take()))
}
