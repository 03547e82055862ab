//! The empty stream lifecycle (create context, request headers, done, log, delete) through our
//! layer on every engine built in, beside the same calls without it: raw engine calls of the same
//! exports with the same arguments, or for the Null VM direct calls of the native plugin's
//! functions. Then an ephemeral VM per stream beside a persistent one, and what a CPU deadline
//! costs per call.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use abi::{AbiVersion, Callback};
use criterion::Criterion;
use proxy_wasm_benches::raw::{Iteration, Raw};
use proxy_wasm_benches::run::{self, bench, Loaded, Manifest};
use proxy_wasm_benches::EMPTY_PLUGIN_WAT;
use proxy_wasm_harness::if_engine;
use proxy_wasm_host::engine::Watchdog;
use proxy_wasm_host::{DefaultEmbedder, Engine, MemoryStream, Services, VmHost, VmHostConfig, WorkerVm, RootId};

/// The empty plugin for `engine`: the WAT, or for the Null VM the static plugin `empty`.
fn empty_plugin(engine: &str) -> &'static [u8] {
    if engine == "null" {
        if_engine!(null { proxy_wasm_benches::register_empty_native(); });
        b"empty"
    } else {
        EMPTY_PLUGIN_WAT.as_bytes()
    }
}

/// One empty stream on a worker: create, request headers, finish.
fn empty_stream(worker: &mut WorkerVm, root: RootId) {
    let s = worker.create_http_stream(root, Box::new(MemoryStream::new())).unwrap();
    worker.vm().on_request_headers(s.id, true).unwrap();
    worker.finish_stream(s).unwrap();
}

if_engine!(null {
    /// The Null VM's baseline: the five functions of the native empty plugin, called through
    /// function pointers the optimiser cannot see through, as the Null VM calls them.
    fn native_lifecycle() -> Iteration {
        use std::hint::black_box;

        use proxy_wasm_benches::empty_native as native;
        let create = black_box(native::context_create as extern "C-unwind" fn(u32, u32));
        let headers = black_box(native::request_headers as extern "C-unwind" fn(u32, usize, u32) -> u32);
        let done = black_box(native::done as extern "C-unwind" fn(u32) -> u32);
        let end = black_box(native::context_end as extern "C-unwind" fn(u32));
        let mut id = 1u32;
        Box::new(move || {
            id = id.wrapping_add(1);
            create(id, 1);
            black_box(headers(id, 0, 1));
            black_box(done(id));
            end(id);
            end(id);
        })
    }
});

fn lifecycle(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "lifecycle",
        "Empty stream lifecycle (context create, request headers, done, log, delete)",
        "per stream",
        "the same five export calls on the raw engine; for the Null VM direct calls of the native functions",
    );
    for name in run::engines() {
        let mut group = c.benchmark_group(format!("lifecycle/{name}"));
        let mut loaded = Loaded::new(run::engine(name), empty_plugin(name), "");
        let root = loaded.root;
        bench(&mut group, "ours", &mut || empty_stream(&mut loaded.worker, root));
        m.ours("lifecycle", name, &format!("lifecycle/{name}/ours"), 1);
        let baseline: Option<Iteration> = match Raw::for_engine(name) {
            Some(raw) => Some(raw.lifecycle()),
            None if name == "null" => if_engine!(null { Some(native_lifecycle()) } else { None }),
            None => None,
        };
        match baseline {
            Some(mut baseline) => {
                bench(&mut group, "baseline", &mut *baseline);
                m.baseline("lifecycle", name, &format!("lifecycle/{name}/baseline"), 1);
            }
            None => m.skip("lifecycle", name, "no raw baseline for this engine yet (benches/src/raw.rs)"),
        }
        group.finish();
    }
}

/// A fresh worker VM for one stream, dropped after it, beside one long-lived worker VM.
fn ephemeral(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "ephemeral",
        "Ephemeral VM per stream: clone a worker VM (PluginVm::worker), one empty stream, drop it",
        "per stream",
        "the same stream on a persistent worker VM",
    );
    for name in run::engines() {
        let mut group = c.benchmark_group(format!("ephemeral/{name}"));
        let mut loaded = Loaded::new(run::engine(name), empty_plugin(name), "");
        let plugin = loaded.plugin.clone();
        bench(&mut group, "ours", &mut || {
            let mut worker = plugin.worker().unwrap();
            let root = worker.root("").unwrap();
            empty_stream(&mut worker, root);
        });
        m.ours("ephemeral", name, &format!("ephemeral/{name}/ours"), 1);
        let root = loaded.root;
        bench(&mut group, "baseline", &mut || empty_stream(&mut loaded.worker, root));
        m.baseline("ephemeral", name, &format!("ephemeral/{name}/baseline"), 1);
        group.finish();
    }
}

/// One empty callback (`proxy_on_done`) through `Instance::call`, with a CPU deadline (that never
/// fires) beside without one: what arming and disarming the deadline costs per call.
fn deadline(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "deadline",
        "One empty callback through Instance::call with a CPU deadline armed",
        "per call",
        "the same call without a deadline",
    );
    for name in run::engines() {
        let engine: Arc<dyn Engine> = run::engine(name);
        if !engine.capabilities().interrupt {
            m.skip("deadline", name, "the engine has no CPU deadline");
            continue;
        }
        let mut group = c.benchmark_group(format!("deadline/{name}"));
        let module = engine.compile(&wat::parse_str(EMPTY_PLUGIN_WAT).unwrap()).unwrap();
        let config = VmHostConfig::new("vm");
        let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
        let mut vm = module.instantiate(host).unwrap();
        // What `Vm` does around every call when the VM has a CPU deadline: arm the host's
        // watchdog, call, disarm.
        let slot = Watchdog::global().slot(vm.interrupt_handle().expect("the engine can interrupt"), Duration::from_secs(1));
        bench(&mut group, "ours", &mut || {
            let armed = slot.arm().unwrap();
            vm.call(Callback::OnDone, &[1]).unwrap();
            armed.disarm();
        });
        bench(&mut group, "baseline", &mut || {
            vm.call(Callback::OnDone, &[1]).unwrap();
        });
        m.ours("deadline", name, &format!("deadline/{name}/ours"), 1);
        m.baseline("deadline", name, &format!("deadline/{name}/baseline"), 1);
        group.finish();
    }
}

fn main() {
    let mut c = run::criterion();
    let m = Manifest::create("lifecycle");
    lifecycle(&mut c, &m);
    ephemeral(&mut c, &m);
    deadline(&mut c, &m);
    c.final_summary();
}
