//! The Null VM: static plugins registered by name, unmodified SDK plugins loaded as shared
//! libraries, several at once, panics caught at the boundary, and every load error naming its
//! cause.

use std::sync::Arc;
use std::time::Duration;

use guest_plugins::Target;
use proxy_wasm_harness::{run_exchange, Exchange, ScriptedEmbedder, Step};
use proxy_wasm_host::{Engine, Error, FailurePolicy, MemoryStream, PluginHost, PluginInfo, Trace, VmConfig};
use proxy_wasm_null::NullVm;

fn host() -> (PluginHost, Arc<ScriptedEmbedder>) {
    let embedder = ScriptedEmbedder::new();
    (PluginHost::new(Arc::new(NullVm::new()), embedder.clone()).with_trace(Trace::new()).with_clock(embedder.clock()), embedder)
}

fn plugin(name: &str, configuration: &str) -> PluginInfo {
    PluginInfo { name: name.into(), configuration: configuration.as_bytes().to_vec(), ..Default::default() }
}

fn request(path: &str) -> Step {
    Step::RequestHeaders { headers: vec![(":path".into(), path.into())], end_of_stream: true }
}

/// A static plugin: raw-ABI callbacks as plain Rust functions, the host functions as the
/// native symbols the Null VM defines.
mod tiny {
    extern "C" {
        fn proxy_add_header_map_value(map: u32, key: *const u8, key_size: usize, value: *const u8, value_size: usize) -> u32;
    }

    pub extern "C-unwind" fn marker() {}

    pub extern "C-unwind" fn allocate(size: usize) -> *mut u8 {
        let mut v = Vec::<u8>::with_capacity(size);
        let p = v.as_mut_ptr();
        std::mem::forget(v);
        p
    }

    pub extern "C-unwind" fn request_headers(_context: u32, _headers: usize, _end: u32) -> u32 {
        let (k, v) = (b"x-tiny", b"1");
        // SAFETY: both pointers and lengths describe static byte strings.
        let status = unsafe { proxy_add_header_map_value(0, k.as_ptr(), k.len(), v.as_ptr(), v.len()) };
        assert_eq!(status, 0, "the host refused the header");
        0
    }

    pub extern "C-unwind" fn response_headers(_context: u32, _headers: usize, _end: u32) -> u32 {
        panic!("tiny panics in proxy_on_response_headers");
    }

    pub fn lookup(name: &str) -> Option<*const ()> {
        match name {
            "proxy_abi_version_0_2_1" => Some(marker as *const ()),
            "proxy_on_memory_allocate" => Some(allocate as *const ()),
            "proxy_on_request_headers" => Some(request_headers as *const ()),
            "proxy_on_response_headers" => Some(response_headers as *const ()),
            _ => None,
        }
    }

    pub fn lookup_two_markers(name: &str) -> Option<*const ()> {
        match name {
            "proxy_abi_version_0_1_0" => Some(marker as *const ()),
            other => lookup(other),
        }
    }

    pub fn lookup_no_marker(name: &str) -> Option<*const ()> {
        lookup(name).filter(|_| name != "proxy_abi_version_0_2_1")
    }

    pub fn lookup_no_allocator(name: &str) -> Option<*const ()> {
        lookup(name).filter(|_| name != "proxy_on_memory_allocate")
    }
}

