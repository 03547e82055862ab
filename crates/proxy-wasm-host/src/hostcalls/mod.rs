//! Every host function, written once, engine-agnostic.
//!
//! The entry points below are generated from [`abi::for_each_host_function!`]: one `pub fn` per
//! row, named as the import, taking a [`HostCx`] and the row's parameters in their
//! pointer-width-neutral [`abi::host_type!`]s, and returning the raw status (or errno) for the
//! guest (the plain value of `env.pthread_equal`; 0 for a row without a result), or a [`Trap`]
//! that fails the VM. While the start functions or the guest allocator run, a call Envoy's V8
//! runtime does not allow then is a [`TrapKind::Restricted`](crate::TrapKind::Restricted) trap
//! ([`abi::HostFunctionId::allowed_in`]). A host function the VM's
//! [`CapabilityRestriction`](crate::CapabilityRestriction) does not allow is then refused, before
//! its implementation runs, with the reference host's answer (see [`crate::capabilities`]). An
//! engine trampoline only converts values and calls the entry. The implementations live beside
//! their siblings in one file per ABI section.

use crate::security::deny_host_call;
use crate::{HostCx, HostError, HostResult, Trap, WordSize};

mod buffers;
mod callouts;
mod context;
mod helpers;
mod log;
mod maps;
mod metrics;
mod properties;
mod shared;
mod stream;
mod wasi;

/// A [`HostCx`] over a plain byte vector: the host crate's unit tests, and the fuzz targets
/// (`fuzz/`, with the `fuzzing` feature). Not part of the API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
#[allow(missing_docs)] // Test scaffolding, documented where it is used.
pub mod testing;

/// The implementations, by import name.
mod imp {
    pub(super) use super::buffers::*;
    pub(super) use super::callouts::*;
    pub(super) use super::context::*;
    pub(super) use super::helpers::*;
    pub(super) use super::log::*;
    pub(super) use super::maps::*;
    pub(super) use super::metrics::*;
    pub(super) use super::properties::*;
    pub(super) use super::shared::*;
    pub(super) use super::stream::*;
    pub(super) use super::wasi::*;
}

/// Turns an implementation's result into what the guest receives: 0 for OK, the status or
/// errno otherwise, or the trap. (Public for test-only host functions that engines link.)
#[inline]
pub fn finish(result: HostResult) -> Result<i32, Trap> {
    match result {
        Ok(()) => Ok(0),
        Err(HostError::Status(s)) => Ok(s.raw() as i32),
        Err(HostError::Errno(e)) => Ok(e.raw() as i32),
        Err(HostError::Trap(t)) => Err(t),
    }
}

/// Calls a row's implementation and turns its result into what the guest receives. A `status`
/// or `errno` row's implementation returns a [`HostResult`] ([`finish`] makes it a number); an
/// `i32` row's returns its value (`pthread_equal`); a `none` row's returns nothing (`proc_exit`,
/// `emscripten_notify_memory_growth`), so its entry answers 0, which no trampoline passes on.
macro_rules! call_imp {
    (i32, $call:expr) => {
        $call
    };
    (none, $call:expr) => {
        $call.map(|()| 0)
    };
    ($ret:ident, $call:expr) => {
        finish($call)
    };
}

/// A raw argument (see [`call_row`]) as the row's parameter type.
macro_rules! raw_arg {
    (ptr, $word:expr, $v:expr) => { narrow_word($word, $v) };
    (size, $word:expr, $v:expr) => { narrow_word($word, $v) };
    (u32, $word:expr, $v:expr) => { $v as u32 };
    (i32, $word:expr, $v:expr) => { $v as u32 as i32 };
    (u64, $word:expr, $v:expr) => { $v };
    (i64, $word:expr, $v:expr) => { $v as i64 };
}

/// A pointer or size of a guest with `word`-sized words: a wasm32 guest's is the low 32 bits
/// (an engine may hand over the `i32` sign- or zero-extended, or with junk above).
#[inline]
fn narrow_word(word: WordSize, v: u64) -> u64 {
    match word {
        WordSize::W32 => u64::from(v as u32),
        WordSize::W64 => v,
    }
}

/// One row's raw entry: the arguments as `u64`s, checked for their count.
type RawEntry = fn(&mut dyn HostCx, WordSize, &[u64]) -> Result<i32, Trap>;

