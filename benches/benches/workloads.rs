//! The engine comparison: every workload on every engine built in, each beside its baseline.
//!
//! - `compile-1mib`, `clone`, `clone-1mib`: compiling a 1 MiB plugin, and instantiating a
//!   worker's VM clone (`PluginVm::instantiate`) of the empty and of the 1 MiB plugin, beside the
//!   raw engine doing the same.
//! - `header-lookup`: one `proxy_get_header_map_value` beside a raw host function doing the
//!   same unavoidable work (find, call the guest's allocator, copy).
//! - `stream`, `headers`, `body-*`, `shared-data`, `metric`, `callout`: whole streams through the
//!   bench guest (`conformance/plugins/bench-guest`) doing one workload, beside the same stream
//!   through the same guest doing nothing.
//! - `sha256-1m`: sha256 of 1 MiB inside the plugin, beside the same Rust code run natively.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion};
use guest_plugins::Target;
use proxy_wasm_benches::cases::{self, empty_plugin, Pair};
use proxy_wasm_benches::modules::{big_plugin, LOOKUPS_PER_CALL};
use proxy_wasm_benches::raw::Raw;
use proxy_wasm_benches::run::{self, bench, request, Loaded, Manifest};
use proxy_wasm_benches::{sha256, EMPTY_PLUGIN_WAT};
use proxy_wasm_host::{HeaderMap, HttpCallResponse, PluginHost, Stream};

/// Why the Null VM sits out the workloads about Wasm code.
const NULL_HAS_NO_WASM: &str = "the Null VM runs native code: there is no Wasm module to compile or 1 MiB plugin to clone";

/// The bench guest for `engine`: the wasm32 module, or for the Null VM the shared library.
fn bench_guest(engine: &str) -> Vec<u8> {
    run::bench_guest(if engine == "null" { Target::Native } else { Target::Wasm32 })
}

fn compile(c: &mut Criterion, m: &Manifest) {
    let big = big_plugin(run::mib());
    m.workload(
        "compile-1mib",
        &format!("Compile and validate a generated {} KiB plugin (PluginHost::load, nothing cached)", big.len() >> 10),
        "per module",
        "the raw engine compiling the same bytes",
    );
    for name in run::engines() {
        if name == "null" {
            m.skip("compile-1mib", name, NULL_HAS_NO_WASM);
            continue;
        }
        let mut group = c.benchmark_group(format!("compile-1mib/{name}"));
        group.sampling_mode(criterion::SamplingMode::Flat).sample_size(10);
        let engine = run::engine(name);
        let embedder = Arc::new(run::BenchEmbedder::default());
        bench(&mut group, "ours", &mut || {
            let host = PluginHost::new(engine.clone(), embedder.clone());
            drop(host.load(&big).unwrap());
        });
        m.ours("compile-1mib", name, &format!("compile-1mib/{name}/ours"), 1);
        if let Some(raw) = Raw::for_engine(name) {
            bench(&mut group, "baseline", &mut *raw.compile(big.clone()));
            m.baseline("compile-1mib", name, &format!("compile-1mib/{name}/baseline"), 1);
        }
        group.finish();
    }
}

