//! [`WasmerModule`]: a compiled module, its imports and exports, checked against the ABI table.

use std::sync::{Arc, OnceLock};

use proxy_wasm_host::{Error, Export, ExternKind, Import, Instance, Limits, Module, VmHost};
use wasmer::{ExternType, FunctionType, Type};

use crate::engine::Shared;
use crate::instance;
use crate::stop::STOP_EXPORT;

/// A module compiled by a [`WasmerEngine`](crate::WasmerEngine). Shared by every VM made from it
/// (`Arc`), `Send + Sync`.
///
/// Its imports are checked against the ABI table once, at the first instantiation.
pub struct WasmerModule {
    pub(crate) shared: Arc<Shared>,
    pub(crate) module: wasmer::Module,
    imports: Vec<Import>,
    exports: Vec<Export>,
    /// The import check's verdict, made once.
    checked: OnceLock<Result<(), Error>>,
}

impl WasmerModule {
    pub(crate) fn new(shared: Arc<Shared>, module: wasmer::Module) -> Self {
        let imports = module
            .imports()
            .map(|i| Import { module: i.module().to_string(), name: i.name().to_string(), kind: extern_kind(i.ty()) })
            .collect();
        let exports = module
            .exports()
            .filter(|e| e.name() != STOP_EXPORT)
            .map(|e| Export { name: e.name().to_string(), kind: extern_kind(e.ty()) })
            .collect();
        WasmerModule { shared, module, imports, exports, checked: OnceLock::new() }
    }

    /// The Wasmer module underneath (with the engine's stop checks compiled in).
    pub fn wasmer(&self) -> &wasmer::Module {
        &self.module
    }

    /// Whether the module imports only host functions of the ABI table, with their signatures.
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.checked.get_or_init(|| check_imports(&self.module)).clone()
    }
}

impl Module for WasmerModule {
    fn imports(&self) -> &[Import] {
        &self.imports
    }

    fn exports(&self) -> &[Export] {
        &self.exports
    }

    fn instantiate(&self, host: VmHost, limits: &Limits) -> Result<Box<dyn Instance>, Error> {
        Ok(Box::new(instance::instantiate(self, host, limits)?))
    }

    fn serialize(&self) -> Option<Vec<u8>> {
        self.module.serialize().ok().map(|bytes| bytes.to_vec())
    }
}

/// Refuses imports the host lacks ([`Error::UnknownImports`], all of them named) and imports of
/// host functions with another signature than the ABI table's ([`Error::BadImport`]).
fn check_imports(module: &wasmer::Module) -> Result<(), Error> {
    let mut unknown = Vec::new();
    for import in module.imports() {
        let name = format!("{}.{}", import.module(), import.name());
        let Some(row) = abi::host_function(import.module(), import.name()) else {
            unknown.push(name);
            continue;
        };
        let expected = signature(row.params.iter().filter_map(|p| p.kind.wasm_type()), row.result.wasm_type());
        let found = match import.ty() {
            ExternType::Function(ty) => func_signature(ty),
            other => format!("a {}", extern_noun(other)),
        };
        if found != expected {
            return Err(Error::BadImport { import: name, message: format!("expected {expected}, found {found}") });
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::UnknownImports(unknown))
    }
}

/// `(i32, i32) -> i32`, or `(i32) -> ()` without a result.
pub(crate) fn signature<'a>(params: impl Iterator<Item = &'a str>, result: Option<&str>) -> String {
    format!("({}) -> {}", params.collect::<Vec<_>>().join(", "), result.unwrap_or("()"))
}

/// A function type written as [`signature`] writes the ABI's.
pub(crate) fn func_signature(ty: &FunctionType) -> String {
    let results: Vec<_> = ty.results().iter().map(val_type).collect();
    let result = match results.len() {
        0 => "()".to_string(),
        1 => results[0].to_string(),
        _ => format!("({})", results.join(", ")),
    };
    signature(ty.params().iter().map(val_type), Some(&result))
}

/// `function`, `memory`, ...: what an import or export is, for messages.
pub(crate) fn extern_noun(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Function(_) => "function",
        ExternType::Memory(_) => "memory",
        ExternType::Table(_) => "table",
        ExternType::Global(_) => "global",
        ExternType::Tag(_) => "tag",
    }
}

fn extern_kind(ty: &ExternType) -> ExternKind {
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
