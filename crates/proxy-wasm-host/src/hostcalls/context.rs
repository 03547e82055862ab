//! Contexts and foreign functions: `proxy_set_effective_context`, `proxy_done` and
//! `proxy_call_foreign_function`.

use abi::Status;

use super::callouts::guest_text;
use crate::host::ContextKind;
use crate::memory::return_bytes;
use crate::{ForeignCx, HostCx, HostResult};

/// `proxy_set_effective_context`: host functions act on `context_id` until the callback
/// returns (or the plugin changes it again). [`Status::BadArgument`] for a context this VM does
/// not have.
pub fn proxy_set_effective_context(cx: &mut dyn HostCx, context_id: u32) -> HostResult {
    let host = cx.host();
    if !host.contexts.contains_key(&context_id) {
        return Err(Status::BadArgument.into());
    }
    host.call.effective = context_id;
    Ok(())
}

/// `proxy_done`: the root of the effective context finished the work it deferred when its
/// `proxy_on_done` returned false; the VM then deletes it. [`Status::NotFound`] when nothing
/// was pending (including a second `proxy_done`).
pub fn proxy_done(cx: &mut dyn HostCx) -> HostResult {
    let host = cx.host();
    let root = host.root_mut().ok_or(Status::NotFound)?;
    if !root.done_pending || root.done_called {
        return Err(Status::NotFound.into());
    }
    root.done_called = true;
    host.roots_done = true;
    Ok(())
}

