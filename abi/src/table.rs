//! The table of every host function and every callback, as data.
//!
//! Two macros hold the tables: [`for_each_host_function!`](crate::for_each_host_function) and
//! [`for_each_callback!`](crate::for_each_callback). Each calls a given macro once with every row,
//! so that one table can be expanded into static descriptions (below), typed trampolines (engine
//! crates) and engine-agnostic entry points (the host crate).
//!
//! A host-function row reads `{ module, name, [versions], (param: kind, ...) -> result }`:
//! - `module` is `env` or `wasi` (WASI rows are linked under every name in [`WASI_MODULES`]);
//! - `versions` lists the ABI versions that define the function (`V010 V020 V021`); the host
//!   links every row whatever the guest's version, so mixed-version guests still load;
//! - a parameter `kind` is `ptr` or `size` (a guest pointer or `size_t`: 32-bit in wasm32,
//!   64-bit in a native plugin), `u32`, `i32`, `u64` or `i64`;
//! - `result` is `status` (a [`Status`](crate::Status)), `errno` (a WASI
//!   [`Errno`](crate::Errno)), `i32` (a plain value: `env.pthread_equal`) or `none` (no result:
//!   `proc_exit`, `env.emscripten_notify_memory_growth`).
//!
//! The rows are what proxy-wasm-cpp-host links (`include/proxy-wasm/exports.h`
//! `FOR_ALL_HOST_FUNCTIONS`, `FOR_ALL_WASI_FUNCTIONS`; `src/wasm.cc`
//! `WasmBase::registerCallbacks`), so that a module that loads in Envoy loads here: the 43
//! `proxy_*` functions, the two `env` helpers it always links, and its 45 WASI functions under
//! both module names. Two WASI rows keep WASI's own signature where the C++ host declares one
//! parameter fewer (`path_link`, `path_symlink`; see `docs/reference-host.md`).
//!
//! A callback row reads `{ Variant, "export_name", [versions], (param: kind, ...) -> result }`
//! with parameter kinds `ctx` (a context id, `u32`), `size`, `u32` and `bool`, and results
//! `none`, `bool`, `action`, `ptr` (an allocator) or `i32` (`main`, `__main_void`). A callback whose signature
//! changed between versions has one row per signature, with different variants and the same
//! export name.

