//! Where native code meets the host: the `proxy_*` host functions as native symbols (expanded
//! from the ABI table), the instance running now on this thread, what host functions see of
//! it ([`NullCx`]), typed calls of native callbacks, and the shim that lends the host
//! functions to shared libraries.
//!
//! All `unsafe` of the Null VM lives here and in `instance.rs`, each block with its reason.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use abi::{Callback, HostFunctionId, Status};
use proxy_wasm_host::engine::call_row;
use proxy_wasm_host::{GuestMemory, HostCx, Trap, VmHost, WordSize};

/// What a native instance keeps where its host functions can reach it.
pub(crate) struct NullState {
    pub(crate) host: VmHost,
    /// The address of the allocator export (`malloc`, else `proxy_on_memory_allocate`).
    pub(crate) allocator: Option<usize>,
    /// A trap raised inside a host function (a panic in the allocator, a host function that
    /// failed the VM): the callback fails with it when it returns.
    pub(crate) poisoned: Option<Trap>,
    /// This instance's key, unique in the process ([`proxy_null_vm_instance`]).
    pub(crate) key: u64,
}

thread_local! {
    /// The instance whose callback runs now on this thread (null when none).
    static CURRENT: Cell<*mut NullState> = const { Cell::new(std::ptr::null_mut()) };
}

/// Makes `state` the running instance of this thread until the guard drops, which restores
/// the one before (for nested calls).
pub(crate) struct Running(*mut NullState);