macro_rules! define_entries {
    ($( { $module:ident, $name:ident, [$($ver:ident)*], ($($arg:ident : $kind:ident),*) -> $ret:ident } )*) => {
        $(
            #[doc = concat!("`", stringify!($module), ".", stringify!($name), "`: see the ABI reference.")]
            #[inline]
            #[allow(clippy::too_many_arguments)] // As many as the ABI function has.
            pub fn $name(cx: &mut dyn HostCx $(, $arg: abi::host_type!($kind))*) -> Result<i32, Trap> {
                const ID: abi::HostFunctionId = abi::HostFunctionId::$name;
                let host = cx.host();
                let (restricted, traced) = (host.restricted, host.trace.is_some());
                let allowed = host.capabilities.allows(ID);
                if !traced {
                    if let Some(phase) = restricted {
                        restrict(ID, phase)?;
                    }
                    if allowed { call_imp!($ret, imp::$name(cx $(, $arg)*)) } else { Ok(deny_host_call(cx.host(), ID)) }
                } else {
                    // Every argument widened to u64 (signed ones sign-extended), for the trace.
                    let args: &[u64] = &[$($arg as u64),*];
                    crate::trace::traced_host_call(cx, stringify!($name), args, |cx| {
                        if let Some(phase) = restricted {
                            restrict(ID, phase)?;
                        }
                        if allowed { call_imp!($ret, imp::$name(cx $(, $arg)*)) } else { Ok(deny_host_call(cx.host(), ID)) }
                    })
                }
            }
        )*

        /// The raw entries, in table order.
        static RAW_ENTRIES: &[RawEntry] = &[
            $(
                |cx, _word, args| {
                    const COUNT: usize = <[&str]>::len(&[$(stringify!($arg)),*]);
                    let Ok::<&[u64; COUNT], _>(_raw) = args.try_into() else {
                        return Err(wrong_count(stringify!($name), COUNT, args.len()));
                    };
                    #[allow(unused_mut, unused_variables)]
                    let mut next = _raw.iter().copied();
                    $name(cx $(, { let _ = stringify!($arg); raw_arg!($kind, _word, next.next().unwrap_or(0)) })*)
                },
            )*
        ];
    };
}
abi::for_each_host_function!(define_entries);

/// The raw host-call entry, next to the typed ones: calls the host function of row `row` of
/// [`abi::HOST_FUNCTIONS`] (see [`abi::HostFunctionId`]) with `args`, one `u64` per parameter of
/// the row, for a guest whose pointers and sizes are `word` wide. For engines that reach host
/// functions through one raw trampoline (C APIs such as WAMR's raw natives, a C++ shim) and for
/// the Null VM.
///
/// Each argument holds the parameter's value in its low bits: for `ptr` and `size` parameters
/// the low 32 bits of a wasm32 guest ([`WordSize::W32`]; the bits above are ignored) or all 64
/// of a native one; for `u32` and `i32` the low 32 bits; for `u64` and `i64` all 64. The answer
/// is the status (or WASI errno) for the guest, the plain value of an `i32` row
/// (`pthread_equal`), 0 for a row without a result (`proc_exit`,
/// `emscripten_notify_memory_growth`: the engine passes nothing back), or the [`Trap`] that
/// fails the VM. An unknown row or a wrong number of arguments is a trap naming it, never a
/// panic.
pub fn call_row(row: usize, word: WordSize, cx: &mut dyn HostCx, args: &[u64]) -> Result<i32, Trap> {
    match RAW_ENTRIES.get(row) {
        Some(entry) => entry(cx, word, args),
        None => Err(Trap::guest(format!("the engine called host function row {row}; the ABI table has {}", RAW_ENTRIES.len()))),
    }
}

/// The trap for a call of `id` in `phase` when the C++ host's V8 runtime does not allow it
/// there ([`abi::HostFunctionId::allowed_in`]).
#[inline]
fn restrict(id: abi::HostFunctionId, phase: abi::RestrictedPhase) -> Result<(), Trap> {
    if id.allowed_in(phase) {
        Ok(())
    } else {
        Err(restricted(id, phase))
    }
}

