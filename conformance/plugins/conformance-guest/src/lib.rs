//! The conformance guest: a Proxy-Wasm plugin on the raw ABI 0.2.1, without the SDK, so that
//! every host function and every edge can be reached.
//!
//! The plugin configuration picks the scenario (see [`scenarios`]). In each scenario the guest
//! makes its calls, checks every status and value against what the ABI reference says, and
//! logs a line starting `FAIL` at CRITICAL for each check that does not hold; the conformance
//! runner fails a case on any such line, whatever its golden transcript says. The host checks
//! the rest (effects, final state) through the transcript.
//!
//! The same source builds for wasm32 (exports by name) and natively, where the Null VM runs it
//! as a static plugin: [`symbol`] then gives each export's address, and per-VM state is kept
//! apart by the instance key the Null VM provides, since native statics are process-wide.

mod host;
mod scenarios;
mod security;
mod wasi;

use std::collections::BTreeMap;
use std::sync::Mutex;

use host::*;

/// What the guest remembers, per VM.
#[derive(Clone, Debug, Default)]
struct State {
    /// The scenario, from the plugin configuration.
    scenario: String,
    /// The root context.
    root: u32,
    /// Ticks seen.
    ticks: u32,
    /// A stream waiting for something (a tick, a callout answer).
    waiting: u32,
    /// Callouts and gRPC calls made, in order.
    calls: Vec<u32>,
    /// A queue registered.
    queue: u32,
    /// Streams seen (to tell the first from later ones).
    streams: u32,
    /// The current stream's `:path`, for scenarios that act on it in later callbacks.
    path: String,
    /// Callouts made, with the context that made each, as the Go SDK keeps them per root
    /// context (call id -> caller).
    callers: Vec<(u32, u32)>,
    /// Stream contexts deleted so far.
    deleted: Vec<u32>,
    /// Requests seen by this VM (`count`, `trap-every:<n>`).
    requests: u32,
}

static STATES: Mutex<BTreeMap<u64, State>> = Mutex::new(BTreeMap::new());

#[cfg(not(target_arch = "wasm32"))]
extern "C" {
    /// Natively, the Null VM's key for the VM instance running now.
    fn proxy_null_vm_instance() -> u64;
}

/// The key of this VM's state: one VM per Wasm instance; natively, the Null VM's instance.
fn vm_key() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        0
    }
    #[cfg(not(target_arch = "wasm32"))]
    // SAFETY: a Null VM extension without arguments; it only reads the running instance.
    unsafe {
        proxy_null_vm_instance()
    }
}

/// Reads or changes this VM's state. Host calls must not be made inside `f` (the lock is
/// held).
fn state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut states = STATES.lock().unwrap_or_else(|e| e.into_inner());
    f(states.entry(vm_key()).or_default())
}

/// This VM's scenario.
fn scenario() -> String {
    state(|s| s.scenario.clone())
}

/// Logs a failed check. The runner fails the case on it.
fn fail(message: String) {
    log(CRITICAL, &format!("FAIL {message}"));
}

/// Checks a status.
fn status(what: &str, got: u32, want: u32) {
    if got != want {
        fail(format!("{what}: expected status {want}, got {got}"));
    }
}

/// Checks a status and a value.
fn value<T: PartialEq + std::fmt::Debug>(what: &str, got: (u32, T), want: T) {
    status(what, got.0, OK);
    if got.1 != want {
        fail(format!("{what}: expected {want:?}, got {:?}", got.1));
    }
}

/// Checks that a call answered OK with these bytes.
fn bytes(what: &str, got: Bytes, want: &[u8]) {
    status(what, got.0, OK);
    if got.1 != want {
        fail(format!("{what}: expected {:?}, got {:?}", String::from_utf8_lossy(want), String::from_utf8_lossy(&got.1)));
    }
}

/// Stops the guest with a trap: `unreachable` in Wasm; natively a panic, which the Null VM
/// catches at the boundary.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    panic!("the conformance guest traps on purpose");
}

