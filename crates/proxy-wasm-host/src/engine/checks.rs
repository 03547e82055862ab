//! The checks every engine makes of a module, written once so that a mistyped module is refused
//! with the same message on every engine: imports against the ABI table, callback exports
//! against their signatures, and which export is the guest allocator.

use abi::Callback;

use super::{Export, ExternKind, Import};
use crate::Error;

/// The imports of a module that this host does not provide, as `module.name`.
pub fn missing_imports(imports: &[Import]) -> Vec<String> {
    imports
        .iter()
        .filter(|i| {
            !matches!(i.kind, ExternKind::Func { .. }) || abi::host_function(&i.module, &i.name).is_none()
        })
        .map(|i| format!("{}.{}", i.module, i.name))
        .collect()
}

/// Refuses imports the host lacks ([`Error::UnknownImports`], all of them named) and imports of
/// host functions with another signature than the ABI table's ([`Error::BadImport`]). Engines
/// call it before linking, so the error is the same on every engine.
pub fn check_imports(imports: &[Import]) -> Result<(), Error> {
    let missing = missing_imports(imports);
    if !missing.is_empty() {
        return Err(Error::UnknownImports(missing));
    }
    for import in imports {
        if let Some(row) = abi::host_function(&import.module, &import.name) {
            let expected = ExternKind::func(row.params.iter().map(|p| p.kind), row.result);
            if import.kind != expected {
                return Err(Error::BadImport {
                    import: format!("{}.{}", import.module, import.name),
                    message: format!("expected {}, found {}", expected.describe(), import.kind.describe()),
                });
            }
        }
    }
    Ok(())
}

/// Every callback of any ABI version that `exports` has, with [`check_callback_export`]'s
/// verdict on its type; `None` where it is not exported. Engines work it out once per module,
/// so that making an instance neither rebuilds export types nor looks up absent names.
pub fn callback_exports(exports: &[Export]) -> [Option<Result<(), Error>>; Callback::COUNT] {
    std::array::from_fn(|i| {
        let callback = abi::CALLBACKS[i].callback;
        let export = exports.iter().find(|e| e.name == callback.name())?;
        Some(check_callback_export(callback, &export.kind))
    })
}

/// The export under which an engine that must run a module's Wasm start section itself (its
/// runtime would run it inside instantiation, before the host functions have the memory and
/// outside any deadline: Wasmer, WAMR) exposes the start function, having taken it out of the
/// start section; the instance calls it right after instantiation, under the call deadline.
/// Hidden from [`Module::exports`](crate::Module::exports). A module's own export of this name
/// is dropped, so the export is there exactly when the module had a start section.
pub const START_EXPORT: &str = "__proxy_wasm_host_start";

/// Whether `exports` has the guest's memory: a memory exported as [`abi::MEMORY_EXPORT`].
pub fn exports_memory(exports: &[Export]) -> bool {
    exports.iter().any(|e| e.name == abi::MEMORY_EXPORT && e.kind == ExternKind::Memory)
}

/// Refuses an export named as `callback` whose type (`found`) is not the callback's signature
/// ([`Error::BadExport`]). Engines call it before making a callback's typed handle.
pub fn check_callback_export(callback: Callback, found: &ExternKind) -> Result<(), Error> {
    let info = callback.info();
    let expected = ExternKind::func(info.params.iter().map(|p| p.kind), info.result);
    if *found == expected {
        Ok(())
    } else {
        Err(Error::BadExport {
            export: info.name.to_string(),
            message: format!("expected {}, found {}", expected.describe(), found.describe()),
        })
    }
}


/// The guest allocator the host calls to hand the guest bytes: `malloc` when the module exports
/// it, else `proxy_on_memory_allocate` (the C++ host's order). The host records the choice in
/// the VM's [`VmHost`](crate::VmHost) ([`VmHost::allocator`](crate::VmHost::allocator)); an engine
/// resolves that callback's handle for [`HostCx::allocate`](crate::HostCx::allocate).
pub fn allocator_callback(exports: &[Export]) -> Callback {
    if exports.iter().any(|e| e.name == Callback::Malloc.name()) {
        Callback::Malloc
    } else {
        Callback::OnMemoryAllocate
    }
}
