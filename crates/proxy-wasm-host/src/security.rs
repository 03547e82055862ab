//! A plugin's security policy beyond capabilities ([`PluginPolicy`]: hidden headers and
//! properties, the upstreams it may call out to), what the policy refused, counted for the
//! embedder's stats, and the slow paths that refuse a host function or callback outside a VM's
//! [`CapabilityRestriction`].

use std::sync::atomic::{AtomicU64, Ordering};

use abi::{Callback, HostFunctionId, Kind, LogLevel, Status};

use crate::{CapabilityRestriction, VmHost};

/// The headers of the `credentials` preset: their values are what a plugin most often has no
/// business reading.
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// What one plugin may see and where it may call out to. The default hides nothing and allows
/// every upstream.
///
/// - **Hidden headers** (names, ASCII-case-insensitive): in the HTTP stream's four maps,
///   `proxy_get_header_map_value` answers as for an absent header (`NOT_FOUND`; an empty value
///   for an ABI 0.1.0 guest, as for any absent header there), `proxy_get_header_map_pairs` and
///   `proxy_get_header_map_size` leave them out, the header callbacks count them out, and
///   writes leave them as they are (adding, replacing or removing a hidden header is accepted
///   and does nothing; `proxy_set_header_map_pairs` keeps them and drops hidden names from the
///   new pairs). The stream itself keeps them: the proxy forwards them unchanged. Properties
///   that hold headers (`request.headers`, `response.headers`, `response.trailers`,
///   `request.trailers`, and any path below them) are filtered the same way.
/// - **Callout answers** ([`sanitize_callout_responses`](Self::sanitize_callout_responses)):
///   the same for the maps of an HTTP callout's answer and a gRPC call's metadata.
/// - **Hidden properties** (paths with `.` between segments, as the exchange writes them, or
///   segments joined by 0 bytes): a hidden path, any path below it, and any path above it (a
///   parent would carry it) read as absent (`NOT_FOUND`).
/// - **Allowed upstreams**: HTTP and gRPC callouts only to these upstream names; another is
///   refused with the status the reference host gives an unknown cluster (`BAD_ARGUMENT` for
///   HTTP, `PARSE_FAILURE` for gRPC), and counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginPolicy {
    hidden_headers: Vec<Vec<u8>>,
    hidden_properties: Vec<Vec<u8>>,
    /// Hide the hidden headers in callout answers and gRPC metadata too.
    pub sanitize_callout_responses: bool,
    /// The upstreams callouts may go to; `None` allows any.
    pub allowed_upstreams: Option<Vec<String>>,
}

impl PluginPolicy {
    /// Hides the values of these headers (any case) from the plugin.
    pub fn hide_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        for name in names {
            let name = name.as_ref().to_ascii_lowercase();
            if !self.hidden_headers.contains(&name) {
                self.hidden_headers.push(name);
            }
        }
        self
    }

    /// Hides these properties: paths with `.` between segments (`source.address`) or with 0
    /// bytes (`source\0address`).
    pub fn hide_properties<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        for path in paths {
            let path: Vec<u8> = path.as_ref().iter().map(|&b| if b == b'.' { 0 } else { b }).collect();
            if !self.hidden_properties.contains(&path) {
                self.hidden_properties.push(path);
            }
        }
        self
    }

    /// Allows callouts only to these upstreams.
    pub fn allow_upstreams<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_upstreams = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The hidden header names, lowercase.
    pub fn hidden_headers(&self) -> &[Vec<u8>] {
        &self.hidden_headers
    }

    /// The hidden property paths, segments joined by 0 bytes.
    pub fn hidden_properties(&self) -> &[Vec<u8>] {
        &self.hidden_properties
    }

    /// Whether the header `name` (any case) is hidden.
    pub fn hides_header(&self, name: &[u8]) -> bool {
        !self.hidden_headers.is_empty() && self.hidden_headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether the property at `path` (segments joined by 0 bytes) is hidden: it is a hidden
    /// path, lies below one, or lies above one.
    pub fn hides_property(&self, path: &[u8]) -> bool {
        self.hidden_properties.iter().any(|hidden| nested(hidden, path) || nested(path, hidden))
    }

    /// Whether a callout may go to `upstream`.
    pub fn allows_upstream(&self, upstream: &str) -> bool {
        self.allowed_upstreams.as_ref().is_none_or(|list| list.iter().any(|u| u == upstream))
    }

    /// Whether the policy hides or refuses anything.
    pub fn is_empty(&self) -> bool {
        self.hidden_headers.is_empty() && self.hidden_properties.is_empty() && self.allowed_upstreams.is_none()
    }
}

