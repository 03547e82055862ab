//! What V8 10.2's JS API does not tell: a module's imports and exports with their types (read
//! with `wasmparser`), and the rewrite that turns a module's own memory into an import, so
//! that each VM can be given its own memory maximum.

use wasm_encoder::reencode::Reencode;
use wasm_encoder::EntityType;
use wasmparser::{ExternalKind, FuncType, Parser, Payload, TypeRef};

/// The size of a Wasm page in bytes.
pub const PAGE: u64 = 64 * 1024;

/// The most pages a wasm32 memory can have (4 GiB).
pub const MAX_PAGES: u64 = 65536;

/// The type of an import or export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternType {
    /// A function with its parameter and result types (`"i32"`, `"i64"`, `"f32"`, `"f64"`,
    /// `"v128"`, `"ref"`).
    Func {
        /// Parameter types.
        params: Vec<&'static str>,
        /// Result types.
        results: Vec<&'static str>,
    },
    /// A linear memory.
    Memory(MemoryDecl),
    /// A table.
    Table,
    /// A global.
    Global,
    /// A tag (exception handling).
    Tag,
}

/// One import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// Module name, for example `env`.
    pub module: String,
    /// Field name, for example `proxy_log`.
    pub name: String,
    /// Its type.
    pub ty: ExternType,
}

/// One export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: ExternType,
}

/// A memory's limits, in 64 KiB pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryDecl {
    /// Initial size.
    pub initial: u64,
    /// Declared maximum, if any.
    pub maximum: Option<u64>,
    /// A 64-bit memory (memory64).
    pub memory64: bool,
    /// A shared memory (threads).
    pub shared: bool,
}

/// Where a module's memory comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemorySource {
    /// It has no memory.
    None,
    /// It defines its memory (the usual case).
    Defined(MemoryDecl),
    /// It imports its memory as `module`.`name`.
    Imported {
        /// Module name of the import.
        module: String,
        /// Field name of the import.
        name: String,
        /// Its limits.
        decl: MemoryDecl,
    },
}

/// Imports, exports and memory of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Imports, in order.
    pub imports: Vec<Import>,
    /// Exports, in order.
    pub exports: Vec<Export>,
    /// Its memory (V8 10.2 has no multi-memory: at most one).
    pub memory: MemorySource,
}

fn val_type(t: wasmparser::ValType) -> &'static str {
    use wasmparser::ValType::*;
    match t {
        I32 => "i32",
        I64 => "i64",
        F32 => "f32",
        F64 => "f64",
        V128 => "v128",
        Ref(_) => "ref",
    }
}

fn func_type(ty: &FuncType) -> ExternType {
    ExternType::Func {
        params: ty.params().iter().copied().map(val_type).collect(),
        results: ty.results().iter().copied().map(val_type).collect(),
    }
}

fn memory_decl(m: wasmparser::MemoryType) -> MemoryDecl {
    MemoryDecl { initial: m.initial, maximum: m.maximum, memory64: m.memory64, shared: m.shared }
}

