//! Capability restrictions: which host functions, callbacks and WASI functions a VM may use, as
//! Envoy's `capability_restriction_config.allowed_capabilities` sets them.
//!
//! The configuration is a list of names. An empty list restricts nothing (Envoy and
//! proxy-wasm-cpp-host: `capabilityAllowed` is true for every name while the map is empty).
//! Otherwise only what is named is available:
//!
//! - a host function that is not allowed still links (so the module loads), but a call answers
//!   what the reference host's stub answers (proxy-wasm-cpp-host `include/proxy-wasm/exports.h`,
//!   `_CREATE_PROXY_WASM_STUB` and `_CREATE_WASI_STUB`): `INTERNAL_FAILURE` (10) for a
//!   `proxy_*` function, errno `NOTCAPABLE` (76) for a WASI function that answers an errno, and
//!   nothing (it returns without effect) for one without a result. The first such call of each
//!   function in a VM is logged at ERROR, and every one is counted
//!   ([`SecurityCounters`](crate::SecurityCounters));
//! - a callback that is not allowed is never called (`src/wasm.cc` `getFunctions` leaves its
//!   handle empty): the host acts as if the module did not export it. The first time the host
//!   skips it in a VM is logged.
//!
//! Names are host-function import names (`proxy_http_call`, and WASI functions by their bare
//! name: `fd_write`), callback export names (`proxy_on_request_headers`, which covers both of
//! its signatures), or the name of a group ([`GROUPS`]: `http_callouts`, `grpc`,
//! `shared_data`, ...). The module's start functions (`_initialize`, `_start`, `main`), its
//! allocator (`malloc`, `proxy_on_memory_allocate`) are always available, as in the reference
//! host; naming them is allowed and changes nothing.
//!
//! The sets are bit masks, checked in the generated host-function entry
//! ([`hostcalls`](crate::hostcalls)) before anything else and in [`Vm`](crate::Vm) before each
//! callback: one load and one bit test per call.

use std::fmt;

use abi::{Callback, HostFunctionId, HostModule, CALLBACKS, HOST_FUNCTIONS};

/// The groups a configuration can name, each with its members (host-function import names and
/// callback export names).
pub const GROUPS: &[(&str, &[&str])] = &[
    ("logging", &["proxy_log", "proxy_get_log_level"]),
    ("time", &["proxy_get_current_time_nanoseconds"]),
    ("timers", &["proxy_set_tick_period_milliseconds", "proxy_on_tick"]),
    (
        "lifecycle",
        &[
            "proxy_on_context_create",
            "proxy_on_vm_start",
            "proxy_on_configure",
            "proxy_on_done",
            "proxy_on_log",
            "proxy_on_delete",
            "proxy_done",
            "proxy_set_effective_context",
            "proxy_get_configuration",
        ],
    ),
    ("buffers", &["proxy_get_buffer_bytes", "proxy_set_buffer_bytes", "proxy_get_buffer_status"]),
    (
        "headers",
        &[
            "proxy_get_header_map_size",
            "proxy_get_header_map_pairs",
            "proxy_set_header_map_pairs",
            "proxy_get_header_map_value",
            "proxy_add_header_map_value",
            "proxy_replace_header_map_value",
            "proxy_remove_header_map_value",
        ],
    ),
    (
        "http_streams",
        &[
            "proxy_on_request_headers",
            "proxy_on_request_body",
            "proxy_on_request_trailers",
            "proxy_on_response_headers",
            "proxy_on_response_body",
            "proxy_on_response_trailers",
            "proxy_continue_stream",
            "proxy_close_stream",
            "proxy_continue_request",
            "proxy_continue_response",
            "proxy_clear_route_cache",
            "proxy_send_local_response",
        ],
    ),
    (
        "tcp_streams",
        &[
            "proxy_on_new_connection",
            "proxy_on_downstream_data",
            "proxy_on_upstream_data",
            "proxy_on_downstream_connection_close",
            "proxy_on_upstream_connection_close",
            "proxy_continue_stream",
            "proxy_close_stream",
        ],
    ),
    ("http_callouts", &["proxy_http_call", "proxy_get_status", "proxy_on_http_call_response"]),
    (
        "grpc",
        &[
            "proxy_grpc_call",
            "proxy_grpc_stream",
            "proxy_grpc_send",
            "proxy_grpc_cancel",
            "proxy_grpc_close",
            "proxy_get_status",
            "proxy_on_grpc_receive_initial_metadata",
            "proxy_on_grpc_receive",
            "proxy_on_grpc_receive_trailing_metadata",
            "proxy_on_grpc_close",
        ],
    ),
    ("shared_data", &["proxy_get_shared_data", "proxy_set_shared_data"]),
    (
        "shared_queues",
        &[
            "proxy_register_shared_queue",
            "proxy_resolve_shared_queue",
            "proxy_enqueue_shared_queue",
            "proxy_dequeue_shared_queue",
            "proxy_on_queue_ready",
        ],
    ),
    ("metrics", &["proxy_define_metric", "proxy_increment_metric", "proxy_record_metric", "proxy_get_metric"]),
    ("properties", &["proxy_get_property", "proxy_set_property"]),
    ("foreign_functions", &["proxy_call_foreign_function", "proxy_on_foreign_function"]),
    ("wasi_clocks", &["clock_time_get", "clock_res_get"]),
    ("wasi_random", &["random_get"]),
    ("wasi_environment", &["environ_sizes_get", "environ_get", "args_sizes_get", "args_get"]),
    ("wasi_stdio", &["fd_write", "fd_read", "fd_seek", "fd_close", "fd_fdstat_get"]),
    ("wasi_exit", &["proc_exit"]),
];

