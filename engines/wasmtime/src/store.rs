//! [`StoreData`]: what a Wasmtime store holds for one VM, the memory limit it enforces as the
//! store's resource limiter, and where the VM's memory is ([`MemoryView`], [`memory_view`]).

use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use proxy_wasm_host::engine::HostBox;
use proxy_wasm_host::{Trap, VmHost};
use wasmtime::{AsContextMut, Instance, Memory, ModuleExport, ResourceLimiter, StoreContextMut, TypedFunc};

/// What a store holds: the host state and what host functions need of the instance.
pub(crate) struct StoreData {
    /// The VM's host state, at a fixed address the `Vm` keeps
    /// ([`Instance::host_ptr`](proxy_wasm_host::Instance::host_ptr)); reached here through
    /// [`host`](Self::host), and by `Cx::parts` beside the memory.
    host: HostBox<VmHost>,
    /// The exported `memory`, if any.
    pub(crate) memory: Option<Memory>,
    /// The guest allocator ([`VmHost::allocator`]). A host function takes it out of the store
    /// for the call and puts it back (cloning a `TypedFunc` clones its registered type, which
    /// costs more than the rest of a header lookup). While it is out nothing else can want it:
    /// inside the allocator only `proxy_log`, `fd_write`, `clock_time_get` and `poll_oneoff`
    /// may be called ([`abi::RestrictedPhase::Allocator`]), and none allocates.
    pub(crate) allocator: Option<TypedFunc<(i32,), i32>>,
    /// Where the allocator is, until its first use resolves [`allocator`](Self::allocator):
    /// a VM that never hands the guest bytes never pays for it.
    pub(crate) allocator_export: Option<(Instance, ModuleExport)>,
    /// Set by [`WasmtimeInterrupt`](crate::WasmtimeInterrupt); cleared when a call starts.
    pub(crate) interrupt: Arc<AtomicBool>,
    /// A trap raised in the guest allocator during a host function. The VM fails with it even
    /// if the host function swallowed the error.
    pub(crate) poisoned: Option<Trap>,
    /// Where the exported memory is and how long, as last read from Wasmtime; `None` until read
    /// and again once a growth is allowed (see [`MemoryView`]).
    pub(crate) memory_view: Option<MemoryView>,
}

/// The exported memory's bytes as Wasmtime last gave them: their start and length.
///
/// Reading them through `Memory::data_mut` is a chain of seven dependent loads (the store's
/// instances, the instance, its offsets, its memory definition), which a header lookup, reading
/// memory twice, spent a fifth of its time on. They change only when the memory grows (a
/// growth may move the memory when it is not pooled), and Wasmtime asks the store's resource
/// limiter, [`memory_growing`](ResourceLimiter::memory_growing), before every growth (Wasmtime
/// 48 `vm/memory.rs` `grow`; it skips the limiter only for a growth by 0 pages, which changes
/// nothing, and for one past what the memory's type can represent, which fails and is reported
/// to [`memory_grow_failed`](ResourceLimiter::memory_grow_failed)). `memory_growing` clears the
/// view when it allows a growth, so a view that is set is the memory's current one. The memory
/// lives as long as the store.
#[derive(Clone, Copy)]
pub(crate) struct MemoryView {
    pub(crate) base: std::ptr::NonNull<u8>,
    pub(crate) len: usize,
}

// SAFETY: a `MemoryView` is an address and a length, dereferenced only by `Cx::parts` while it
// holds the store mutably (the store and its memory move between threads with the instance).
unsafe impl Send for MemoryView {}

impl StoreData {
    /// The VM's host state, for as long as this borrow of the store's data.
    pub(crate) fn host(&mut self) -> &mut VmHost {
        // SAFETY: the `Vm` holds no reference to the state while anyone has the store's data:
        // it reaches the state between calls, holding `&mut` of the instance that owns this
        // store, and lends the store to a call only with no reference of its own (`Vm::host`).
        unsafe { self.host.get() }
    }

    /// Where the host state is, for [`Instance::host_ptr`](proxy_wasm_host::Instance::host_ptr).
    pub(crate) fn host_ptr(&self) -> std::ptr::NonNull<VmHost> {
        self.host.ptr()
    }

    pub(crate) fn new(host: VmHost) -> Self {
        StoreData {
            host: HostBox::new(host),
            memory: None,
            allocator: None,
            allocator_export: None,
            interrupt: Arc::default(),
            poisoned: None,
            memory_view: None,
        }
    }
}

/// The exported memory's [`MemoryView`], read from Wasmtime when the store has none (at first,
/// and after a growth). Empty (a dangling start, length 0) while the store knows no memory: a
/// module without one, or an instance whose start function makes a host call before
/// instantiation has handed the memory over. That empty view is not kept, or it would outlive
/// the memory's arrival (the memory is created, the only limiter call before any growth,
/// before the start function runs).
#[inline]
pub(crate) fn memory_view(mut store: impl AsContextMut<Data = StoreData>) -> MemoryView {
    let store = store.as_context_mut();
    match store.data().memory_view {
        Some(view) => {
            debug_assert!(
                store.data().memory.is_some_and(|m| (m.data_ptr(&store), m.data_size(&store)) == (view.base.as_ptr(), view.len)),
                "the memory view is the memory's current one"
            );
            view
        }
        None => read_memory_view(store),
    }
}

/// [`memory_view`] when the store keeps none: read from Wasmtime, and kept if there is a memory.
#[cold]
fn read_memory_view(mut store: StoreContextMut<'_, StoreData>) -> MemoryView {
    let Some(memory) = store.data().memory else {
        return MemoryView { base: NonNull::dangling(), len: 0 };
    };
    // The start and length as Wasmtime keeps them, with no reference made in between.
    let base = NonNull::new(memory.data_ptr(&store)).unwrap_or(NonNull::dangling());
    let view = MemoryView { base, len: memory.data_size(&store) };
    store.data_mut().memory_view = Some(view);
    view
}

/// The memory limit: growing past [`Limits::max_memory_bytes`](proxy_wasm_host::Limits) answers
/// -1 to the guest, as Wasm specifies and the C++ host does, and tells the host, which names the
/// limit if the guest then traps. Past the module's own declared maximum, -1 too.
impl ResourceLimiter for StoreData {
    fn memory_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        if desired as u64 > self.host().limits().max_memory_bytes {
            self.host().note_memory_refused(desired as u64);
            return Ok(false);
        }
        // The memory may move or change length: it is read again on its next use, whether or
        // not the growth then succeeds.
        self.memory_view = None;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The pool's slot (or the address space) was too small for a growth the limit allowed,
        // or the growth passed what the memory's type can represent: the guest gets -1 as for
        // the limit itself.
        Ok(())
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
    }
}
