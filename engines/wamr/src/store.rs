//! [`StoreData`]: the host state an instance holds, which its host functions see.

use proxy_wasm_host::{Trap, VmHost};

use crate::wamr::Func;

/// What an instance holds for its host functions: the host state and the guest allocator.
pub(crate) struct StoreData {
    /// The VM's host state.
    pub(crate) host: VmHost,
    /// Whether the module exports its memory as `memory`: host functions see guest memory only
    /// then, as on every engine (WAMR itself would hand out memory 0 even when not exported).
    pub(crate) memory_exported: bool,
    /// The guest allocator ([`VmHost::allocator`]), once resolved.
    pub(crate) allocator: Option<Func>,
    /// A trap raised in the guest allocator during a host function. The VM fails with it even if
    /// the host function swallowed the error.
    pub(crate) poisoned: Option<Trap>,
}

impl StoreData {
    pub(crate) fn new(host: VmHost, memory_exported: bool) -> Self {
        StoreData { host, memory_exported, allocator: None, poisoned: None }
    }
}
