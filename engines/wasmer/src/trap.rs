//! Turning Wasmer's runtime errors into the host's [`Trap`]s.

use proxy_wasm_host::{Limits, Trap, TrapKind};
use wasmer::sys::vm::TrapCode;
use wasmer::RuntimeError;

use crate::stop::{Reason, Stop};

/// The [`Trap`] an error out of Wasm stands for:
/// - a host [`Trap`] (a host function's, one from a nested allocator call) is itself;
/// - an `unreachable` while the instance's stop flag is raised is [`TrapKind::Deadline`] (past
///   the deadline, or interrupted) or [`TrapKind::MemoryLimit`];
/// - any other Wasm trap is [`TrapKind::Guest`] with Wasmer's one-line reason and the innermost
///   function.
pub(crate) fn from_error(error: RuntimeError, stop: &Stop, limits: &Limits) -> Trap {
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
    if code == Some(TrapCode::UnreachableCodeReached) {
        match stop.reason() {
            Some(Reason::Deadline) => {
                return Trap::deadline(format!(
                    "the call ran longer than its {:?} deadline",
                    limits.call_deadline.unwrap_or_default()
                ))
            }
            Some(Reason::Interrupted) => return Trap::deadline("interrupted by the host"),
            Some(Reason::MemoryLimit) => {
                return Trap {
                    kind: TrapKind::MemoryLimit,
                    message: format!(
                        "linear memory would grow past the limit of {} bytes{location}",
                        limits.max_memory_bytes
                    ),
                }
            }
            None => {}
        }
    }
    match code {
        Some(_) => Trap::guest(format!("wasm trap: {message}{location}")),
        None => Trap::guest(format!("{message}{location}")),
    }
}
