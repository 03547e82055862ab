//! [`StoreData`]: what host functions see of their instance (the `FunctionEnv` of every host
//! function).

use std::ptr::NonNull;
use std::sync::Arc;

use proxy_wasm_host::{Trap, VmHost};
use wasmer::{Memory, TypedFunction};

use crate::stop::Stop;

/// What the instance and its host functions share apart from the store: the VM's host state,
/// and a trap the guest allocator raised inside a host function (the VM fails with it even if
/// the host function swallowed the error).
pub(crate) struct HostState {
    pub(crate) host: VmHost,
    pub(crate) poisoned: Option<Trap>,
}

/// The [`HostState`], on the heap apart from the store, owned by the [`WasmerInstance`]
/// (freed when it is dropped, after its store). The instance and the store's function
/// environment each hold a [`HostPtr`] to it: so [`Instance::host`] is a load, where Wasmer's
/// checked lookup of the environment (`FunctionEnv::as_mut`: the store's objects, a `TypeId`
/// comparison) cost about 30 instructions some 20 times per stream.
///
/// [`WasmerInstance`]: crate::instance::WasmerInstance
/// [`Instance::host`]: proxy_wasm_host::Instance::host
pub(crate) struct HostBox(HostPtr);

impl HostBox {
    pub(crate) fn new(host: VmHost) -> Self {
        HostBox(HostPtr(NonNull::from(Box::leak(Box::new(HostState { host, poisoned: None })))))
    }

    /// A pointer to the host state, for the store's function environment and the instance.
    pub(crate) fn ptr(&self) -> HostPtr {
        self.0
    }
}

impl Drop for HostBox {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is freed only here, once. The
        // instance drops its `HostBox` after its store (field order), and the store (with the
        // function environment's copy of the pointer) never reads it while being dropped: no
        // guest code or host function runs then.
        drop(unsafe { Box::from_raw(self.0 .0.as_ptr()) });
    }
}

/// A copy of a [`HostBox`]'s pointer.
#[derive(Clone, Copy)]
pub(crate) struct HostPtr(NonNull<HostState>);

// SAFETY: a `HostPtr` is only a way to the `HostState` its instance owns, and moves between
// threads with that instance (in its store, or in the instance itself), never apart from it;
// `HostState` is `Send`. `WasmerInstance`'s own `Send` argument covers the move of the whole.
unsafe impl Send for HostPtr {}

impl HostPtr {
    /// The shared state.
    ///
    /// # Safety
    /// The `HostBox` it came from is alive, and no other reference to the host state is: the
    /// instance takes it only between calls (`&mut self`, so no call runs), host functions only
    /// during a call (the instance's `&mut` store is lent to the call), and each keeps it no
    /// longer than its own borrow.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get<'a>(self) -> &'a mut HostState {
        // SAFETY: the caller's promise: the allocation is alive and not otherwise borrowed.
        unsafe { &mut *self.0.as_ptr() }
    }
}

/// What host functions see of their instance.
pub(crate) struct StoreData {
    /// The VM's host state and the allocator's trap (owned by the instance's [`HostBox`]).
    pub(crate) shared: HostPtr,
    /// The exported `memory`, if any.
    pub(crate) memory: Option<Memory>,
    /// The guest allocator ([`VmHost::allocator`]).
    pub(crate) allocator: Option<TypedFunction<i32, i32>>,
    /// The instance's stop state, to tell an interrupt from a guest trap in a nested call.
    pub(crate) stop: Arc<Stop>,
}

impl StoreData {
    /// The state shared with the instance, for as long as this borrow of the store's data.
    pub(crate) fn shared(&mut self) -> &mut HostState {
        // SAFETY: `StoreData` lives in the instance's store, so its `HostBox` (dropped after the
        // store) is alive. Host functions reach the store's data only during a call, when the
        // instance has lent its store to the call and takes no reference of its own; the result
        // borrows `self` mutably, so no second one comes from here meanwhile.
        unsafe { self.shared.get() }
    }
}
