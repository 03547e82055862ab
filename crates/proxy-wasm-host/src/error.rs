//! The host's error and trap types.

use abi::Callback;

/// Why a VM stopped in the middle of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrapKind {
    /// The guest trapped (unreachable, out-of-bounds access, ...) or a host function failed it.
    Guest,
    /// The call ran past [`Limits::call_deadline`](crate::Limits::call_deadline) or was
    /// interrupted.
    Deadline,
    /// The guest needed more memory than [`Limits::max_memory_bytes`](crate::Limits::max_memory_bytes).
    MemoryLimit,
    /// The guest called a host function not allowed in a restricted phase (its start functions,
    /// its allocator), as Envoy's V8 runtime refuses it ([`abi::RestrictedPhase`]).
    Restricted,
}

/// A trap: the VM that raised it has failed and must not be called again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    /// What kind of stop.
    pub kind: TrapKind,
    /// The engine's or host's message.
    pub message: String,
    /// The Wasm call stack when the guest stopped, innermost frame first, each frame the
    /// function's name from the module's name section (or `wasm function N` without one).
    /// Empty when the engine gives no backtrace (the Null VM, a host function's own trap) or
    /// the trap did not come out of guest code. Logged with the failure, never shown in
    /// transcripts (engines differ in the frames they see).
    pub backtrace: Vec<String>,
}

impl Trap {
    /// A trap of `kind` with this message and no backtrace.
    pub fn new(kind: TrapKind, message: impl Into<String>) -> Self {
        Trap { kind, message: message.into(), backtrace: Vec::new() }
    }

    /// A guest trap with this message.
    pub fn guest(message: impl Into<String>) -> Self {
        Trap::new(TrapKind::Guest, message)
    }

    /// A deadline trap with this message.
    pub fn deadline(message: impl Into<String>) -> Self {
        Trap::new(TrapKind::Deadline, message)
    }

    /// The same trap with this backtrace (innermost frame first; see [`Trap::backtrace`]).
    pub fn with_backtrace(mut self, frames: Vec<String>) -> Self {
        self.backtrace = frames;
        self
    }
}

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            TrapKind::Guest => write!(f, "{}", self.message),
            TrapKind::Deadline => write!(f, "CPU deadline exceeded: {}", self.message),
            TrapKind::MemoryLimit => write!(f, "memory limit exceeded: {}", self.message),
            TrapKind::Restricted => write!(f, "restricted host call: {}", self.message),
        }
    }
}

impl std::error::Error for Trap {}

/// Everything that can go wrong loading a plugin or creating, starting or running a VM.
/// Each message names the plugin part at fault and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a valid module for this engine.
    Compile {
        /// The engine.
        engine: &'static str,
        /// The engine's message.
        message: String,
    },
    /// A module in the Wasm text format does not parse.
    Text(String),
    /// The module imports functions this host does not provide.
    UnknownImports(Vec<String>),
    /// An import has a signature other than the ABI's.
    BadImport {
        /// `module.name`.
        import: String,
        /// What is wrong.
        message: String,
    },
    /// An export has a signature other than the ABI's.
    BadExport {
        /// The export.
        export: String,
        /// What is wrong.
        message: String,
    },
    /// The ABI version cannot be determined.
    Version(abi::VersionError),
    /// The module exports neither `malloc` nor `proxy_on_memory_allocate`.
    NoAllocator,
    /// The engine could not instantiate the module.
    Instantiate {
        /// The engine.
        engine: &'static str,
        /// The engine's message.
        message: String,
    },
    /// A callback trapped.
    Trap {
        /// The callback.
        callback: Callback,
        /// The trap.
        trap: Trap,
    },
    /// `proxy_on_vm_start` returned false.
    VmStartRejected {
        /// The VM id.
        vm_id: String,
    },
    /// `proxy_on_configure` returned false.
    ConfigureRejected {
        /// The plugin name.
        plugin: String,
    },
    /// The VM failed earlier and cannot be used.
    VmFailed(String),
    /// No such context, or a context of the wrong kind for the call.
    BadContext(u32),
    /// No outstanding callout with this id.
    UnknownCall(u32),
    /// No such root id in this VM.
    UnknownRoot(String),
    /// A plugin with this root id is already started in this VM.
    DuplicateRoot(String),
    /// The engine cannot do this.
    Unsupported {
        /// The engine.
        engine: &'static str,
        /// What it cannot do.
        what: &'static str,
    },
    /// Reading a plugin file failed.
    Io(String),
    /// A plugin's configuration has a bad value (a failure policy, a backoff, a VM model).
    BadConfig {
        /// The plugin's name.
        plugin: String,
        /// The key at fault, for example `reload_config.backoff.base_interval`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A precompiled-module cache directory or file failed a check, or could not be read or
    /// written ([`PrecompiledCache`](crate::PrecompiledCache)).
    Cache {
        /// The directory or file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The Null VM loads native plugins, not Wasm.
            Error::Compile { engine: "null", message } => write!(f, "not a plugin the Null VM can load: {message}"),
            Error::Compile { engine, message } => write!(f, "not a valid Wasm module for {engine}: {message}"),
            Error::Text(message) => write!(f, "not valid Wasm text: {message}"),
            Error::UnknownImports(names) => write!(
                f,
                "it imports {}, which this host does not provide",
                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
            Error::BadImport { import, message } => write!(f, "its import `{import}` has the wrong type: {message}"),
            Error::BadExport { export, message } => write!(f, "its export `{export}` has the wrong type: {message}"),
            Error::Version(e) => write!(f, "{e}"),
            Error::NoAllocator => write!(
                f,
                "it exports neither `malloc` nor `proxy_on_memory_allocate`, so the host cannot pass it any data"
            ),
            Error::Instantiate { engine, message } => write!(f, "{engine} could not instantiate it: {message}"),
            Error::Trap { callback, trap } => write!(f, "it trapped in {callback}: {trap}"),
            Error::VmStartRejected { vm_id } => write!(f, "proxy_on_vm_start returned false for VM `{vm_id}`"),
            Error::ConfigureRejected { plugin } => {
                write!(f, "proxy_on_configure of plugin `{plugin}` returned false: it rejected its configuration")
            }
            Error::VmFailed(why) => write!(f, "the VM has failed and cannot be used: {why}"),
            Error::BadContext(id) => write!(f, "no context {id} of that kind in this VM"),
            Error::UnknownCall(id) => write!(f, "no outstanding HTTP or gRPC call {id} in this VM"),
            Error::UnknownRoot(id) => write!(f, "no plugin with root id `{id}` in this VM"),
            Error::DuplicateRoot(id) => write!(
                f,
                "a plugin with root id `{id}` is already started in this VM; plugins sharing a VM need distinct root ids"
            ),
            Error::Unsupported { engine, what } => write!(f, "{engine} does not support {what}"),
            Error::Io(m) => write!(f, "{m}"),
            Error::BadConfig { plugin, key, message } => write!(f, "plugin `{plugin}`: `{key}` {message}"),
            Error::Cache { path, reason } => write!(f, "precompiled-module cache {path}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<abi::VersionError> for Error {
    fn from(e: abi::VersionError) -> Self {
        Error::Version(e)
    }
}

/// A frame's function name made readable: a Rust symbol (legacy or v0 mangling) demangled
/// without its hash; any other name as it is.
pub(crate) fn demangled(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(d) => format!("{d:#}"),
        Err(_) => name.to_string(),
    }
}