/// Calls `$m!` once with every host-function row. See the [module docs](crate::table).
#[macro_export]
macro_rules! for_each_host_function {
    ($m:ident) => {
        $m! {
            // Logging, time, configuration.
            { env, proxy_log, [V010 V020 V021], (level: u32, message_ptr: ptr, message_size: size) -> status }
            { env, proxy_get_log_level, [V021], (return_level: ptr) -> status }
            { env, proxy_get_current_time_nanoseconds, [V010 V020 V021], (return_time: ptr) -> status }
            { env, proxy_set_tick_period_milliseconds, [V010 V020 V021], (period: u32) -> status }
            { env, proxy_get_configuration, [V010], (return_ptr: ptr, return_size: ptr) -> status }
            // Buffers.
            { env, proxy_get_buffer_bytes, [V010 V020 V021], (buffer_type: u32, start: size, max_size: size, return_ptr: ptr, return_size: ptr) -> status }
            { env, proxy_set_buffer_bytes, [V010 V020 V021], (buffer_type: u32, start: size, size: size, value_ptr: ptr, value_size: size) -> status }
            { env, proxy_get_buffer_status, [V010 V020 V021], (buffer_type: u32, return_size: ptr, return_flags: ptr) -> status }
            // Header maps.
            { env, proxy_get_header_map_size, [V010 V020 V021], (map_type: u32, return_size: ptr) -> status }
            { env, proxy_get_header_map_pairs, [V010 V020 V021], (map_type: u32, return_ptr: ptr, return_size: ptr) -> status }
            { env, proxy_set_header_map_pairs, [V010 V020 V021], (map_type: u32, map_ptr: ptr, map_size: size) -> status }
            { env, proxy_get_header_map_value, [V010 V020 V021], (map_type: u32, key_ptr: ptr, key_size: size, return_ptr: ptr, return_size: ptr) -> status }
            { env, proxy_add_header_map_value, [V010 V020 V021], (map_type: u32, key_ptr: ptr, key_size: size, value_ptr: ptr, value_size: size) -> status }
            { env, proxy_replace_header_map_value, [V010 V020 V021], (map_type: u32, key_ptr: ptr, key_size: size, value_ptr: ptr, value_size: size) -> status }
            { env, proxy_remove_header_map_value, [V010 V020 V021], (map_type: u32, key_ptr: ptr, key_size: size) -> status }
            // Stream control.
            { env, proxy_continue_stream, [V020 V021], (stream_type: u32) -> status }
            { env, proxy_close_stream, [V020 V021], (stream_type: u32) -> status }
            { env, proxy_continue_request, [V010], () -> status }
            { env, proxy_continue_response, [V010], () -> status }
            { env, proxy_clear_route_cache, [V010], () -> status }
            { env, proxy_send_local_response, [V010 V020 V021], (status_code: u32, details_ptr: ptr, details_size: size, body_ptr: ptr, body_size: size, headers_ptr: ptr, headers_size: size, grpc_status: i32) -> status }
            // Callouts.
            { env, proxy_get_status, [V010 V020 V021], (return_code: ptr, return_message_ptr: ptr, return_message_size: ptr) -> status }
            { env, proxy_http_call, [V010 V020 V021], (upstream_ptr: ptr, upstream_size: size, headers_ptr: ptr, headers_size: size, body_ptr: ptr, body_size: size, trailers_ptr: ptr, trailers_size: size, timeout_ms: u32, return_call_id: ptr) -> status }
            { env, proxy_grpc_call, [V010 V020 V021], (upstream_ptr: ptr, upstream_size: size, service_ptr: ptr, service_size: size, method_ptr: ptr, method_size: size, metadata_ptr: ptr, metadata_size: size, message_ptr: ptr, message_size: size, timeout_ms: u32, return_call_id: ptr) -> status }
            { env, proxy_grpc_stream, [V010 V020 V021], (upstream_ptr: ptr, upstream_size: size, service_ptr: ptr, service_size: size, method_ptr: ptr, method_size: size, metadata_ptr: ptr, metadata_size: size, return_stream_id: ptr) -> status }
            { env, proxy_grpc_send, [V010 V020 V021], (stream_id: u32, message_ptr: ptr, message_size: size, end_stream: u32) -> status }
            { env, proxy_grpc_cancel, [V010 V020 V021], (call_id: u32) -> status }
            { env, proxy_grpc_close, [V010 V020 V021], (call_id: u32) -> status }
            // Shared data and queues.
            { env, proxy_get_shared_data, [V010 V020 V021], (key_ptr: ptr, key_size: size, return_value_ptr: ptr, return_value_size: ptr, return_cas: ptr) -> status }
            { env, proxy_set_shared_data, [V010 V020 V021], (key_ptr: ptr, key_size: size, value_ptr: ptr, value_size: size, cas: u32) -> status }
            { env, proxy_register_shared_queue, [V010 V020 V021], (name_ptr: ptr, name_size: size, return_queue_id: ptr) -> status }
            { env, proxy_resolve_shared_queue, [V010 V020 V021], (vm_id_ptr: ptr, vm_id_size: size, name_ptr: ptr, name_size: size, return_queue_id: ptr) -> status }
            { env, proxy_enqueue_shared_queue, [V010 V020 V021], (queue_id: u32, value_ptr: ptr, value_size: size) -> status }
            { env, proxy_dequeue_shared_queue, [V010 V020 V021], (queue_id: u32, return_value_ptr: ptr, return_value_size: ptr) -> status }
            // Metrics.
            { env, proxy_define_metric, [V010 V020 V021], (metric_type: u32, name_ptr: ptr, name_size: size, return_metric_id: ptr) -> status }
            { env, proxy_increment_metric, [V010 V020 V021], (metric_id: u32, delta: i64) -> status }
            { env, proxy_record_metric, [V010 V020 V021], (metric_id: u32, value: u64) -> status }
            { env, proxy_get_metric, [V010 V020 V021], (metric_id: u32, return_value: ptr) -> status }
            // Properties.
            { env, proxy_get_property, [V010 V020 V021], (path_ptr: ptr, path_size: size, return_value_ptr: ptr, return_value_size: ptr) -> status }
            { env, proxy_set_property, [V010 V020 V021], (path_ptr: ptr, path_size: size, value_ptr: ptr, value_size: size) -> status }
            // Contexts and foreign functions.
            { env, proxy_set_effective_context, [V010 V020 V021], (context_id: u32) -> status }
            { env, proxy_done, [V010 V020 V021], () -> status }
            { env, proxy_call_foreign_function, [V010 V020 V021], (name_ptr: ptr, name_size: size, args_ptr: ptr, args_size: size, return_results_ptr: ptr, return_results_size: ptr) -> status }
            // The two `env` helpers the C++ host links for every module (Emscripten and pthread
            // shims): not Proxy-Wasm functions, never restricted.
            { env, pthread_equal, [V010 V020 V021], (left: u32, right: u32) -> i32 }
            { env, emscripten_notify_memory_growth, [V010 V020 V021], (memory_index: u32) -> none }
            // WASI preview1: every function the C++ host links (`FOR_ALL_WASI_FUNCTIONS`).
            { wasi, fd_write, [V010 V020 V021], (fd: u32, iovs_ptr: ptr, iovs_len: size, return_written: ptr) -> errno }
            { wasi, fd_read, [V010 V020 V021], (fd: u32, iovs_ptr: ptr, iovs_len: size, return_read: ptr) -> errno }
            { wasi, fd_seek, [V010 V020 V021], (fd: u32, offset: i64, whence: u32, return_offset: ptr) -> errno }
            { wasi, fd_close, [V010 V020 V021], (fd: u32) -> errno }
            { wasi, fd_fdstat_get, [V010 V020 V021], (fd: u32, return_stat: ptr) -> errno }
            { wasi, fd_fdstat_set_flags, [V010 V020 V021], (fd: u32, flags: u32) -> errno }
            { wasi, fd_fdstat_set_rights, [V010 V020 V021], (fd: u32, rights_base: u64, rights_inheriting: u64) -> errno }
            { wasi, fd_prestat_get, [V010 V020 V021], (fd: u32, return_prestat: ptr) -> errno }
            { wasi, fd_prestat_dir_name, [V010 V020 V021], (fd: u32, path_ptr: ptr, path_len: size) -> errno }
            { wasi, fd_filestat_get, [V010 V020 V021], (fd: u32, return_stat: ptr) -> errno }
            { wasi, fd_filestat_set_size, [V010 V020 V021], (fd: u32, size: u64) -> errno }
            { wasi, fd_filestat_set_times, [V010 V020 V021], (fd: u32, atim: u64, mtim: u64, fst_flags: u32) -> errno }
            { wasi, fd_advise, [V010 V020 V021], (fd: u32, offset: u64, len: u64, advice: u32) -> errno }
            { wasi, fd_allocate, [V010 V020 V021], (fd: u32, offset: u64, len: u64) -> errno }
            { wasi, fd_datasync, [V010 V020 V021], (fd: u32) -> errno }
            { wasi, fd_sync, [V010 V020 V021], (fd: u32) -> errno }
            { wasi, fd_pread, [V010 V020 V021], (fd: u32, iovs_ptr: ptr, iovs_len: size, offset: u64, return_read: ptr) -> errno }
            { wasi, fd_pwrite, [V010 V020 V021], (fd: u32, iovs_ptr: ptr, iovs_len: size, offset: u64, return_written: ptr) -> errno }
            { wasi, fd_readdir, [V010 V020 V021], (fd: u32, buf_ptr: ptr, buf_len: size, cookie: u64, return_size: ptr) -> errno }
            { wasi, fd_renumber, [V010 V020 V021], (fd: u32, to: u32) -> errno }
            { wasi, fd_tell, [V010 V020 V021], (fd: u32, return_offset: ptr) -> errno }
            { wasi, path_open, [V010 V020 V021], (fd: u32, dirflags: u32, path_ptr: ptr, path_len: size, oflags: u32, rights_base: u64, rights_inheriting: u64, fdflags: u32, return_fd: ptr) -> errno }
            { wasi, path_filestat_get, [V010 V020 V021], (fd: u32, flags: u32, path_ptr: ptr, path_len: size, return_stat: ptr) -> errno }
            { wasi, path_filestat_set_times, [V010 V020 V021], (fd: u32, flags: u32, path_ptr: ptr, path_len: size, atim: u64, mtim: u64, fst_flags: u32) -> errno }
            { wasi, path_create_directory, [V010 V020 V021], (fd: u32, path_ptr: ptr, path_len: size) -> errno }
            { wasi, path_remove_directory, [V010 V020 V021], (fd: u32, path_ptr: ptr, path_len: size) -> errno }
            { wasi, path_unlink_file, [V010 V020 V021], (fd: u32, path_ptr: ptr, path_len: size) -> errno }
            { wasi, path_link, [V010 V020 V021], (old_fd: u32, old_flags: u32, old_path_ptr: ptr, old_path_len: size, new_fd: u32, new_path_ptr: ptr, new_path_len: size) -> errno }
            { wasi, path_readlink, [V010 V020 V021], (fd: u32, path_ptr: ptr, path_len: size, buf_ptr: ptr, buf_len: size, return_size: ptr) -> errno }
            { wasi, path_rename, [V010 V020 V021], (fd: u32, old_path_ptr: ptr, old_path_len: size, new_fd: u32, new_path_ptr: ptr, new_path_len: size) -> errno }
            { wasi, path_symlink, [V010 V020 V021], (old_path_ptr: ptr, old_path_len: size, fd: u32, new_path_ptr: ptr, new_path_len: size) -> errno }
            { wasi, sock_accept, [V010 V020 V021], (fd: u32, flags: u32, return_fd: ptr) -> errno }
            { wasi, sock_recv, [V010 V020 V021], (fd: u32, ri_data_ptr: ptr, ri_data_len: size, ri_flags: u32, return_size: ptr, return_flags: ptr) -> errno }
            { wasi, sock_send, [V010 V020 V021], (fd: u32, si_data_ptr: ptr, si_data_len: size, si_flags: u32, return_size: ptr) -> errno }
            { wasi, sock_shutdown, [V010 V020 V021], (fd: u32, how: u32) -> errno }
            { wasi, clock_time_get, [V010 V020 V021], (clock_id: u32, precision: u64, return_time: ptr) -> errno }
            { wasi, clock_res_get, [V010 V020 V021], (clock_id: u32, return_resolution: ptr) -> errno }
            { wasi, random_get, [V010 V020 V021], (buf_ptr: ptr, buf_len: size) -> errno }
            { wasi, environ_sizes_get, [V010 V020 V021], (return_count: ptr, return_buf_size: ptr) -> errno }
            { wasi, environ_get, [V010 V020 V021], (environ_ptr: ptr, environ_buf_ptr: ptr) -> errno }
            { wasi, args_sizes_get, [V010 V020 V021], (return_count: ptr, return_buf_size: ptr) -> errno }
            { wasi, args_get, [V010 V020 V021], (argv_ptr: ptr, argv_buf_ptr: ptr) -> errno }
            { wasi, proc_exit, [V010 V020 V021], (code: u32) -> none }
            { wasi, sched_yield, [V010 V020 V021], () -> errno }
            { wasi, poll_oneoff, [V010 V020 V021], (in_ptr: ptr, out_ptr: ptr, nsubscriptions: size, return_nevents: ptr) -> errno }
        }
    };
}

