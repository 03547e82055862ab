//! The [Wasmtime](https://wasmtime.dev) engine for `proxy-wasm-host`.
//!
//! [`WasmtimeEngine`] implements [`proxy_wasm_host::Engine`]: it compiles modules with Cranelift,
//! links every host function of the ABI table once per engine (typed trampolines expanded from
//! [`abi::for_each_host_function!`], see `link.rs`), and instantiates them into stores that hold
//! the VM's [`VmHost`](proxy_wasm_host::VmHost).
//!
//! - **Pooling.** By default instances come from Wasmtime's pooling allocator with copy-on-write
//!   memory images, so a fresh instance of a compiled module (a worker's clone, an ephemeral VM)
//!   costs microseconds. [`WasmtimeConfig`] sizes the pool.
//! - **Memory limit.** Each store has a resource limiter: growing linear memory beyond
//!   [`Limits::max_memory_bytes`](proxy_wasm_host::Limits::max_memory_bytes) traps with
//!   [`TrapKind::MemoryLimit`](proxy_wasm_host::TrapKind::MemoryLimit) instead of quietly
//!   returning -1 from `memory.grow`. Growing past the module's own declared maximum still
//!   returns -1, as Wasm specifies.
//! - **CPU deadline and interrupt.** Compiled code checks Wasmtime's epoch at function entries
//!   and loop headers. A ticker thread per engine advances the epoch while some call has a
//!   deadline; the store's epoch callback then compares the time with the call's deadline, or
//!   sees the instance's interrupt flag, and stops the guest with
//!   [`TrapKind::Deadline`](proxy_wasm_host::TrapKind::Deadline).
//! - **Traps.** A host function's [`Trap`](proxy_wasm_host::Trap) travels through Wasmtime's
//!   error as a typed error and comes back unchanged (so `proc_exit`'s exit code survives); a
//!   Wasm trap becomes a one-line guest trap such as
//!   ``wasm trap: wasm `unreachable` instruction executed (in `proxy_on_tick`)``.

mod engine;
mod instance;
mod link;
mod module;
mod trap;

#[cfg(test)]
mod tests;

pub use engine::{WasmtimeConfig, WasmtimeEngine};
/// The Wasmtime library this engine is built on, for code that runs it without our layer (the
/// benchmarks' raw baselines) at the same version.
pub use wasmtime;
pub use instance::{WasmtimeInstance, WasmtimeInterrupt};
pub use module::WasmtimeModule;
