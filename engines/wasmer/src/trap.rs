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
///
/// The trap carries Wasmer's frames as function names, innermost first ([`Trap::backtrace`]);
/// a host [`Trap`] keeps its own.
pub(crate) fn from_error(error: RuntimeError, stop: &Stop) -> Trap {
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return trap.clone();
    }
    let frames: Vec<String> = error
        .trace()
        .iter()
        .map(|frame| match frame.function_name() {
            Some(name) => name.to_string(),
            None => format!("wasm function {}", frame.func_index()),
        })
        .collect();
    let location = proxy_wasm_host::engine::trap_location(&frames);
    let message = error.message();
    let code = error.to_trap();
    let trap = if code == Some(TrapCode::UnreachableCodeReached) && stop.raised() {
        Trap::deadline(format!("interrupted by the host{location}"))
    } else {
        match code {
            Some(_) => Trap::guest(format!("wasm trap: {message}{location}")),
            None => Trap::guest(format!("{message}{location}")),
        }
    };
    trap.with_backtrace(frames)
}
