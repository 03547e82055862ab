//! Plain value, type and error types of the wrapper: nothing here touches WAMR.

use std::fmt;

/// A Wasm value type as WAMR reports it (`wasm_valkind_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValType {
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `v128` (never produced by this build: SIMD is off).
    V128,
    /// `funcref`.
    FuncRef,
    /// `externref`.
    ExternRef,
}

impl ValType {
    /// The type of a `wasm_valkind_t`, `None` for a kind this WAMR version does not define.
    pub(crate) fn from_kind(kind: wamrx_sys::wasm_valkind_t) -> Option<Self> {
        use wamrx_sys as sys;
        Some(match u32::from(kind) {
            sys::WASM_I32 => ValType::I32,
            sys::WASM_I64 => ValType::I64,
            sys::WASM_F32 => ValType::F32,
            sys::WASM_F64 => ValType::F64,
            sys::WASM_V128 => ValType::V128,
            sys::WASM_FUNCREF => ValType::FuncRef,
            sys::WASM_EXTERNREF => ValType::ExternRef,
            _ => return None,
        })
    }

    /// Its name in the text format: `"i32"`, `"i64"`, ...
    pub fn name(self) -> &'static str {
        match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::FuncRef => "funcref",
            ValType::ExternRef => "externref",
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value passed to or returned from a guest function. Only the integer types: the Proxy-Wasm
/// ABI has no others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
}

impl Val {
    /// Its type.
    pub fn ty(self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
        }
    }
}

/// A function type: parameter and result types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FuncType {
    /// Parameter types, in order.
    pub params: Vec<ValType>,
    /// Result types, in order (WAMR supports multi-value).
    pub results: Vec<ValType>,
}

impl fmt::Display for FuncType {
    /// `(i32, i32) -> i32`, `() -> ()`, `(i64) -> (i32, i32)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[ValType]| v.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ");
        match self.results.as_slice() {
            [one] => write!(f, "({}) -> {one}", list(&self.params)),
            many => write!(f, "({}) -> ({})", list(&self.params), list(many)),
        }
    }
}

/// What an import or export is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternType {
    /// A function of this type.
    Func(FuncType),
    /// A table.
    Table,
    /// A linear memory.
    Memory,
    /// A global.
    Global,
    /// A kind WAMR reported that this wrapper does not know, or a function type with a value
    /// kind it does not know. Hosts should refuse it.
    Unknown,
}

/// One import of a loaded module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportInfo {
    /// Module name, for example `env`.
    pub module: String,
    /// Field name, for example `proxy_log`.
    pub name: String,
    /// What is imported.
    pub ty: ExternType,
    /// Whether WAMR linked it to a registered host function (functions only). WAMR loads a
    /// module whose function import is missing or has another signature than the registered
    /// one (it then traps only when the import is called), so this is `false` for those: the
    /// host must refuse such a module itself.
    pub linked: bool,
}

/// One export of a loaded module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportInfo {
    /// Its name.
    pub name: String,
    /// What is exported.
    pub ty: ExternType,
}

/// A refused `memory.grow` (the guest saw -1), as WAMR reported it through its
/// enlarge-memory error callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrowRefusal {
    /// Pages the guest asked for (in the instance's page size, see [`Instance::memory_bytes_per_page`](crate::wamr::Instance::memory_bytes_per_page)).
    pub requested_pages: u32,
    /// Bytes of linear memory when the grow was refused (unchanged by it).
    pub current_bytes: u64,
    /// The size in bytes the grow asked for: `current_bytes` plus the pages asked for.
    pub requested_bytes: u64,
    /// `true` when the grow would have passed the maximum (the instance's memory cap, or the
    /// module's own declared maximum if lower); `false` for an internal failure (the page count
    /// overflowed, or the host could not map more memory).
    pub at_maximum: bool,
}

/// Why the runtime could not start, a module could not be loaded or instantiated, or a
/// function could not be looked up. Each message says what and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// [`init`](crate::wamr::init) failed or was called again with another host-function table.
    Init(String),
    /// WAMR refused the module; its own message.
    Load(String),
    /// WAMR could not instantiate the module; its own message.
    Instantiate(String),
    /// The memory cap is below the module's initial memory. WAMR would silently raise the cap
    /// to the initial size; this wrapper refuses instead.
    MemoryCapBelowInitial {
        /// The cap asked for, in bytes.
        cap_bytes: u64,
        /// The module's initial linear memory, in bytes.
        initial_bytes: u64,
    },
    /// The memory cap is under one 64 KiB page: WAMR reads a cap of 0 pages as "no cap".
    MemoryCapTooSmall {
        /// The cap asked for, in bytes.
        cap_bytes: u64,
    },
    /// An exported function is missing or has a type this wrapper cannot call.
    Func {
        /// The export name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Init(m) => write!(f, "WAMR runtime: {m}"),
            Error::Load(m) => write!(f, "WAMR could not load the module: {m}"),
            Error::Instantiate(m) => write!(f, "WAMR could not instantiate the module: {m}"),
            Error::MemoryCapBelowInitial { cap_bytes, initial_bytes } => write!(
                f,
                "memory limit of {cap_bytes} bytes is below the module's initial memory of {initial_bytes} bytes"
            ),
            Error::MemoryCapTooSmall { cap_bytes } => {
                write!(f, "memory limit of {cap_bytes} bytes is below one 64 KiB page")
            }
            Error::Func { name, message } => write!(f, "export `{name}`: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Why a call of a guest function failed. `E` is the host's own trap type, returned by host
/// functions.
#[derive(Debug)]
pub enum CallError<E> {
    /// The guest trapped: WAMR's exception text without its `Exception: ` prefix, for example
    /// `unreachable` or `wasm operand stack overflow`. WAMR keeps at most 127 bytes of it.
    Trap(String),
    /// A host function returned this trap; it is kept whole on the Rust side (WAMR only saw a
    /// short placeholder text).
    Host(E),
    /// A host function panicked; the panic message. The panic was caught at the FFI boundary.
    HostPanic(String),
    /// The call was stopped by an [`InterruptHandle`](crate::wamr::InterruptHandle).
    Interrupted,
    /// The arguments do not match the function's parameters, or the function handle belongs to
    /// another instance. Nothing ran.
    BadCall(String),
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Trap(m) => write!(f, "wasm trap: {m}"),
            CallError::Host(e) => write!(f, "{e}"),
            CallError::HostPanic(m) => write!(f, "host function panicked: {m}"),
            CallError::Interrupted => f.write_str("interrupted by the host"),
            CallError::BadCall(m) => write!(f, "bad call: {m}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for CallError<E> {}