/// Calls `$m!` once with every callback row. See the [module docs](crate::table).
#[macro_export]
macro_rules! for_each_callback {
    ($m:ident) => {
        $m! {
            // Start-up and memory.
            { Initialize, "_initialize", [V010 V020 V021], () -> none }
            { Start, "_start", [V010 V020 V021], () -> none }
            { Main, "main", [V010 V020 V021], (argc: u32, argv: u32) -> i32 }
            { MainVoid, "__main_void", [V010 V020 V021], () -> i32 }
            { Malloc, "malloc", [V010 V020 V021], (size: size) -> ptr }
            { OnMemoryAllocate, "proxy_on_memory_allocate", [V010 V020 V021], (size: size) -> ptr }
            // Root contexts.
            { OnContextCreate, "proxy_on_context_create", [V010 V020 V021], (context_id: ctx, parent_context_id: ctx) -> none }
            { OnVmStart, "proxy_on_vm_start", [V010 V020 V021], (context_id: ctx, vm_configuration_size: size) -> bool }
            { OnConfigure, "proxy_on_configure", [V010 V020 V021], (context_id: ctx, plugin_configuration_size: size) -> bool }
            { OnTick, "proxy_on_tick", [V010 V020 V021], (context_id: ctx) -> none }
            { OnQueueReady, "proxy_on_queue_ready", [V010 V020 V021], (context_id: ctx, queue_id: u32) -> none }
            { OnForeignFunction, "proxy_on_foreign_function", [V020 V021], (context_id: ctx, function_id: u32, arguments_size: size) -> none }
            // TCP streams.
            { OnNewConnection, "proxy_on_new_connection", [V010 V020 V021], (context_id: ctx) -> action }
            { OnDownstreamData, "proxy_on_downstream_data", [V010 V020 V021], (context_id: ctx, data_size: size, end_of_stream: bool) -> action }
            { OnUpstreamData, "proxy_on_upstream_data", [V010 V020 V021], (context_id: ctx, data_size: size, end_of_stream: bool) -> action }
            { OnDownstreamConnectionClose, "proxy_on_downstream_connection_close", [V010 V020 V021], (context_id: ctx, peer_type: u32) -> none }
            { OnUpstreamConnectionClose, "proxy_on_upstream_connection_close", [V010 V020 V021], (context_id: ctx, peer_type: u32) -> none }
            // HTTP streams.
            { OnRequestHeaders, "proxy_on_request_headers", [V020 V021], (context_id: ctx, num_headers: size, end_of_stream: bool) -> action }
            { OnRequestHeadersV010, "proxy_on_request_headers", [V010], (context_id: ctx, num_headers: size) -> action }
            { OnRequestBody, "proxy_on_request_body", [V010 V020 V021], (context_id: ctx, body_size: size, end_of_stream: bool) -> action }
            { OnRequestTrailers, "proxy_on_request_trailers", [V010 V020 V021], (context_id: ctx, num_trailers: size) -> action }
            { OnResponseHeaders, "proxy_on_response_headers", [V020 V021], (context_id: ctx, num_headers: size, end_of_stream: bool) -> action }
            { OnResponseHeadersV010, "proxy_on_response_headers", [V010], (context_id: ctx, num_headers: size) -> action }
            { OnResponseBody, "proxy_on_response_body", [V010 V020 V021], (context_id: ctx, body_size: size, end_of_stream: bool) -> action }
            { OnResponseTrailers, "proxy_on_response_trailers", [V010 V020 V021], (context_id: ctx, num_trailers: size) -> action }
            // Callouts.
            { OnHttpCallResponse, "proxy_on_http_call_response", [V010 V020 V021], (context_id: ctx, call_id: u32, num_headers: size, body_size: size, num_trailers: size) -> none }
            { OnGrpcReceiveInitialMetadata, "proxy_on_grpc_receive_initial_metadata", [V010 V020 V021], (context_id: ctx, call_id: u32, num_elements: size) -> none }
            { OnGrpcReceive, "proxy_on_grpc_receive", [V010 V020 V021], (context_id: ctx, call_id: u32, message_size: size) -> none }
            { OnGrpcReceiveTrailingMetadata, "proxy_on_grpc_receive_trailing_metadata", [V010 V020 V021], (context_id: ctx, call_id: u32, num_elements: size) -> none }
            { OnGrpcClose, "proxy_on_grpc_close", [V010 V020 V021], (context_id: ctx, call_id: u32, status_code: u32) -> none }
            // End of a context.
            { OnDone, "proxy_on_done", [V010 V020 V021], (context_id: ctx) -> bool }
            { OnLog, "proxy_on_log", [V010 V020 V021], (context_id: ctx) -> none }
            { OnDelete, "proxy_on_delete", [V010 V020 V021], (context_id: ctx) -> none }
        }
    };
}

