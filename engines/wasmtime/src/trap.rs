//! Turning Wasmtime's errors into the host's [`Trap`]s, and the memory limiter whose refusals
//! are typed traps.

use proxy_wasm_host::{Trap, TrapKind};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder, WasmBacktrace};

use crate::instance::StoreData;

/// The store's resource limiter: Wasmtime's [`StoreLimits`] with `trap_on_grow_failure`, whose
/// refusals are turned into [`TrapKind::MemoryLimit`] traps that survive the trip through Wasm.
pub(crate) struct MemoryLimiter {
    limits: StoreLimits,
    max_memory_bytes: u64,
}

impl MemoryLimiter {
    pub(crate) fn new(max_memory_bytes: u64) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(max_memory_bytes).unwrap_or(usize::MAX))
            .trap_on_grow_failure(true)
            .build();
        MemoryLimiter { limits, max_memory_bytes }
    }

    fn trap(&self, message: String) -> wasmtime::Error {
        wasmtime::Error::new(Trap { kind: TrapKind::MemoryLimit, message })
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Past the module's own declared maximum, `memory.grow` answers -1 as Wasm specifies:
        // only the host's limit is a trap.
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        self.limits.memory_growing(current, desired, maximum).map_err(|_| {
            self.trap(format!(
                "linear memory would grow from {current} to {desired} bytes; the limit is {} bytes",
                self.max_memory_bytes
            ))
        })
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // The pool's slot (or the address space) was too small for a growth the limit allowed.
        let message = format!("growing linear memory failed: {error:#}");
        self.limits.memory_grow_failed(error).map_err(|_| self.trap(message))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }
}

/// The [`Trap`] an error out of Wasm (or out of instantiation) stands for:
/// - a host [`Trap`] (a host function's, the memory limiter's, one from a nested allocator
///   call) is itself;
/// - Wasmtime's epoch interrupt is [`TrapKind::Deadline`], saying whether the deadline passed
///   or the host interrupted;
/// - any other Wasm trap is [`TrapKind::Guest`] with Wasmtime's one-line reason and the
///   innermost function;
/// - anything else is [`TrapKind::Guest`] with Wasmtime's message chain, without backtrace.
pub(crate) fn from_error(error: wasmtime::Error, data: &StoreData) -> Trap {
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return trap.clone();
    }
    let location = error
        .downcast_ref::<WasmBacktrace>()
        .and_then(|bt| bt.frames().first())
        .map(|frame| match frame.func_name() {
            Some(name) => format!(" (in `{name}`)"),
            None => format!(" (in wasm function {})", frame.func_index()),
        })
        .unwrap_or_default();
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => data.stop_reason(),
        Some(trap) => Trap::guest(format!("{trap}{location}")),
        None => {
            let chain: Vec<String> =
                error.chain().map(|e| e.to_string()).filter(|m| !m.contains("wasm backtrace:")).collect();
            Trap::guest(format!("{}{location}", chain.join(": ")))
        }
    }
}