#[test]
fn a_static_plugin_runs_through_the_host_functions_and_its_panic_is_a_trap() {
    NullVm::register("tiny", tiny::lookup);
    assert!(NullVm::registered().contains(&"tiny".to_string()));
    let (host, embedder) = host();
    let code = host.load(b"tiny").expect("the registered plugin loads");
    let exchange = Exchange {
        plugin: PluginInfo { failure_policy: Some(FailurePolicy::FailReload), ..plugin("tiny", "") },
        steps: vec![
            request("/"),
            Step::ResponseHeaders { headers: vec![], end_of_stream: true },
            Step::Finish,
            Step::Advance(Duration::from_secs(1)),
            request("/again"),
        ],
        ..Default::default()
    };
    let out = run_exchange(&host, &embedder, &code, &exchange).unwrap();
    // The panic failed the first stream's VM (a 503: fail-closed); with FAIL_RELOAD, the second
    // stream, 1 s later (the default backoff), got a fresh VM and its header.
    assert_eq!(out.stream.request_headers.get_str("x-tiny").as_deref(), Some("1"));
    let trap = host.trace().unwrap().callbacks().into_iter().find_map(|c| c.result.and_then(Result::err));
    assert_eq!(trap.as_deref(), Some("guest"));
    // The panic's message is the trap's (the host logs it through `tracing`, not to the plugin's log).
    let message = out.trap.as_deref().unwrap_or_default();
    assert!(message.contains("the plugin panicked: tiny panics in proxy_on_response_headers"), "{message}");
    assert!(host.render_stats().contains("proxy_wasm_plugin_failures_total{plugin=\"tiny\",vm=\"\",engine=\"null\",kind=\"trap\"} 1"));
}

#[test]
fn static_plugin_errors_name_the_problem() {
    NullVm::register("two-markers", tiny::lookup_two_markers);
    NullVm::register("no-marker", tiny::lookup_no_marker);
    NullVm::register("no-allocator", tiny::lookup_no_allocator);
    let (host, _) = host();
    let err = |bytes: &[u8]| host.load(bytes).err().expect("refused").to_string();
    assert!(err(b"two-markers").contains("several ABI version markers"), "{}", err(b"two-markers"));
    assert!(err(b"no-marker").contains("no ABI version marker"), "{}", err(b"no-marker"));
    assert!(err(b"no-allocator").contains("neither `malloc` nor `proxy_on_memory_allocate`"));
    let unknown = err(b"not-registered");
    assert!(unknown.contains("`not-registered` is neither a shared library (ELF) nor the name of a static plugin"), "{unknown}");
    assert!(unknown.contains("registered:"), "{unknown}");
    // A file's contents are not echoed as if they were a name; a Wasm module is sent to a Wasm engine.
    let text = err(b"this is not a plugin\n");
    assert!(text.contains("the code (21 bytes) is neither a shared library (ELF)"), "{text}");
    for wasm in [&b"\0asm\x01\0\0\0"[..], b"  (module)"] {
        let why = err(wasm);
        assert!(why.contains("it is a Wasm module") && why.ends_with("run it on a Wasm engine"), "{why}");
    }
}

