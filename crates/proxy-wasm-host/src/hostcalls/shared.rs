//! Shared data and shared queues, scoped by the VM id as in Envoy (see [`Services`](crate::Services)).
//!
//! Every return pointer is checked before the operation, so a bad pointer neither writes shared
//! data, registers a queue nor loses a dequeued item.

use abi::Status;

use crate::memory::return_bytes;
use crate::{HostCx, HostResult};

/// `proxy_get_shared_data`: the value of `key` (through the guest's allocator) and its CAS.
/// [`Status::NotFound`] for a missing key.
pub fn proxy_get_shared_data(
    cx: &mut dyn HostCx,
    key_ptr: u64,
    key_size: u64,
    return_value_ptr: u64,
    return_value_size: u64,
    return_cas: u64,
) -> HostResult {
    let (value, cas) = {
        let (mem, host) = cx.parts();
        let key = mem.read(key_ptr, key_size)?;
        mem.check_word(return_value_ptr)?;
        mem.check_word(return_value_size)?;
        mem.check(return_cas, 4)?;
        host.services.get_shared_data(host.vm_id(), key)?
    };
    return_bytes(cx, return_value_ptr, return_value_size, &value)?;
    let (mut mem, _) = cx.parts();
    mem.write_u32(return_cas, cas)?;
    Ok(())
}

/// `proxy_set_shared_data`: writes `key` when `cas` is 0 or the current CAS (or the key is
/// new); otherwise [`Status::CasMismatch`].
pub fn proxy_set_shared_data(
    cx: &mut dyn HostCx,
    key_ptr: u64,
    key_size: u64,
    value_ptr: u64,
    value_size: u64,
    cas: u32,
) -> HostResult {
    let (mem, host) = cx.parts();
    let key = mem.read(key_ptr, key_size)?;
    let value = mem.read(value_ptr, value_size)?;
    host.services.set_shared_data(host.vm_id(), key, value, cas)?;
    Ok(())
}

/// `proxy_register_shared_queue`: creates or reopens the queue (this VM's id, `name`); the
/// root of the effective context receives `proxy_on_queue_ready` for it. The name is bytes (the
/// C++ host's `registerSharedQueue` takes any); no effective context is
/// [`Status::BadArgument`].
pub fn proxy_register_shared_queue(
    cx: &mut dyn HostCx,
    name_ptr: u64,
    name_size: u64,
    return_queue_id: u64,
) -> HostResult {
    let (mut mem, host) = cx.parts();
    let name = mem.read(name_ptr, name_size)?;
    mem.check(return_queue_id, 4)?;
    let root = host.contexts.get(&host.effective()).ok_or(Status::BadArgument)?.root;
    let mailbox = host.mailbox().clone();
    let id = host.services.register_queue(host.vm_id(), name, &mailbox, root);
    mem.write_u32(return_queue_id, id)?;
    Ok(())
}

/// `proxy_resolve_shared_queue`: the id of the queue (`vm_id`, `name`); an empty `vm_id`
/// means this VM's (as the C++ host). Both are bytes. [`Status::NotFound`] when no such queue
/// exists.
pub fn proxy_resolve_shared_queue(
    cx: &mut dyn HostCx,
    vm_id_ptr: u64,
    vm_id_size: u64,
    name_ptr: u64,
    name_size: u64,
    return_queue_id: u64,
) -> HostResult {
    let (mut mem, host) = cx.parts();
    let vm_id = mem.read(vm_id_ptr, vm_id_size)?;
    let name = mem.read(name_ptr, name_size)?;
    mem.check(return_queue_id, 4)?;
    let vm_id = if vm_id.is_empty() { host.vm_id().as_bytes() } else { vm_id };
    let id = host.services.resolve_queue(vm_id, name)?;
    mem.write_u32(return_queue_id, id)?;
    Ok(())
}

/// `proxy_enqueue_shared_queue`: appends the value and wakes the queue's owner.
/// [`Status::NotFound`] for an unknown queue.
pub fn proxy_enqueue_shared_queue(cx: &mut dyn HostCx, queue_id: u32, value_ptr: u64, value_size: u64) -> HostResult {
    let (mem, host) = cx.parts();
    let value = mem.read(value_ptr, value_size)?;
    host.services.enqueue(queue_id, value)?;
    Ok(())
}

