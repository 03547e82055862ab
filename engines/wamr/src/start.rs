//! Taking a module's start section out of WAMR's instantiation.
//!
//! WAMR runs a module's start function inside `wasm_runtime_instantiate`, before it hands the
//! instance over, so nothing can interrupt it there: the interrupt (`wasm_runtime_terminate`)
//! needs the instance. A start function that never ends would hang the VM's creation for good.
//! So before WAMR loads a module, [`take_start`] rewrites it: the start section is dropped and
//! its function is exported as [`START_EXPORT`] instead. The instance then calls that export
//! itself, right after instantiation and before any callback, under the VM's call deadline
//! (`instance::instantiate`), as the Wasmer engine does with its compiler middleware.
//!
//! The rewrite copies every other section byte for byte (custom sections, the name section
//! among them, stay where they were), re-encodes only the export section (the module's exports
//! in order, less any of its own named [`START_EXPORT`], then [`START_EXPORT`]), and adds an
//! export section where the start section was when the module had none (export sections come
//! right before start sections). Function indexes do not change.

use std::borrow::Cow;

use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{Encoding, ExternalKind, Parser, Payload};

/// The export under which [`take_start`] exposes the module's start function (the host's one
/// reserved name for it).
pub(crate) use proxy_wasm_host::engine::START_EXPORT;

/// The section id of export sections.
const EXPORT_SECTION: u8 = 7;

/// `bytes` with its start section turned into the export [`START_EXPORT`]; `bytes` themselves
/// (borrowed, untouched) when the module has no start section, or when it cannot be read as a
/// core module, so that WAMR refuses it in its own words.
pub(crate) fn take_start(bytes: &[u8]) -> Cow<'_, [u8]> {
    match rewrite(bytes) {
        Some(rewritten) => Cow::Owned(rewritten),
        None => Cow::Borrowed(bytes),
    }
}

/// The rewrite; `None` for "leave the bytes alone".
fn rewrite(bytes: &[u8]) -> Option<Vec<u8>> {
    // One pass to find the start function: most modules have none and are not copied.
    let mut start = None;
    let mut has_exports = false;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::Version { encoding: Encoding::Module, .. } => {}
            Payload::Version { .. } => return None,
            Payload::ExportSection(_) => has_exports = true,
            Payload::StartSection { func, .. } => start = Some(func),
            _ => {}
        }
    }
    let start = start?;
    let mut module = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.ok()?;
        match &payload {
            Payload::ExportSection(reader) => {
                let mut exports = ExportSection::new();
                for export in reader.clone() {
                    let export = export.ok()?;
                    if export.name != START_EXPORT {
                        exports.export(export.name, export_kind(export.kind), export.index);
                    }
                }
                exports.export(START_EXPORT, ExportKind::Func, start);
                module.section(&exports);
            }
            Payload::StartSection { .. } => {
                if !has_exports {
                    let mut exports = ExportSection::new();
                    exports.export(START_EXPORT, ExportKind::Func, start);
                    module.section(&exports);
                }
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    debug_assert_ne!(id, EXPORT_SECTION);
                    let range = usize::try_from(range.start).ok()?..usize::try_from(range.end).ok()?;
                    module.section(&RawSection { id, data: bytes.get(range)? });
                }
            }
        }
    }
    Some(module.finish())
}

/// The encoder's export kind for the parser's.
fn export_kind(kind: ExternalKind) -> ExportKind {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    }
}

#[cfg(test)]
mod tests {
    use wasmparser::{Parser, Payload, Validator};

    use super::*;

    /// The rewrite of `wat`, checked valid.
    fn rewritten(wat: &str) -> Vec<u8> {
        let bytes = wat::parse_str(wat).unwrap();
        let out = take_start(&bytes).into_owned();
        assert_ne!(out, bytes, "rewritten");
        Validator::new().validate_all(&out).expect("the rewrite is a valid module");
        out
    }

    /// What a module's sections hold, for the checks.
    #[derive(Default)]
    struct Sections {
        /// The section ids, in order.
        ids: Vec<u8>,
        /// The start function, if any.
        start: Option<u32>,
        /// The exports as (name, index).
        exports: Vec<(String, u32)>,
        /// The custom sections' names.
        custom: Vec<String>,
    }

    fn sections(bytes: &[u8]) -> Sections {
        let mut s = Sections::default();
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.unwrap();
            if let Some((id, _)) = payload.as_section() {
                s.ids.push(id);
            }
            match payload {
                Payload::StartSection { func, .. } => s.start = Some(func),
                Payload::ExportSection(r) => {
                    s.exports = r.into_iter().map(|e| e.unwrap()).map(|e| (e.name.to_string(), e.index)).collect();
                }
                Payload::CustomSection(c) => s.custom.push(c.name().to_string()),
                _ => {}
            }
        }
        s
    }

    #[test]
    fn a_start_section_becomes_the_last_export() {
        let out = rewritten(
            r#"(module
              (memory (export "memory") 1)
              (func $a)
              (func $start (call $a))
              (start $start)
              (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1)))"#,
        );
        let Sections { ids, start, exports, custom } = sections(&out);
        assert_eq!(start, None);
        assert!(!ids.contains(&8), "{ids:?}");
        let exports: Vec<_> = exports.iter().map(|(n, i)| (n.as_str(), *i)).collect();
        assert_eq!(exports, [("memory", 0), ("proxy_on_vm_start", 2), (START_EXPORT, 1)]);
        assert_eq!(custom, ["name"], "the name section is kept");
    }

    #[test]
    fn a_module_without_exports_gets_an_export_section() {
        let out = rewritten(
            r#"(module
              (global $g (mut i32) (i32.const 0))
              (table 1 funcref)
              (elem (i32.const 0) $start)
              (func $start (global.set $g (i32.const 1)))
              (start $start))"#,
        );
        let Sections { ids, start, exports, .. } = sections(&out);
        assert_eq!(start, None);
        assert_eq!(exports, [(START_EXPORT.to_string(), 0)]);
        // type, function, table, global, export, element, code, then the custom name section.
        assert_eq!(ids, [1, 3, 4, 6, 7, 9, 10, 0]);
    }

    #[test]
    fn the_modules_own_export_of_the_reserved_name_is_dropped() {
        let out = rewritten(&format!(
            r#"(module
              (func $start)
              (func $other)
              (start $start)
              (export "{START_EXPORT}" (func $other))
              (export "kept" (func $other)))"#
        ));
        let Sections { start, exports, .. } = sections(&out);
        assert_eq!(start, None);
        let exports: Vec<_> = exports.iter().map(|(n, i)| (n.as_str(), *i)).collect();
        assert_eq!(exports, [("kept", 1), (START_EXPORT, 0)]);
    }

    #[test]
    fn a_module_without_a_start_section_is_untouched() {
        let bytes = wat::parse_str(
            r#"(module
              (memory (export "memory") 1)
              (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1)))"#,
        )
        .unwrap();
        let out = take_start(&bytes);
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(*out, *bytes);
    }

    #[test]
    fn bytes_that_are_not_a_module_are_untouched() {
        let bytes = b"\0asm\x01\0\0\0\x08\x05".to_vec();
        assert!(matches!(take_start(&bytes), Cow::Borrowed(_)));
        assert!(matches!(take_start(b"not wasm"), Cow::Borrowed(_)));
    }
}
