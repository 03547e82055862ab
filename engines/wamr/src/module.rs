//! [`WamrModule`]: a loaded module, its imports and exports, and the verdicts on them.

use abi::Callback;
use proxy_wasm_host::engine::{callback_exports, check_imports, exports_memory};
use proxy_wasm_host::{Error, Export, ExternKind, Import, Instance, Module, VmHost};

use crate::instance;
use crate::shared::NAME;
use crate::start::START_EXPORT;
use crate::wamr::{self, ExternType, ValType};

/// A module loaded (validated and prepared for the interpreter) by a
/// [`WamrEngine`](crate::WamrEngine). Shared by every VM made from it (`Arc`), `Send + Sync`.
///
/// Its imports are checked against the ABI table when it is loaded, and the verdict is given at
/// each instantiation: WAMR itself loads a module whose import is missing or mistyped (it would
/// trap only when the import is called) and links `env._name` to the host's `name`, so the
/// host's exact-name check is what refuses such modules.
pub struct WamrModule {
    module: wamr::Module,
    imports: Vec<Import>,
    exports: Vec<Export>,
    /// Each callback export's verdict ([`callback_exports`]), checked once.
    verdicts: [Option<Result<(), Error>>; Callback::COUNT],
    /// Whether the imports are the host's, checked once.
    links: Result<(), Error>,
    /// Whether it exports a memory named `memory`, the guest memory host functions see.
    memory_exported: bool,
    /// Whether it had a start section, now exported as [`START_EXPORT`] for the instance to call.
    has_start: bool,
}

impl WamrModule {
    pub(crate) fn new(module: wamr::Module) -> Self {
        let imports: Vec<Import> = module
            .imports()
            .iter()
            .map(|i| Import { module: i.module.clone(), name: i.name.clone(), kind: extern_kind(&i.ty) })
            .collect();
        // Without the start function's export, which is the engine's own (`start.rs`).
        let exports: Vec<Export> = module
            .exports()
            .iter()
            .filter(|e| e.name != START_EXPORT)
            .map(|e| Export { name: e.name.clone(), kind: extern_kind(&e.ty) })
            .collect();
        let verdicts = callback_exports(&exports);
        let links = check_imports(&imports).and_then(|()| linked(&module));
        let memory_exported = exports_memory(&exports);
        let has_start = module.exports().iter().any(|e| e.name == START_EXPORT);
        WamrModule { module, imports, exports, verdicts, links, memory_exported, has_start }
    }

    /// The wrapper's module underneath. Its exports include the engine's own
    /// `__proxy_wasm_host_start` when the module had a start section: the engine took the start
    /// section out before WAMR loaded the module, and calls that export itself after
    /// instantiation.
    pub fn wamr(&self) -> &wamr::Module {
        &self.module
    }

    pub(crate) fn memory_exported(&self) -> bool {
        self.memory_exported
    }

    /// Whether the module had a start section, which the instance runs itself.
    pub(crate) fn has_start(&self) -> bool {
        self.has_start
    }

    pub(crate) fn verdicts(&self) -> &[Option<Result<(), Error>>; Callback::COUNT] {
        &self.verdicts
    }
}

/// A cross-check after [`check_imports`]: WAMR linked every function import the host's check
/// accepted. (It cannot fail while the registered signatures follow the ABI table.)
fn linked(module: &wamr::Module) -> Result<(), Error> {
    match module.imports().iter().find(|i| !i.linked) {
        None => Ok(()),
        Some(i) => Err(Error::Instantiate {
            engine: NAME,
            message: format!("WAMR did not link the import `{}.{}` to the host function of that name", i.module, i.name),
        }),
    }
}

impl Module for WamrModule {
    fn imports(&self) -> &[Import] {
        &self.imports
    }

    fn exports(&self) -> &[Export] {
        &self.exports
    }

    fn instantiate(&self, host: VmHost) -> Result<Box<dyn Instance>, Error> {
        self.links.clone()?;
        Ok(Box::new(instance::instantiate(self, host)?))
    }
}

/// What an import or export is, in the host's terms.
fn extern_kind(ty: &ExternType) -> ExternKind {
    let names = |types: &[ValType]| types.iter().map(|t| t.name()).collect();
    match ty {
        ExternType::Func(f) => ExternKind::Func { params: names(&f.params), results: names(&f.results) },
        ExternType::Memory => ExternKind::Memory,
        ExternType::Table => ExternKind::Table,
        ExternType::Global => ExternKind::Global,
        ExternType::Unknown => ExternKind::Other,
    }
}
