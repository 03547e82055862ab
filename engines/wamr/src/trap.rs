//! Turning the wrapper's errors into the host's [`Trap`]s and error messages.

use proxy_wasm_host::Trap;

use crate::wamr::{CallError, Error};

/// The [`Trap`] a failed call stands for:
/// - a host [`Trap`] (a host function's, one from a nested allocator call) is itself, whole
///   (WAMR itself only kept a short text), so `proc_exit`'s exit code survives;
/// - an interrupt is a deadline trap (the host's watchdog says whether the deadline passed);
/// - a Wasm trap is a guest trap with WAMR's words, for example `wasm trap: unreachable` or
///   `wasm trap: out of bounds memory access`;
/// - a panic of a host function (caught at the FFI boundary) is a guest trap that says so.
pub(crate) fn from_call_error(error: CallError<Trap>) -> Trap {
    match error {
        CallError::Host(trap) => trap,
        CallError::Interrupted => Trap::deadline("interrupted by the host"),
        CallError::Trap(message) => Trap::guest(format!("wasm trap: {message}")),
        CallError::HostPanic(message) => Trap::guest(format!("host function panicked: {message}")),
        CallError::BadCall(message) => Trap::guest(message),
    }
}

/// The message of a wrapper error for the host's errors, which name the engine themselves:
/// WAMR's own text for a load or instantiation failure (for example `WASM module load failed:
/// magic header not detected`), else the wrapper's sentence.
pub(crate) fn message(error: Error) -> String {
    match error {
        Error::Load(message) | Error::Instantiate(message) => message,
        other => other.to_string(),
    }
}
