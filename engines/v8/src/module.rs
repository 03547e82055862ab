//! [`V8Module`]: a compiled module, its imports and exports, and the host function row of each
//! import.

use std::sync::{Arc, OnceLock};

use abi::Callback;
use proxy_wasm_host::engine::{callback_exports, check_imports, exports_memory};
use proxy_wasm_host::{Error, Export, ExternKind, Import, Instance, Module, VmHost};

use crate::instance;
use crate::sys::{self, ExternType};

/// A module compiled by a [`V8Engine`](crate::V8Engine). Shared by every VM made from it (`Arc`),
/// `Send + Sync`; each VM re-creates V8's compiled module in its own isolate without compiling.
pub struct V8Module {
    pub(crate) module: Arc<sys::Module>,
    imports: Vec<Import>,
    exports: Vec<Export>,
    /// Each callback's verdict, worked out once.
    pub(crate) callbacks: [Option<Result<(), Error>>; Callback::COUNT],
    /// Each function import that is a host function, with its row in `abi::HOST_FUNCTIONS`.
    pub(crate) rows: Vec<(String, String, u32)>,
    /// Whether it exports its memory as `memory` (host functions see guest memory only then, as
    /// on the other engines).
    pub(crate) exports_memory: bool,
    /// The import check, made at the first instantiation.
    checked: OnceLock<Result<(), Error>>,
}

impl V8Module {
    pub(crate) fn new(module: sys::Module) -> Self {
        let info = module.info();
        let imports: Vec<Import> = info
            .imports
            .iter()
            .map(|i| Import { module: i.module.clone(), name: i.name.clone(), kind: extern_kind(&i.ty) })
            .collect();
        let exports: Vec<Export> =
            info.exports.iter().map(|e| Export { name: e.name.clone(), kind: extern_kind(&e.ty) }).collect();
        let rows = info
            .imports
            .iter()
            .filter(|i| matches!(i.ty, ExternType::Func { .. }))
            .filter_map(|i| {
                let row = abi::host_function_row(&i.module, &i.name)?;
                Some((i.module.clone(), i.name.clone(), row as u32))
            })
            .collect();
        let exports_memory = exports_memory(&exports);
        let callbacks = callback_exports(&exports);
        V8Module { module: Arc::new(module), imports, exports, callbacks, rows, exports_memory, checked: OnceLock::new() }
    }

    /// The low-level module underneath, for baselines that run V8 without our layer.
    pub fn sys(&self) -> &sys::Module {
        &self.module
    }
}

impl Module for V8Module {
    fn imports(&self) -> &[Import] {
        &self.imports
    }

    fn exports(&self) -> &[Export] {
        &self.exports
    }

    fn instantiate(&self, host: VmHost) -> Result<Box<dyn Instance>, Error> {
        self.checked.get_or_init(|| check_imports(&self.imports)).clone()?;
        Ok(Box::new(instance::instantiate(self, host, &[])?))
    }
}

/// What an import or export is, in the host's terms.
fn extern_kind(ty: &ExternType) -> ExternKind {
    match ty {
        ExternType::Func { params, results } => ExternKind::Func { params: params.clone(), results: results.clone() },
        ExternType::Memory(_) => ExternKind::Memory,
        ExternType::Table => ExternKind::Table,
        ExternType::Global => ExternKind::Global,
        ExternType::Tag => ExternKind::Other,
    }
}