/// The group of every WASI function (derived from the ABI table, so it grows with it).
pub const WASI_GROUP: &str = "wasi";

/// Callbacks a restriction never touches: start functions and allocators (the reference host
/// looks them up whatever the configuration says).
const ALWAYS_CALLBACKS: &[&str] = &["_initialize", "_start", "main", "__main_void", "malloc", "proxy_on_memory_allocate"];

/// Host functions a restriction never touches: the Emscripten and pthread shims the reference
/// host links for every module (`src/wasm.cc` `registerCallbacks`, outside the capability check).
const ALWAYS_HOST_FUNCTIONS: &[&str] = &["pthread_equal", "emscripten_notify_memory_growth"];

/// Host-function rows the mask can hold, in 64-bit words.
const HOST_WORDS: usize = 4;

// The masks hold the whole ABI table.
const _: () = assert!(HOST_FUNCTIONS.len() <= HOST_WORDS * 64 && Callback::COUNT <= 64);

/// A set of host-function rows of [`HOST_FUNCTIONS`], as a bit mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostSet([u64; HOST_WORDS]);

impl HostSet {
    /// No host function.
    pub const EMPTY: HostSet = HostSet([0; HOST_WORDS]);
    /// Every host function.
    pub const ALL: HostSet = HostSet([u64::MAX; HOST_WORDS]);

    /// Whether row `row` is in the set (a row past the mask never is).
    #[inline]
    pub fn contains_row(&self, row: usize) -> bool {
        match self.0.get(row >> 6) {
            Some(word) => (word >> (row & 63)) & 1 == 1,
            None => false,
        }
    }

    /// Adds row `row` (a row past the mask is ignored; the table is within it).
    pub fn insert_row(&mut self, row: usize) {
        if let Some(word) = self.0.get_mut(row >> 6) {
            *word |= 1 << (row & 63);
        }
    }
}

/// A set of [`Callback`]s, as a bit mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackSet(u64);

impl CallbackSet {
    /// No callback.
    pub const EMPTY: CallbackSet = CallbackSet(0);
    /// Every callback.
    pub const ALL: CallbackSet = CallbackSet(u64::MAX);

    /// Whether `callback` is in the set.
    #[inline]
    pub fn contains(&self, callback: Callback) -> bool {
        (self.0 >> (callback as u32 & 63)) & 1 == 1
    }

    /// Adds `callback`.
    pub fn insert(&mut self, callback: Callback) {
        self.0 |= 1 << (callback as u32 & 63);
    }

    /// The callbacks in both sets.
    pub fn intersection(self, other: CallbackSet) -> CallbackSet {
        CallbackSet(self.0 & other.0)
    }
}

/// Why a capability name was refused; the configuration layer adds where the name stood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapabilityError {
    /// Not a name at all: empty, or with characters no ABI name has.
    Malformed {
        /// The name as written.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A well-formed name that is no host function, callback or group of this host.
    Unknown {
        /// The name as written.
        name: String,
        /// A known name it resembles, if any.
        suggestion: Option<String>,
    },
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapabilityError::Malformed { name, reason } => write!(f, "capability name {name:?} is malformed: {reason}"),
            CapabilityError::Unknown { name, suggestion } => {
                write!(f, "unknown capability `{name}`: not a host function, callback or group of this host")?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean `{s}`?)"),
                    None => write!(f, " (groups: {}, {WASI_GROUP})", group_names().collect::<Vec<_>>().join(", ")),
                }
            }
        }
    }
}

impl std::error::Error for CapabilityError {}

/// The names of every group, [`WASI_GROUP`] aside.
pub fn group_names() -> impl Iterator<Item = &'static str> {
    GROUPS.iter().map(|(name, _)| *name)
}

