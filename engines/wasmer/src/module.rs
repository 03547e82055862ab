//! [`WasmerModule`]: a compiled module, its imports and exports, checked against the ABI table.

use std::sync::{Arc, OnceLock};

use abi::Callback;
use proxy_wasm_host::engine::{callback_exports, check_imports};
use proxy_wasm_host::{Error, Export, ExternKind, Import, Instance, Module, VmHost};
use wasmer::{ExternType, Type};

use crate::instance;
use crate::shared::Shared;
use crate::stop::{START_EXPORT, STOP_EXPORT};

/// A module compiled by a [`WasmerEngine`](crate::WasmerEngine). Shared by every VM made from it
/// (`Arc`), `Send + Sync`.
///
/// Its imports are checked against the ABI table once, at the first instantiation.
pub struct WasmerModule {
    pub(crate) shared: Arc<Shared>,
    pub(crate) module: wasmer::Module,
    imports: Vec<Import>,
    exports: Vec<Export>,
    /// Each callback it exports, with the verdict on its type (see [`callback_exports`]).
    callbacks: [Option<Result<(), Error>>; Callback::COUNT],
    /// The import check's verdict, made once.
    checked: OnceLock<Result<(), Error>>,
}

impl WasmerModule {
    pub(crate) fn new(shared: Arc<Shared>, module: wasmer::Module) -> Self {
        let imports = module
            .imports()
            .map(|i| Import { module: i.module().to_string(), name: i.name().to_string(), kind: extern_kind(i.ty()) })
            .collect();
        let exports: Vec<Export> = module
            .exports()
            .filter(|e| e.name() != STOP_EXPORT && e.name() != START_EXPORT)
            .map(|e| Export { name: e.name().to_string(), kind: extern_kind(e.ty()) })
            .collect();
        let callbacks = callback_exports(&exports);
        WasmerModule { shared, module, imports, exports, callbacks, checked: OnceLock::new() }
    }

    /// The Wasmer module underneath (with the engine's stop checks compiled in, and its start
    /// section, if any, turned into an export that our instantiation calls: instantiated
    /// directly with Wasmer, the module's start function does not run).
    pub fn wasmer(&self) -> &wasmer::Module {
        &self.module
    }

    /// Whether the module imports only host functions of the ABI table, with their signatures.
    fn check(&self) -> Result<(), Error> {
        self.checked.get_or_init(|| check_imports(&self.imports)).clone()
    }

    /// An instance, with `extra` imports beside the host functions (for tests).
    pub(crate) fn instantiate_with(
        &self,
        host: VmHost,
        extra: impl FnOnce(&mut wasmer::Store, &wasmer::FunctionEnv<crate::store::StoreData>, &mut wasmer::Imports),
    ) -> Result<instance::WasmerInstance, Error> {
        instance::instantiate(&self.shared, &self.module, &self.callbacks, host, extra)
    }
}

impl Module for WasmerModule {
    fn imports(&self) -> &[Import] {
        &self.imports
    }

    fn exports(&self) -> &[Export] {
        &self.exports
    }

    fn instantiate(&self, host: VmHost) -> Result<Box<dyn Instance>, Error> {
        self.check()?;
        Ok(Box::new(self.instantiate_with(host, |_, _, _| {})?))
    }

    fn serialize(&self) -> Option<Vec<u8>> {
        self.module.serialize().ok().map(|bytes| bytes.to_vec())
    }
}

/// What an import or export is, in the host's terms.
pub(crate) fn extern_kind(ty: &ExternType) -> ExternKind {
    match ty {
        ExternType::Function(f) => ExternKind::Func {
            params: f.params().iter().map(val_type).collect(),
            results: f.results().iter().map(val_type).collect(),
        },
        ExternType::Memory(_) => ExternKind::Memory,
        ExternType::Table(_) => ExternKind::Table,
        ExternType::Global(_) => ExternKind::Global,
        ExternType::Tag(_) => ExternKind::Other,
    }
}

/// The text format's name of a value type.
fn val_type(ty: &Type) -> &'static str {
    match ty {
        Type::I32 => "i32",
        Type::I64 => "i64",
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::V128 => "v128",
        Type::FuncRef => "funcref",
        Type::ExternRef => "externref",
        Type::ExceptionRef => "exnref",
    }
}
