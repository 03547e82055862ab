//! Module loading as the host does it before any engine runs code: the text format or a binary
//! (`module_binary`), then the checks every engine shares (`validate`: the ABI marker, imports
//! against the ABI table, callback export types, the allocator).
//!
//! The module's imports and exports are read with wasmparser, as an engine would report them;
//! compiling is the engines' own business (each is fuzzed by its project), so no engine is built
//! here. The invariant: never a panic; a module is loaded or refused with an error.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use proxy_wasm_host::{
    module_binary, validate, Capabilities, Engine, Error, Export, ExternKind, Import, Instance, Module, VmHost,
};
use wasmparser::{CompositeInnerType, ExternalKind, Parser, Payload, TypeRef, ValType};

struct ParsedEngine;

impl Engine for ParsedEngine {
    fn name(&self) -> &'static str {
        "parsed"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { sandboxed: true, ..Default::default() }
    }
    fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        parse(bytes).map(|m| Arc::new(m) as Arc<dyn Module>).map_err(|message| Error::Compile { engine: "parsed", message })
    }
}

struct Parsed {
    imports: Vec<Import>,
    exports: Vec<Export>,
}

impl Module for Parsed {
    fn imports(&self) -> &[Import] {
        &self.imports
    }
    fn exports(&self) -> &[Export] {
        &self.exports
    }
    fn instantiate(&self, _host: VmHost) -> Result<Box<dyn Instance>, Error> {
        Err(Error::Unsupported { engine: "parsed", what: "instances" })
    }
}

fn val(t: ValType) -> &'static str {
    match t {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::V128 => "v128",
        ValType::Ref(_) => "ref",
    }
}

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    wasmparser::Validator::new().validate_all(bytes).map_err(|e| e.to_string())?;
    let mut types: Vec<ExternKind> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut imports = Vec::new();
    let mut export_list = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for ty in group.map_err(|e| e.to_string())?.into_types() {
                        types.push(match &ty.composite_type.inner {
                            CompositeInnerType::Func(f) => ExternKind::Func {
                                params: f.params().iter().map(|t| val(*t)).collect(),
                                results: f.results().iter().map(|t| val(*t)).collect(),
                            },
                            _ => ExternKind::Other,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    let kind = match import.ty {
                        TypeRef::Func(t) => {
                            funcs.push(t);
                            types.get(t as usize).cloned().unwrap_or(ExternKind::Other)
                        }
                        TypeRef::Memory(_) => ExternKind::Memory,
                        TypeRef::Table(_) => ExternKind::Table,
                        TypeRef::Global(_) => ExternKind::Global,
                        _ => ExternKind::Other,
                    };
                    imports.push(Import { module: import.module.to_string(), name: import.name.to_string(), kind });
                }
            }
            Payload::FunctionSection(reader) => {
                for f in reader {
                    funcs.push(f.map_err(|e| e.to_string())?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    export_list.push((export.name.to_string(), export.kind, export.index));
                }
            }
            _ => {}
        }
    }
    let exports = export_list
        .into_iter()
        .map(|(name, kind, index)| {
            let kind = match kind {
                ExternalKind::Func => funcs
                    .get(index as usize)
                    .and_then(|t| types.get(*t as usize))
                    .cloned()
                    .unwrap_or(ExternKind::Other),
                ExternalKind::Memory => ExternKind::Memory,
                ExternalKind::Table => ExternKind::Table,
                ExternalKind::Global => ExternKind::Global,
                _ => ExternKind::Other,
            };
            Export { name, kind }
        })
        .collect();
    Ok(Parsed { imports, exports })
}

fuzz_target!(|bytes: &[u8]| {
    let engine = ParsedEngine;
    let Ok(binary) = module_binary(&engine, bytes) else { return };
    let Ok(module) = engine.compile(&binary) else { return };
    match validate(&*module) {
        Ok(_) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
