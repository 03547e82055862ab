//! A small safe wrapper over WAMR's C API (`wamrx-sys` 0.3.0: WAMR 2.4.3, fast interpreter,
//! thread manager on, hardware bound checks off): what a Proxy-Wasm engine needs, nothing more.
//!
//! 1. [`init`] once per process with the table of host functions ([`HostFunc`] rows): WAMR's
//!    registration is process-wide and must precede the first load. Every row goes through one
//!    raw trampoline; the row index travels in the native symbol's attachment.
//! 2. [`Runtime::load`] a binary module (WAMR's error text on failure); check
//!    [`Module::imports`] and [`Module::exports`] yourself: WAMR loads a module with a missing
//!    or mistyped import and only traps when it is called.
//! 3. [`Module::instantiate`] with host state `T`, a [`HostFn`] (the single Rust entry of every
//!    host function) and an [`InstanceConfig`] (memory cap, guest stack).
//! 4. [`Instance::func`] once per export, then [`Instance::call`] as often as needed. A host
//!    function gets a [`Caller`]: the state, the whole linear memory as `&mut [u8]`, and
//!    re-entrant guest calls ([`Caller::call`], for the allocator).
//! 5. [`Instance::interrupt_handle`] stops a running call from another thread, never a later one.
//!
//! Failures: [`Error`] for set-up, [`CallError`] for calls; a host function's `Err(E)` comes
//! back whole as [`CallError::Host`] (WAMR itself keeps only 127 bytes of exception text), and
//! a panic in a host function is caught at the FFI boundary ([`CallError::HostPanic`]).
//!
//! See NOTES.md beside this crate for what was measured and the caveats.

mod caller;
mod instance;
mod interrupt;
mod module;
mod runtime;
mod types;

pub use caller::Caller;
pub use instance::{
    Func, HostFn, Instance, InstanceConfig, DEFAULT_STACK_SIZE, MAX_CALL_PARAMS, WASM_PAGE,
};
pub use interrupt::InterruptHandle;
pub use module::Module;
pub use runtime::{init, HostFunc, Runtime, HOST_STACK_RESERVE, MAX_HOST_PARAMS};
pub use types::{
    CallError, Error, ExportInfo, ExternType, FuncType, GrowRefusal, ImportInfo, Val, ValType,
};