impl ModuleInfo {
    /// Reads imports, exports and memory. Code is not validated here (V8 does that); the error
    /// is `wasmparser`'s when the sections themselves are malformed.
    pub fn parse(bytes: &[u8]) -> Result<ModuleInfo, String> {
        let mut types: Vec<Option<FuncType>> = Vec::new();
        let mut funcs: Vec<u32> = Vec::new(); // type index of every function, imports first
        let mut memories: Vec<MemoryDecl> = Vec::new();
        let mut imports = Vec::new();
        let mut exports = Vec::new();
        let mut memory = MemorySource::None;
        let func_of = |types: &[Option<FuncType>], index: u32| match types.get(index as usize) {
            Some(Some(ty)) => Ok(func_type(ty)),
            _ => Err(format!("function type {index} is not a function type of the module")),
        };
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.map_err(|e| e.to_string())? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group.map_err(|e| e.to_string())?.into_types() {
                            types.push(match sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(f) => Some(f),
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(|e| e.to_string())?;
                        let ty = match import.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                                funcs.push(t);
                                func_of(&types, t)?
                            }
                            TypeRef::Memory(m) => {
                                let decl = memory_decl(m);
                                memories.push(decl);
                                memory = MemorySource::Imported { module: import.module.into(), name: import.name.into(), decl };
                                ExternType::Memory(decl)
                            }
                            TypeRef::Table(_) => ExternType::Table,
                            TypeRef::Global(_) => ExternType::Global,
                            TypeRef::Tag(_) => ExternType::Tag,
                        };
                        imports.push(Import { module: import.module.into(), name: import.name.into(), ty });
                    }
                }
                Payload::FunctionSection(reader) => {
                    for t in reader {
                        funcs.push(t.map_err(|e| e.to_string())?);
                    }
                }
                Payload::MemorySection(reader) => {
                    for m in reader {
                        let decl = memory_decl(m.map_err(|e| e.to_string())?);
                        memories.push(decl);
                        memory = MemorySource::Defined(decl);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(|e| e.to_string())?;
                        let ty = match export.kind {
                            ExternalKind::Func | ExternalKind::FuncExact => {
                                let t = *funcs.get(export.index as usize).ok_or_else(|| format!("export `{}` names function {} of {}", export.name, export.index, funcs.len()))?;
                                func_of(&types, t)?
                            }
                            ExternalKind::Memory => ExternType::Memory(*memories.get(export.index as usize).ok_or_else(|| format!("export `{}` names memory {} of {}", export.name, export.index, memories.len()))?),
                            ExternalKind::Table => ExternType::Table,
                            ExternalKind::Global => ExternType::Global,
                            ExternalKind::Tag => ExternType::Tag,
                        };
                        exports.push(Export { name: export.name.into(), ty });
                    }
                }
                _ => {}
            }
        }
        if memories.len() > 1 {
            return Err(format!("the module has {} memories; V8 10.2 supports one", memories.len()));
        }
        Ok(ModuleInfo { imports, exports, memory })
    }
}

/// What [`rewrite_memory`] does to a module.
#[derive(Clone, Copy, Debug)]
pub struct MemoryRewrite<'a> {
    /// Turn the module's own (defined) memory into an import of this name, same limits.
    pub memory_import: Option<(&'a str, &'a str)>,
    /// Every `memory.grow` becomes a call of a new function import `(i32) -> i32` of this
    /// name, added after the module's function imports.
    pub grow_import: (&'a str, &'a str),
}

/// Rewrites a module with one memory so that a host can give each instance its own memory limit
/// and see every `memory.grow` (V8 10.2 has neither a per-instance limit nor a hook on grow):
/// its memory, if defined, becomes an import with the same limits, and every `memory.grow`
/// instruction a call of a new function import. Memory index 0, its data segments and an export
/// of it are unchanged; the module's own functions move up by one index (the new import comes
/// after the function imports), and every reference to them (calls, `ref.func`, element
/// segments, exports, the start function, the name section) moves with them. Code is
/// re-encoded instruction by instruction with `wasm-encoder`; custom sections are copied.
/// Byte offsets change, which shows in V8's messages for code errors: compile the original to
/// report those.
pub fn rewrite_memory(bytes: &[u8], rewrite: MemoryRewrite<'_>) -> Result<Vec<u8>, String> {
    let mut scan = Scan::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    scan.types += group.map_err(|e| e.to_string())?.types().len() as u32;
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import.map_err(|e| e.to_string())?.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        scan.func_imports += 1;
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    scan.memories.push(memory.map_err(|e| e.to_string())?);
                }
            }
            _ => {}
        }
    }
    let defined = match (rewrite.memory_import, scan.memories.as_slice()) {
        (None, _) => None,
        (Some(name), [memory]) => Some((name, *memory)),
        (Some(_), other) => return Err(format!("the module defines {} memories; one is rewritten", other.len())),
    };
    let mut rewriter = Rewriter { scan, rewrite, defined, types_done: false, imports_done: false };
    let mut module = wasm_encoder::Module::new();
    rewriter.parse_core_module(&mut module, Parser::new(0), bytes).map_err(|e| e.to_string())?;
    Ok(module.finish())
}