/// The Wasm type (`i32` or `i64`) of a parameter or result kind, for engine trampolines.
#[macro_export]
macro_rules! wasm_type {
    (ptr) => { i32 };
    (size) => { i32 };
    (u32) => { i32 };
    (i32) => { i32 };
    (ctx) => { i32 };
    (bool) => { i32 };
    (u64) => { i64 };
    (i64) => { i64 };
    (status) => { i32 };
    (errno) => { i32 };
    (action) => { i32 };
    (none) => { () };
}

/// The pointer-width-neutral Rust type the host's implementation of a host function takes for a
/// parameter kind: pointers and sizes widen to `u64`.
#[macro_export]
macro_rules! host_type {
    (ptr) => { u64 };
    (size) => { u64 };
    (u32) => { u32 };
    (i32) => { i32 };
    (u64) => { u64 };
    (i64) => { i64 };
}

/// Converts a Wasm value of a parameter kind into its [`host_type!`](crate::host_type):
/// pointers and sizes are zero-extended, never sign-extended.
#[macro_export]
macro_rules! wasm_to_host {
    (ptr, $v:expr) => { ($v as u32) as u64 };
    (size, $v:expr) => { ($v as u32) as u64 };
    (u32, $v:expr) => { $v as u32 };
    (i32, $v:expr) => { $v as i32 };
    (u64, $v:expr) => { $v as u64 };
    (i64, $v:expr) => { $v as i64 };
}

