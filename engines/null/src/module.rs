//! [`NullModule`]: a static plugin by name, or a shared library's bytes with the imports and
//! exports read from its ELF dynamic symbol table.

use std::sync::Arc;

use abi::{AbiVersion, CALLBACKS};
use object::{Object, ObjectSymbol};
use proxy_wasm_host::{Error, Export, ExternKind, Import, Instance, Module, VmHost};

use crate::instance::NullInstance;
use crate::{Lookup, NAME};

/// Where a module's code is.
#[derive(Clone)]
pub(crate) enum Code {
    /// Linked into the binary: exports by name.
    Static(Lookup),
    /// A shared library, loaded afresh for every instance.
    Dynamic(Arc<[u8]>),
}

/// A native plugin: what it imports and exports, and where its code is. Instantiating a
/// dynamic one loads a private copy of the library.
pub struct NullModule {
    pub(crate) code: Code,
    /// The plugin's name (static) or `shared library` (dynamic), for messages.
    pub(crate) label: String,
    imports: Vec<Import>,
    exports: Vec<Export>,
}

/// Every name the host may look up in a plugin: the markers and every callback.
fn exported_names() -> impl Iterator<Item = &'static str> {
    AbiVersion::ALL.iter().map(|v| v.marker()).chain(CALLBACKS.iter().map(|c| c.name))
}

/// The exports among `present`, each typed with the ABI's signature for the version the
/// markers declare (native code carries no types to check; the ABI's are assumed).
fn typed_exports(present: &[&'static str]) -> Vec<Export> {
    let version = abi::detect_version(present.iter().copied()).ok();
    let mut exports = Vec::new();
    for name in present {
        let row = CALLBACKS
            .iter()
            .filter(|c| c.name == *name)
            .find(|c| version.is_none_or(|v| c.versions.contains(v)))
            .or_else(|| CALLBACKS.iter().find(|c| c.name == *name));
        let kind = match row {
            Some(c) => ExternKind::func(c.params.iter().map(|p| p.kind), c.result),
            // A marker: () -> ().
            None => ExternKind::Func { params: Vec::new(), results: Vec::new() },
        };
        if !exports.iter().any(|e: &Export| e.name == *name) {
            exports.push(Export { name: name.to_string(), kind });
        }
    }
    exports
}

impl NullModule {
    /// A static plugin registered as `name`.
    pub(crate) fn static_plugin(name: &str, lookup: Lookup) -> Self {
        let present: Vec<&'static str> = exported_names().filter(|n| lookup(n).is_some()).collect();
        NullModule { code: Code::Static(lookup), label: format!("static plugin `{name}`"), imports: Vec::new(), exports: typed_exports(&present) }
    }

    /// A shared library: an ELF image for this machine's architecture. Its undefined `proxy_*`
    /// symbols are its imports from `env`; its defined functions with ABI names, its exports.
    pub(crate) fn dynamic(bytes: &[u8]) -> Result<Self, Error> {
        let fail = |message: String| Error::Compile { engine: NAME, message };
        let file = object::File::parse(bytes).map_err(|e| fail(format!("not a readable ELF shared library: {e}")))?;
        let host = host_architecture();
        if file.architecture() != host || !file.is_64() {
            return Err(fail(format!(
                "the library is built for {:?} ({}-bit); this host is {host:?} (64-bit)",
                file.architecture(),
                if file.is_64() { 64 } else { 32 }
            )));
        }
        if file.kind() != object::ObjectKind::Dynamic {
            return Err(fail(format!("not a shared library (an ELF {:?} file); build the plugin as a cdylib", file.kind())));
        }
        let mut imports = Vec::new();
        let mut defined = Vec::new();
        for symbol in file.dynamic_symbols() {
            let Ok(name) = symbol.name() else { continue };
            if symbol.is_undefined() {
                if name.starts_with("proxy_") && !imports.iter().any(|i: &Import| i.name == name) {
                    let kind = match abi::host_function("env", name) {
                        Some(row) => ExternKind::func(row.params.iter().map(|p| p.kind), row.result),
                        None => ExternKind::Func { params: Vec::new(), results: Vec::new() },
                    };
                    imports.push(Import { module: "env".into(), name: name.to_string(), kind });
                }
            } else if symbol.is_definition() && symbol.is_global() {
                defined.push(name.to_string());
            }
        }
        let present: Vec<&'static str> = exported_names().filter(|n| defined.iter().any(|d| d == n)).collect();
        Ok(NullModule {
            code: Code::Dynamic(bytes.into()),
            label: "shared library".into(),
            imports,
            exports: typed_exports(&present),
        })
    }

    /// Whether the module exports `name`.
    pub(crate) fn exports_name(&self, name: &str) -> bool {
        self.exports.iter().any(|e| e.name == name)
    }
}

/// The architecture this binary runs on, as `object` names it.
fn host_architecture() -> object::Architecture {
    if cfg!(target_arch = "x86_64") {
        object::Architecture::X86_64
    } else if cfg!(target_arch = "aarch64") {
        object::Architecture::Aarch64
    } else {
        object::Architecture::Unknown
    }
}

impl Module for NullModule {
    fn imports(&self) -> &[Import] {
        &self.imports
    }

    fn exports(&self) -> &[Export] {
        &self.exports
    }

    /// Limits are not enforced: native code has no sandbox (see the crate docs).
    fn instantiate(&self, host: VmHost) -> Result<Box<dyn Instance>, Error> {
        Ok(Box::new(NullInstance::new(self, host)?))
    }
}
