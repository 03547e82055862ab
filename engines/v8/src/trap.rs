//! Turning the shim's failures into the host's [`Trap`]s and [`Error`]s.

use proxy_wasm_host::{Error, Trap};

use crate::sys::{self, CallError};

/// The engine's name, as [`Engine::name`](proxy_wasm_host::Engine::name) reports it.
pub(crate) const NAME: &str = "v8";

/// The [`Trap`] a failed call stands for; `kept` is the trap a host function raised during the
/// call (the shim only says that one did):
/// - a Wasm trap or JS exception is a guest trap with V8's message (`RuntimeError: unreachable`,
///   `RangeError: Maximum call stack size exceeded`, ...);
/// - an interrupt is a deadline trap (the host's watchdog says whether the deadline passed);
/// - a host function's trap is itself (so `proc_exit`'s exit code survives);
/// - a panic in a host function is a guest trap naming it.
pub(crate) fn from_call(error: CallError, kept: Option<Trap>) -> Trap {
    match error {
        CallError::Trap(message) => Trap::guest(message),
        CallError::Interrupted => Trap::deadline("interrupted by the host (V8 TerminateExecution)"),
        CallError::HostTrap => kept.unwrap_or_else(|| Trap::guest("a host function trapped")),
        CallError::HostPanic(message) => Trap::guest(format!("the host panicked in a host function: {message}")),
        CallError::BadRequest(message) => Trap::guest(format!("the V8 shim refused the call: {message}")),
    }
}

/// The [`Error`] of a failed instantiation: V8's `LinkError`, a start function's trap, a memory
/// that starts above the limit, an isolate V8 could not make.
pub(crate) fn instantiate_error(error: sys::Error, kept: Option<Trap>) -> Error {
    let message = match error {
        sys::Error::Instantiate(call) => from_call(call, kept).to_string(),
        other => other.to_string(),
    };
    Error::Instantiate { engine: NAME, message }
}
