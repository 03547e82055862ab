//! The per-call workloads that both the criterion benchmarks and the instruction counter
//! (`pwcount`, behind `cargo xtask bench --check`) run, each as a pair of iterations: ours
//! and its baseline, built the same way for both so they measure the same thing.

use proxy_wasm_harness::if_engine;
use proxy_wasm_host::{MemoryStream, RootId, Stream, VmModel, WorkerVm};

use crate::modules::lookup_plugin_wat;
use crate::raw::{Iteration, Raw};
use crate::run::{self, request, Loaded};
use crate::EMPTY_PLUGIN_WAT;

/// A workload's two sides: our layer, and its baseline if this engine has one.
pub struct Pair {
    /// One iteration through our layer.
    pub ours: Iteration,
    /// The same work without our layer, or `None` when the engine has no raw baseline yet.
    pub baseline: Option<Iteration>,
}

/// The empty plugin for `engine`: the WAT, or for the Null VM the static plugin `empty`.
pub fn empty_plugin(engine: &str) -> Vec<u8> {
    if engine == "null" {
        if_engine!(null { crate::register_empty_native(); });
        b"empty".to_vec()
    } else {
        EMPTY_PLUGIN_WAT.as_bytes().to_vec()
    }
}

/// One empty stream on a worker: create, request headers, finish (done, log, delete).
pub fn empty_stream(worker: &mut WorkerVm, root: RootId) {
    recycled_stream(worker, root, Box::new(MemoryStream::new()));
}

/// [`empty_stream`] on the embedder's stream object `stream`, which it gets back: an
/// embedder may keep its per-stream objects and reuse them, and the persistent-VM workloads do,
/// so they measure the host's work and not the allocator's.
pub fn recycled_stream(worker: &mut WorkerVm, root: RootId, stream: Box<dyn Stream>) -> Box<dyn Stream> {
    let s = worker.create_http_stream(root, stream).unwrap();
    // The stream's VM: the worker's, or for an EPHEMERAL plugin the stream's own.
    worker.vm_of(s).expect("the stream's VM").on_request_headers(s.id, true).unwrap();
    worker.finish_stream(s).unwrap()
}

/// Empty streams on `loaded`'s worker, one per iteration, its stream object reused.
fn empty_streams(mut loaded: Loaded) -> Iteration {
    let root = loaded.root;
    let mut stream: Option<Box<dyn Stream>> = Some(Box::new(MemoryStream::new()));
    Box::new(move || {
        let s = stream.take().expect("the stream is back after every iteration");
        stream = Some(recycled_stream(&mut loaded.worker, root, s));
    })
}

if_engine!(null {
    /// The Null VM's lifecycle baseline: the five functions of the native empty plugin, called
    /// through function pointers the optimiser cannot see through, as the Null VM calls them.
    fn native_lifecycle() -> Iteration {
        use std::hint::black_box;

        use crate::empty_native as native;
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

    /// The Null VM's header-lookup baseline: the same lookups through a plain Rust function.
    fn native_lookups() -> Iteration {
        use std::hint::black_box;

        use crate::native::lookup_native::{lookups, raw_get_header_map_value, GetHeader};
        let get = black_box(raw_get_header_map_value as GetHeader);
        Box::new(move || lookups(get))
    }
});

/// The empty stream lifecycle on `engine`: one empty stream on a persistent worker (its stream
/// object reused, see [`recycled_stream`]), beside the same five export calls on the raw engine (for the Null VM, direct calls of the native
/// functions).
pub fn lifecycle(engine: &str) -> Pair {
    let loaded = Loaded::new(run::engine(engine), &empty_plugin(engine), "");
    let ours = empty_streams(loaded);
    let baseline = match Raw::for_engine(engine) {
        Some(raw) => Some(raw.lifecycle()),
        None if engine == "null" => if_engine!(null { Some(native_lifecycle()) } else { None }),
        None => None,
    };
    Pair { ours, baseline }
}

/// [`LOOKUPS_PER_CALL`](crate::modules::LOOKUPS_PER_CALL) header lookups on `engine`: one
/// request-headers callback of the lookup plugin on a stream of the workloads' request headers,
/// beside the raw engine's hand-written host function (for the Null VM, a plain Rust function).
pub fn lookup(engine: &str) -> Pair {
    let code = if engine == "null" {
        if_engine!(null { crate::native::register_lookup_native(); });
        b"lookup".to_vec()
    } else {
        lookup_plugin_wat().into_bytes()
    };
    let mut loaded = Loaded::new(run::engine(engine), &code, "");
    let s = loaded.worker.create_http_stream(loaded.root, request(b"")).unwrap();
    let ours: Iteration = Box::new(move || {
        loaded.worker.vm().on_request_headers(s.id, true).unwrap();
    });
    let baseline = match Raw::for_engine(engine) {
        Some(raw) => Some(raw.lookup()),
        None if engine == "null" => if_engine!(null { Some(native_lookups()) } else { None }),
        None => None,
    };
    Pair { ours, baseline }
}

/// A worker's VM clone of the empty plugin on `engine` (`PluginVm::instantiate`: instance, root
/// context, `proxy_on_vm_start`, `proxy_on_configure`), dropped, beside the raw engine's new
/// instance with the same three root callbacks (none for the Null VM).
pub fn clone(engine: &str) -> Pair {
    let loaded = Loaded::new(run::engine(engine), &empty_plugin(engine), "");
    let plugin = loaded.plugin.clone();
    let ours: Iteration = Box::new(move || drop(std::hint::black_box(plugin.instantiate().unwrap())));
    let baseline = Raw::for_engine(engine).map(|raw| raw.instantiate(&wat::parse_str(EMPTY_PLUGIN_WAT).unwrap()));
    Pair { ours, baseline }
}

/// An ephemeral VM per stream on `engine`: one empty stream on a worker of a plugin whose VM
/// model is `EPHEMERAL` (so the worker makes a fresh VM for the stream: instance, root context,
/// `proxy_on_vm_start`, `proxy_on_configure`, and drops it after), beside the raw engine doing
/// the same ([`Raw::ephemeral`]: a new instance, the three root callbacks, the stream's five
/// exports looked up and called; none for the Null VM, which has nothing to instantiate).
pub fn ephemeral(engine: &str) -> Pair {
    let loaded = Loaded::with_model(run::engine(engine), &empty_plugin(engine), "", VmModel::Ephemeral);
    let ours = empty_streams(loaded);
    let baseline = Raw::for_engine(engine).map(|raw| raw.ephemeral(&wat::parse_str(EMPTY_PLUGIN_WAT).unwrap()));
    Pair { ours, baseline }
}