fn clone(c: &mut Criterion, m: &Manifest) {
    let big = big_plugin(run::mib());
    for (id, title) in [
        ("clone", "Instantiate a worker's VM clone of the empty plugin (PluginVm::instantiate: instance, root context, vm_start, configure)".to_string()),
        ("clone-1mib", format!("Instantiate a worker's VM clone of the {} KiB plugin", big.len() >> 10)),
    ] {
        m.workload(
            id,
            &title,
            "per VM",
            "the raw engine: a new store and instance, the same three root callbacks looked up and called",
        );
        for name in run::engines() {
            let plugin = match (id, name) {
                ("clone-1mib", "null") => {
                    m.skip(id, name, NULL_HAS_NO_WASM);
                    continue;
                }
                ("clone-1mib", _) => big.clone(),
                _ => empty_plugin(name),
            };
            let mut group = c.benchmark_group(format!("{id}/{name}"));
            let loaded = Loaded::new(run::engine(name), &plugin, "");
            bench(&mut group, "ours", &mut || drop(black_box(loaded.plugin.instantiate().unwrap())));
            m.ours(id, name, &format!("{id}/{name}/ours"), 1);
            if let Some(raw) = Raw::for_engine(name) {
                let bytes = if id == "clone" { wat::parse_str(EMPTY_PLUGIN_WAT).unwrap() } else { big.clone() };
                bench(&mut group, "baseline", &mut *raw.instantiate(&bytes));
                m.baseline(id, name, &format!("{id}/{name}/baseline"), 1);
            }
            group.finish();
        }
    }
}

fn header_lookup(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "header-lookup",
        "One proxy_get_header_map_value of a 36-byte value among 20 request headers",
        "per lookup",
        "a raw host function on the raw engine: find the header, call the guest's malloc, copy the value, write address and size; for the Null VM the same as a plain Rust function",
    );
    for name in run::engines() {
        let mut group = c.benchmark_group(format!("header-lookup/{name}"));
        let Pair { mut ours, baseline } = cases::lookup(name);
        bench(&mut group, "ours", &mut *ours);
        m.ours("header-lookup", name, &format!("header-lookup/{name}/ours"), LOOKUPS_PER_CALL);
        if let Some(mut baseline) = baseline {
            bench(&mut group, "baseline", &mut *baseline);
            m.baseline("header-lookup", name, &format!("header-lookup/{name}/baseline"), LOOKUPS_PER_CALL);
        }
        group.finish();
    }
}

/// What a stream workload does with the stream after creating it.
#[derive(Clone, Copy)]
enum Steps {
    /// Request headers (ending the stream).
    Headers,
    /// Request headers, then the body in one chunk that ends the stream.
    Body,
    /// Request headers (the plugin pauses for a callout), then the callout's answer.
    Callout,
}

/// Benchmarks whole streams of the bench guest configured as `configuration` on one worker:
/// each iteration creates a stream carrying the request headers and `body` (made outside the
/// timing), runs `steps`, finishes it (dropped outside the timing).
fn bench_streams(
    group: &mut BenchmarkGroup<'_, WallTime>,
    variant: &str,
    engine: &str,
    configuration: &str,
    body: &[u8],
    steps: Steps,
) {
    let mut loaded = Loaded::new(run::engine(engine), &bench_guest(engine), configuration);
    let root = loaded.root;
    let embedder = loaded.embedder.clone();
    let answer = HttpCallResponse { headers: HeaderMap::from_pairs([(":status", "200")]), body: b"ok".to_vec(), ..Default::default() };
    let size = if body.len() > 4096 { BatchSize::LargeInput } else { BatchSize::SmallInput };
    group.bench_function(variant, |b| {
        b.iter_batched(
            || (request(body), answer.clone()),
            |(stream, answer)| -> Box<dyn Stream> {
                let worker = &mut loaded.worker;
                let s = worker.create_http_stream(root, stream).unwrap();
                match steps {
                    Steps::Headers => drop(worker.vm().on_request_headers(s.id, true).unwrap()),
                    Steps::Body => {
                        worker.vm().on_request_headers(s.id, false).unwrap();
                        worker.vm().on_request_body(s.id, true).unwrap();
                    }
                    Steps::Callout => {
                        worker.vm().on_request_headers(s.id, true).unwrap();
                        let call = embedder.last_call.load(Ordering::Relaxed);
                        worker.vm().on_http_call_response(call, Ok(answer)).unwrap();
                    }
                }
                worker.finish_stream(s).unwrap()
            },
            size,
        )
    });
    let vm = loaded.worker.vm();
    assert!(!vm.is_failed(), "{configuration} on {engine}: the plugin failed: {:?}", vm.failure());
}

