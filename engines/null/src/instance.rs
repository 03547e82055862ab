//! [`NullInstance`]: one VM of a native plugin: its code (a static plugin's addresses, or a
//! private copy of a shared library), its callbacks resolved once, and its host state.

use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use abi::Callback;
use proxy_wasm_host::engine::{check_arg_count, HostBox, HostPtr, TrapLatch};
use proxy_wasm_host::{Error, Instance, Trap, VmHost};

use crate::module::{Code, NullModule};
use crate::native::{self, NullState, Running};
use crate::NAME;

/// Keys of instances, unique in the process (0 means none).
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A live native instance. Used by one thread at a time (`Send`).
pub struct NullInstance {
    /// On the heap at a fixed address: native code reaches it through `CURRENT` during a call,
    /// the `Vm` its host state through [`Instance::host_ptr`] between calls.
    state: HostBox<NullState>,
    /// Each callback's address, resolved at instantiation.
    callbacks: [Option<usize>; Callback::COUNT],
    /// The instance's private copy of a shared library (`None` for a static plugin); its code
    /// stays mapped while the instance lives.
    _library: Option<libloading::os::unix::Library>,
    /// The first trap, after which every call is refused.
    failed: TrapLatch,
}

// SAFETY: the raw addresses are code (and the library handle, which libloading makes Send);
// the instance's state is reached only from the thread that holds the instance: through
// `call`, and by the `Vm` that owns it between calls.
unsafe impl Send for NullInstance {}

/// Writes `bytes` to a new file of this process in the temporary directory and returns its
/// path; each call gets its own file, so each load of a library is a separate copy.
pub(crate) fn write_private_copy(bytes: &[u8], what: &str) -> std::io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("proxy-wasm-null-{}-{what}-{n}.so", std::process::id()));
    std::fs::write(&path, bytes)?;
    Ok(path)
}

impl NullInstance {
    pub(crate) fn new(module: &NullModule, host: VmHost) -> Result<Self, Error> {
        let fail = |message: String| Error::Instantiate { engine: NAME, message };
        let version = host.abi_version();
        let mut callbacks = [None; Callback::COUNT];
        let library = match &module.code {
            Code::Static(lookup) => {
                for callback in Callback::for_version(version) {
                    callbacks[callback as usize] = lookup(callback.name()).map(|p| p as usize);
                }
                None
            }
            Code::Dynamic(bytes) => {
                native::ensure_shim().map_err(fail)?;
                let path = write_private_copy(bytes, "plugin").map_err(|e| fail(format!("cannot write the library: {e}")))?;
                let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
                // SAFETY: loading runs the library's initialisers: the plugin is trusted native
                // code (the Null VM has no sandbox, see the crate docs).
                let library = unsafe { libloading::os::unix::Library::open(Some(&path), flags) };
                let _ = std::fs::remove_file(&path);
                let library = library.map_err(|e| fail(format!("cannot load the {}: {e}", module.label)))?;
                // Only names the library itself defines (not libc's `malloc`).
                for callback in Callback::for_version(version).filter(|c| module.exports_name(c.name())) {
                    let symbol = format!("{}\0", callback.name());
                    // SAFETY: the symbol is looked up as an address only; the library stays
                    // loaded as long as the instance (it is kept below).
                    let addr = unsafe { library.get::<*const ()>(symbol.as_bytes()) }.ok().map(|s| *s as usize);
                    callbacks[callback as usize] = addr;
                }
                Some(library)
            }
        };
        let allocator = callbacks[host.allocator() as usize];
        let state = HostBox::new(NullState { host, allocator, poisoned: None, key: NEXT_KEY.fetch_add(1, Ordering::Relaxed) });
        Ok(NullInstance { state, callbacks, _library: library, failed: TrapLatch::default() })
    }
}

impl NullInstance {
    /// A call that panicked, or whose host functions were told to fail it (`poisoned`): the
    /// trap is latched ([`TrapLatch::settle`]).
    #[cold]
    fn settle(&mut self, result: std::thread::Result<u64>) -> Result<u64, Trap> {
        let result =
            result.map_err(|payload| Trap::guest(format!("the plugin panicked: {}", native::panic_message(&*payload))));
        // SAFETY: the call is over (no host function holds the state) and `&mut self` means the
        // `Vm` holds no reference either; this one ends in the statement.
        let poisoned = unsafe { self.state.get() }.poisoned.take();
        self.failed.settle(result, poisoned)
    }
}

// SAFETY: the host state is in `self.state`, a `HostBox` (fixed address, freed with the
// instance), and `host_ptr` projects it from the box's raw pointer. The instance makes
// references to it only through `HostBox::get`, with `&mut self` and for a statement; host
// functions only through `CURRENT` (the same raw pointer) during `call`, each for a borrow of
// `NullCx`.
unsafe impl Instance for NullInstance {
    fn has(&self, callback: Callback) -> bool {
        self.callbacks[callback as usize].is_some()
    }

    fn call(&mut self, callback: Callback, args: &[u64]) -> Result<u64, Trap> {
        self.failed.check()?;
        let Some(addr) = self.callbacks[callback as usize] else {
            return Err(Trap::guest(format!("`{callback}` is not exported by the plugin")));
        };
        check_arg_count(callback, args)?;
        let result = {
            let _running = Running::enter(self.state.ptr().as_ptr());
            // SAFETY: `addr` is the plugin's export of `callback`'s name, resolved for its ABI
            // version, so it has that callback's signature; the plugin is trusted native code.
            // A panic unwinds to here only through `extern "C-unwind"` code, and is caught.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
                native::call_callback(callback, addr, args)
            }))
        };
        match result {
            // SAFETY: as in `settle`: the call is over; the reference ends in the condition.
            Ok(value) if unsafe { self.state.get() }.poisoned.is_none() => Ok(value),
            result => self.settle(result),
        }
    }

    fn host_ptr(&mut self) -> HostPtr {
        let state = self.state.ptr().as_ptr();
        // SAFETY: `state` is the live allocation of `self.state`; the projection makes no
        // reference, and a field of a non-null allocation is not null.
        HostPtr::new(unsafe { NonNull::new_unchecked(&raw mut (*state).host) })
    }

    /// The process's memory has no size of its own: 0.
    fn memory_size(&mut self) -> u64 {
        0
    }
}