/// `proxy_dequeue_shared_queue`: the oldest item (through the guest's allocator).
/// [`Status::NotFound`] for an unknown queue, [`Status::Empty`] when nothing is queued.
///
/// The return pointers are checked before the item is taken. An allocator that fails after
/// that (answers 0 or traps) loses the item, as in the C++ host.
pub fn proxy_dequeue_shared_queue(
    cx: &mut dyn HostCx,
    queue_id: u32,
    return_value_ptr: u64,
    return_value_size: u64,
) -> HostResult {
    let item = {
        let (mem, host) = cx.parts();
        mem.check_word(return_value_ptr)?;
        mem.check_word(return_value_size)?;
        host.services.dequeue(queue_id)?
    };
    return_bytes(cx, return_value_ptr, return_value_size, &item)
}

#[cfg(test)]
mod tests {
    use abi::Status;

    use crate::hostcalls::testing::{status, TestCx, MEM, OOB, RET_PTR, RET_SCALAR, RET_SIZE, ROOT, TCP};
    use crate::hostcalls::{
        proxy_dequeue_shared_queue, proxy_enqueue_shared_queue, proxy_get_shared_data, proxy_register_shared_queue,
        proxy_resolve_shared_queue, proxy_set_shared_data,
    };
    use crate::{Notification, TrapKind};

    const KEY: u64 = 1000;
    const VALUE: u64 = 1100;
    const NAME: u64 = 1200;
    const VM_ID: u64 = 1300;

    fn set(cx: &mut TestCx, key: &[u8], value: &[u8], cas: u32) -> Status {
        let (k, kn) = cx.put(KEY, key);
        let (v, vn) = cx.put(VALUE, value);
        status(proxy_set_shared_data(cx, k, kn, v, vn, cas))
    }

    fn get(cx: &mut TestCx, key: &[u8]) -> Status {
        let (k, kn) = cx.put(KEY, key);
        status(proxy_get_shared_data(cx, k, kn, RET_PTR, RET_SIZE, RET_SCALAR))
    }

    #[test]
    fn shared_data_round_trips_with_cas() {
        let mut cx = TestCx::new();
        assert_eq!(set(&mut cx, b"k", b"v1", 0), Status::Ok);
        assert_eq!(get(&mut cx, b"k"), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"v1");
        let cas1 = cx.u32_at(RET_SCALAR);
        assert_ne!(cas1, 0);
        assert_eq!(cx.host.services.get_shared_data("vm", b"k"), Ok((b"v1".to_vec(), cas1)));

        // The current CAS writes and bumps it; a stale one is refused; 0 always writes.
        assert_eq!(set(&mut cx, b"k", b"v2", cas1), Status::Ok);
        assert_eq!(get(&mut cx, b"k"), Status::Ok);
        let cas2 = cx.u32_at(RET_SCALAR);
        assert_ne!(cas2, cas1);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"v2");
        assert_eq!(set(&mut cx, b"k", b"v3", cas1), Status::CasMismatch);
        assert_eq!(cx.host.services.get_shared_data("vm", b"k"), Ok((b"v2".to_vec(), cas2)));
        assert_eq!(set(&mut cx, b"k", b"v4", 0), Status::Ok);
        assert_eq!(cx.host.services.get_shared_data("vm", b"k").unwrap().0, b"v4");