/// ABI versions a guest can declare.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AbiVersion {
    /// 0.1.0: `proxy_continue_request`, `proxy_get_configuration`, headers callbacks without
    /// `end_of_stream`.
    V010 = 0,
    /// 0.2.0: `proxy_continue_stream`, configuration buffers, foreign functions.
    V020 = 1,
    /// 0.2.1: adds `proxy_get_log_level`.
    V021 = 2,
}

impl AbiVersion {
    /// Every version, oldest first.
    pub const ALL: [AbiVersion; 3] = [AbiVersion::V010, AbiVersion::V020, AbiVersion::V021];

    /// The export that declares this version.
    pub const fn marker(self) -> &'static str {
        match self {
            AbiVersion::V010 => "proxy_abi_version_0_1_0",
            AbiVersion::V020 => "proxy_abi_version_0_2_0",
            AbiVersion::V021 => "proxy_abi_version_0_2_1",
        }
    }

    /// The dotted version, for example `0.2.1`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AbiVersion::V010 => "0.1.0",
            AbiVersion::V020 => "0.2.0",
            AbiVersion::V021 => "0.2.1",
        }
    }
}

impl core::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`AbiVersion`]s, as a bit mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Versions(u8);

impl Versions {
    /// The set with these versions.
    pub const fn of(versions: &[AbiVersion]) -> Self {
        let mut bits = 0u8;
        let mut i = 0;
        while i < versions.len() {
            bits |= 1 << versions[i] as u8;
            i += 1;
        }
        Versions(bits)
    }

    /// Whether `version` is in the set.
    pub const fn contains(self, version: AbiVersion) -> bool {
        self.0 & (1 << version as u8) != 0
    }

    /// The versions in the set, oldest first.
    pub fn iter(self) -> impl Iterator<Item = AbiVersion> {
        AbiVersion::ALL.into_iter().filter(move |v| self.contains(*v))
    }
}

/// The kind of a parameter or result in the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A guest pointer: 32-bit in wasm32, 64-bit natively.
    Ptr,
    /// A guest `size_t`: 32-bit in wasm32, 64-bit natively.
    Size,
    /// A context id (`u32`).
    Ctx,
    /// An unsigned 32-bit value.
    U32,
    /// A signed 32-bit value.
    I32,
    /// An unsigned 64-bit value.
    U64,
    /// A signed 64-bit value.
    I64,
    /// A boolean (an `i32` 0 or 1 in Wasm).
    Bool,
    /// A [`Status`](crate::Status).
    Status,
    /// A WASI [`Errno`](crate::Errno).
    Errno,
    /// An [`Action`](crate::Action).
    Action,
    /// No value.
    None,
}

impl Kind {
    /// The Wasm value type for this kind (`"i32"` or `"i64"`), or `None` for no value.
    pub const fn wasm_type(self) -> Option<&'static str> {
        match self {
            Kind::U64 | Kind::I64 => Some("i64"),
            Kind::None => None,
            _ => Some("i32"),
        }
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __kind {
    (ptr) => { $crate::Kind::Ptr };
    (size) => { $crate::Kind::Size };
    (ctx) => { $crate::Kind::Ctx };
    (u32) => { $crate::Kind::U32 };
    (i32) => { $crate::Kind::I32 };
    (u64) => { $crate::Kind::U64 };
    (i64) => { $crate::Kind::I64 };
    (bool) => { $crate::Kind::Bool };
    (status) => { $crate::Kind::Status };
    (errno) => { $crate::Kind::Errno };
    (action) => { $crate::Kind::Action };
    (none) => { $crate::Kind::None };
}

/// The module a host function is imported from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostModule {
    /// `env`: the Proxy-Wasm host functions.
    Env,
    /// The WASI preview1 subset, under every name in [`WASI_MODULES`].
    Wasi,
}

/// The name a guest exports its linear memory under: the memory host functions read the
/// guest's arguments from and write its results into. Every SDK's toolchain exports it so
/// (`--export-memory` is the default of wasm-ld), and the reference host looks it up by this
/// name (proxy-wasm-cpp-host's `WasmVm::getMemory` implementations).
pub const MEMORY_EXPORT: &str = "memory";

/// The names WASI preview1 is imported under.
pub const WASI_MODULES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

impl HostModule {
    /// The import module names this module is linked under.
    pub const fn import_names(self) -> &'static [&'static str] {
        match self {
            HostModule::Env => &["env"],
            HostModule::Wasi => &WASI_MODULES,
        }
    }

    /// The module for an import module name, if it is one this host provides.
    pub fn from_import_name(name: &str) -> Option<Self> {
        match name {
            "env" => Some(HostModule::Env),
            n if WASI_MODULES.contains(&n) => Some(HostModule::Wasi),
            _ => None,
        }
    }
}

