//! [`StoreData`]: what host functions see of their instance (the `FunctionEnv` of every host
//! function).

use std::sync::Arc;

use proxy_wasm_host::{Trap, VmHost};
use wasmer::{Memory, TypedFunction};

use crate::stop::Stop;

/// What host functions see of their instance.
pub(crate) struct StoreData {
    /// The VM's host state.
    pub(crate) host: VmHost,
    /// The exported `memory`, if any.
    pub(crate) memory: Option<Memory>,
    /// The guest allocator ([`VmHost::allocator`]).
    pub(crate) allocator: Option<TypedFunction<i32, i32>>,
    /// The instance's stop state, to tell an interrupt from a guest trap in a nested call.
    pub(crate) stop: Arc<Stop>,
    /// A trap raised in the guest allocator during a host function. The VM fails with it even if
    /// the host function swallowed the error.
    pub(crate) poisoned: Option<Trap>,
}
