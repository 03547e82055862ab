//! [`WasmtimeModule`]: a compiled module, its imports and exports, and its pre-linked form.

use std::sync::{Arc, OnceLock};

use proxy_wasm_host::engine::check_imports;
use proxy_wasm_host::{Error, Export, ExternKind, Import, Instance, Module, VmHost};
use wasmtime::{ExternType, InstancePre, ValType};

use crate::instance::{self, CallbackExports};
use crate::shared::{Shared, NAME};
use crate::store::StoreData;

/// A module compiled by a [`WasmtimeEngine`](crate::WasmtimeEngine). Shared by every VM made
/// from it (`Arc`), `Send + Sync`.
///
/// Its imports are checked against the ABI table and resolved against the engine's linker once,
/// at the first instantiation; later instantiations reuse that work.
pub struct WasmtimeModule {
    shared: Arc<Shared>,
    module: wasmtime::Module,
    imports: Vec<Import>,
    exports: Vec<Export>,
    /// Where each callback is among the exports, checked once.
    callbacks: Arc<CallbackExports>,
    /// The module linked to the host functions, made once.
    pre: OnceLock<Result<InstancePre<StoreData>, Error>>,
}

impl WasmtimeModule {
    pub(crate) fn new(shared: Arc<Shared>, module: wasmtime::Module) -> Self {
        let imports = module
            .imports()
            .map(|i| Import { module: i.module().to_string(), name: i.name().to_string(), kind: extern_kind(&i.ty()) })
            .collect();
        let exports: Vec<Export> =
            module.exports().map(|e| Export { name: e.name().to_string(), kind: extern_kind(&e.ty()) }).collect();
        let callbacks = Arc::new(CallbackExports::of(&module, &exports));
        WasmtimeModule { shared, module, imports, exports, callbacks, pre: OnceLock::new() }
    }

    /// The Wasmtime module underneath.
    pub fn wasmtime(&self) -> &wasmtime::Module {
        &self.module
    }

    #[cfg(test)]
    pub(crate) fn callbacks(&self) -> &Arc<CallbackExports> {
        &self.callbacks
    }

    /// The module linked to every host function, or why it cannot be.
    pub(crate) fn pre(&self) -> Result<&InstancePre<StoreData>, Error> {
        self.pre
            .get_or_init(|| {
                check_imports(&self.imports)?;
                self.shared
                    .linker
                    .instantiate_pre(&self.module)
                    .map_err(|e| Error::Instantiate { engine: NAME, message: format!("{e:#}") })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Module for WasmtimeModule {
    fn imports(&self) -> &[Import] {
        &self.imports
    }

    fn exports(&self) -> &[Export] {
        &self.exports
    }

    fn instantiate(&self, host: VmHost) -> Result<Box<dyn Instance>, Error> {
        Ok(Box::new(instance::instantiate(&self.shared, self.pre()?, &self.callbacks, host)?))
    }

    fn serialize(&self) -> Option<Vec<u8>> {
        self.module.serialize().ok()
    }
}

/// What an import or export is, in the host's terms.
pub(crate) fn extern_kind(ty: &ExternType) -> ExternKind {
    match ty {
        ExternType::Func(f) => ExternKind::Func {
            params: f.params().map(|t| val_type(&t)).collect(),
            results: f.results().map(|t| val_type(&t)).collect(),
        },
        ExternType::Memory(_) => ExternKind::Memory,
        ExternType::Table(_) => ExternKind::Table,
        ExternType::Global(_) => ExternKind::Global,
        ExternType::Tag(_) => ExternKind::Other,
    }
}

/// The text format's name of a value type.
fn val_type(ty: &ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::V128 => "v128",
        ValType::Ref(r) if r.heap_type().is_func() => "funcref",
        ValType::Ref(r) if r.heap_type().is_extern() => "externref",
        ValType::Ref(_) => "ref",
    }
}
