//! The empty stream lifecycle (create context, request headers, done, log, delete) through our
//! layer, beside raw engine calls of the same exports with the same arguments.
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public function.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use proxy_wasm_benches::EMPTY_PLUGIN_WAT;
use proxy_wasm_host::{DefaultEmbedder, MemoryStream, PluginHost, PluginInfo, VmConfig};
use proxy_wasm_wasmtime::WasmtimeEngine;

fn lifecycle_wasmtime(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifecycle/wasmtime");

    // Our layer: a worker VM of a configured plugin.
    let host = PluginHost::new(Arc::new(WasmtimeEngine::default()), Arc::new(DefaultEmbedder));
    let code = host.load(EMPTY_PLUGIN_WAT.as_bytes()).expect("the empty plugin loads");
    let plugin = PluginInfo { name: "empty".into(), ..Default::default() };
    let mut worker = host.add_plugin(&code, VmConfig::default(), plugin).unwrap().worker().unwrap();
    group.bench_function("host", |b| {
        b.iter(|| {
            let s = worker.create_http_stream("", Box::new(MemoryStream::new())).unwrap();
            let vm = worker.vm();
            vm.on_request_headers(s.id, true).unwrap();
            worker.finish_stream(s).unwrap();
        })
    });

    // The baseline: the same five exports called directly on wasmtime.
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, EMPTY_PLUGIN_WAT).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
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

criterion_group!(benches, lifecycle_wasmtime);
criterion_main!(benches);
