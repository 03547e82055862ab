//! Turning Wasmtime's errors into the host's [`Trap`]s.

use proxy_wasm_host::Trap;
use wasmtime::WasmBacktrace;

/// The [`Trap`] an error out of Wasm (or out of instantiation) stands for:
/// - a host [`Trap`] (a host function's, one from a nested allocator call) is itself;
/// - Wasmtime's epoch interrupt is a deadline trap (the host's watchdog says whether the
///   deadline passed);
/// - any other Wasm trap is a guest trap with Wasmtime's one-line reason and the innermost
///   function;
/// - anything else is a guest trap with Wasmtime's message chain, without backtrace.
///
/// The trap carries Wasmtime's backtrace as function names, innermost first
/// ([`Trap::backtrace`]); a host [`Trap`] keeps its own.
pub(crate) fn from_error(error: wasmtime::Error) -> Trap {
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return trap.clone();
    }
    let frames: Vec<String> = error
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| {
            bt.frames()
                .iter()
                .map(|frame| match frame.func_name() {
                    Some(name) => name.to_string(),
                    None => format!("wasm function {}", frame.func_index()),
                })
                .collect()
        })
        .unwrap_or_default();
    let location = proxy_wasm_host::engine::trap_location(&frames);
    let trap = match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => Trap::deadline(format!("interrupted by the host{location}")),
        Some(trap) => Trap::guest(format!("{trap}{location}")),
        None => {
            let chain: Vec<String> =
                error.chain().map(|e| e.to_string()).filter(|m| !m.contains("wasm backtrace:")).collect();
            Trap::guest(format!("{}{location}", chain.join(": ")))
        }
    };
    trap.with_backtrace(frames)
}