/// The [`HostModule`] of a table row's module (`env` or `wasi`), for engines that expand
/// [`for_each_host_function!`](crate::for_each_host_function).
#[macro_export]
macro_rules! host_module {
    (env) => { $crate::HostModule::Env };
    (wasi) => { $crate::HostModule::Wasi };
}

/// A named, typed parameter of a table row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// Its name, as in the ABI documents.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
}

/// One row of the host-function table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFunction {
    /// The module it is imported from.
    pub module: HostModule,
    /// Its import name.
    pub name: &'static str,
    /// The ABI versions that define it.
    pub versions: Versions,
    /// Its parameters.
    pub params: &'static [Param],
    /// Its result: [`Kind::Status`], [`Kind::Errno`], [`Kind::I32`] (a plain value) or
    /// [`Kind::None`].
    pub result: Kind,
}

/// One row of the callback table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackInfo {
    /// Its [`Callback`] variant.
    pub callback: Callback,
    /// Its export name.
    pub name: &'static str,
    /// The ABI versions that define it with this signature.
    pub versions: Versions,
    /// Its parameters.
    pub params: &'static [Param],
    /// Its result.
    pub result: Kind,
}

macro_rules! define_host_functions {
    ($( { $module:ident, $name:ident, [$($ver:ident)*], ($($arg:ident : $kind:ident),*) -> $ret:ident } )*) => {
        /// Names every row of [`HOST_FUNCTIONS`] by its import name: `HostFunctionId::proxy_log as
        /// usize` is that row's index. For engines and shims that reach host functions by row
        /// (the raw host-call entry `proxy_wasm_host::hostcalls::call_row`).
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum HostFunctionId {
            $(
                #[doc = concat!("`", stringify!($module), ".", stringify!($name), "`")]
                $name,
            )*
        }

        impl HostFunctionId {
            /// Every id, in table order: `ALL[row].row() == row`.
            pub const ALL: &'static [HostFunctionId] = &[$(HostFunctionId::$name),*];
        }

        /// Every host function, in table order.
        pub static HOST_FUNCTIONS: &[HostFunction] = &[
            $( HostFunction {
                module: host_module!($module),
                name: stringify!($name),
                versions: Versions::of(&[$(AbiVersion::$ver),*]),
                params: &[$( Param { name: stringify!($arg), kind: __kind!($kind) } ),*],
                result: __kind!($ret),
            }, )*
        ];
    };
}
for_each_host_function!(define_host_functions);

macro_rules! define_callbacks {
    ($( { $variant:ident, $export:literal, [$($ver:ident)*], ($($arg:ident : $kind:ident),*) -> $ret:ident } )*) => {
        /// A function the guest exports and the host calls. Variants are indices into
        /// [`CALLBACKS`], so an engine can keep resolved handles in an array.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Callback {
            $(
                #[doc = concat!("`", $export, "`")]
                $variant,
            )*
        }

        /// Every callback, in table order: `CALLBACKS[cb as usize].callback == cb`.
        pub static CALLBACKS: &[CallbackInfo] = &[
            $( CallbackInfo {
                callback: Callback::$variant,
                name: $export,
                versions: Versions::of(&[$(AbiVersion::$ver),*]),
                params: &[$( Param { name: stringify!($arg), kind: __kind!($kind) } ),*],
                result: __kind!($ret),
            }, )*
        ];
    };
}
for_each_callback!(define_callbacks);

impl Callback {
    /// The number of callbacks.
    pub const COUNT: usize = CALLBACKS.len();

    /// Its row in [`CALLBACKS`].
    #[inline]
    pub fn info(self) -> &'static CallbackInfo {
        &CALLBACKS[self as usize]
    }

    /// Its export name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The callbacks a guest of `version` may export, each with the signature of that version.
    pub fn for_version(version: AbiVersion) -> impl Iterator<Item = Callback> {
        CALLBACKS
            .iter()
            .filter(move |c| c.versions.contains(version))
            .map(|c| c.callback)
    }
}

impl core::fmt::Display for Callback {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The host function imported as `module`.`name`, if this host provides it.
pub fn host_function(module: &str, name: &str) -> Option<&'static HostFunction> {
    host_function_row(module, name).map(|row| &HOST_FUNCTIONS[row])
}

/// The row in [`HOST_FUNCTIONS`] of the host function imported as `module`.`name`, if this host
/// provides it. Engines that register host functions by row look each import up once.
pub fn host_function_row(module: &str, name: &str) -> Option<usize> {
    let module = HostModule::from_import_name(module)?;
    HOST_FUNCTIONS.iter().position(|f| f.module == module && f.name == name)
}

/// The phases in which Envoy's default runtime (V8, through proxy-wasm-cpp-host) lets a guest
/// call only a few host functions, and traps any other call ("restricted_callback"; the other
/// C++ runtimes serve every call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestrictedPhase {
    /// The module's start functions run: `_initialize`, `main`, `__main_void` or `_start`
    /// (`src/wasm.cc` `WasmBase::startVm`).
    Start,
    /// The guest allocator runs inside a host function that returns bytes
    /// (`include/proxy-wasm/wasm.h` `WasmBase::allocMemory`).
    Allocator,
}