/// What a VM may use: Envoy's `capability_restriction_config.allowed_capabilities`. The default
/// restricts nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CapabilityRestriction {
    hosts: HostSet,
    callbacks: CallbackSet,
    /// The names as configured, sorted and without duplicates (empty: unrestricted).
    names: Vec<String>,
}

impl Default for CapabilityRestriction {
    fn default() -> Self {
        CapabilityRestriction::unrestricted()
    }
}

impl CapabilityRestriction {
    /// Everything allowed.
    pub fn unrestricted() -> Self {
        CapabilityRestriction { hosts: HostSet::ALL, callbacks: CallbackSet::ALL, names: Vec::new() }
    }

    /// Only what `names` name (host functions, callbacks, groups; see the [module docs](self)).
    /// No names at all is [`unrestricted`](Self::unrestricted), as in Envoy. The first name that
    /// is malformed or unknown is the error.
    pub fn allow<I, S>(names: I) -> Result<Self, CapabilityError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut sorted: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref();
            check_well_formed(name)?;
            if !is_known(name) {
                return Err(CapabilityError::Unknown { name: name.to_string(), suggestion: suggest(name) });
            }
            sorted.push(name.to_string());
        }
        sorted.sort();
        sorted.dedup();
        if sorted.is_empty() {
            return Ok(CapabilityRestriction::unrestricted());
        }
        let mut hosts = HostSet::EMPTY;
        let mut callbacks = CallbackSet::EMPTY;
        let mut add = |member: &str| {
            for (row, f) in HOST_FUNCTIONS.iter().enumerate() {
                if f.name == member {
                    hosts.insert_row(row);
                }
            }
            for c in CALLBACKS.iter().filter(|c| c.name == member) {
                callbacks.insert(c.callback);
            }
        };
        for name in ALWAYS_CALLBACKS.iter().chain(ALWAYS_HOST_FUNCTIONS) {
            add(name);
        }
        for name in &sorted {
            if name == WASI_GROUP {
                for f in HOST_FUNCTIONS.iter().filter(|f| f.module == HostModule::Wasi) {
                    add(f.name);
                }
            } else if let Some((_, members)) = GROUPS.iter().find(|(g, _)| g == name) {
                members.iter().for_each(|m| add(m));
            } else {
                add(name);
            }
        }
        Ok(CapabilityRestriction { hosts, callbacks, names: sorted })
    }

    /// Whether anything is restricted.
    pub fn is_restricted(&self) -> bool {
        !self.names.is_empty()
    }

    /// The configured names, sorted (empty when unrestricted).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the host function may be called.
    #[inline]
    pub fn allows(&self, id: HostFunctionId) -> bool {
        self.hosts.contains_row(id.row())
    }

    /// Whether the callback may be called.
    #[inline]
    pub fn allows_callback(&self, callback: Callback) -> bool {
        self.callbacks.contains(callback)
    }

    /// The allowed host functions, as a mask.
    pub fn host_set(&self) -> HostSet {
        self.hosts
    }

    /// The allowed callbacks, as a mask.
    pub fn callback_set(&self) -> CallbackSet {
        self.callbacks
    }
}

/// A capability name has the characters of an ABI name: ASCII lowercase letters, digits and
/// `_`, at most 64 of them.
fn check_well_formed(name: &str) -> Result<(), CapabilityError> {
    let malformed = |reason| Err(CapabilityError::Malformed { name: name.to_string(), reason });
    if name.is_empty() {
        return malformed("it is empty");
    }
    if name.len() > 64 {
        return malformed("it is longer than any ABI name (64 characters at most)");
    }
    if name.trim() != name {
        return malformed("it has spaces around it");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return malformed("ABI names have only lowercase ASCII letters, digits and `_`");
    }
    Ok(())
}

/// Every name a configuration may use.
fn known_names() -> impl Iterator<Item = &'static str> {
    HOST_FUNCTIONS
        .iter()
        .map(|f| f.name)
        .chain(CALLBACKS.iter().map(|c| c.name))
        .chain(group_names())
        .chain(std::iter::once(WASI_GROUP))
}

fn is_known(name: &str) -> bool {
    known_names().any(|n| n == name)
}