/// What [`rewrite_memory`] learns before it rewrites.
#[derive(Default)]
struct Scan {
    /// Types in the type section (the grow import's type is added after them).
    types: u32,
    /// Function imports (the grow import's index).
    func_imports: u32,
    /// Defined memories.
    memories: Vec<wasmparser::MemoryType>,
}

struct Rewriter<'a> {
    scan: Scan,
    rewrite: MemoryRewrite<'a>,
    /// The defined memory that becomes an import, with its import name.
    defined: Option<((&'a str, &'a str), wasmparser::MemoryType)>,
    types_done: bool,
    imports_done: bool,
}

impl Rewriter<'_> {
    fn add_type(&mut self, types: &mut wasm_encoder::TypeSection) {
        types.ty().function([wasm_encoder::ValType::I32], [wasm_encoder::ValType::I32]);
        self.types_done = true;
    }

    fn add_imports(&mut self, imports: &mut wasm_encoder::ImportSection) -> Result<(), ReencodeError> {
        let (module, name) = self.rewrite.grow_import;
        imports.import(module, name, EntityType::Function(self.scan.types));
        if let Some(((module, name), memory)) = self.defined {
            let memory = self.memory_type(memory)?;
            imports.import(module, name, EntityType::Memory(memory));
        }
        self.imports_done = true;
        Ok(())
    }
}

type ReencodeError = wasm_encoder::reencode::Error<std::convert::Infallible>;