fn streams(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "stream",
        "A stream of 20 request headers through the bench guest doing nothing (create, request headers, finish)",
        "per stream",
        "none (the baseline of the stream workloads below)",
    );
    let noop = |name: &str| format!("stream/{name}/ours");
    for name in run::engines() {
        let mut group = c.benchmark_group(format!("stream/{name}"));
        bench_streams(&mut group, "ours", name, "noop", b"", Steps::Headers);
        m.ours("stream", name, &noop(name), 1);
        group.finish();
    }
    for (id, title, configuration, steps) in [
        ("headers", "Header-heavy request: the plugin reads all 20 request headers, adds 5, removes 2", "headers", Steps::Headers),
        ("shared-data", "Shared data: the plugin sets a 16-byte value, then gets it back", "shared", Steps::Headers),
        ("metric", "Metric: the plugin increments a counter", "metric", Steps::Headers),
        ("callout", "HTTP callout round trip: dispatch on request headers, the answer through Vm::on_http_call_response, the plugin reads :status and resumes", "callout", Steps::Callout),
    ] {
        m.workload(id, title, "per stream", "the same stream through the bench guest doing nothing (`stream`)");
        for name in run::engines() {
            let mut group = c.benchmark_group(format!("{id}/{name}"));
            bench_streams(&mut group, "ours", name, configuration, b"", steps);
            m.ours(id, name, &format!("{id}/{name}/ours"), 1);
            m.baseline(id, name, &noop(name), 1);
            group.finish();
        }
    }
}

/// `len` bytes of text.
fn text(len: usize) -> Vec<u8> {
    b"The quick brown fox jumps over the lazy dog. ".iter().copied().cycle().take(len).collect()
}

fn bodies(c: &mut Criterion, m: &Manifest) {
    let sizes = [("body-64k", 64 << 10), ("body-1m", run::mib())];
    for (id, len) in sizes {
        m.workload(
            id,
            &format!("Request body of {} KiB rewritten: the plugin reads it all (get_buffer_bytes), flips the case of each letter, writes it back (set_buffer_bytes)", len >> 10),
            "per stream",
            "the same stream and body passed through by the bench guest doing nothing",
        );
        let body = text(len);
        for name in run::engines() {
            let mut group = c.benchmark_group(format!("{id}/{name}"));
            bench_streams(&mut group, "ours", name, "body", &body, Steps::Body);
            bench_streams(&mut group, "baseline", name, "noop", &body, Steps::Body);
            m.ours(id, name, &format!("{id}/{name}/ours"), 1);
            m.baseline(id, name, &format!("{id}/{name}/baseline"), 1);
            group.finish();
        }
    }
}

fn cpu(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "sha256-1m",
        "CPU-bound: sha256 of 1 MiB inside the plugin (on request headers)",
        "per stream",
        "the same Rust sha256 compiled natively (opt-level 3), called directly",
    );
    let mut group = c.benchmark_group("sha256-1m/native");
    let input = sha256::sha256_input(sha256::SHA256_INPUT_LEN);
    bench(&mut group, "baseline", &mut || {
        black_box(sha256::sha256(black_box(&input)));
    });
    group.finish();
    for name in run::engines() {
        let mut group = c.benchmark_group(format!("sha256-1m/{name}"));
        bench_streams(&mut group, "ours", name, "sha256", b"", Steps::Headers);
        m.ours("sha256-1m", name, &format!("sha256-1m/{name}/ours"), 1);
        m.baseline("sha256-1m", name, "sha256-1m/native/baseline", 1);
        group.finish();
    }
}

fn main() {
    let mut c = run::criterion();
    let m = Manifest::create("workloads");
    compile(&mut c, &m);
    clone(&mut c, &m);
    header_lookup(&mut c, &m);
    streams(&mut c, &m);
    bodies(&mut c, &m);
    cpu(&mut c, &m);
    c.final_summary();
}