fn sdk_library() -> Vec<u8> {
    guest_plugins::bytes(Target::Native, "sdk_e2e").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn an_unmodified_sdk_plugin_runs_as_a_shared_library_with_state_per_vm() {
    let (host, embedder) = host();
    let code = host.load(&sdk_library()).expect("the SDK library loads");
    // Two VMs (base and worker) of the same library each create root context 1: they can only
    // do so with separate copies of the SDK's state.
    let exchange = Exchange { plugin: plugin("sdk", "headers"), steps: vec![request("/a")], ..Default::default() };
    let out = run_exchange(&host, &embedder, &code, &exchange).unwrap();
    assert_eq!(out.trap, None);
    assert_eq!(out.stream.request_headers.get_str("x-added").as_deref(), Some("1"));
    assert!(out.logs.iter().any(|l| l.message == "headers: :path=/a x-a=<none>"), "{:?}", out.logs);
}

#[test]
fn different_plugins_load_at_once_each_with_its_own_contexts() {
    let (host, embedder) = host();
    let sdk = host.load(&sdk_library()).unwrap();
    let raw = host.load(&guest_plugins::bytes(Target::Native, "raw_minimal").unwrap()).unwrap();
    let sdk_vm = host.add_plugin(&sdk, VmConfig { vm_id: "a".into(), ..Default::default() }, plugin("sdk", "headers")).unwrap();
    let raw_vm = host.add_plugin(&raw, VmConfig { vm_id: "b".into(), ..Default::default() }, plugin("raw", "")).unwrap();
    let (mut a, mut b) = (sdk_vm.worker().unwrap(), raw_vm.worker().unwrap());
    for round in 0..2 {
        let mut streams = Vec::new();
        for w in [&mut a, &mut b] {
            let mut s = MemoryStream::new();
            s.request_headers.add(b":path", b"/");
            let root = w.root("").unwrap();
            let id = w.create_http_stream(root, Box::new(s)).unwrap();
            w.vm().on_request_headers(id.id, true).unwrap();
            streams.push(id);
        }
        let mut sa = a.finish_stream(streams[0]).unwrap();
        let mut sb = b.finish_stream(streams[1]).unwrap();
        let ma = sa.as_any_mut().downcast_mut::<MemoryStream>().unwrap();
        let mb = sb.as_any_mut().downcast_mut::<MemoryStream>().unwrap();
        assert_eq!(ma.request_headers.get_str("x-added").as_deref(), Some("1"), "round {round}");
        assert_eq!(mb.request_headers.get_str("x-raw").as_deref(), Some("1"), "round {round}");
    }
    assert!(embedder.logs().iter().any(|l| l.message == "raw: request headers 1"));
}

/// The SDK library with the bytes of `from` (in its dynamic string table) replaced by `to`.
fn patched(from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut bytes = sdk_library();
    let at = bytes.windows(from.len()).position(|w| w == from).expect("the name is in the library");
    bytes[at..at + to.len()].copy_from_slice(to);
    bytes
}

#[test]
fn library_errors_name_the_problem() {
    let (host, _) = host();
    let engine = NullVm::new();
    let compile = |bytes: &[u8]| engine.compile(bytes).err().expect("refused").to_string();

    // An unknown host function, named before anything is loaded.
    let err = host.load(&patched(b"proxy_grpc_cancel\0", b"proxy_grpc_kancel\0")).err().unwrap();
    assert_eq!(err, Error::UnknownImports(vec!["env.proxy_grpc_kancel".into()]));

    // Another architecture (e_machine at offset 18: 183 is aarch64).
    let mut other = sdk_library();
    other[18..20].copy_from_slice(&183u16.to_le_bytes());
    let message = compile(&other);
    assert!(message.contains("built for Aarch64") && message.contains("this host is X86_64"), "{message}");

    // An executable rather than a shared library (e_type at offset 16: 2 is EXEC).
    let mut exec = sdk_library();
    exec[16..18].copy_from_slice(&2u16.to_le_bytes());
    assert!(compile(&exec).contains("not a shared library"), "{}", compile(&exec));

    // Truncated.
    assert!(compile(&sdk_library()[..64]).contains("not a readable ELF shared library"));

    // A missing file is named.
    let err = host.load_file(std::path::Path::new("/nonexistent/libplugin.so")).err().unwrap();
    assert!(err.to_string().contains("/nonexistent/libplugin.so"), "{err}");
}

#[test]
fn the_null_vm_reports_no_sandbox() {
    let caps = NullVm::new().capabilities();
    assert!(!caps.sandboxed && !caps.memory_limit && !caps.interrupt);
    assert_eq!(NullVm::new().name(), "null");
}

#[test]
fn a_host_function_called_outside_any_callback_answers_internal_failure() {
    extern "C" {
        fn proxy_done() -> u32;
    }
    // No instance runs on this thread: the native entry point refuses rather than guessing.
    // SAFETY: `proxy_done` takes nothing and only reads this thread's running instance.
    assert_eq!(unsafe { proxy_done() }, proxy_wasm_host::Status::InternalFailure.raw());
    assert_eq!(proxy_wasm_null::proxy_null_vm_instance(), 0);
}