/// `proxy_call_foreign_function`: calls the function the embedder registered as `name` with
/// the arguments, and returns its result through the guest's allocator.
/// [`Status::NotFound`] for no such function, [`Status::BadArgument`] for a name that is not
/// UTF-8, and the function's own status when it fails.
pub fn proxy_call_foreign_function(
    cx: &mut dyn HostCx,
    name_ptr: u64,
    name_size: u64,
    args_ptr: u64,
    args_size: u64,
    return_results_ptr: u64,
    return_results_size: u64,
) -> HostResult {
    let results = {
        let (mem, host) = cx.parts();
        let name = mem.read(name_ptr, name_size)?;
        let args = mem.read(args_ptr, args_size)?;
        mem.check_word(return_results_ptr)?;
        mem.check_word(return_results_size)?;
        let name = guest_text(name)?;
        let function = host.services.foreign_function(&name).ok_or(Status::NotFound)?;
        let context_id = host.effective();
        let stream = matches!(host.contexts.get(&context_id).map(|c| &c.kind), Some(ContextKind::Stream(_)));
        let caller = ForeignCx { plugin: host.plugin().map(|p| &**p), context_id, stream, vm: host.token() };
        function(&caller, args)?
    };
    return_bytes(cx, return_results_ptr, return_results_size, &results)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use abi::Status;

    use crate::hostcalls::testing::{status, TestCx, MEM, OOB, RET_PTR, RET_SIZE, ROOT, STREAM, TCP};
    use crate::hostcalls::{proxy_call_foreign_function, proxy_done, proxy_set_effective_context};
    use crate::{ForeignCx, TrapKind};

    #[test]
    fn set_effective_context_accepts_contexts_of_this_vm() {
        let mut cx = TestCx::new();
        for id in [TCP, ROOT, STREAM] {
            assert_eq!(status(proxy_set_effective_context(&mut cx, id)), Status::Ok);
            assert_eq!(cx.host.call.effective, id);
            assert_eq!(cx.host.call.context_id, STREAM, "the calling context stays");
        }
        for id in [0, 4, 99, u32::MAX] {
            assert_eq!(
                status(proxy_set_effective_context(&mut cx, id)),
                Status::BadArgument,
                "id {id}"
            );
            assert_eq!(cx.host.call.effective, STREAM);
        }
    }

    #[test]
    fn done_answers_only_a_pending_root() {
        // (effective context, done_pending, done_called before) -> (status, done_called after)
        let cases = [
            (ROOT, true, false, Status::Ok, true),
            (STREAM, true, false, Status::Ok, true),
            (TCP, true, false, Status::Ok, true),
            (ROOT, false, false, Status::NotFound, false),
            (STREAM, false, false, Status::NotFound, false),
            (ROOT, true, true, Status::NotFound, true),
            (99, true, false, Status::NotFound, false),
        ];
        for (context, pending, called, expected, after) in cases {
            let mut cx = TestCx::new();
            cx.host.call.effective = context;
            cx.root().done_pending = pending;
            cx.root().done_called = called;
            assert_eq!(
                status(proxy_done(&mut cx)),
                expected,
                "context {context} pending {pending}"
            );
            assert_eq!(cx.root().done_called, after, "context {context} pending {pending}");
            assert_eq!(cx.root().done_pending, pending);
        }
        // A second call finds nothing pending.
        let mut cx = TestCx::new();
        cx.root().done_pending = true;
        assert_eq!(status(proxy_done(&mut cx)), Status::Ok);
        assert_eq!(status(proxy_done(&mut cx)), Status::NotFound);
    }

    const NAME: u64 = 1000;
    const ARGS: u64 = 1100;

    /// A TestCx with foreign functions `upper` (upper-cases its arguments), `empty` (returns
    /// nothing) and `fails` (answers SERIALIZATION_FAILURE), and the number of calls made.
    fn with_functions() -> (TestCx, Arc<AtomicU32>) {
        let cx = TestCx::new();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        cx.host.services.register_foreign_function(
            "upper",
            Arc::new(move |_: &ForeignCx<'_>, args: &[u8]| {
                c.fetch_add(1, Ordering::Relaxed);
                Ok(args.to_ascii_uppercase())
            }),
        );
        cx.host
            .services
            .register_foreign_function("empty", Arc::new(|_: &ForeignCx<'_>, _: &[u8]| Ok(Vec::new())));
        cx.host
            .services
            .register_foreign_function("fails", Arc::new(|_: &ForeignCx<'_>, _: &[u8]| Err(Status::SerializationFailure)));
        (cx, calls)
    }

    fn call(cx: &mut TestCx, name: &[u8], args: &[u8]) -> Status {
        let (n, nn) = cx.put(NAME, name);
        let (a, an) = cx.put(ARGS, args);
        status(proxy_call_foreign_function(cx, n, nn, a, an, RET_PTR, RET_SIZE))
    }

    #[test]
    fn foreign_function_results_are_returned() {
        let (mut cx, calls) = with_functions();
        assert_eq!(call(&mut cx, b"upper", b"compress me"), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"COMPRESS ME");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(cx.allocations, 1);
        // Empty arguments (address 0, length 0) and an empty result (address 0, length 0).
        assert_eq!(
            status(proxy_call_foreign_function(&mut cx, NAME, 5, 0, 0, RET_PTR, RET_SIZE)),
            Status::Ok
        );
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(call(&mut cx, b"empty", b"x"), Status::Ok);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(cx.allocations, 1);
    }

    #[test]
    fn foreign_function_refusals() {
        let (mut cx, calls) = with_functions();
        assert_eq!(call(&mut cx, b"missing", b""), Status::NotFound);
        assert_eq!(call(&mut cx, b"UPPER", b""), Status::NotFound);
        assert_eq!(call(&mut cx, b"fails", b"x"), Status::SerializationFailure);
        assert_eq!(call(&mut cx, &[b'u', 0xff], b""), Status::BadArgument);
        cx.put(NAME, b"upper");
        cx.put(ARGS, b"abc");
        let bad = [
            ("name out of bounds", (OOB, 5), (ARGS, 3), RET_PTR, RET_SIZE),
            ("name length overflows", (u64::MAX - 3, 5), (ARGS, 3), RET_PTR, RET_SIZE),
            ("args out of bounds", (NAME, 5), (MEM - 2, 3), RET_PTR, RET_SIZE),
            ("args length overflows", (NAME, 5), (ARGS, u64::MAX), RET_PTR, RET_SIZE),
            ("return pointer out of bounds", (NAME, 5), (ARGS, 3), OOB, RET_SIZE),
            ("return size out of bounds", (NAME, 5), (ARGS, 3), RET_PTR, u64::MAX - 1),
        ];
        for (what, (n, nn), (a, an), rp, rs) in bad {
            let r = proxy_call_foreign_function(&mut cx, n, nn, a, an, rp, rs);
            assert_eq!(status(r), Status::InvalidMemoryAccess, "{what}");
        }
        // None of these called the function or allocated.
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        assert_eq!(cx.allocations, 0);

        cx.alloc_answer = Some(0);
        assert_eq!(call(&mut cx, b"upper", b"abc"), Status::InvalidMemoryAccess);
        cx.alloc_answer = None;
        cx.alloc_traps = true;
        let trap = proxy_call_foreign_function(&mut cx, NAME, 5, ARGS, 3, RET_PTR, RET_SIZE).unwrap_err();
        assert_eq!(trap.kind, TrapKind::Guest);
        assert_eq!(trap.message, "allocator trapped");
    }
}