#[cold]
fn restricted(id: abi::HostFunctionId, phase: abi::RestrictedPhase) -> Trap {
    Trap {
        kind: crate::TrapKind::Restricted,
        message: format!(
            "`{}` is not allowed {} (Envoy's V8 runtime traps it as a restricted callback)",
            id.info().name,
            phase.describe()
        ),
        backtrace: Vec::new(),
    }
}

#[cold]
fn wrong_count(name: &str, wanted: usize, got: usize) -> Trap {
    Trap::guest(format!("`{name}` takes {wanted} arguments, the engine passed {got}"))
}

#[cfg(test)]
mod tests {
    use abi::{HostFunctionId, LogLevel, Status, HOST_FUNCTIONS};

    use super::call_row;
    use crate::hostcalls::testing::{status, TestCx, RET_SCALAR};
    use crate::WordSize;

    #[test]
    fn the_raw_entry_reaches_the_row_with_its_arguments() {
        let mut cx = TestCx::new();
        let (p, n) = cx.put(100, b"raw");
        let row = HostFunctionId::proxy_log.row();
        // A wasm32 engine may leave junk above an i32 (here: sign-extension bits).
        let junk = 0xffff_ffff_0000_0000;
        let args = [u64::from(LogLevel::Warn.raw()) | junk, p | junk, n | junk];
        assert_eq!(status(call_row(row, WordSize::W32, &mut cx, &args)), Status::Ok);
        assert_eq!(cx.embedder.seen.lock().unwrap().logs, vec![(LogLevel::Warn, "raw".to_string())]);
        // A native guest's pointers are 64-bit: the same junk is an address out of memory.
        let args = [u64::from(LogLevel::Warn.raw()), p | junk, n];
        assert_eq!(status(call_row(row, WordSize::W64, &mut cx, &args)), Status::InvalidMemoryAccess);
    }

    #[test]
    fn the_raw_entry_passes_64_bit_arguments_whole() {
        let mut cx = TestCx::new();
        // clock_time_get(clock, precision: u64, return_time): precision is ignored, but a
        // wrong count or a lost high half would show in the status or the time written.
        let row = HostFunctionId::clock_time_get.row();
        assert_eq!(call_row(row, WordSize::W32, &mut cx, &[0, u64::MAX, RET_SCALAR]), Ok(0));
        assert_ne!(cx.u64_at(RET_SCALAR), 0);
    }

    #[test]
    fn a_bad_row_or_argument_count_is_a_trap_not_a_panic() {
        let mut cx = TestCx::new();
        let trap = call_row(HOST_FUNCTIONS.len(), WordSize::W32, &mut cx, &[]).unwrap_err();
        assert!(trap.message.contains("row"), "{trap}");
        let trap = call_row(HostFunctionId::proxy_log.row(), WordSize::W32, &mut cx, &[1, 2]).unwrap_err();
        assert!(trap.message.contains("`proxy_log` takes 3 arguments, the engine passed 2"), "{trap}");
    }

    #[test]
    fn restricted_phases_trap_calls_the_reference_refuses() {
        use abi::RestrictedPhase;
        let mut cx = TestCx::new();
        let (p, n) = cx.put(100, b"x");
        cx.host.restricted = Some(RestrictedPhase::Allocator);
        assert_eq!(status(crate::hostcalls::proxy_log(&mut cx, 2, p, n)), Status::Ok);
        let trap = crate::hostcalls::proxy_done(&mut cx).unwrap_err();
        assert_eq!(trap.kind, crate::TrapKind::Restricted);
        assert!(trap.message.contains("`proxy_done` is not allowed inside the guest allocator"), "{trap}");
        // The raw entry checks too.
        let trap = call_row(HostFunctionId::proxy_done.row(), WordSize::W32, &mut cx, &[]).unwrap_err();
        assert_eq!(trap.kind, crate::TrapKind::Restricted);
        cx.host.restricted = Some(RestrictedPhase::Start);
        assert_eq!(call_row(HostFunctionId::fd_fdstat_set_flags.row(), WordSize::W32, &mut cx, &[1, 0]), Ok(52));
        let trap = crate::hostcalls::proxy_get_property(&mut cx, p, n, RET_SCALAR, RET_SCALAR + 4).unwrap_err();
        assert!(trap.message.contains("while the module's start functions run"), "{trap}");
        assert_eq!(cx.embedder.seen.lock().unwrap().logs.len(), 1, "only the allowed proxy_log ran");
        cx.host.restricted = None;
        assert_eq!(status(crate::hostcalls::proxy_done(&mut cx)), Status::NotFound);
    }

