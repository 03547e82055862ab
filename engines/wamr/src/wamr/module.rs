//! [`Module`]: a loaded (validated and prepared) module, with its imports and exports.

use std::ffi::{c_char, CStr};
use std::sync::Arc;

use wamrx_sys as sys;

use crate::wamr::runtime::Runtime;
use crate::wamr::types::{Error, ExportInfo, ExternType, FuncType, ImportInfo, ValType};

/// WAMR's error buffers: its messages are short (it truncates exceptions to 127 bytes too).
pub(crate) const ERROR_BUF: usize = 256;

/// A module loaded by WAMR. Cheap to clone (`Arc`); `Send` and `Sync`: instances of it may be
/// made on any thread.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

pub(crate) struct ModuleInner {
    pub(crate) raw: sys::wasm_module_t,
    /// The bytes WAMR loaded from: it writes into them and keeps pointers into them until
    /// `wasm_runtime_unload`. Never read or moved after loading (a boxed slice does not move).
    _bytes: Box<[u8]>,
    imports: Vec<ImportInfo>,
    exports: Vec<ExportInfo>,
}

// SAFETY: a loaded WAMR module is not changed after loading (instantiation only reads it), and
// the buffer it points into is owned here and never touched again; WAMR documents instantiating
// one module many times.
unsafe impl Send for ModuleInner {}
// SAFETY: as above: shared use only reads the module.
unsafe impl Sync for ModuleInner {}

impl Drop for ModuleInner {
    fn drop(&mut self) {
        // SAFETY: every instance holds an `Arc` of this, so none is left; the buffer is freed
        // after this (fields drop after `drop`).
        unsafe { sys::wasm_runtime_unload(self.raw) };
    }
}

impl Runtime {
    /// Loads a binary module. WAMR validates it and prepares its code for the fast interpreter;
    /// imports are resolved against the host-function table given to [`init`](crate::wamr::init).
    ///
    /// WAMR accepts a module whose function import is missing or mistyped (see
    /// [`ImportInfo::linked`]): check [`Module::imports`] and refuse such a module yourself.
    ///
    /// # Errors
    /// [`Error::Load`] with WAMR's message, for example `magic header not detected` or
    /// `WASM module load failed: unexpected end`.
    pub fn load(&self, bytes: &[u8]) -> Result<Module, Error> {
        let size = u32::try_from(bytes.len())
            .map_err(|_| Error::Load(format!("module of {} bytes is too large", bytes.len())))?;
        let mut bytes: Box<[u8]> = bytes.into();
        let mut error = [0 as c_char; ERROR_BUF];
        // SAFETY: the runtime is initialised (a `Runtime` exists); the buffer is writable, its
        // own allocation, and kept until after `wasm_runtime_unload` (in `ModuleInner`).
        let raw = unsafe {
            sys::wasm_runtime_load(
                bytes.as_mut_ptr(),
                size,
                error.as_mut_ptr(),
                ERROR_BUF as u32,
            )
        };
        if raw.is_null() {
            return Err(Error::Load(c_text(&error)));
        }
        let mut inner = ModuleInner {
            raw,
            _bytes: bytes,
            imports: Vec::new(),
            exports: Vec::new(),
        };
        // SAFETY: `raw` is a loaded module.
        inner.imports = unsafe { read_imports(raw) };
        // SAFETY: as above.
        inner.exports = unsafe { read_exports(raw) };
        Ok(Module {
            inner: Arc::new(inner),
        })
    }
}

impl Module {
    /// Its imports, in order.
    pub fn imports(&self) -> &[ImportInfo] {
        &self.inner.imports
    }

    /// Its exports, in order.
    pub fn exports(&self) -> &[ExportInfo] {
        &self.inner.exports
    }
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("imports", &self.inner.imports)
            .field("exports", &self.inner.exports)
            .finish()
    }
}

/// A NUL-terminated message in `buf` (WAMR always terminates it), lossily as UTF-8.
pub(crate) fn c_text(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// # Safety
/// `ptr` is null or a NUL-terminated string.
unsafe fn owned(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// # Safety
/// `ty` is a function type of a loaded module.
unsafe fn func_type(ty: sys::wasm_func_type_t) -> Option<FuncType> {
    if ty.is_null() {
        return None;
    }
    // SAFETY: `ty` is a valid function type (the caller's contract).
    let (n_params, n_results) = unsafe {
        (
            sys::wasm_func_type_get_param_count(ty),
            sys::wasm_func_type_get_result_count(ty),
        )
    };
    let mut params = Vec::with_capacity(n_params as usize);
    for i in 0..n_params {
        // SAFETY: `i` is below the parameter count.
        params.push(ValType::from_kind(unsafe {
            sys::wasm_func_type_get_param_valkind(ty, i)
        })?);
    }
    let mut results = Vec::with_capacity(n_results as usize);
    for i in 0..n_results {
        // SAFETY: `i` is below the result count.
        results.push(ValType::from_kind(unsafe {
            sys::wasm_func_type_get_result_valkind(ty, i)
        })?);
    }
    Some(FuncType { params, results })
}

/// # Safety
/// For a function, `func` is its type in a loaded module.
unsafe fn extern_type(
    kind: sys::wasm_import_export_kind_t,
    func: sys::wasm_func_type_t,
) -> ExternType {
    match kind {
        sys::WASM_IMPORT_EXPORT_KIND_FUNC => {
            // SAFETY: the caller's contract.
            unsafe { func_type(func) }.map_or(ExternType::Unknown, ExternType::Func)
        }
        sys::WASM_IMPORT_EXPORT_KIND_TABLE => ExternType::Table,
        sys::WASM_IMPORT_EXPORT_KIND_MEMORY => ExternType::Memory,
        sys::WASM_IMPORT_EXPORT_KIND_GLOBAL => ExternType::Global,
        _ => ExternType::Unknown,
    }
}

/// # Safety
/// `module` is a loaded module.
unsafe fn read_imports(module: sys::wasm_module_t) -> Vec<ImportInfo> {
    // SAFETY: `module` is loaded.
    let count = unsafe { sys::wasm_runtime_get_import_count(module) }.max(0);
    (0..count)
        .map(|i| {
            let mut ty = sys::wasm_import_t::default();
            // SAFETY: `i` is below the import count; WAMR fills `ty` with pointers into the module,
            // copied out below while the module is alive.
            unsafe { sys::wasm_runtime_get_import_type(module, i, &mut ty) };
            // SAFETY: the names are NUL-terminated strings of the module; for a function import
            // `u.func_type` is the active field.
            unsafe {
                ImportInfo {
                    module: owned(ty.module_name),
                    name: owned(ty.name),
                    ty: extern_type(ty.kind, ty.u.func_type),
                    linked: ty.linked,
                }
            }
        })
        .collect()
}

/// # Safety
/// `module` is a loaded module.
unsafe fn read_exports(module: sys::wasm_module_t) -> Vec<ExportInfo> {
    // SAFETY: `module` is loaded.
    let count = unsafe { sys::wasm_runtime_get_export_count(module) }.max(0);
    (0..count)
        .map(|i| {
            let mut ty = sys::wasm_export_t::default();
            // SAFETY: `i` is below the export count; WAMR fills `ty` as for imports.
            unsafe { sys::wasm_runtime_get_export_type(module, i, &mut ty) };
            // SAFETY: as for imports.
            unsafe {
                ExportInfo {
                    name: owned(ty.name),
                    ty: extern_type(ty.kind, ty.u.func_type),
                }
            }
        })
        .collect()
}