impl wasm_encoder::reencode::Reencode for Rewriter<'_> {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError> {
        Ok(if func >= self.scan.func_imports { func + 1 } else { func })
    }

    fn instruction<'b>(&mut self, op: wasmparser::Operator<'b>) -> Result<wasm_encoder::Instruction<'b>, ReencodeError> {
        match op {
            wasmparser::Operator::MemoryGrow { mem: 0 } => Ok(wasm_encoder::Instruction::Call(self.scan.func_imports)),
            op => wasm_encoder::reencode::utils::instruction(self, op),
        }
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        wasm_encoder::reencode::utils::parse_type_section(self, types, section)?;
        self.add_type(types);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        wasm_encoder::reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports)
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut wasm_encoder::MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        if self.defined.is_some() {
            return Ok(()); // Imported now: the section stays empty.
        }
        wasm_encoder::reencode::utils::parse_memory_section(self, memories, section)
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        // A name section that does not parse is copied as it is: names are only for messages.
        if let wasmparser::KnownCustom::Name(names) = section.as_known() {
            if let Ok(names) = self.custom_name_section(names) {
                module.section(&names);
                return Ok(());
            }
        }
        module.section(&wasm_encoder::reencode::utils::custom_section(self, section));
        Ok(())
    }

    /// Adds the type and import sections where the module has none, before the first section
    /// that must follow them.
    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<wasm_encoder::SectionId>,
        before: Option<wasm_encoder::SectionId>,
    ) -> Result<(), ReencodeError> {
        use wasm_encoder::SectionId;
        if !self.types_done && before != Some(SectionId::Type) {
            let mut types = wasm_encoder::TypeSection::new();
            self.add_type(&mut types);
            module.section(&types);
        }
        if !self.imports_done && !matches!(before, Some(SectionId::Type | SectionId::Import)) {
            let mut imports = wasm_encoder::ImportSection::new();
            self.add_imports(&mut imports)?;
            module.section(&imports);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_import_of(bytes: &[u8]) -> Option<(String, String, wasmparser::MemoryType)> {
        for payload in Parser::new(0).parse_all(bytes) {
            if let Payload::ImportSection(reader) = payload.unwrap() {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    if let TypeRef::Memory(m) = import.ty {
                        return Some((import.module.into(), import.name.into(), m));
                    }
                }
            }
        }
        None
    }

    const REWRITE: MemoryRewrite<'static> = MemoryRewrite { memory_import: Some(("m", "mem")), grow_import: ("m", "grow") };

    fn rewrite(wat: &str) -> Vec<u8> {
        let bytes = wat::parse_str(wat).unwrap();
        let out = rewrite_memory(&bytes, REWRITE).unwrap();
        wasmparser::Validator::new().validate_all(&out).expect("the rewritten module is valid");
        out
    }

    #[test]
    fn defined_memory_becomes_an_import_with_the_same_limits() {
        let out = rewrite(
            r#"(module (import "env" "f" (func)) (memory (export "memory") 2 9)
                 (data (i32.const 8) "hi") (func (export "g") (call 0)) (@custom "c" "x"))"#,
        );
        let (module, name, m) = memory_import_of(&out).unwrap();
        assert_eq!((module.as_str(), name.as_str(), m.initial, m.maximum), ("m", "mem", 2, Some(9)));
        let info = ModuleInfo::parse(&out).unwrap();
        let names: Vec<&str> = info.imports.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["f", "grow", "mem"], "function imports keep their indices; grow comes after them");
        assert!(matches!(info.memory, MemorySource::Imported { .. }));
        assert!(info.exports.iter().any(|e| e.name == "memory" && matches!(e.ty, ExternType::Memory(_))));
        assert!(info.exports.iter().any(|e| e.name == "g"));
    }

    #[test]
    fn memory_grow_becomes_a_call_and_function_indices_move_up() {
        let out = rewrite(
            r#"(module (import "env" "f" (func $f)) (memory 1) (table 2 funcref)
                 (elem (i32.const 0) $g $h) (start $h)
                 (func $g (export "g") (param i32) (result i32) (call $h) (memory.grow (local.get 0)))
                 (func $h (drop (ref.func $g))))"#,
        );
        let mut calls = Vec::new();
        let mut grows = 0;
        for payload in Parser::new(0).parse_all(&out) {
            match payload.unwrap() {
                Payload::CodeSectionEntry(body) => {
                    for op in body.get_operators_reader().unwrap() {
                        match op.unwrap() {
                            wasmparser::Operator::Call { function_index } => calls.push(function_index),
                            wasmparser::Operator::MemoryGrow { .. } => grows += 1,
                            _ => {}
                        }
                    }
                }
                Payload::StartSection { func, .. } => assert_eq!(func, 3, "$h moved from 2 to 3"),
                _ => {}
            }
        }
        assert_eq!(grows, 0);
        assert_eq!(calls, [3, 1], "`call $h` follows $h; memory.grow calls the new import, index 1");
        let info = ModuleInfo::parse(&out).unwrap();
        assert_eq!(info.imports[1].ty, ExternType::Func { params: vec!["i32"], results: vec!["i32"] });
    }

    #[test]
    fn import_and_type_sections_are_added_where_there_were_none() {
        for wat in [
            r#"(module (memory 1))"#,
            r#"(module (@custom "c" "x") (memory 1) (func (drop (memory.grow (i32.const 1)))) (data (i32.const 0) "a"))"#,
            r#"(module (@custom "c" "x") (memory 0 1))"#,
        ] {
            let out = rewrite(wat);
            assert!(memory_import_of(&out).is_some(), "{wat}");
        }
    }

    #[test]
    fn an_imported_memory_stays_and_only_grow_is_rewritten() {
        let bytes = wat::parse_str(r#"(module (import "a" "m" (memory 1)) (func (drop (memory.grow (i32.const 1)))))"#).unwrap();
        let out = rewrite_memory(&bytes, MemoryRewrite { memory_import: None, grow_import: ("m", "grow") }).unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
        let info = ModuleInfo::parse(&out).unwrap();
        let names: Vec<&str> = info.imports.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["m", "grow"]);
    }

    #[test]
    fn types_of_imports_and_exports() {
        let bytes = wat::parse_str(
            r#"(module (import "a" "f" (func (param i32 i64) (result f64))) (import "a" "t" (table 1 funcref))
                 (global (export "g") i32 (i32.const 0)) (func (export "h") (param f32)))"#,
        )
        .unwrap();
        let info = ModuleInfo::parse(&bytes).unwrap();
        assert_eq!(info.imports[0].ty, ExternType::Func { params: vec!["i32", "i64"], results: vec!["f64"] });
        assert_eq!(info.imports[1].ty, ExternType::Table);
        assert_eq!(info.exports[0].ty, ExternType::Global);
        assert_eq!(info.exports[1].ty, ExternType::Func { params: vec!["f32"], results: vec![] });
        assert_eq!(info.memory, MemorySource::None);
    }
}
