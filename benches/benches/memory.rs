//! Resident memory added by each extra worker VM, per engine, for the empty plugin and the
//! generated 1 MiB plugin: the process's resident set before and after making N workers (each
//! serving one empty stream, so what a request touches is counted), divided by N.
//!
//! The resident set is `Rss` of `/proc/self/smaps_rollup`, which the kernel counts by walking
//! the page tables; `VmRSS` of `/proc/self/status` (the fallback) comes from per-CPU counters
//! that recent kernels only sum approximately, off by hundreds of KiB.
//! A measurement, not a timing: no criterion. Under `cargo test` it makes two workers per case
//! and writes nothing.
#![allow(missing_docs)]

use proxy_wasm_benches::modules::big_plugin;
use proxy_wasm_benches::run::{self, Loaded, Manifest};
use proxy_wasm_benches::EMPTY_PLUGIN_WAT;
use proxy_wasm_host::MemoryStream;

/// This process's resident set in bytes: `Rss` of `/proc/self/smaps_rollup`, else `VmRSS` of
/// `/proc/self/status`, else `None`.
fn rss() -> Option<i64> {
    let field = |file: &str, key: &str| -> Option<i64> {
        let text = std::fs::read_to_string(file).ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        let kib: i64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    };
    field("/proc/self/smaps_rollup", "Rss:").or_else(|| field("/proc/self/status", "VmRSS:"))
}

/// Gives free heap memory back to the system (glibc's `malloc_trim`), so that what the workers
/// allocate shows as new resident pages instead of reusing pages freed earlier (the generated
/// plugin's text, the compiler's scratch memory).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only releases free memory and has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}

fn main() {
    let vms = if run::measuring() { 64 } else { 2 };
    let m = Manifest::create("memory");
    let big = big_plugin(run::mib());
    println!("resident memory per extra worker VM ({vms} workers, each after one empty stream):");
    for name in run::engines() {
        for (plugin, code) in [("small", EMPTY_PLUGIN_WAT.as_bytes()), ("1mib", &big[..])] {
            let code: &[u8] = match (name, plugin) {
                ("null", "1mib") => {
                    m.skip("memory-1mib", name, "the Null VM runs native code: there is no 1 MiB Wasm plugin");
                    continue;
                }
                ("null", _) => {
                    proxy_wasm_harness::if_engine!(null { proxy_wasm_benches::register_empty_native(); });
                    b"empty"
                }
                _ => code,
            };
            let loaded = Loaded::new(run::engine(name), code, "");
            trim_heap();
            let Some(before) = rss() else {
                m.skip(&format!("memory-{plugin}"), name, "no /proc/self/smaps_rollup or /proc/self/status here");
                continue;
            };
            let mut workers = Vec::with_capacity(vms);
            for _ in 0..vms {
                let mut worker = loaded.plugin.worker().unwrap();
                let root = worker.root("").unwrap();
                let s = worker.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
                worker.vm().on_request_headers(s.id, true).unwrap();
                worker.finish_stream(s).unwrap();
                workers.push(worker);
            }
            let after = rss().unwrap_or(before);
            let per_vm = (after - before) / vms as i64;
            println!("  {name:<20} {plugin:<6} {:>10} bytes ({:.1} KiB)", per_vm, per_vm as f64 / 1024.0);
            m.memory(name, plugin, per_vm, vms);
            drop(workers);
        }
    }
}