        // An empty value reads back as address 0, length 0, without allocating.
        assert_eq!(set(&mut cx, b"", b"", 0), Status::Ok);
        let before = cx.allocations;
        cx.put(RET_PTR, &[0xaa; 8]);
        assert_eq!(get(&mut cx, b""), Status::Ok);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(cx.allocations, before);
    }

    #[test]
    fn shared_data_is_scoped_by_vm_id() {
        let mut cx = TestCx::new();
        cx.host.services.set_shared_data("other", b"k", b"x", 0).unwrap();
        assert_eq!(get(&mut cx, b"k"), Status::NotFound);
        assert_eq!(set(&mut cx, b"k", b"mine", 0), Status::Ok);
        assert_eq!(cx.host.services.get_shared_data("other", b"k").unwrap().0, b"x");
    }

    #[test]
    fn get_shared_data_refusals() {
        let cases = [
            (
                "key out of bounds",
                (OOB, 1),
                RET_PTR,
                RET_SIZE,
                RET_SCALAR,
                Status::InvalidMemoryAccess,
            ),
            (
                "key length overflows",
                (u64::MAX, 2),
                RET_PTR,
                RET_SIZE,
                RET_SCALAR,
                Status::InvalidMemoryAccess,
            ),
            (
                "return pointer out of bounds",
                (KEY, 1),
                OOB,
                RET_SIZE,
                RET_SCALAR,
                Status::InvalidMemoryAccess,
            ),
            (
                "return size out of bounds",
                (KEY, 1),
                RET_PTR,
                MEM - 2,
                RET_SCALAR,
                Status::InvalidMemoryAccess,
            ),
            (
                "return cas out of bounds",
                (KEY, 1),
                RET_PTR,
                RET_SIZE,
                u64::MAX - 2,
                Status::InvalidMemoryAccess,
            ),
        ];
        for (name, (k, kn), rp, rs, rc, expected) in cases {
            let mut cx = TestCx::new();
            assert_eq!(set(&mut cx, b"k", b"value", 0), Status::Ok);
            cx.put(KEY, b"k");
            assert_eq!(
                status(proxy_get_shared_data(&mut cx, k, kn, rp, rs, rc)),
                expected,
                "{name}"
            );
            assert_eq!(cx.allocations, 0, "{name}");
            assert_eq!(cx.u32_at(RET_SCALAR), 0, "{name}");
        }
        let mut cx = TestCx::new();
        assert_eq!(get(&mut cx, b"missing"), Status::NotFound);
        assert_eq!(cx.allocations, 0);

        // The allocator answers 0: INVALID_MEMORY_ACCESS and no CAS; it traps: the trap.
        assert_eq!(set(&mut cx, b"k", b"value", 0), Status::Ok);
        cx.alloc_answer = Some(0);
        assert_eq!(get(&mut cx, b"k"), Status::InvalidMemoryAccess);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        cx.alloc_answer = None;
        cx.alloc_traps = true;
        let trap = proxy_get_shared_data(&mut cx, KEY, 1, RET_PTR, RET_SIZE, RET_SCALAR).unwrap_err();
        assert_eq!(trap.kind, TrapKind::Guest);
    }

    #[test]
    fn set_shared_data_refusals_write_nothing() {
        let cases = [
            ((OOB, 1), (VALUE, 1)),
            ((KEY, u64::MAX), (VALUE, 1)),
            ((KEY, 1), (MEM - 1, 2)),
            ((KEY, 1), (u64::MAX - 1, 2)),
        ];
        for (i, ((k, kn), (v, vn))) in cases.into_iter().enumerate() {
            let mut cx = TestCx::new();
            cx.put(KEY, b"k");
            assert_eq!(
                status(proxy_set_shared_data(&mut cx, k, kn, v, vn, 0)),
                Status::InvalidMemoryAccess,
                "case {i}"
            );
            assert_eq!(
                cx.host.services.get_shared_data("vm", b"k"),
                Err(Status::NotFound),
                "case {i}"
            );
        }
    }

    fn register(cx: &mut TestCx, name: &[u8]) -> Status {
        let (p, n) = cx.put(NAME, name);
        status(proxy_register_shared_queue(cx, p, n, RET_SCALAR))
    }

    fn resolve(cx: &mut TestCx, vm_id: &[u8], name: &[u8]) -> Status {
        let (v, vn) = cx.put(VM_ID, vm_id);
        let (p, n) = cx.put(NAME, name);
        status(proxy_resolve_shared_queue(cx, v, vn, p, n, RET_SCALAR))
    }

    fn enqueue(cx: &mut TestCx, queue: u32, value: &[u8]) -> Status {
        let (p, n) = cx.put(VALUE, value);
        status(proxy_enqueue_shared_queue(cx, queue, p, n))
    }

    fn dequeue(cx: &mut TestCx, queue: u32) -> Status {
        status(proxy_dequeue_shared_queue(cx, queue, RET_PTR, RET_SIZE))
    }

    #[test]
    fn queue_round_trip_notifies_the_owner() {
        let mut cx = TestCx::new();
        // Registered from a stream context: the owner is its root.
        assert_eq!(register(&mut cx, b"jobs"), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        assert_ne!(id, 0);
        // Registering again reopens the same queue.
        cx.enter(abi::Callback::OnTick, ROOT);
        assert_eq!(register(&mut cx, b"jobs"), Status::Ok);
        assert_eq!(cx.u32_at(RET_SCALAR), id);

        for vm_id in [&b"vm"[..], b""] {
            cx.put(RET_SCALAR, &[0; 4]);
            assert_eq!(resolve(&mut cx, vm_id, b"jobs"), Status::Ok);
            assert_eq!(cx.u32_at(RET_SCALAR), id);
        }

        assert!(cx.host.mailbox().is_empty());
        assert_eq!(enqueue(&mut cx, id, b"one"), Status::Ok);
        assert_eq!(enqueue(&mut cx, id, b"two"), Status::Ok);
        let ready = Notification::QueueReady {
            context_id: ROOT,
            queue_id: id,
        };
        assert_eq!(cx.host.mailbox().take(), Some(ready));
        assert_eq!(cx.host.mailbox().take(), Some(ready));
        assert_eq!(cx.host.mailbox().take(), None);

        assert_eq!(dequeue(&mut cx, id), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"one");
        assert_eq!(dequeue(&mut cx, id), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"two");
        assert_eq!(dequeue(&mut cx, id), Status::Empty);

        // An empty item comes back as address 0, length 0.
        assert_eq!(enqueue(&mut cx, id, b""), Status::Ok);
        cx.put(RET_PTR, &[0xaa; 8]);
        assert_eq!(dequeue(&mut cx, id), Status::Ok);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(dequeue(&mut cx, id), Status::Empty);
    }

    #[test]
    fn register_names_the_root_of_the_effective_context() {
        let mut cx = TestCx::new();
        cx.enter(abi::Callback::OnNewConnection, TCP);
        assert_eq!(register(&mut cx, b"q"), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        assert_eq!(enqueue(&mut cx, id, b"x"), Status::Ok);
        assert_eq!(
            cx.host.mailbox().take(),
            Some(Notification::QueueReady {
                context_id: ROOT,
                queue_id: id
            })
        );
    }

    #[test]
    fn register_refusals_create_no_queue() {
        type Case = (&'static str, fn(&mut TestCx) -> Status, Status);
        let cases: Vec<Case> = vec![
            (
                "name out of bounds",
                |cx| status(proxy_register_shared_queue(cx, OOB, 1, RET_SCALAR)),
                Status::InvalidMemoryAccess,
            ),
            (
                "name length overflows",
                |cx| status(proxy_register_shared_queue(cx, 1, u64::MAX, RET_SCALAR)),
                Status::InvalidMemoryAccess,
            ),
            (
                "return id out of bounds",
                |cx| {
                    let (p, n) = cx.put(NAME, b"q");
                    status(proxy_register_shared_queue(cx, p, n, MEM - 3))
                },
                Status::InvalidMemoryAccess,
            ),
            (
                "no effective context",
                |cx| {
                    cx.host.call.effective = 99;
                    register(cx, b"q")
                },
                Status::BadArgument,
            ),
        ];
        for (name, call, expected) in cases {
            let mut cx = TestCx::new();
            cx.put(RET_SCALAR, &[0xaa; 4]);
            assert_eq!(call(&mut cx), expected, "{name}");
            assert_eq!(
                cx.host.services.resolve_queue(b"vm", b"q"),
                Err(Status::NotFound),
                "{name}"
            );
            assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa, "{name}");
        }
    }

    #[test]
    fn resolve_refusals() {
        let mut cx = TestCx::new();
        assert_eq!(register(&mut cx, b"jobs"), Status::Ok);
        cx.put(RET_SCALAR, &[0xaa; 4]);
        assert_eq!(resolve(&mut cx, b"vm", b"other"), Status::NotFound);
        assert_eq!(resolve(&mut cx, b"other-vm", b"jobs"), Status::NotFound);
        // Names are bytes: not UTF-8 names no queue here, but may name one.
        assert_eq!(resolve(&mut cx, &[0xff], b"jobs"), Status::NotFound);
        assert_eq!(resolve(&mut cx, b"vm", &[0xc3, 0x28]), Status::NotFound);
        assert_eq!(register(&mut cx, &[0xc3, 0x28]), Status::Ok);
        assert_eq!(resolve(&mut cx, b"vm", &[0xc3, 0x28]), Status::Ok);
        cx.put(RET_SCALAR, &[0xaa; 4]);
        let (v, vn) = cx.put(VM_ID, b"vm");
        let (p, n) = cx.put(NAME, b"jobs");
        let bad = [
            (OOB, vn, p, n, RET_SCALAR),
            (u64::MAX, 2, p, n, RET_SCALAR),
            (v, vn, p, MEM, RET_SCALAR),
            (v, vn, u64::MAX - 1, 4, RET_SCALAR),
            (v, vn, p, n, OOB),
        ];
        for (i, (v, vn, p, n, r)) in bad.into_iter().enumerate() {
            assert_eq!(
                status(proxy_resolve_shared_queue(&mut cx, v, vn, p, n, r)),
                Status::InvalidMemoryAccess,
                "case {i}"
            );
        }
        assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa);
    }

    #[test]
    fn enqueue_refusals_queue_nothing() {
        let mut cx = TestCx::new();
        assert_eq!(register(&mut cx, b"jobs"), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        assert_eq!(enqueue(&mut cx, id + 1, b"x"), Status::NotFound);
        assert_eq!(enqueue(&mut cx, 0, b"x"), Status::NotFound);
        assert_eq!(
            status(proxy_enqueue_shared_queue(&mut cx, id, OOB, 1)),
            Status::InvalidMemoryAccess
        );
        assert_eq!(
            status(proxy_enqueue_shared_queue(&mut cx, id, u64::MAX - 1, 3)),
            Status::InvalidMemoryAccess
        );
        assert!(cx.host.mailbox().is_empty());
        assert_eq!(cx.host.services.dequeue(id), Err(Status::Empty));
    }

    #[test]
    fn dequeue_refusals_keep_the_item() {
        let mut cx = TestCx::new();
        assert_eq!(register(&mut cx, b"jobs"), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        assert_eq!(dequeue(&mut cx, id), Status::Empty);
        assert_eq!(dequeue(&mut cx, id + 1), Status::NotFound);
        assert_eq!(enqueue(&mut cx, id, b"item"), Status::Ok);
        for (ptr, size) in [(OOB, RET_SIZE), (RET_PTR, MEM - 1), (u64::MAX, RET_SIZE)] {
            assert_eq!(
                status(proxy_dequeue_shared_queue(&mut cx, id, ptr, size)),
                Status::InvalidMemoryAccess
            );
        }
        assert_eq!(cx.allocations, 0);
        assert_eq!(dequeue(&mut cx, id), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"item");
    }

    #[test]
    fn dequeue_allocator_failures() {
        let mut cx = TestCx::new();
        assert_eq!(register(&mut cx, b"jobs"), Status::Ok);
        let id = cx.u32_at(RET_SCALAR);
        assert_eq!(enqueue(&mut cx, id, b"a"), Status::Ok);
        assert_eq!(enqueue(&mut cx, id, b"b"), Status::Ok);
        cx.alloc_answer = Some(0);
        assert_eq!(dequeue(&mut cx, id), Status::InvalidMemoryAccess);
        cx.alloc_answer = None;
        cx.alloc_traps = true;
        let trap = proxy_dequeue_shared_queue(&mut cx, id, RET_PTR, RET_SIZE).unwrap_err();
        assert_eq!(trap.message, "allocator trapped");
        // As in the C++ host, an item taken before the allocator failed is gone.
        assert_eq!(cx.host.services.dequeue(id), Err(Status::Empty));
    }
}
