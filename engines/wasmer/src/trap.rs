//! Turning Wasmer's runtime errors into the host's [`Trap`]s.

use proxy_wasm_host::Trap;
use wasmer::sys::vm::TrapCode;
use wasmer::RuntimeError;

use crate::stop::Stop;

/// The [`Trap`] an error out of Wasm stands for:
/// - a host [`Trap`] (a host function's, one from a nested allocator call) is itself;
/// - an `unreachable` while the instance's stop flag is raised is a deadline trap (interrupted;
///   the host's watchdog says whether the deadline passed);
/// - any other Wasm trap is a guest trap with Wasmer's one-line reason and the innermost
///   function.
pub(crate) fn from_error(error: RuntimeError, stop: &Stop) -> Trap {
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return trap.clone();
    }
    let location = error
        .trace()
        .first()
        .map(|frame| match frame.function_name() {
            Some(name) => format!(" (in `{name}`)"),
            None => format!(" (in wasm function {})", frame.func_index()),
        })
        .unwrap_or_default();
    let message = error.message();
    let code = error.to_trap();
    if code == Some(TrapCode::UnreachableCodeReached) && stop.raised() {
        return Trap::deadline(format!("interrupted by the host{location}"));
    }
    match code {
        Some(_) => Trap::guest(format!("wasm trap: {message}{location}")),
        None => Trap::guest(format!("{message}{location}")),
    }
}
