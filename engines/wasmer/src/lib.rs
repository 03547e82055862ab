//! The [Wasmer](https://wasmer.io) engine for `proxy-wasm-host`.
//!
//! [`WasmerEngine`] implements [`proxy_wasm_host::Engine`] on Wasmer 7.4 with either of its
//! compilers, Cranelift (engine name `wasmer`) or Singlepass (`wasmer-singlepass`), each behind a
//! Cargo feature (see [`Compiler`]). It compiles modules, links the host functions of the ABI table for each instance (typed
//! closures expanded from [`abi::for_each_host_function!`], see `link.rs`), and instantiates them
//! into stores whose function environment holds the VM's [`VmHost`](proxy_wasm_host::VmHost).
//!
//! - **Stop checks.** A compiler middleware (`stop.rs`) adds a stop flag to every module and
//!   checks it at function entries, loop headers and after `memory.grow`. [`WasmerInterrupt`]
//!   raises it from any thread: the host's watchdog does when a call passes its deadline. The
//!   guest stops with a [`TrapKind::Deadline`](proxy_wasm_host::TrapKind::Deadline) trap.
//! - **Start section.** The same middleware takes a module's Wasm start section out of
//!   `wasmer::Instance::new` and exports its function under a reserved name, hidden from the
//!   module's exports; the instance calls it right after instantiation, once the stop flag and
//!   the memory are in place, under the VM's call deadline, as Wasmtime and V8 run a start
//!   section. Its host calls (a `proxy_log` in AssemblyScript's top-level code) see the memory.
//! - **Memory limit.** The engine's tunables wrap each instance's linear memory: growing it past
//!   [`Limits::max_memory_bytes`](proxy_wasm_host::Limits::max_memory_bytes) is refused, so
//!   `memory.grow` answers -1 as Wasm specifies and the C++ host does, and the refusal is handed
//!   to the host ([`VmHost::note_memory_refused`](proxy_wasm_host::VmHost::note_memory_refused)),
//!   which names the limit if the guest then traps.
//! - **Traps.** A host function's [`Trap`](proxy_wasm_host::Trap) travels through Wasmer's
//!   runtime error as a typed error and comes back unchanged (so `proc_exit`'s exit code
//!   survives); a Wasm trap becomes a one-line guest trap such as
//!   ``wasm trap: unreachable (in `proxy_on_tick`)``.
//! - **No pooling.** Every instance maps its own memory: [`Capabilities::cheap_clone`] is false.
//!
//! [`Capabilities::cheap_clone`]: proxy_wasm_host::Capabilities::cheap_clone

mod engine;
mod instance;
mod limits;
mod link;
mod module;
mod shared;
mod stop;
mod store;
mod trap;

#[cfg(test)]
mod tests;

pub use engine::{Compiler, WasmerConfig, WasmerEngine};
/// The Wasmer library this engine is built on, for code that runs it without our layer (the
/// benchmarks' raw baselines) at the same version and with the same compilers.
pub use wasmer;
pub use instance::WasmerInstance;
pub use module::WasmerModule;
pub use stop::WasmerInterrupt;
