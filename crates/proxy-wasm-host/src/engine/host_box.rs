//! [`HostBox`] and [`HostPtr`]: where an instance keeps its VM's [`VmHost`], and the pointer
//! the [`Vm`](crate::Vm) reaches it through.
//!
//! The host state is read and written before and after every callback (the call state, the
//! stream's context, the failure bookkeeping): some 17 times per stream. Through
//! [`Instance`](super::Instance) that was a dynamic call each time, into the engine's store. An
//! instance instead keeps the state at a fixed heap address for its whole life and hands out a
//! [`HostPtr`] once; the VM keeps it, and each use is a load.
//!
//! Two parties reach the state through raw pointers of the same allocation, never at the same
//! time: the instance's host functions during [`Instance::call`](super::Instance::call) (the
//! guest is running), everyone else between calls, each through a `&mut` borrow of the
//! instance or of the VM that owns it, so the borrows cannot overlap.

use std::ptr::NonNull;

use crate::VmHost;

/// A value on the heap at a fixed address, freed when the box is dropped. Unlike a [`Box`],
/// it hands out raw pointers that stay usable while the box itself is used, moved or
/// borrowed: the [`Vm`](crate::Vm) keeps one (and Wasmer's store another), and a `Box`
/// would be a unique owner whose every use invalidates them.
pub struct HostBox<T>(NonNull<T>);

impl<T> HostBox<T> {
    /// Moves `value` to the heap.
    pub fn new(value: T) -> Self {
        HostBox(NonNull::from(Box::leak(Box::new(value))))
    }

    /// The value's address, for as long as the box lives.
    pub fn ptr(&self) -> NonNull<T> {
        self.0
    }

    /// The value, for as long as this borrow of the box.
    ///
    /// # Safety
    /// No reference made through another copy of [`ptr`](Self::ptr) is live meanwhile: for a
    /// VM's host state, the [`Vm`](crate::Vm) holds none (it is not running, or it is inside
    /// [`Instance::call`](super::Instance::call), where it holds none by construction).
    pub unsafe fn get(&mut self) -> &mut T {
        // SAFETY: the allocation lives as long as `self`; the caller promises no other
        // reference to it is live while the result is.
        unsafe { &mut *self.0.as_ptr() }
    }
}

impl<T> Drop for HostBox<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is freed only here, once.
        // Nothing uses a copy of it afterwards: the box lives as long as its instance (in the
        // instance, or in the engine store the instance owns), copies held elsewhere are
        // dropped first (Wasmer's store, by field order) or never read while dropping (the
        // `Vm`'s, whose instance this is).
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

// SAFETY: the box owns its value as a `Box` would; the raw pointer is only how it is reached.
unsafe impl<T: Send> Send for HostBox<T> {}

/// Where an instance keeps its VM's [`VmHost`]: given by
/// [`Instance::host_ptr`](super::Instance::host_ptr), kept by the [`Vm`](crate::Vm), which
/// reaches the state with a load instead of a call into the engine.
///
/// Only this crate dereferences one, and only one an [`Instance`](super::Instance) gave out:
/// the `unsafe` trait's contract is the safety argument.
#[derive(Clone, Copy, Debug)]
pub struct HostPtr(NonNull<VmHost>);

// SAFETY: the crate dereferences a `HostPtr` only on the thread that holds `&mut` of the
// instance it came from (the `Vm` holds both, and moves them together), and `VmHost` is
// `Send`.
unsafe impl Send for HostPtr {}

impl HostPtr {
    /// A pointer to an instance's host state, for
    /// [`Instance::host_ptr`](super::Instance::host_ptr) (whose contract it must meet).
    pub fn new(ptr: NonNull<VmHost>) -> Self {
        HostPtr(ptr)
    }

    /// The host state, for the lifetime `'a` the caller picks.
    ///
    /// # Safety
    /// The pointer came from [`Instance::host_ptr`](super::Instance::host_ptr) of an instance
    /// that is alive and not in a call; `'a` must not outlive the caller's exclusive borrow
    /// (`&mut`) of that instance or of its owner, and no other reference to the state may be
    /// live while the result is.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get<'a>(self) -> &'a mut VmHost {
        // SAFETY: the caller's promise, and the instance's (the `Instance` contract): the state
        // is alive at this address and not otherwise borrowed.
        unsafe { &mut *self.0.as_ptr() }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::HostBox;

    /// Counts its drops.
    struct Dropped(Arc<AtomicU32>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_address_stays_while_the_box_moves_and_the_value_is_dropped_once_with_it() {
        let drops = Arc::new(AtomicU32::new(0));
        let mut boxed = HostBox::new((Dropped(drops.clone()), 7u32));
        let ptr = boxed.ptr();
        // SAFETY: no other reference to the value is live.
        unsafe { boxed.get() }.1 = 8;
        let mut moved = vec![boxed];
        let mut boxed = moved.pop().expect("the box");
        assert_eq!(boxed.ptr(), ptr, "moving the box moves no value");
        // SAFETY: as above.
        assert_eq!(unsafe { boxed.get() }.1, 8);
        // SAFETY: the value is alive (the box is) and no reference to it is live.
        assert_eq!(unsafe { &*ptr.as_ptr() }.1, 8, "the raw pointer reads the same value");
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(boxed);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropping the box drops its value, once");
    }
}