    #[test]
    fn the_allocator_phase_is_set_while_the_allocator_runs_and_restored() {
        let mut cx = TestCx::new();
        cx.host.restricted = Some(abi::RestrictedPhase::Start);
        cx.record_phase = true;
        crate::return_bytes(&mut cx, RET_SCALAR, RET_SCALAR + 4, b"abc").unwrap();
        assert_eq!(cx.phases_seen, vec![Some(abi::RestrictedPhase::Allocator)]);
        assert_eq!(cx.host.restricted, Some(abi::RestrictedPhase::Start));
    }

    #[test]
    fn rows_without_a_status_answer_their_value_through_the_raw_entry() {
        let mut cx = TestCx::new();
        // proc_exit returns to the guest (as in the C++ host); no result.
        assert_eq!(call_row(HostFunctionId::proc_exit.row(), WordSize::W32, &mut cx, &[7]), Ok(0));
        let equal = HostFunctionId::pthread_equal.row();
        assert_eq!(call_row(equal, WordSize::W32, &mut cx, &[3, 3]), Ok(1));
        assert_eq!(call_row(equal, WordSize::W32, &mut cx, &[3, 4]), Ok(0));
        // Only the low 32 bits of a u32 count.
        assert_eq!(call_row(equal, WordSize::W32, &mut cx, &[1 << 32 | 5, 5]), Ok(1));
        let growth = HostFunctionId::emscripten_notify_memory_growth.row();
        assert_eq!(call_row(growth, WordSize::W32, &mut cx, &[0]), Ok(0));
    }

    #[test]
    fn a_host_function_outside_the_restriction_answers_the_reference_stub_and_logs_once() {
        let mut cx = TestCx::new();
        cx.host.capabilities = crate::CapabilityRestriction::allow(["proxy_log"]).unwrap();
        let (p, n) = cx.put(100, b"x");
        assert_eq!(status(crate::hostcalls::proxy_log(&mut cx, 2, p, n)), Status::Ok);
        // proxy_http_call: INTERNAL_FAILURE before anything is read or sent (the pointers here
        // are out of bounds, which the implementation would answer INVALID_MEMORY_ACCESS).
        let oob = crate::hostcalls::testing::OOB;
        for _ in 0..2 {
            let r = crate::hostcalls::proxy_http_call(&mut cx, oob, 1, oob, 1, oob, 1, oob, 1, 0, oob);
            assert_eq!(status(r), Status::InternalFailure);
        }
        // A WASI function answers errno NOTCAPABLE (76), through the raw entry too.
        assert_eq!(call_row(HostFunctionId::fd_write.row(), WordSize::W32, &mut cx, &[1, p, 1, RET_SCALAR]), Ok(76));
        let seen = cx.embedder.seen.lock().unwrap();
        assert!(seen.http_calls.is_empty());
        let logs: Vec<&str> = seen.logs.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(logs.len(), 3, "{logs:?}");
        assert_eq!(logs[0], "x");
        assert_eq!(
            logs[1],
            "call to `proxy_http_call` refused: it is not among the VM's allowed capabilities (proxy_log) (further calls are refused silently)"
        );
        assert!(logs[2].starts_with("call to `fd_write` refused"), "{}", logs[2]);
        assert_eq!(seen.logs[1].0, LogLevel::Error);
        drop(seen);
        assert_eq!(cx.host.services.security().snapshot().host_calls_denied, 3);
    }

    #[test]
    fn a_denied_call_is_traced_with_its_answer() {
        let mut cx = TestCx::new();
        cx.host.capabilities = crate::CapabilityRestriction::allow(["metrics"]).unwrap();
        let trace = crate::Trace::new();
        cx.host.set_trace(Some(&trace), "test");
        assert_eq!(status(crate::hostcalls::proxy_done(&mut cx)), Status::InternalFailure);
        let text = trace.render();
        assert!(text.contains("proxy_done() -> INTERNAL_FAILURE"), "{text}");
    }
}