impl RestrictedPhase {
    /// How messages name the phase.
    pub const fn describe(self) -> &'static str {
        match self {
            RestrictedPhase::Start => "while the module's start functions run",
            RestrictedPhase::Allocator => "inside the guest allocator",
        }
    }
}

impl HostFunctionId {
    /// Whether a guest may call this host function in `phase`: the C++ host's lists, the same
    /// under both WASI module names. During start: logging (`proxy_log`, `fd_write`,
    /// `fd_pwrite`), arguments, environment, clocks, randomness, `poll_oneoff`,
    /// `emscripten_notify_memory_growth` and the WASI functions that only answer an errno (so
    /// that a toolchain's start-up code runs); not any other `proxy_*`, `pthread_equal`,
    /// `fd_read`, `fd_seek`, `fd_close`, `path_open`, `sched_yield` or `proc_exit`. Inside the
    /// allocator: `proxy_log`, `fd_write`, `clock_time_get` and `poll_oneoff` (a Go runtime's
    /// GC sleeps there).
    pub const fn allowed_in(self, phase: RestrictedPhase) -> bool {
        use HostFunctionId::*;
        match phase {
            RestrictedPhase::Allocator => matches!(self, proxy_log | fd_write | clock_time_get | poll_oneoff),
            RestrictedPhase::Start => matches!(
                self,
                emscripten_notify_memory_growth
                    | proxy_log
                    | fd_write
                    | args_sizes_get
                    | args_get
                    | environ_sizes_get
                    | environ_get
                    | clock_time_get
                    | clock_res_get
                    | random_get
                    | poll_oneoff
                    | fd_fdstat_get
                    | fd_fdstat_set_flags
                    | fd_advise
                    | fd_allocate
                    | fd_datasync
                    | fd_fdstat_set_rights
                    | fd_filestat_get
                    | fd_filestat_set_size
                    | fd_filestat_set_times
                    | fd_pread
                    | fd_prestat_dir_name
                    | fd_prestat_get
                    | fd_pwrite
                    | fd_readdir
                    | fd_renumber
                    | fd_sync
                    | fd_tell
                    | path_create_directory
                    | path_filestat_get
                    | path_filestat_set_times
                    | path_link
                    | path_readlink
                    | path_remove_directory
                    | path_rename
                    | path_symlink
                    | path_unlink_file
                    | sock_accept
                    | sock_recv
                    | sock_send
                    | sock_shutdown
            ),
        }
    }

    /// Its row in [`HOST_FUNCTIONS`].
    pub const fn row(self) -> usize {
        self as usize
    }