/// Properties whose values are a header map (Envoy hands them to Wasm as serialized pairs).
const MAP_PROPERTIES: [&[u8]; 4] = [b"request\0headers", b"request\0trailers", b"response\0headers", b"response\0trailers"];

/// Properties whose value is one header's (Envoy's request and response attributes).
const HEADER_PROPERTIES: [(&[u8], &[u8]); 10] = [
    (b"request\0path", b":path"),
    (b"request\0url_path", b":path"),
    (b"request\0host", b":authority"),
    (b"request\0scheme", b":scheme"),
    (b"request\0method", b":method"),
    (b"request\0referer", b"referer"),
    (b"request\0useragent", b"user-agent"),
    (b"request\0id", b"x-request-id"),
    (b"response\0code", b":status"),
    (b"response\0grpc_status", b"grpc-status"),
];

/// Properties that add up the sizes of every header, hidden ones included.
const HEADER_SIZE_PROPERTIES: [&[u8]; 2] = [b"request\0total_size", b"response\0total_size"];

impl PluginPolicy {
    /// Whether any header is hidden from this plugin.
    pub(crate) fn hides_any_header(&self) -> bool {
        !self.hidden_headers.is_empty()
    }

    /// Whether reads of `map` hide headers for this plugin: a stream map when any header is
    /// hidden, a callout answer's or gRPC metadata map when callout answers are sanitised too.
    pub(crate) fn sanitizes(&self, map: abi::MapType) -> bool {
        !self.hidden_headers.is_empty() && (map.is_stream_map() || self.sanitize_callout_responses)
    }

    /// `map` without its hidden headers.
    pub(crate) fn visible(&self, map: &crate::HeaderMap) -> crate::HeaderMap {
        crate::HeaderMap::from_pairs(map.pairs().iter().filter(|(k, _)| !self.hides_header(k)).map(|(k, v)| (k, v)))
    }

    /// The number of headers of `map` the plugin sees, for a callback's count argument.
    pub(crate) fn visible_len(&self, map: &crate::HeaderMap) -> usize {
        map.pairs().iter().filter(|(k, _)| !self.hides_header(k)).count()
    }

    /// A property's value as the plugin may see it, or `NotFound` where the policy hides it:
    /// a hidden property (or one above or below it); with hidden headers, a header-map property
    /// loses those headers (a value that is not a well-formed map is hidden whole: it cannot be
    /// filtered), a path into such a map that names a hidden header is hidden, an attribute
    /// taken from a hidden header (`request.useragent` from `user-agent`, ...) is hidden, and so
    /// are the total sizes, which count the hidden headers' bytes.
    pub(crate) fn sanitize_property(&self, path: &[u8], value: Vec<u8>) -> Result<Vec<u8>, Status> {
        if self.hides_property(path) {
            return Err(Status::NotFound);
        }
        if self.hidden_headers.is_empty() {
            return Ok(value);
        }
        if HEADER_SIZE_PROPERTIES.contains(&path) {
            return Err(Status::NotFound);
        }
        if let Some((_, header)) = HEADER_PROPERTIES.iter().find(|(p, _)| *p == path) {
            return if self.hides_header(header) { Err(Status::NotFound) } else { Ok(value) };
        }
        for map in MAP_PROPERTIES {
            if path == map {
                let limits = abi::MapLimits { max_pairs: u32::MAX, max_bytes: usize::MAX };
                let pairs = abi::decode_map(&value, limits).map_err(|_| Status::NotFound)?;
                let kept: Vec<_> = pairs.into_iter().filter(|(k, _)| !self.hides_header(k)).collect();
                return Ok(abi::encode_map(&kept));
            }
            if nested(map, path) {
                let name = path[map.len() + 1..].split(|&b| b == 0).next().unwrap_or_default();
                if self.hides_header(name) {
                    return Err(Status::NotFound);
                }
            }
        }
        Ok(value)
    }
}

/// Whether `inner` is `outer` or lies below it (`outer` then a 0 byte, then more).
fn nested(outer: &[u8], inner: &[u8]) -> bool {
    inner.starts_with(outer) && (inner.len() == outer.len() || inner[outer.len()] == 0)
}