impl Running {
    pub(crate) fn enter(state: *mut NullState) -> Running {
        Running(CURRENT.with(|c| c.replace(state)))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// A host function's view of the running native instance.
struct NullCx(*mut NullState);

impl NullCx {
    fn state(&mut self) -> &mut NullState {
        // SAFETY: the pointer is the running instance's state (set by `Running` for the span
        // of a callback, on this thread), which lives in the `HostBox` the instance keeps;
        // nothing else holds a reference into it while a host function runs (neither the
        // instance nor the `Vm` touches it during the call), and each `&mut` made here ends
        // before the next is made, also across re-entrant calls through the allocator.
        unsafe { &mut *self.0 }
    }
}

impl HostCx for NullCx {
    fn parts(&mut self) -> (GuestMemory<'_>, &mut VmHost) {
        // SAFETY: native plugins are trusted with the process's memory: the Null VM has no
        // sandbox (crate docs), and the host's own state is not reachable through a plugin's
        // pointers except by a plugin that misbehaves on purpose.
        let memory = unsafe { GuestMemory::native() };
        (memory, &mut self.state().host)
    }

    fn allocate(&mut self, size: u64) -> Result<u64, Trap> {
        let Some(allocator) = self.state().allocator else { return Ok(0) };
        let Ok(size) = usize::try_from(size) else { return Ok(0) };
        // SAFETY: `allocator` is the plugin's exported allocator, `(usize) -> pointer` as the
        // ABI table gives it; the plugin is trusted native code. A panic unwinds to here only
        // through `extern "C-unwind"` code and is caught.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { call_allocator(allocator, size) }));
        match result {
            Ok(addr) => Ok(addr as u64),
            Err(payload) => {
                let trap = Trap::guest(format!("the plugin panicked in its allocator: {}", panic_message(&*payload)));
                self.state().poisoned = Some(trap.clone());
                Err(trap)
            }
        }
    }

    fn host(&mut self) -> &mut VmHost {
        &mut self.state().host
    }
}

/// Calls a native allocator.
///
/// # Safety
/// `addr` is a function `extern "C" fn(usize) -> *mut u8` (or `C-unwind`).
unsafe fn call_allocator(addr: usize, size: usize) -> usize {
    // SAFETY: the caller's promise about `addr`.
    let f = unsafe { std::mem::transmute::<usize, extern "C-unwind" fn(usize) -> usize>(addr) };
    f(size)
}

/// Runs host function `row` (the host's raw entry, [`call_row`]) on the running instance with
/// `args` (native words: pointers and sizes are 64-bit) and answers the status the plugin gets.
///
/// Without a running instance (a plugin calling from another thread, or after its callback
/// returned) the answer is `INTERNAL_FAILURE`. A trap is kept as the trap: it poisons the
/// instance, and the callback fails with it when it returns (native code cannot be unwound, so
/// the plugin itself sees `INTERNAL_FAILURE` meanwhile). A host panic, which must not cross into
/// the plugin, is a trap too.
fn host_call(row: HostFunctionId, args: &[u64]) -> u32 {
    let state = CURRENT.with(Cell::get);
    if state.is_null() {
        return Status::InternalFailure.raw();
    }
    let mut cx = NullCx(state);
    match catch_unwind(AssertUnwindSafe(|| call_row(row.row(), WordSize::W64, &mut cx, args))) {
        Ok(Ok(code)) => code as u32,
        Ok(Err(trap)) => {
            cx.state().poisoned.get_or_insert(trap);
            Status::InternalFailure.raw()
        }
        Err(payload) => {
            let trap = Trap::guest(format!("the host panicked in a host function: {}", panic_message(&*payload)));
            cx.state().poisoned.get_or_insert(trap);
            Status::InternalFailure.raw()
        }
    }
}

/// The native type of a host-function parameter kind: pointers and sizes are `usize`.
macro_rules! native_type {
    (ptr) => { usize };
    (size) => { usize };
    (u32) => { u32 };
    (i32) => { i32 };
    (u64) => { u64 };
    (i64) => { i64 };
}

/// One native host function per `env` row with a status; WASI rows and the two `env` helpers
/// (`pthread_equal`, `emscripten_notify_memory_growth`) have none: a native plugin uses the
/// operating system, names like `sched_yield` and `pthread_equal` belong to libc, and the C++
/// host's Null VM links nothing either.
macro_rules! native_entry {
    (env, $name:ident, ($($arg:ident : $kind:ident),*), status) => {
        #[doc = concat!("`env.", stringify!($name), "` for native plugins: see the ABI reference.")]
        #[no_mangle]
        pub extern "C" fn $name($($arg: native_type!($kind)),*) -> u32 {
            host_call(HostFunctionId::$name, &[$($arg as u64),*])
        }
    };
    ($module:ident, $name:ident, ($($arg:ident : $kind:ident),*), $ret:ident) => {};
}

/// The `env` host functions' addresses, in table order, for the shim.
macro_rules! native_table {
    ($( { $module:ident, $name:ident, [$($ver:ident)*], ($($arg:ident : $kind:ident),*) -> $ret:ident } )*) => {
        $( native_entry!($module, $name, ($($arg: $kind),*), $ret); )*

        /// The address of every `env` host function, in table order.
        #[allow(clippy::vec_init_then_push)] // Rows without a native entry push nothing.
        fn host_function_table() -> Vec<*const ()> {
            let mut table = Vec::new();
            $( native_table!(@push table, $module, $name, $ret); )*
            table
        }
    };
    (@push $table:ident, env, $name:ident, status) => { $table.push($name as *const ()); };
    (@push $table:ident, $module:ident, $name:ident, $ret:ident) => {};
}
abi::for_each_host_function!(native_table);

/// A Null VM extension for static plugins: the key of the instance whose callback runs now
/// (0 outside any). Native statics are process-wide, so a static plugin that keeps state per
/// VM (as a Wasm instance does by nature) keys it by this.
#[no_mangle]
pub extern "C" fn proxy_null_vm_instance() -> u64 {
    let state = CURRENT.with(Cell::get);
    if state.is_null() {
        return 0;
    }
    NullCx(state).state().key
}

/// The native type of a callback parameter kind.
macro_rules! callback_type {
    (ctx) => { u32 };
    (size) => { usize };
    (u32) => { u32 };
    (bool) => { u32 };
}

/// The native return type of a callback result kind. A boolean is read as its low byte: the
/// SDK returns a Rust `bool` (only the low byte of the register is defined), a raw-ABI plugin
/// a `u32` 0 or 1, and both read the same that way.
macro_rules! callback_return {
    (none) => { () };
    (bool) => { u8 };
    (action) => { u32 };
    (ptr) => { usize };
    (i32) => { i32 };
}

/// A callback's native result widened to `u64`.
macro_rules! widen {
    (none, $r:expr) => {{ let () = $r; 0u64 }};
    (i32, $r:expr) => { $r as u32 as u64 };
    ($kind:ident, $r:expr) => { $r as u64 };
}

macro_rules! native_calls {
    ($( { $variant:ident, $export:literal, [$($ver:ident)*], ($($arg:ident : $kind:ident),*) -> $ret:ident } )*) => {
        /// Calls the native function at `addr` as `callback`, with `args` (one per parameter,
        /// narrowed to each parameter's native type), and widens its result.
        ///
        /// # Safety
        /// `addr` must be an `extern "C"` or `extern "C-unwind"` function with `callback`'s
        /// signature from the ABI table in native types.
        pub(crate) unsafe fn call_callback(callback: Callback, addr: usize, args: &[u64]) -> u64 {
            #[allow(unused_mut, unused_variables)]
            let mut next = args.iter().copied();
            match callback {
                $( Callback::$variant => {
                    // SAFETY: the caller's promise about `addr`.
                    let f = unsafe {
                        std::mem::transmute::<usize, extern "C-unwind" fn($(callback_type!($kind)),*) -> callback_return!($ret)>(addr)
                    };
                    widen!($ret, f($({ let _ = stringify!($arg); next.next().unwrap_or(0) as callback_type!($kind) }),*))
                } )*
            }
        }
    };
}
abi::for_each_callback!(native_calls);

/// The shim library, loaded once per process: `Ok` once its functions forward to ours.
static SHIM: OnceLock<Result<(), String>> = OnceLock::new();

/// The shim's bytes, built by `build.rs` from the ABI table.
static SHIM_LIBRARY: &[u8] = include_bytes!(env!("PROXY_WASM_NULL_SHIM"));

/// Loads the shim (once) with `RTLD_GLOBAL`, so that libraries loaded afterwards find the
/// `proxy_*` host functions in it, and points it at this process's host functions.
pub(crate) fn ensure_shim() -> Result<(), String> {
    SHIM.get_or_init(load_shim).clone()
}

fn load_shim() -> Result<(), String> {
    let path = crate::instance::write_private_copy(SHIM_LIBRARY, "shim")
        .map_err(|e| format!("cannot write the Null VM's shim library: {e}"))?;
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
    // SAFETY: the shim is our own generated C: loading it runs no initialisers of note.
    let library = unsafe { libloading::os::unix::Library::open(Some(&path), flags) };
    let _ = std::fs::remove_file(&path);
    let library = library.map_err(|e| format!("cannot load the Null VM's shim library: {e}"))?;
    // The table must outlive every plugin: leak it with the library.
    let table: &'static [*const ()] = Box::leak(host_function_table().into_boxed_slice());
    // SAFETY: `proxy_null_shim_install` is the shim's `uint32_t (void *const *)`; a null
    // table only asks how many entries it expects.
    let install = unsafe { library.get::<unsafe extern "C" fn(*const *const ()) -> u32>(b"proxy_null_shim_install\0") }
        .map_err(|e| format!("the Null VM's shim lacks its install function: {e}"))?;
    // SAFETY: as above.
    let expected = unsafe { install(std::ptr::null()) };
    if expected as usize != table.len() {
        return Err(format!("the Null VM's shim forwards {expected} host functions, the host has {}", table.len()));
    }
    // SAFETY: `table` has exactly the entries the shim indexes, each the address of the Rust
    // host function of the same name and signature, and lives for the rest of the process.
    unsafe { install(table.as_ptr()) };
    std::mem::forget(library);
    Ok(())
}