    /// Its row's description.
    #[inline]
    pub fn info(self) -> &'static HostFunction {
        &HOST_FUNCTIONS[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_variants_index_the_table() {
        for (i, c) in CALLBACKS.iter().enumerate() {
            assert_eq!(c.callback as usize, i, "{}", c.name);
        }
    }

    #[test]
    fn host_function_ids_index_the_table() {
        assert_eq!(HostFunctionId::proxy_log.row(), 0);
        assert_eq!(HostFunctionId::proxy_http_call.info().name, "proxy_http_call");
        assert_eq!(HostFunctionId::poll_oneoff.row(), HOST_FUNCTIONS.len() - 1);
        assert_eq!(host_function_row("wasi_unstable", "fd_write"), Some(HostFunctionId::fd_write.row()));
        assert_eq!(host_function_row("env", "fd_write"), None);
    }

    #[test]
    fn restricted_phases_allow_the_reference_lists() {
        use RestrictedPhase::*;
        let allowed = |phase| HostFunctionId::ALL.iter().filter(|id| id.allowed_in(phase)).count();
        // wasm.h allocMemory: 4 functions; wasm.cc startVm: 2 env + 39 WASI functions.
        assert_eq!(allowed(Allocator), 4);
        assert_eq!(allowed(Start), 41);
        assert!(HostFunctionId::proxy_log.allowed_in(Start));
        assert!(!HostFunctionId::proxy_get_property.allowed_in(Start));
        assert!(!HostFunctionId::proxy_done.allowed_in(Allocator));
        assert!(!HostFunctionId::pthread_equal.allowed_in(Start));
        assert!(!HostFunctionId::proc_exit.allowed_in(Start));
        assert!(HostFunctionId::poll_oneoff.allowed_in(Allocator));
    }

    #[test]
    fn names_are_unique_per_version() {
        for v in AbiVersion::ALL {
            let mut names: Vec<_> = Callback::for_version(v).map(Callback::name).collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n, "duplicate callback export in {v}");
        }
        let mut names: Vec<_> = HOST_FUNCTIONS.iter().map(|f| (f.module as u8, f.name)).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn signatures_match_the_reference() {
        let f = host_function("env", "proxy_http_call").unwrap();
        assert_eq!(f.params.len(), 10);
        assert_eq!(f.params[8].kind, Kind::U32);
        let f = host_function("env", "proxy_increment_metric").unwrap();
        assert_eq!(f.params[1].kind.wasm_type(), Some("i64"));
        let f = host_function("wasi_unstable", "clock_time_get").unwrap();
        assert_eq!(f.params[1].kind, Kind::U64);
        assert_eq!(host_function("wasi_snapshot_preview1", "proc_exit").unwrap().result, Kind::None);
        assert_eq!(host_function("env", "pthread_equal").unwrap().result, Kind::I32);
        assert_eq!(host_function("env", "emscripten_notify_memory_growth").unwrap().result, Kind::None);
        // WASI's signatures, one parameter more than the C++ host declares (docs/reference-host.md).
        assert_eq!(host_function("wasi_unstable", "path_link").unwrap().params.len(), 7);
        assert_eq!(host_function("wasi_unstable", "path_symlink").unwrap().params.len(), 5);
        assert_eq!(host_function("wasi_unstable", "fd_pwrite").unwrap().params[3].kind, Kind::U64);
        assert!(host_function("env", "proxy_get_log_level").unwrap().versions.contains(AbiVersion::V021));
        assert!(!host_function("env", "proxy_get_log_level").unwrap().versions.contains(AbiVersion::V020));
        assert!(host_function("env", "fd_write").is_none());
        assert!(host_function("other", "proxy_log").is_none());
        assert_eq!(Callback::OnRequestHeaders.info().params.len(), 3);
        assert_eq!(Callback::OnRequestHeadersV010.info().params.len(), 2);
        assert_eq!(Callback::OnRequestHeadersV010.name(), "proxy_on_request_headers");
    }

    /// The checklist of `shared/abi-reference.md`: every host function and callback it names, and
    /// everything proxy-wasm-cpp-host links (`exports.h` `FOR_ALL_WASI_FUNCTIONS`, the two `env`
    /// helpers of `wasm.cc` `registerCallbacks`).
    #[test]
    fn table_covers_the_abi_reference() {
        let env = [
            "proxy_log", "proxy_get_log_level", "proxy_get_current_time_nanoseconds",
            "proxy_set_tick_period_milliseconds", "proxy_get_configuration", "proxy_get_buffer_bytes",
            "proxy_set_buffer_bytes", "proxy_get_buffer_status", "proxy_get_header_map_size",
            "proxy_get_header_map_pairs", "proxy_set_header_map_pairs", "proxy_get_header_map_value",
            "proxy_add_header_map_value", "proxy_replace_header_map_value",
            "proxy_remove_header_map_value", "proxy_continue_stream", "proxy_close_stream",
            "proxy_continue_request", "proxy_continue_response", "proxy_clear_route_cache",
            "proxy_send_local_response", "proxy_get_status", "proxy_http_call", "proxy_grpc_call",
            "proxy_grpc_stream", "proxy_grpc_send", "proxy_grpc_cancel", "proxy_grpc_close",
            "proxy_get_shared_data", "proxy_set_shared_data", "proxy_register_shared_queue",
            "proxy_resolve_shared_queue", "proxy_enqueue_shared_queue", "proxy_dequeue_shared_queue",
            "proxy_define_metric", "proxy_increment_metric", "proxy_record_metric", "proxy_get_metric",
            "proxy_get_property", "proxy_set_property", "proxy_set_effective_context", "proxy_done",
            "proxy_call_foreign_function", "pthread_equal", "emscripten_notify_memory_growth",
        ];
        let wasi = [
            "fd_write", "fd_read", "fd_seek", "fd_close", "fd_fdstat_get", "fd_fdstat_set_flags",
            "fd_fdstat_set_rights", "environ_get", "environ_sizes_get", "args_get", "args_sizes_get",
            "clock_time_get", "clock_res_get", "fd_advise", "fd_allocate", "fd_datasync",
            "fd_filestat_set_size", "fd_filestat_set_times", "fd_pread", "fd_pwrite", "fd_readdir",
            "fd_renumber", "fd_sync", "fd_tell", "path_create_directory", "path_filestat_set_times",
            "path_link", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
            "path_unlink_file", "sock_accept", "sock_recv", "sock_send", "sock_shutdown",
            "random_get", "sched_yield", "poll_oneoff", "proc_exit", "path_open", "fd_prestat_get",
            "fd_prestat_dir_name", "path_filestat_get", "fd_filestat_get",
        ];
        assert_eq!(wasi.len(), 45);
        for name in env {
            assert!(host_function("env", name).is_some(), "missing env.{name}");
        }
        for name in wasi {
            for module in WASI_MODULES {
                assert!(host_function(module, name).is_some(), "missing {module}.{name}");
            }
        }
        assert_eq!(HOST_FUNCTIONS.len(), env.len() + wasi.len());
        let callbacks = [
            "_initialize", "_start", "main", "__main_void", "malloc", "proxy_on_memory_allocate",
            "proxy_on_vm_start", "proxy_on_configure", "proxy_on_context_create", "proxy_on_tick",
            "proxy_on_queue_ready", "proxy_on_foreign_function", "proxy_on_new_connection",
            "proxy_on_downstream_data", "proxy_on_upstream_data",
            "proxy_on_downstream_connection_close", "proxy_on_upstream_connection_close",
            "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
            "proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
            "proxy_on_http_call_response", "proxy_on_grpc_receive_initial_metadata",
            "proxy_on_grpc_receive", "proxy_on_grpc_receive_trailing_metadata", "proxy_on_grpc_close",
            "proxy_on_done", "proxy_on_log", "proxy_on_delete",
        ];
        for name in callbacks {
            assert!(CALLBACKS.iter().any(|c| c.name == name), "missing callback {name}");
        }
    }
}
