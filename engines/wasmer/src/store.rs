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

/// A copy of the pointer to the instance's [`HostState`], which is on the heap apart from the
/// store, in the instance's [`HostBox`](proxy_wasm_host::engine::HostBox) (freed when the
/// instance is dropped, after its store). The store's function environment holds this copy,
/// so host functions reach the state with a load, where Wasmer's checked lookup of the
/// environment (`FunctionEnv::as_mut`: the store's objects, a `TypeId` comparison) costs about
/// 30 instructions.
#[derive(Clone, Copy)]
pub(crate) struct StatePtr(pub(crate) NonNull<HostState>);

// SAFETY: a `StatePtr` is only a way to the `HostState` its instance owns, and moves between
// threads with that instance (in its store), never apart from it; `HostState` is `Send`.
// `WasmerInstance`'s own `Send` argument covers the move of the whole.
unsafe impl Send for StatePtr {}

impl StatePtr {
    /// The shared state.
    ///
    /// # Safety
    /// The `HostBox` it came from is alive, and no other reference to the host state is: the
    /// instance and the `Vm` take it only between calls (holding `&mut` of the instance, so no
    /// call runs), host functions only during a call (the instance's `&mut` store is lent to
    /// the call), and each keeps it no longer than its own borrow.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get<'a>(self) -> &'a mut HostState {
        // SAFETY: the caller's promise: the allocation is alive and not otherwise borrowed.
        unsafe { &mut *self.0.as_ptr() }
    }
}

/// What host functions see of their instance.
pub(crate) struct StoreData {
    /// The VM's host state and the allocator's trap (owned by the instance's `HostBox`).
    pub(crate) shared: StatePtr,
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
