//! The empty stream lifecycle (create context, request headers, done, log, delete) through our
//! layer, beside the same calls without it: raw engine calls of the same exports with the same
//! arguments, or for the Null VM direct calls of the native plugin's functions. Also what a
//! CPU deadline costs per call.
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public function.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use abi::{AbiVersion, Callback};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use proxy_wasm_benches::EMPTY_PLUGIN_WAT;
use proxy_wasm_host::{
    DefaultEmbedder, Engine, Limits, MemoryStream, PluginHost, PluginInfo, Services, VmConfig, VmHost, VmHostConfig,
};
use proxy_wasm_wasmer::WasmerEngine;
use proxy_wasm_wasmtime::WasmtimeEngine;

/// The stream lifecycle through our layer: a worker VM of the empty plugin (`code`: Wasm bytes,
/// or a static plugin's name for the Null VM) configured on `engine`.
fn bench_host(group: &mut BenchmarkGroup<'_, WallTime>, engine: Arc<dyn Engine>, code: &[u8]) {
    let host = PluginHost::new(engine, Arc::new(DefaultEmbedder));
    let code = host.load(code).expect("the empty plugin loads");
    let plugin = PluginInfo { name: "empty".into(), ..Default::default() };
    let mut worker = host.add_plugin(&code, VmConfig::default(), plugin).unwrap().worker().unwrap();
    let root = worker.root("").unwrap();
    group.bench_function("host", |b| {
        b.iter(|| {
            let s = worker.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
            worker.vm().on_request_headers(s.id, true).unwrap();
            worker.finish_stream(s).unwrap();
        })
    });
}

fn lifecycle_wasmtime(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifecycle/wasmtime");
    let ours = WasmtimeEngine::default();
    let engine = ours.wasmtime().clone();
    bench_host(&mut group, Arc::new(ours), EMPTY_PLUGIN_WAT.as_bytes());

    // The baseline: the same five exports called directly on the same wasmtime engine (same
    // configuration, so the same compiled code), in a store that never reaches its epoch
    // deadline.
    let module = wasmtime::Module::new(&engine, EMPTY_PLUGIN_WAT).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    store.set_epoch_deadline(u64::MAX);
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let create = instance.get_typed_func::<(i32, i32), ()>(&mut store, "proxy_on_context_create").unwrap();
    let headers = instance.get_typed_func::<(i32, i32, i32), i32>(&mut store, "proxy_on_request_headers").unwrap();
    let done = instance.get_typed_func::<i32, i32>(&mut store, "proxy_on_done").unwrap();
    let log = instance.get_typed_func::<i32, ()>(&mut store, "proxy_on_log").unwrap();
    let delete = instance.get_typed_func::<i32, ()>(&mut store, "proxy_on_delete").unwrap();
    let mut id = 1;
    group.bench_function("raw", |b| {
        b.iter(|| {
            id += 1;
            create.call(&mut store, (id, 1)).unwrap();
            headers.call(&mut store, (id, 0, 1)).unwrap();
            done.call(&mut store, id).unwrap();
            log.call(&mut store, id).unwrap();
            delete.call(&mut store, id).unwrap();
        })
    });
    group.finish();
}

fn lifecycle_wasmer_singlepass(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifecycle/wasmer-singlepass");
    bench_host(&mut group, Arc::new(WasmerEngine::singlepass()), EMPTY_PLUGIN_WAT.as_bytes());

    // The baseline: the same five exports called directly on a plain Singlepass engine (no stop
    // checks compiled in, no memory-limiting tunables).
    let mut store = wasmer::Store::new(wasmer::sys::Singlepass::new());
    let module = wasmer::Module::new(&store, EMPTY_PLUGIN_WAT).unwrap();
    let instance = wasmer::Instance::new(&mut store, &module, &wasmer::imports! {}).unwrap();
    let e = &instance.exports;
    let create = e.get_typed_function::<(i32, i32), ()>(&store, "proxy_on_context_create").unwrap();
    let headers = e.get_typed_function::<(i32, i32, i32), i32>(&store, "proxy_on_request_headers").unwrap();
    let done = e.get_typed_function::<i32, i32>(&store, "proxy_on_done").unwrap();
    let log = e.get_typed_function::<i32, ()>(&store, "proxy_on_log").unwrap();
    let delete = e.get_typed_function::<i32, ()>(&store, "proxy_on_delete").unwrap();
    let mut id = 1;
    group.bench_function("raw", |b| {
        b.iter(|| {
            id += 1;
            create.call(&mut store, id, 1).unwrap();
            headers.call(&mut store, id, 0, 1).unwrap();
            done.call(&mut store, id).unwrap();
            log.call(&mut store, id).unwrap();
            delete.call(&mut store, id).unwrap();
        })
    });
    group.finish();
}

/// The Null VM: the same lifecycle through our layer on the native empty plugin, beside direct
/// calls of its five functions.
fn lifecycle_null(c: &mut Criterion) {
    use proxy_wasm_benches::empty_native as native;
    let mut group = c.benchmark_group("lifecycle/null");
    proxy_wasm_benches::register_empty_native();
    bench_host(&mut group, Arc::new(proxy_wasm_null::NullVm::new()), b"empty");
    // Through function pointers the optimiser cannot see through, as the Null VM calls them.
    let create = black_box(native::context_create as extern "C-unwind" fn(u32, u32));
    let headers = black_box(native::request_headers as extern "C-unwind" fn(u32, usize, u32) -> u32);
    let done = black_box(native::done as extern "C-unwind" fn(u32) -> u32);
    let end = black_box(native::context_end as extern "C-unwind" fn(u32));
    let mut id = 1u32;
    group.bench_function("raw", |b| {
        b.iter(|| {
            id = id.wrapping_add(1);
            create(id, 1);
            black_box(headers(id, 0, 1));
            black_box(done(id));
            end(id);
            end(id);
        })
    });
    group.finish();
}

/// One empty callback (`proxy_on_done`) through `Instance::call`, without a CPU deadline and
/// with one (that never fires): what arming and disarming the deadline costs per call.
fn deadline(c: &mut Criterion) {
    let engines: [Arc<dyn Engine>; 2] = [Arc::new(WasmtimeEngine::default()), Arc::new(WasmerEngine::singlepass())];
    for engine in engines {
        let mut group = c.benchmark_group(format!("deadline/{}", engine.name()));
        let module = engine.compile(EMPTY_PLUGIN_WAT.as_bytes()).unwrap();
        for (name, call_deadline) in [("off", None), ("on", Some(Duration::from_secs(1)))] {
            let config = VmHostConfig {
                vm_id: "vm".into(),
                vm_configuration: Vec::new(),
                environment: Vec::new(),
                map_limits: Default::default(),
            };
            let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
            let mut vm = module.instantiate(host, &Limits { call_deadline, ..Limits::default() }).unwrap();
            group.bench_function(name, |b| b.iter(|| vm.call(Callback::OnDone, &[1]).unwrap()));
        }
        group.finish();
    }
}

criterion_group!(benches, lifecycle_wasmtime, lifecycle_wasmer_singlepass, lifecycle_null, deadline);
criterion_main!(benches);