/// Counters of refusals, shared by every VM of a [`PluginHost`](crate::PluginHost) (through its
/// [`Services`](crate::Services)). Read them with [`snapshot`](Self::snapshot).
#[derive(Debug, Default)]
pub struct SecurityCounters {
    host_calls_denied: AtomicU64,
    callbacks_skipped: AtomicU64,
    callouts_refused: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecurityStats {
    /// Calls of host functions a capability restriction does not allow.
    pub host_calls_denied: u64,
    /// Callbacks the host did not call because a capability restriction does not allow them.
    pub callbacks_skipped: u64,
    /// HTTP and gRPC callouts refused because their upstream is not on the plugin's list.
    pub callouts_refused: u64,
}

impl SecurityCounters {
    /// The counts now.
    pub fn snapshot(&self) -> SecurityStats {
        SecurityStats {
            host_calls_denied: self.host_calls_denied.load(Ordering::Relaxed),
            callbacks_skipped: self.callbacks_skipped.load(Ordering::Relaxed),
            callouts_refused: self.callouts_refused.load(Ordering::Relaxed),
        }
    }
}

/// WASI's `NOTCAPABLE` errno, what the reference host's WASI stubs answer.
const ENOTCAPABLE: i32 = 76;

/// A call of host function `id` that the VM's [`CapabilityRestriction`] does not allow: logs
/// the first one per function and VM at ERROR, counts it, and gives what the guest receives as
/// proxy-wasm-cpp-host's stubs answer (`exports.h` `_CREATE_PROXY_WASM_STUB`,
/// `_CREATE_WASI_STUB`): `INTERNAL_FAILURE` for a status, errno `NOTCAPABLE` (76) for a WASI
/// errno, 0 (no effect) for a row without a result.
#[cold]
#[inline(never)]
pub(crate) fn deny_host_call(host: &mut VmHost, id: HostFunctionId) -> i32 {
    host.services.security().host_calls_denied.fetch_add(1, Ordering::Relaxed);
    if !host.denials_logged.0.contains_row(id.row()) {
        host.denials_logged.0.insert_row(id.row());
        let message = format!(
            "call to `{}` refused: it is not among the VM's allowed capabilities{} (further calls are refused silently)",
            id.info().name,
            allowed_list(&host.capabilities)
        );
        let plugin = host.plugin().cloned();
        host.embedder.log(plugin.as_deref(), LogLevel::Error, &message);
    }
    match id.info().result {
        Kind::Status => Status::InternalFailure.raw() as i32,
        Kind::Errno => ENOTCAPABLE,
        _ => 0,
    }
}

/// Notes that the host skips `callback` on context `context_id` because the VM's
/// [`CapabilityRestriction`] does not allow it: counted, and logged the first time per VM.
#[cold]
#[inline(never)]
pub(crate) fn skip_callback(host: &mut VmHost, callback: Callback, context_id: u32) {
    host.services.security().callbacks_skipped.fetch_add(1, Ordering::Relaxed);
    if !host.denials_logged.1.contains(callback) {
        host.denials_logged.1.insert(callback);
        let message = format!(
            "callback `{callback}` not called: it is not among the VM's allowed capabilities{} (further skips are silent)",
            allowed_list(&host.capabilities)
        );
        let plugin = host.contexts.get(&context_id).and_then(|c| host.contexts.get(&c.root)).and_then(|r| match &r.kind {
            crate::host::ContextKind::Root(r) => Some(r.plugin.clone()),
            crate::host::ContextKind::Stream(_) => None,
        });
        host.embedder.log(plugin.as_deref(), LogLevel::Error, &message);
    }
}

/// Checks a callout's `upstream` against the effective plugin's allowed upstreams: `Ok` when it
/// may go; else counted, logged at WARN the first time per VM, and refused with what the
/// reference host answers for an unknown cluster (Envoy's `Context::httpCall` and
/// `Context::grpcCall`: `BadArgument` for HTTP, `ParseFailure` for gRPC), so the plugin cannot
/// tell a refused upstream from one that does not exist.
pub(crate) fn check_upstream(host: &mut VmHost, upstream: &str, grpc: bool) -> Result<(), Status> {
    let Some(plugin) = host.plugin().filter(|p| !p.policy.allows_upstream(upstream)).cloned() else { return Ok(()) };
    host.services.security().callouts_refused.fetch_add(1, Ordering::Relaxed);
    if !host.callout_refusal_logged {
        host.callout_refusal_logged = true;
        let allowed = plugin.policy.allowed_upstreams.as_deref().unwrap_or_default().join(", ");
        let message = format!(
            "{} callout to upstream `{upstream}` refused: the plugin may call out only to [{allowed}] (further refusals are counted silently)",
            if grpc { "gRPC" } else { "HTTP" }
        );
        host.embedder.log(Some(&plugin), LogLevel::Warn, &message);
    }
    Err(if grpc { Status::ParseFailure } else { Status::BadArgument })
}

fn allowed_list(capabilities: &CapabilityRestriction) -> String {
    format!(" ({})", capabilities.names().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_hidden_in_any_case() {
        let p = PluginPolicy::default().hide_headers(CREDENTIAL_HEADERS).hide_headers(["X-Api-Key"]);
        assert!(p.hides_header(b"Authorization"));
        assert!(p.hides_header(b"x-api-key"));
        assert!(!p.hides_header(b"authorization2"));
        assert_eq!(p.hidden_headers().len(), 4);
        assert!(!PluginPolicy::default().hides_header(b"cookie"));
    }

    #[test]
    fn a_hidden_property_hides_its_children_and_parents_not_its_siblings() {
        let p = PluginPolicy::default().hide_properties(["source.address"]);
        assert!(p.hides_property(b"source\0address"));
        assert!(p.hides_property(b"source\0address\0x"));
        assert!(p.hides_property(b"source"), "a parent would carry it");
        assert!(!p.hides_property(b"source\0port"));
        assert!(!p.hides_property(b"source\0addressbook"));
        assert!(!p.hides_property(b"sourc"));
    }

    #[test]
    fn header_properties_lose_hidden_headers_and_everything_derived_from_them() {
        let p = PluginPolicy::default().hide_headers(CREDENTIAL_HEADERS).hide_headers(["user-agent"]);
        let map = abi::encode_map(&[(":path", "/"), ("Authorization", "Bearer s3cret"), ("x-a", "1"), ("cookie", "c=1")]);
        let seen = p.sanitize_property(b"request\0headers", map).unwrap();
        assert_eq!(seen, abi::encode_map(&[(":path", "/"), ("x-a", "1")]));
        assert_eq!(p.sanitize_property(b"request\0headers\0authorization", b"Bearer s3cret".to_vec()), Err(Status::NotFound));
        assert_eq!(p.sanitize_property(b"request\0headers\0Cookie", b"c=1".to_vec()), Err(Status::NotFound));
        assert_eq!(p.sanitize_property(b"request\0headers\0x-a", b"1".to_vec()), Ok(b"1".to_vec()));
        assert_eq!(p.sanitize_property(b"request\0useragent", b"curl".to_vec()), Err(Status::NotFound));
        assert_eq!(p.sanitize_property(b"request\0path", b"/".to_vec()), Ok(b"/".to_vec()));
        assert_eq!(p.sanitize_property(b"request\0total_size", 9i64.to_le_bytes().to_vec()), Err(Status::NotFound));
        assert_eq!(p.sanitize_property(b"request\0size", 9i64.to_le_bytes().to_vec()), Ok(9i64.to_le_bytes().to_vec()));
        // A map value that does not decode cannot be filtered: hidden whole.
        assert_eq!(p.sanitize_property(b"response\0headers", b"\xff".to_vec()), Err(Status::NotFound));
        // Without hidden headers, nothing changes.
        let none = PluginPolicy::default();
        assert_eq!(none.sanitize_property(b"request\0total_size", vec![1]), Ok(vec![1]));
        assert_eq!(none.sanitize_property(b"response\0headers", b"\xff".to_vec()), Ok(b"\xff".to_vec()));
    }

    #[test]
    fn maps_and_counts_leave_hidden_headers_out_and_callout_maps_only_when_asked() {
        let p = PluginPolicy::default().hide_headers(["authorization"]);
        let map = crate::HeaderMap::from_pairs([("a", "1"), ("authorization", "x"), ("b", "2")]);
        assert_eq!(p.visible(&map), crate::HeaderMap::from_pairs([("a", "1"), ("b", "2")]));
        assert_eq!(p.visible_len(&map), 2);
        assert!(p.sanitizes(abi::MapType::HttpRequestHeaders));
        assert!(!p.sanitizes(abi::MapType::HttpCallResponseHeaders));
        let both = PluginPolicy { sanitize_callout_responses: true, ..p };
        assert!(both.sanitizes(abi::MapType::GrpcReceiveInitialMetadata));
        assert!(!PluginPolicy::default().sanitizes(abi::MapType::HttpRequestHeaders));
    }

    #[test]
    fn upstreams_are_allowed_by_list() {
        assert!(PluginPolicy::default().allows_upstream("any"));
        let p = PluginPolicy::default().allow_upstreams(["auth"]);
        assert!(p.allows_upstream("auth"));
        assert!(!p.allows_upstream("Auth"));
        assert!(!p.is_empty());
    }
}