/// Traps if the scenario is `trap:<callback>` for this callback.
fn trap_if(callback: &str) {
    if scenario().strip_prefix("trap:") == Some(callback) {
        trap();
    }
}

/// Defines the exported callbacks. In Wasm each is exported by name; natively [`symbol`]
/// gives their addresses. They are `C-unwind` so that a native panic reaches the Null VM,
/// which treats it as a trap.
macro_rules! exports {
    ($( $(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block )*) => {
        $(
            $(#[$meta])*
            #[cfg_attr(target_arch = "wasm32", no_mangle)]
            pub extern "C-unwind" fn $name($($arg: $ty),*) $(-> $ret)? $body
        )*

        /// Natively, the address of the export called `name`, as the Null VM looks it up.
        #[cfg(not(target_arch = "wasm32"))]
        pub fn symbol(name: &str) -> Option<*const ()> {
            match name {
                $( stringify!($name) => Some($name as *const ()), )*
                _ => None,
            }
        }
    };
}

exports! {
    /// Declares ABI 0.2.1.
    fn proxy_abi_version_0_2_1() {}

    /// The allocator the host hands bytes through: a Vec's buffer of exactly `size` bytes,
    /// which [`host`] takes back with `Vec::from_raw_parts`.
    fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
        if scenario() == "trap:proxy_on_memory_allocate" {
            trap();
        }
        let mut v = Vec::<u8>::with_capacity(size);
        let ptr = v.as_mut_ptr();
        std::mem::forget(v);
        ptr
    }

    fn proxy_on_context_create(context_id: u32, parent_context_id: u32) {
        if parent_context_id == 0 {
            state(|s| s.root = context_id);
        } else {
            state(|s| s.streams += 1);
            trap_if("proxy_on_context_create");
        }
    }

    /// Any VM configuration is checked (see [`scenarios::vm_start`]); `reject` is refused.
    fn proxy_on_vm_start(context_id: u32, vm_configuration_size: usize) -> u32 {
        u32::from(scenarios::vm_start(context_id, vm_configuration_size))
    }

    /// Reads the scenario from the plugin configuration; `reject-configuration` is refused.
    fn proxy_on_configure(context_id: u32, plugin_configuration_size: usize) -> u32 {
        let (s, config) = get_buffer(PLUGIN_CONFIGURATION, 0, plugin_configuration_size);
        status("get the plugin configuration", s, OK);
        let name = String::from_utf8_lossy(&config).into_owned();
        state(|s| s.scenario = name.clone());
        trap_if("proxy_on_configure");
        u32::from(scenarios::configure(&name, context_id, plugin_configuration_size))
    }

    fn proxy_on_tick(context_id: u32) {
        trap_if("proxy_on_tick");
        scenarios::tick(&scenario(), context_id);
    }

    fn proxy_on_queue_ready(context_id: u32, queue_id: u32) {
        trap_if("proxy_on_queue_ready");
        scenarios::queue_ready(&scenario(), context_id, queue_id);
    }

    fn proxy_on_foreign_function(context_id: u32, function_id: u32, arguments_size: usize) {
        trap_if("proxy_on_foreign_function");
        scenarios::foreign_function(&scenario(), context_id, function_id, arguments_size);
    }

    fn proxy_on_new_connection(context_id: u32) -> u32 {
        trap_if("proxy_on_new_connection");
        let _ = context_id;
        CONTINUE
    }

    fn proxy_on_downstream_data(context_id: u32, data_size: usize, end_of_stream: u32) -> u32 {
        trap_if("proxy_on_downstream_data");
        scenarios::tcp_data(&scenario(), context_id, DOWNSTREAM_DATA, data_size, end_of_stream != 0)
    }

    fn proxy_on_upstream_data(context_id: u32, data_size: usize, end_of_stream: u32) -> u32 {
        trap_if("proxy_on_upstream_data");
        scenarios::tcp_data(&scenario(), context_id, UPSTREAM_DATA, data_size, end_of_stream != 0)
    }

    fn proxy_on_downstream_connection_close(context_id: u32, peer_type: u32) {
        trap_if("proxy_on_downstream_connection_close");
        let _ = (context_id, peer_type);
    }

    fn proxy_on_upstream_connection_close(context_id: u32, peer_type: u32) {
        trap_if("proxy_on_upstream_connection_close");
        let _ = (context_id, peer_type);
    }

    fn proxy_on_request_headers(context_id: u32, num_headers: usize, end_of_stream: u32) -> u32 {
        trap_if("proxy_on_request_headers");
        scenarios::request_headers(&scenario(), context_id, num_headers, end_of_stream != 0)
    }

    fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
        trap_if("proxy_on_request_body");
        scenarios::body(&scenario(), context_id, REQUEST_BODY, body_size, end_of_stream != 0)
    }

    fn proxy_on_request_trailers(context_id: u32, num_trailers: usize) -> u32 {
        trap_if("proxy_on_request_trailers");
        let _ = context_id;
        if scenario() == "actions" {
            return scenarios::actions_answer("trailers");
        }
        if scenario() == "availability" {
            if num_trailers != 1 {
                fail(format!("expected 1 request trailer, got {num_trailers}"));
            }
            bytes("a request trailer in its callback", map_value(REQUEST_TRAILERS, "rt"), b"1");
        }
        CONTINUE
    }

    fn proxy_on_response_headers(context_id: u32, num_headers: usize, end_of_stream: u32) -> u32 {
        trap_if("proxy_on_response_headers");
        scenarios::response_headers(&scenario(), context_id, num_headers, end_of_stream != 0)
    }

    fn proxy_on_response_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
        trap_if("proxy_on_response_body");
        scenarios::body(&scenario(), context_id, RESPONSE_BODY, body_size, end_of_stream != 0)
    }

    fn proxy_on_response_trailers(context_id: u32, num_trailers: usize) -> u32 {
        trap_if("proxy_on_response_trailers");
        scenarios::response_trailers(&scenario(), context_id, num_trailers)
    }

    fn proxy_on_http_call_response(context_id: u32, call_id: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
        trap_if("proxy_on_http_call_response");
        scenarios::http_call_response(&scenario(), context_id, call_id, num_headers, body_size, num_trailers);
    }

    fn proxy_on_grpc_receive_initial_metadata(context_id: u32, call_id: u32, num_elements: usize) {
        trap_if("proxy_on_grpc_receive_initial_metadata");
        scenarios::grpc_metadata(&scenario(), context_id, call_id, GRPC_INITIAL_METADATA, num_elements);
    }

    fn proxy_on_grpc_receive(context_id: u32, call_id: u32, message_size: usize) {
        trap_if("proxy_on_grpc_receive");
        scenarios::grpc_receive(&scenario(), context_id, call_id, message_size);
    }

    fn proxy_on_grpc_receive_trailing_metadata(context_id: u32, call_id: u32, num_elements: usize) {
        trap_if("proxy_on_grpc_receive_trailing_metadata");
        scenarios::grpc_metadata(&scenario(), context_id, call_id, GRPC_TRAILING_METADATA, num_elements);
    }

    fn proxy_on_grpc_close(context_id: u32, call_id: u32, status_code: u32) {
        trap_if("proxy_on_grpc_close");
        scenarios::grpc_closed(&scenario(), context_id, call_id, status_code);
    }

    /// Streams are done at once; in the `deferred-done` scenario the root context defers.
    fn proxy_on_done(context_id: u32) -> u32 {
        trap_if("proxy_on_done");
        let (scenario, root) = state(|s| (s.scenario.clone(), s.root));
        if context_id != root {
            scenarios::stream_end(&scenario, "proxy_on_done");
        }
        u32::from(!(scenario == "deferred-done" && context_id == root))
    }

    fn proxy_on_log(context_id: u32) {
        trap_if("proxy_on_log");
        scenarios::on_log(&scenario(), context_id);
    }

    fn proxy_on_delete(context_id: u32) {
        trap_if("proxy_on_delete");
        state(|s| s.deleted.push(context_id));
        if context_id != state(|s| s.root) {
            scenarios::stream_end(&scenario(), "proxy_on_delete");
        }
    }
}
