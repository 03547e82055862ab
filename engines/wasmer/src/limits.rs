//! The memory limit: the engine's [`LimitingTunables`] wrap every linear memory made while an
//! instance of this engine is being created in a [`LimitedMemory`] that refuses to grow past that
//! instance's [`Limits::max_memory_bytes`](proxy_wasm_host::Limits::max_memory_bytes).
//!
//! Wasmer has no per-store resource limiter and its tunables belong to the engine, so the limit
//! of the instance being made reaches them through a thread-local set around
//! `wasmer::Instance::new` (which creates the memories on the calling thread). A refused growth
//! answers -1 to the guest's `memory.grow`, as Wasm specifies and the C++ host does, and is
//! recorded in the instance's [`MemoryEvents`] for the host, as is a growth that happened (so the
//! instance reads its memory's size again only after one).

use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use wasmer::sys::vm::{
    LinearMemory, MemoryError, MemoryStyle, Trap, VMConfig, VMMemory, VMMemoryDefinition, VMSharedMemory, VMTable,
    VMTableDefinition,
};
use wasmer::sys::{BaseTunables, Tunables};
use wasmer::{MemoryType, Pages, TableStyle, TableType, WASM_PAGE_SIZE};

/// What an instance's memories did since the instance last looked, shared between the instance
/// and its limited memories: the largest growth (in bytes) refused (0 for none), and whether
/// one grew.
#[derive(Debug, Default)]
pub(crate) struct MemoryEvents {
    refused: AtomicU64,
    grew: AtomicBool,
}

impl MemoryEvents {
    fn refused(&self, requested: u64) {
        self.refused.fetch_max(requested, Ordering::AcqRel);
    }

    fn grew(&self) {
        self.grew.store(true, Ordering::Release);
    }

    /// Whether a growth was refused since the last [`take_refused`](Self::take_refused): a
    /// plain load, for the call path.
    pub(crate) fn refusal_pending(&self) -> bool {
        self.refused.load(Ordering::Acquire) > 0
    }

    /// The largest refused growth since the last call, if any.
    pub(crate) fn take_refused(&self) -> Option<u64> {
        Some(self.refused.swap(0, Ordering::AcqRel)).filter(|&r| r > 0)
    }

    /// Whether a memory grew (or was reset) since the last call.
    pub(crate) fn take_grown(&self) -> bool {
        self.grew.load(Ordering::Acquire) && self.grew.swap(false, Ordering::AcqRel)
    }
}

/// The limit of the instance being made on this thread, and where its refusals go.
#[derive(Clone)]
struct Instantiating {
    max_bytes: u64,
    events: Arc<MemoryEvents>,
}

thread_local! {
    static INSTANTIATING: RefCell<Option<Instantiating>> = const { RefCell::new(None) };
}

/// Runs `f` (which instantiates) with memories limited to `max_bytes` and reporting refusals and
/// growths to `events`.
pub(crate) fn with_limit<T>(max_bytes: u64, events: &Arc<MemoryEvents>, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<Instantiating>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            INSTANTIATING.with(|cell| *cell.borrow_mut() = previous);
        }
    }
    let next = Instantiating { max_bytes, events: events.clone() };
    let _reset = Reset(INSTANTIATING.with(|cell| cell.borrow_mut().replace(next)));
    f()
}

/// Wasmer's base tunables, with memories limited per instance.
pub(crate) struct LimitingTunables {
    base: BaseTunables,
}

impl LimitingTunables {
    pub(crate) fn new() -> Self {
        LimitingTunables { base: BaseTunables::new() }
    }

