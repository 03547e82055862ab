//! The [V8](https://v8.dev) engine for `proxy-wasm-host`: V8 10.2 from Debian's libnode, reached
//! through a narrow C++ shim.
//!
//! Why this V8: the `v8` crate (rusty_v8) downloads a prebuilt static library while it builds,
//! and building V8 from source downloads its own toolchain; neither works where only package
//! registries are reachable. Debian's `libnode108` (Node 18.20.4) ships V8 10.2.154 as a
//! shared library with its headers (`libnode-dev`), but no `wasm_*` C API: the shim
//! (`shim/v8_shim.h`, thirteen C calls over V8's C++ API) is what this crate uses, and a backend
//! on the `v8` crate could implement the same calls. `cargo xtask setup` unpacks the two
//! packages into `target/libnode` (or `LIBNODE_ROOT`); the build compiles the shim into a small
//! shared library with a run path to libnode, which this crate embeds and loads at run time, so
//! any binary using the crate runs without `LD_LIBRARY_PATH` (see `build.rs`).
//!
//! [`V8Engine`] implements [`proxy_wasm_host::Engine`]:
//!
//! - **One isolate per VM** (a V8 `Isolate` with one context and one instance): an interrupt
//!   (`TerminateExecution`) acts on an isolate, so with one per VM it can only stop that VM; a
//!   VM can move between threads alone (a `v8::Locker` per call); and a VM's JS heap is its own.
//!   It costs about 2 ms and 0.7 MiB per VM more than a context in a per-worker isolate
//!   (measured, see the README), paid when a plugin is loaded on a worker, not per request.
//! - **Compilation** once per module, in a process-wide compile isolate; every VM re-creates
//!   the compiled module in its own isolate without compiling again.
//! - **Host functions**: every import calls one trampoline with its row of the ABI table, which
//!   calls [`call_row`](proxy_wasm_host::engine::call_row). A host trap unwinds the guest at once
//!   and uncatchably (not even a guest `catch_all` sees it) and comes back out unchanged.
//! - **Memory limit**: V8 10.2 has only the module's declared maximum and a process-wide flag.
//!   Each module is compiled rewritten ([`sys::wasm::rewrite_memory`]): its memory becomes an
//!   import that each VM fills with a `WebAssembly.Memory` whose maximum is the VM's limit, and
//!   every `memory.grow` a call into the shim, which answers -1 past the limit and tells the
//!   host ([`VmHost::note_memory_refused`](proxy_wasm_host::VmHost::note_memory_refused)), exactly
//!   as the other engines do.
//! - **CPU deadline and interrupt**: the host's watchdog calls [`V8Interrupt`], which calls
//!   `TerminateExecution` on the VM's isolate if, and only while, a call of that VM runs.
//! - **Traps** keep V8's words: `RuntimeError: unreachable`, `RuntimeError: memory access out
//!   of bounds`, `RangeError: Maximum call stack size exceeded`, `LinkError: ...`.
//! - **Bounds checks**: explicit by default ([`sys::TrapHandler::Off`]), so V8 installs no
//!   SIGSEGV handler that could fight Wasmtime's or Wasmer's in the same process.
//! - **Precompiled modules**: not supported. V8 10.2 serializes a compiled module, but its only
//!   way back is `WasmStreaming::SetCompiledModuleBytes` inside a JS
//!   `WebAssembly.compileStreaming` callback, which also needs the original bytes and an event
//!   loop to settle the promise; compiling again costs a few milliseconds per plugin load.
//! - **Threads**: every shim call takes the isolate's `v8::Locker` and sets the thread's stack
//!   limit from its real stack, so an instance can be called from any thread, one at a time.

mod engine;
mod instance;
mod module;
pub mod sys;
mod trap;

#[cfg(test)]
mod tests;

pub use engine::{V8Config, V8Engine};
pub use instance::{V8Instance, V8Interrupt};
pub use module::V8Module;
