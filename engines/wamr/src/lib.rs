//! The [WAMR](https://github.com/bytecodealliance/wasm-micro-runtime) engine for
//! `proxy-wasm-host`: WAMR 2.4.3's fast interpreter, vendored by the `wamrx-sys` crate (0.3.0,
//! thread manager on), under our own small safe wrapper of its C API ([`wamr`]).
//!
//! [`WamrEngine`] implements [`proxy_wasm_host::Engine`]. WAMR's runtime is one per process:
//! the first engine initialises it and registers every host function of the ABI table, all
//! through one raw trampoline that calls the host's raw entry
//! ([`call_row`](proxy_wasm_host::engine::call_row)) with the row index.
//!
//! - **Imports.** WAMR loads a module whose import is missing or mistyped (it would trap only
//!   when the import is called) and links `env._name` to `name`: the host's exact import check
//!   refuses such modules, with the same errors as every engine.
//! - **Memory limit.** Each instance is made with a cap of whole 64 KiB pages
//!   ([`Limits::max_memory_bytes`](proxy_wasm_host::Limits::max_memory_bytes) rounded down);
//!   `memory.grow` past it answers -1 and WAMR's enlarge-memory error callback tells us, so the
//!   host is told ([`VmHost::note_memory_refused`](proxy_wasm_host::VmHost::note_memory_refused)).
//!   A limit below the module's initial memory is refused at instantiation (WAMR would silently
//!   raise it).
//! - **CPU deadline and interrupt.** [`WamrInterrupt`] calls `wasm_runtime_terminate`, which sets
//!   the exec env's terminate flag that the interpreter checks at branches and calls; a gate
//!   makes sure it only ever reaches the call it was meant for. The host's watchdog calls it.
//! - **Traps.** A host function's [`Trap`](proxy_wasm_host::Trap) is kept whole on the Rust side
//!   (WAMR keeps 127 bytes of text); a Wasm trap is a guest trap in WAMR's words, such as
//!   `wasm trap: unreachable`. A panic in a host function is caught before it reaches C.
//! - **Threads.** No per-thread set-up: this build checks memory bounds in software
//!   (`hw-bound-check` off, so no signal handlers), and WAMR records the calling thread and its
//!   stack bounds at the start of every call. Threads that run guests need at least 64 KiB of
//!   stack left for host functions (the trampoline traps with `native stack overflow` otherwise).
//! - **Process side effects** of initialising WAMR: a no-op `SIGUSR1` handler, `SIGUSR1` blocked
//!   on the initialising thread (WAMR's wake-up of blocking WASI calls, unused here), and WAMR's
//!   own log (errors only) on stdout.
//!
//! What was measured and found while writing the wrapper is in `NOTES.md` beside this crate.

mod engine;
mod instance;
mod link;
mod module;
mod shared;
mod start;
mod store;
mod trap;
pub mod wamr;

#[cfg(test)]
mod tests;

pub use engine::WamrEngine;
pub use instance::{WamrInstance, WamrInterrupt};
pub use module::WamrModule;
/// The C API underneath (bindgen over WAMR's `wasm_export.h`), for baselines that run WAMR
/// without our layer.
pub use wamrx_sys as sys;