    /// Wraps `memory` in the limit of the instance being made, if any; refuses a memory whose
    /// initial size is over it.
    fn limit(&self, ty: &MemoryType, memory: VMMemory) -> Result<VMMemory, MemoryError> {
        let Some(cx) = INSTANTIATING.with(|cell| cell.borrow().clone()) else { return Ok(memory) };
        let initial = bytes(ty.minimum);
        if initial > cx.max_bytes {
            return Err(MemoryError::Generic(format!(
                "the module's memory starts at {initial} bytes; the limit is {} bytes",
                cx.max_bytes
            )));
        }
        Ok(VMMemory(Box::new(LimitedMemory { inner: memory, max_bytes: cx.max_bytes, events: cx.events })))
    }
}

fn bytes(pages: Pages) -> u64 {
    u64::from(pages.0) * WASM_PAGE_SIZE as u64
}

impl Tunables for LimitingTunables {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        self.base.memory_style(memory)
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(&self, ty: &MemoryType, style: &MemoryStyle) -> Result<VMMemory, MemoryError> {
        let memory = self.base.create_host_memory(ty, style)?;
        self.limit(ty, memory)
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        // SAFETY: our caller's contract (`vm_definition_location` is a valid, owned definition)
        // is passed on unchanged.
        let memory = unsafe { self.base.create_vm_memory(ty, style, vm_definition_location) }?;
        self.limit(ty, memory)
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(ty, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        // SAFETY: our caller's contract is passed on unchanged.
        unsafe { self.base.create_vm_table(ty, style, vm_definition_location) }
    }

    fn vmconfig(&self) -> &VMConfig {
        self.base.vmconfig()
    }
}

/// A linear memory that refuses to grow past `max_bytes` (the guest's `memory.grow` answers -1),
/// noting each refusal.
#[derive(Debug)]
struct LimitedMemory {
    inner: VMMemory,
    max_bytes: u64,
    events: Arc<MemoryEvents>,
}

impl LinearMemory for LimitedMemory {
    fn ty(&self) -> MemoryType {
        self.inner.ty()
    }

    fn size(&self) -> Pages {
        self.inner.size()
    }

    fn style(&self) -> MemoryStyle {
        self.inner.style()
    }

    fn grow(&mut self, delta: Pages) -> Result<Pages, MemoryError> {
        let current = bytes(self.inner.size());
        let desired = current.saturating_add(bytes(delta));
        if desired > self.max_bytes {
            self.events.refused(desired);
            return Err(MemoryError::Generic(format!(
                "linear memory would grow from {current} to {desired} bytes; the limit is {} bytes",
                self.max_bytes
            )));
        }
        let grown = self.inner.grow(delta)?;
        self.events.grew();
        Ok(grown)
    }

    fn grow_at_least(&mut self, min_size: u64) -> Result<(), MemoryError> {
        if min_size > self.max_bytes {
            self.events.refused(min_size);
            return Err(MemoryError::Generic(format!("the limit is {} bytes", self.max_bytes)));
        }
        self.inner.grow_at_least(min_size)?;
        self.events.grew();
        Ok(())
    }

    fn reset(&mut self) -> Result<(), MemoryError> {
        self.inner.reset()?;
        self.events.grew();
        Ok(())
    }

    fn vmmemory(&self) -> NonNull<VMMemoryDefinition> {
        self.inner.vmmemory()
    }

    fn try_clone(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        let inner = self.inner.try_clone()?;
        Ok(Box::new(LimitedMemory { inner, max_bytes: self.max_bytes, events: self.events.clone() }))
    }

    unsafe fn initialize_with_data(&self, start: usize, data: &[u8]) -> Result<(), Trap> {
        // SAFETY: our caller's contract is passed on unchanged.
        unsafe { self.inner.initialize_with_data(start, data) }
    }

    fn copy(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        let inner = VMMemory(self.inner.copy()?);
        Ok(Box::new(LimitedMemory { inner, max_bytes: self.max_bytes, events: self.events.clone() }))
    }

    fn as_shared(&self) -> Result<VMSharedMemory, MemoryError> {
        // A shared memory could grow through another handle, around the limit.
        Err(MemoryError::MemoryNotShared)
    }
}