/// The known name closest to `name` (by edit distance, at most a third of its length).
fn suggest(name: &str) -> Option<String> {
    known_names()
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, _)| *d <= name.len().div_ceil(3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_names_restrict_nothing_as_in_envoy() {
        let r = CapabilityRestriction::allow(Vec::<String>::new()).unwrap();
        assert!(!r.is_restricted());
        assert!(r.allows(HostFunctionId::proxy_http_call));
        assert!(r.allows_callback(Callback::OnLog));
        assert_eq!(r, CapabilityRestriction::default());
    }

    #[test]
    fn only_named_functions_and_callbacks_are_allowed() {
        // Envoy's FilterConfigCapabilityRestriction test: proxy_log and proxy_on_new_connection.
        let r = CapabilityRestriction::allow(["proxy_log", "proxy_on_new_connection"]).unwrap();
        assert!(r.is_restricted());
        assert!(r.allows(HostFunctionId::proxy_log));
        assert!(r.allows_callback(Callback::OnNewConnection));
        assert!(!r.allows(HostFunctionId::proxy_http_call));
        assert!(!r.allows_callback(Callback::OnLog));
        assert!(!r.allows(HostFunctionId::fd_write));
        // Start functions and allocators are never restricted.
        for c in [Callback::Initialize, Callback::Start, Callback::Main, Callback::Malloc, Callback::OnMemoryAllocate] {
            assert!(r.allows_callback(c), "{c}");
        }
    }

    #[test]
    fn a_callback_name_covers_every_signature_of_it() {
        let r = CapabilityRestriction::allow(["proxy_on_request_headers"]).unwrap();
        assert!(r.allows_callback(Callback::OnRequestHeaders));
        assert!(r.allows_callback(Callback::OnRequestHeadersV010));
        assert!(!r.allows_callback(Callback::OnResponseHeaders));
    }

    #[test]
    fn groups_name_their_members() {
        let r = CapabilityRestriction::allow(["http_callouts", "wasi"]).unwrap();
        assert!(r.allows(HostFunctionId::proxy_http_call));
        assert!(r.allows(HostFunctionId::proxy_get_status));
        assert!(r.allows_callback(Callback::OnHttpCallResponse));
        assert!(!r.allows(HostFunctionId::proxy_grpc_call));
        assert!(r.allows(HostFunctionId::fd_write));
        assert!(r.allows(HostFunctionId::proc_exit));
        assert!(!r.allows(HostFunctionId::proxy_log));
        assert_eq!(r.names(), ["http_callouts", "wasi"]);
    }

    #[test]
    fn every_group_member_exists_and_every_proxy_function_and_callback_has_a_group() {
        for (group, members) in GROUPS {
            for m in *members {
                assert!(
                    HOST_FUNCTIONS.iter().any(|f| f.name == *m) || CALLBACKS.iter().any(|c| c.name == *m),
                    "group {group}: {m} is no host function or callback"
                );
            }
            assert!(!is_known_outside_groups(group), "group {group} shadows a function name");
        }
        let grouped = |name: &str| GROUPS.iter().any(|(_, members)| members.contains(&name));
        for f in HOST_FUNCTIONS.iter().filter(|f| f.module == HostModule::Env) {
            assert!(grouped(f.name) || ALWAYS_HOST_FUNCTIONS.contains(&f.name), "{} has no group", f.name);
        }
        for c in CALLBACKS {
            assert!(grouped(c.name) || ALWAYS_CALLBACKS.contains(&c.name), "{} has no group", c.name);
        }
    }

    fn is_known_outside_groups(name: &str) -> bool {
        HOST_FUNCTIONS.iter().any(|f| f.name == name) || CALLBACKS.iter().any(|c| c.name == name)
    }

    #[test]
    fn the_masks_hold_the_whole_table() {
        let all: Vec<String> = HOST_FUNCTIONS.iter().map(|f| f.name.to_string()).collect();
        let r = CapabilityRestriction::allow(&all).unwrap();
        for (row, _) in HOST_FUNCTIONS.iter().enumerate() {
            assert!(r.host_set().contains_row(row));
        }
        assert!(!HostSet::EMPTY.contains_row(HOST_WORDS * 64 + 5));
    }

    #[test]
    fn malformed_and_unknown_names_are_errors_that_name_them() {
        let e = CapabilityRestriction::allow(["proxy_log", ""]).unwrap_err();
        assert_eq!(e.to_string(), "capability name \"\" is malformed: it is empty");
        let e = CapabilityRestriction::allow(["Proxy_Log"]).unwrap_err();
        assert!(e.to_string().contains("\"Proxy_Log\" is malformed: ABI names have only lowercase"), "{e}");
        let e = CapabilityRestriction::allow([" proxy_log"]).unwrap_err();
        assert!(e.to_string().contains("spaces"), "{e}");
        let e = CapabilityRestriction::allow(["proxy_htp_call"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown capability `proxy_htp_call`: not a host function, callback or group of this host (did you mean `proxy_http_call`?)"
        );
        let e = CapabilityRestriction::allow(["compression"]).unwrap_err();
        assert!(e.to_string().contains("(groups: logging, time, timers"), "{e}");
        assert!(matches!(e, CapabilityError::Unknown { suggestion: None, .. }));
    }
}
