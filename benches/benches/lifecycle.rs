//! The empty stream lifecycle (create context, request headers, done, log, delete) through our
//! layer, beside raw engine calls of the same exports with the same arguments.
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public function.

use std::sync::Arc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use proxy_wasm_benches::EMPTY_PLUGIN_WAT;
use proxy_wasm_host::{DefaultEmbedder, MemoryStream, PluginHost, PluginInfo, VmConfig};
use proxy_wasm_wasmtime::WasmtimeEngine;

fn lifecycle_wasmtime(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifecycle/wasmtime");

    // Our layer: a worker VM of a configured plugin.
    let ours = WasmtimeEngine::default();
    let engine = ours.wasmtime().clone();
    let host = PluginHost::new(Arc::new(ours), Arc::new(DefaultEmbedder));
    let code = host.load(EMPTY_PLUGIN_WAT.as_bytes()).expect("the empty plugin loads");
    let plugin = PluginInfo { name: "empty".into(), ..Default::default() };
    let mut worker = host.add_plugin(&code, VmConfig::default(), plugin).unwrap().worker().unwrap();
    let root = worker.root("").unwrap();
    group.bench_function("host", |b| {
        b.iter(|| {
            let s = worker.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
            let vm = worker.vm();
            vm.on_request_headers(s.id, true).unwrap();
            worker.finish_stream(s).unwrap();
        })
    });

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

/// The Null VM: the same lifecycle through our layer on the native empty plugin, beside direct
/// calls of its five functions.
fn lifecycle_null(c: &mut Criterion) {
    use proxy_wasm_benches::empty_native as native;
    let mut group = c.benchmark_group("lifecycle/null");
    proxy_wasm_benches::register_empty_native();
    let host = PluginHost::new(Arc::new(proxy_wasm_null::NullVm::new()), Arc::new(DefaultEmbedder));
    let code = host.load(b"empty").expect("the empty plugin is registered");
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

criterion_group!(benches, lifecycle_wasmtime, lifecycle_null);
criterion_main!(benches);
