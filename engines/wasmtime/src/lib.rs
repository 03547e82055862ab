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
//! - **Memory limit.** Each store's resource limiter refuses to grow linear memory beyond
//!   [`Limits::max_memory_bytes`](proxy_wasm_host::Limits::max_memory_bytes): `memory.grow`
//!   answers -1, as Wasm specifies and the C++ host does, and the host is told
//!   ([`VmHost::note_memory_refused`](proxy_wasm_host::VmHost::note_memory_refused)), so a guest
//!   that then aborts fails with a memory-limit trap. Past the module's own declared maximum,
//!   -1 too.
//! - **CPU deadline and interrupt.** Compiled code checks Wasmtime's epoch at function entries
//!   and loop headers. The host's watchdog calls [`WasmtimeInterrupt`], which sets the
//!   instance's flag and moves the epoch; the store's epoch callback sees the flag and stops the
//!   guest with [`TrapKind::Deadline`](proxy_wasm_host::TrapKind::Deadline). No thread of the
//!   engine's own ticks the epoch.
//! - **Traps.** A host function's [`Trap`](proxy_wasm_host::Trap) travels through Wasmtime's
//!   error as a typed error and comes back unchanged (so `proc_exit`'s exit code survives); a
//!   Wasm trap becomes a one-line guest trap such as
//!   ``wasm trap: wasm `unreachable` instruction executed (in `proxy_on_tick`)``.

mod engine;
mod instance;
mod link;
mod module;
mod shared;
mod store;
mod trap;

#[cfg(test)]
mod tests;

pub use engine::{WasmtimeConfig, WasmtimeEngine};
/// The Wasmtime library this engine is built on, for code that runs it without our layer (the
/// benchmarks' raw baselines) at the same version.
pub use wasmtime;
pub use instance::{WasmtimeInstance, WasmtimeInterrupt};
pub use module::WasmtimeModule;
