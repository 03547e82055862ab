//! What every engine's [`Instance::call`](super::Instance::call) shares: the argument checks,
//! [`TrapLatch`] (the refuse-after-trap bookkeeping) and [`trap_location`].

use abi::Callback;

use crate::Trap;

/// The most parameters a callback has (`proxy_on_http_call_response`).
pub const MAX_CALLBACK_PARAMS: usize = 5;

/// The arguments of a call of `callback` for a wasm32 guest: one per parameter of its table
/// row (`Err` otherwise, naming both counts), each narrowed to the `i32` every callback
/// parameter is in Wasm (the low 32 bits), the rest 0. What every Wasm engine's
/// [`Instance::call`](super::Instance::call) does before the call.
#[inline]
pub fn callback_args(callback: Callback, args: &[u64]) -> Result<[i32; MAX_CALLBACK_PARAMS], Trap> {
    check_arg_count(callback, args)?;
    let mut a = [0i32; MAX_CALLBACK_PARAMS];
    for (slot, arg) in a.iter_mut().zip(args) {
        *slot = *arg as i32;
    }
    Ok(a)
}

/// Refuses a call of `callback` with another number of arguments than its table row's
/// parameters, naming both counts. Every engine's [`Instance::call`](super::Instance::call) checks it first.
#[inline]
pub fn check_arg_count(callback: Callback, args: &[u64]) -> Result<(), Trap> {
    let wanted = callback.info().params.len();
    if args.len() != wanted || wanted > MAX_CALLBACK_PARAMS {
        return Err(wrong_arg_count(callback, wanted, args.len()));
    }
    Ok(())
}

/// Where a guest trap happened, for the end of its message: `` (in `name`)`` with the function
/// of the innermost frame that is the plugin's own code, ` (in wasm function N)` for a frame
/// without a name, nothing without frames. `frames` are as [`Trap::backtrace`] keeps them,
/// innermost first; a Rust symbol is demangled, as the logged backtrace shows it.
///
/// A panic or an `abort` traps inside the language's runtime (`__rustc::rust_panic`,
/// `core::panicking::panic_fmt`, wasi-libc's `abort`), the same frames for every plugin, so
/// those frames are passed over; a trap whose frames are all the runtime's is located in the
/// innermost.
pub fn trap_location(frames: &[String]) -> String {
    let demangled = |f: &String| crate::error::demangled(f);
    let plugin_frame = frames.iter().map(demangled).find(|n| !is_runtime_frame(n));
    match plugin_frame.or_else(|| frames.first().map(demangled)) {
        None => String::new(),
        Some(f) if f.starts_with("wasm function") => format!(" (in {f})"),
        Some(f) => format!(" (in `{f}`)"),
    }
}

/// Whether `name` (demangled) is a function of a guest language's runtime rather than of the
/// plugin: Rust's standard library (`core::`, `alloc::`, `std::`, the `__rustc::` and `__rust_`
/// shims, the panic runtimes) or C's `abort`.
fn is_runtime_frame(name: &str) -> bool {
    const PREFIXES: [&str; 7] = ["core::", "alloc::", "std::", "__rustc::", "__rust_", "panic_abort::", "panic_unwind::"];
    PREFIXES.iter().any(|p| name.starts_with(p)) || matches!(name, "abort" | "rust_panic")
}

/// The trap of a call whose arguments do not fit the handle an engine resolved for `callback`,
/// for engines whose handles carry their table row's arity and check it by the call's own
/// pattern match: [`check_arg_count`]'s refusal naming both counts, or, should the handle
/// disagree with the row, a trap saying so.
#[cold]
pub fn arity_mismatch(callback: Callback, args: &[u64]) -> Trap {
    let why = check_arg_count(callback, args).err();
    why.unwrap_or_else(|| Trap::guest(format!("`{callback}`'s handle does not have its table row's arity")))
}

#[cold]
fn wrong_arg_count(callback: Callback, wanted: usize, passed: usize) -> Trap {
    Trap::guest(format!("`{callback}` takes {wanted} arguments, the host passed {passed}"))
}

/// What every engine's [`Instance::call`](super::Instance::call) keeps between calls: the first trap. Once there is
/// one, the instance refuses every call, so no guest code runs in a failed VM again.
#[derive(Debug, Default)]
pub struct TrapLatch(Option<String>);

impl TrapLatch {
    /// `Err` once the instance has trapped, naming that trap.
    #[inline]
    pub fn check(&self) -> Result<(), Trap> {
        match &self.0 {
            Some(why) => Err(failed_earlier(why)),
            None => Ok(()),
        }
    }

    /// The outcome of a call that ran: its own trap; else `poisoned`, a trap the guest allocator
    /// raised inside a host function during the call, which fails the call even if the host
    /// function swallowed it; else its value. A trap is latched.
    #[inline]
    pub fn settle(&mut self, result: Result<u64, Trap>, poisoned: Option<Trap>) -> Result<u64, Trap> {
        // The common case decided on references: moving both (a trap is several words) into a
        // tuple to match on costs more than the rest of the call's bookkeeping.
        if let (Ok(value), None) = (&result, &poisoned) {
            return Ok(*value);
        }
        self.latch(result, poisoned)
    }

    #[cold]
    fn latch(&mut self, result: Result<u64, Trap>, poisoned: Option<Trap>) -> Result<u64, Trap> {
        let trap = match (result, poisoned) {
            (Err(trap), _) | (Ok(_), Some(trap)) => trap,
            (Ok(value), None) => return Ok(value),
        };
        self.0 = Some(trap.to_string());
        Err(trap)
    }
}

#[cold]
fn failed_earlier(why: &str) -> Trap {
    Trap::guest(format!("VM failed earlier: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::demangled;

    #[test]
    fn rust_frames_are_demangled_and_others_kept() {
        assert_eq!(demangled("_ZN4core9panicking9panic_fmt17h0123456789abcdefE"), "core::panicking::panic_fmt");
        assert_eq!(demangled("_RNvNtCsgXGp5Oqx2Ny_4core9panicking9panic_fmt"), "core::panicking::panic_fmt");
        assert_eq!(demangled("proxy_on_request_headers"), "proxy_on_request_headers");
        assert_eq!(demangled("wasm function 12"), "wasm function 12");
    }

    #[test]
    fn a_trap_is_located_in_its_innermost_frame_readably() {
        let frames = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(trap_location(&[]), "");
        assert_eq!(trap_location(&frames(&["wasm function 7", "proxy_on_tick"])), " (in wasm function 7)");
        assert_eq!(trap_location(&frames(&["proxy_on_tick"])), " (in `proxy_on_tick`)");
        // A panic is located in the plugin's function that panicked, not in the runtime's.
        let panic = frames(&[
            "_RNvNtCsgXGp5Oqx2Ny_4core9panicking9panic_fmt",
            "_ZN4core9panicking9panic_fmt17h0123456789abcdefE",
            "<sdk_e2e::Trap as proxy_wasm::traits::HttpContext>::on_http_request_headers",
            "proxy_on_request_headers",
        ]);
        let located = " (in `<sdk_e2e::Trap as proxy_wasm::traits::HttpContext>::on_http_request_headers`)";
        assert_eq!(trap_location(&panic), located);
        assert_eq!(trap_location(&frames(&["abort", "handle", "proxy_on_tick"])), " (in `handle`)");
        // Only runtime frames: the innermost.
        let runtime = frames(&["_ZN4core9panicking9panic_fmt17h0123456789abcdefE", "abort"]);
        assert_eq!(trap_location(&runtime), " (in `core::panicking::panic_fmt`)");
    }
}
