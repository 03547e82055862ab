//! Shared pieces of the benchmarks: the guest modules they run, the native plugins of the Null
//! VM, the raw-engine baselines, and the run settings and manifest that `cargo xtask bench`
//! reads.
//!
//! - [`modules`]: the empty plugin, the header-lookup plugin and the generated 1 MiB plugin, as
//!   WAT or Wasm.
//! - `native`: the same plugins as native static plugins for the Null VM, and the direct calls
//!   that are its baselines (when the Null VM is built in).
//! - [`raw`]: the raw-engine baselines (Wasmtime and Wasmer without our layer).
//! - [`run`]: which engines to run, criterion's settings, loading a plugin through our layer,
//!   and the manifest each bench binary writes for the report.
//! - [`sha256`], [`workload`]: the bench guest's own source, compiled here too, so the native
//!   baseline runs the same code and both sides send the same request.

pub mod cases;
pub mod modules;
pub mod raw;
pub mod run;

proxy_wasm_harness::if_engine!(null {
    pub mod native;
    pub use native::{empty_native, register_empty_native};
});

pub use modules::EMPTY_PLUGIN_WAT;

/// SHA-256 in plain Rust: the bench guest's own source
/// (`conformance/plugins/bench-guest/src/sha256.rs`), compiled here natively as the CPU-bound
/// workload's baseline.
#[path = "../../conformance/plugins/bench-guest/src/sha256.rs"]
pub mod sha256;

/// What host and bench guest agree on: the request the stream workloads send
/// (`conformance/plugins/bench-guest/src/workload.rs`).
#[path = "../../conformance/plugins/bench-guest/src/workload.rs"]
pub mod workload;
