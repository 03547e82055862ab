//! Properties: `proxy_get_property` and `proxy_set_property`.
//!
//! A path is the raw bytes the plugin sent (segments joined by 0 bytes); one trailing 0 byte,
//! which some SDKs add, is dropped. The core answers `plugin_name`, `plugin_root_id` and
//! `plugin_vm_id` itself. Anything else goes to the effective stream first
//! ([`Stream::property`](crate::Stream::property)), then to the [`Embedder`](crate::Embedder).
//! As in Envoy (`Context::getProperty`, `setProperty`), properties are set on a stream only:
//! a root context has no stream info to hold them.

use abi::Status;

use crate::host::ContextKind;
use crate::{return_bytes, HostCx, HostResult, PluginInfo, PropertyCx, VmHost};

/// The properties the core answers from the plugin itself.
#[derive(Clone, Copy)]
enum PluginField {
    Name,
    RootId,
    VmId,
}

impl PluginField {
    fn of(path: &[u8]) -> Option<Self> {
        match path {
            b"plugin_name" => Some(PluginField::Name),
            b"plugin_root_id" => Some(PluginField::RootId),
            b"plugin_vm_id" => Some(PluginField::VmId),
            _ => None,
        }
    }

    fn value(self, plugin: &PluginInfo) -> &str {
        match self {
            PluginField::Name => &plugin.name,
            PluginField::RootId => &plugin.root_id,
            PluginField::VmId => &plugin.vm_id,
        }
    }
}

/// The path without one trailing 0 byte.
fn trim(path: &[u8]) -> &[u8] {
    path.strip_suffix(&[0]).unwrap_or(path)
}

/// The value of a property for the effective context, as the plugin's
/// [`PluginPolicy`](crate::PluginPolicy) lets it see it: a hidden property (or one above or
/// below it) is `NotFound` whatever answers it, and with hidden headers the header-map
/// properties lose them and the attributes taken from them are `NotFound`
/// ([`PluginPolicy::sanitize_property`](crate::PluginPolicy)).
fn lookup(host: &VmHost, path: &[u8]) -> Result<Vec<u8>, Status> {
    let policy = host.plugin().map(|p| &p.policy).filter(|p| !p.is_empty());
    // A hidden path is not even asked for.
    if policy.is_some_and(|p| p.hides_property(path)) {
        return Err(Status::NotFound);
    }
    let value = lookup_unfiltered(host, path)?;
    match policy {
        Some(policy) => policy.sanitize_property(path, value),
        None => Ok(value),
    }
}

/// The value of a property for the effective context, before the policy.
fn lookup_unfiltered(host: &VmHost, path: &[u8]) -> Result<Vec<u8>, Status> {
    if let Some(field) = PluginField::of(path) {
        let plugin = host.plugin().ok_or(Status::NotFound)?;
        return Ok(field.value(plugin).as_bytes().to_vec());
    }
    let effective = host.effective();
    let local = match host.contexts.get(&effective).map(|c| &c.kind) {
        Some(ContextKind::Stream(s)) => s.stream.property(path),
        _ => None,
    };
    if let Some(value) = local {
        return Ok(value);
    }
    let plugin = host.plugin().ok_or(Status::NotFound)?;
    host.embedder.get_property(PropertyCx { plugin, context_id: effective, vm: host.token() }, path)
}

/// `proxy_get_property`: the value of the property at the path, as raw bytes (an empty value
/// is address 0, length 0, status OK).
///
/// `NotFound` when neither the core, the effective context nor the embedder knows it (the
/// `plugin_*` ones and the embedder need a plugin: `NotFound` before any root context);
/// whatever else the embedder answers (`SerializationFailure`, ...) is returned as is. An
/// empty path names no value, which Envoy cannot serialize: `SerializationFailure`. The
/// return pointers are checked before the lookup.
pub fn proxy_get_property(
    cx: &mut dyn HostCx,
    path_ptr: u64,
    path_size: u64,
    return_value_ptr: u64,
    return_value_size: u64,
) -> HostResult {
    let value = {
        let (mem, host) = cx.parts();
        let path = trim(mem.read(path_ptr, path_size)?);
        mem.check_word(return_value_ptr)?;
        mem.check_word(return_value_size)?;
        if path.is_empty() {
            return Err(Status::SerializationFailure.into());
        }
        lookup(host, path)?
    };
    return_bytes(cx, return_value_ptr, return_value_size, &value)
}

/// `proxy_set_property`: sets the property at the path.
///
/// On a stream context the stream's [`Stream::set_property`](crate::Stream::set_property)
/// decides, or hands the property to the embedder. A root context has no stream to hold it:
/// `NotFound` (Envoy's `Context::setProperty` without stream info; the Rust SDK panics there
/// as it does in Envoy). Setting a `plugin_*` property on a stream is OK and changes nothing:
/// Envoy stores it, but its reads answer the plugin's own values first. Without a plugin:
/// `NotFound`.
pub fn proxy_set_property(
    cx: &mut dyn HostCx,
    path_ptr: u64,
    path_size: u64,
    value_ptr: u64,
    value_size: u64,
) -> HostResult {
    let (mem, host) = cx.parts();
    let path = trim(mem.read(path_ptr, path_size)?);
    let value = mem.read(value_ptr, value_size)?;
    let effective = host.effective();
    match host.contexts.get_mut(&effective).map(|c| &mut c.kind) {
        Some(ContextKind::Stream(s)) => {
            if PluginField::of(path).is_some() {
                return Ok(());
            }
            if let Some(result) = s.stream.set_property(path, value) {
                return Ok(result?);
            }
        }
        _ => return Err(Status::NotFound.into()),
    }
    let plugin = host.plugin().ok_or(Status::NotFound)?;
    host.embedder.set_property(PropertyCx { plugin, context_id: effective, vm: host.token() }, path, value)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use abi::{BufferType, Callback, MapType, Status};

    use crate::host::{ContextKind, StreamContext, StreamPhase};
    use crate::hostcalls::testing::{status, TestCx, MEM, OOB, RET_PTR, RET_SIZE, ROOT, STREAM, TCP};
    use crate::hostcalls::{proxy_get_property, proxy_set_property};
    use crate::{HeaderMap, Stream, StreamEffect};

    /// A stream that stores no properties: every property goes to the embedder.
    struct Bare;

    impl Stream for Bare {
        fn map(&mut self, _map: MapType) -> Option<&mut HeaderMap> {
            None
        }
        fn buffer(&mut self, _buffer: BufferType) -> Option<&mut Vec<u8>> {
            None
        }
        fn effect(&mut self, _effect: StreamEffect) -> Result<(), Status> {
            Ok(())
        }
        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
    }

    /// A TestCx whose embedder knows `node\0id` = `n1` and `empty` = ``, whose HTTP stream
    /// knows `request\0path` = `/p` and `node\0id` = `stream-node`, running on `context`.
    fn on(context: u32) -> TestCx {
        let mut cx = TestCx::new();
        {
            let mut p = cx.embedder.properties.lock().unwrap();
            p.insert(b"node\0id".to_vec(), b"n1".to_vec());
            p.insert(b"empty".to_vec(), Vec::new());
        }
        let props = &mut cx.stream(STREAM).properties;
        props.insert(b"request\0path".to_vec(), b"/p".to_vec());
        props.insert(b"node\0id".to_vec(), b"stream-node".to_vec());
        cx.enter(if context == ROOT { Callback::OnTick } else { Callback::OnRequestHeaders }, context);
        cx
    }

    fn make_bare(cx: &mut TestCx) {
        cx.host.contexts.get_mut(&STREAM).unwrap().kind =
            ContextKind::Stream(StreamContext { stream: Box::new(Bare), tcp: false, phase: StreamPhase::default(), allows_stop: false });
    }

    /// The property at `path` as `proxy_get_property` answers it: (status, value).
    fn get(cx: &mut TestCx, path: &[u8]) -> (Status, Vec<u8>) {
        let (p, n) = cx.put(100, path);
        cx.put(RET_PTR, &[0xaa; 16]);
        let s = status(proxy_get_property(cx, p, n, RET_PTR, RET_SIZE));
        let value = if s == Status::Ok { cx.returned(RET_PTR, RET_SIZE) } else { Vec::new() };
        (s, value)
    }

    fn set(cx: &mut TestCx, path: &[u8], value: &[u8]) -> Status {
        let (p, n) = cx.put(100, path);
        let (v, vn) = cx.put(1000, value);
        status(proxy_set_property(cx, p, n, v, vn))
    }

    #[test]
    fn get_answers_from_plugin_context_then_embedder() {
        const OK: Status = Status::Ok;
        const NOT_FOUND: Status = Status::NotFound;
        // (context, path, status, value); 99 is no context at all, so no plugin.
        let cases: &[(u32, &[u8], Status, &[u8])] = &[
            (ROOT, b"plugin_name", OK, b"test"),
            (STREAM, b"plugin_root_id", OK, b"root"),
            (TCP, b"plugin_vm_id", OK, b"vm"),
            (STREAM, b"plugin_name\0", OK, b"test"),
            (99, b"plugin_name", NOT_FOUND, b""),
            // The stream answers first, the embedder for the rest.
            (STREAM, b"request\0path", OK, b"/p"),
            (STREAM, b"request\0path\0", OK, b"/p"),
            (STREAM, b"node\0id", OK, b"stream-node"),
            (TCP, b"node\0id", OK, b"n1"),
            (ROOT, b"node\0id", OK, b"n1"),
            (ROOT, b"node\0id\0", OK, b"n1"),
            (ROOT, b"request\0path", NOT_FOUND, b""),
            (STREAM, b"node", NOT_FOUND, b""),
            // An empty path: nothing to serialize.
            (STREAM, b"", Status::SerializationFailure, b""),
            (ROOT, b"\0", Status::SerializationFailure, b""),
            // Only one trailing 0 is dropped.
            (ROOT, b"node\0id\0\0", NOT_FOUND, b""),
            (99, b"node\0id", NOT_FOUND, b""),
        ];
        for &(context, path, want_status, want_value) in cases {
            let mut cx = on(context);
            let what = format!("{:?} on {context}", String::from_utf8_lossy(path));
            assert_eq!(get(&mut cx, path), (want_status, want_value.to_vec()), "{what}");
        }
    }

    #[test]
    fn hidden_properties_and_header_attributes_read_as_absent() {
        let mut cx = on(STREAM);
        cx.embedder.properties.lock().unwrap().insert(b"source\0address".to_vec(), b"192.0.2.1:5".to_vec());
        let headers = abi::encode_map(&[(":path", "/"), ("authorization", "Bearer s3cret")]);
        cx.stream(STREAM).properties.insert(b"request\0headers".to_vec(), headers);
        cx.set_policy(crate::PluginPolicy::default().hide_headers(["authorization"]).hide_properties(["source.address"]));
        assert_eq!(get(&mut cx, b"source\0address"), (Status::NotFound, Vec::new()));
        assert_eq!(get(&mut cx, b"source\0address\0"), (Status::NotFound, Vec::new()));
        assert_eq!(get(&mut cx, b"source"), (Status::NotFound, Vec::new()));
        assert_eq!(get(&mut cx, b"request\0headers"), (Status::Ok, abi::encode_map(&[(":path", "/")])));
        assert_eq!(get(&mut cx, b"request\0headers\0authorization").0, Status::NotFound);
        assert_eq!(get(&mut cx, b"node\0id"), (Status::Ok, b"stream-node".to_vec()));
    }

    #[test]
    fn get_returns_an_empty_value_as_null() {
        let mut cx = on(ROOT);
        let (p, n) = cx.put(100, b"empty");
        cx.put(RET_PTR, &[0xaa; 16]);
        assert_eq!(status(proxy_get_property(&mut cx, p, n, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(cx.allocations, 0);
    }

    #[test]
    fn get_refuses_bad_memory() {
        let cases: &[(u64, u64, u64, u64)] = &[
            (OOB, 1, RET_PTR, RET_SIZE),
            (MEM - 1, 2, RET_PTR, RET_SIZE),
            (u64::MAX, 2, RET_PTR, RET_SIZE),
            (100, u64::MAX, RET_PTR, RET_SIZE),
            (u64::from(u32::MAX), u64::from(u32::MAX), RET_PTR, RET_SIZE),
            (100, 11, OOB, RET_SIZE),
            (100, 11, RET_PTR, MEM - 2),
            (100, 11, RET_PTR, u64::MAX),
        ];
        // A known path and an unknown one give the same answer.
        for path in [&b"plugin_name"[..], b"plugin_nope"] {
            for &(p, n, ret_ptr, ret_size) in cases {
                let mut cx = on(STREAM);
                cx.put(100, path);
                let got = status(proxy_get_property(&mut cx, p, n, ret_ptr, ret_size));
                assert_eq!(got, Status::InvalidMemoryAccess, "path {p}+{n} ret {ret_ptr} {ret_size}");
                assert_eq!(cx.allocations, 0);
            }
        }
    }

    #[test]
    fn get_reports_allocator_faults() {
        for answer in [0, MEM - 2, u64::MAX] {
            let mut cx = on(STREAM);
            cx.alloc_answer = Some(answer);
            assert_eq!(get(&mut cx, b"plugin_name").0, Status::InvalidMemoryAccess, "allocator answered {answer}");
        }
        let mut cx = on(STREAM);
        cx.alloc_traps = true;
        let (p, n) = cx.put(100, b"plugin_name");
        let trap = proxy_get_property(&mut cx, p, n, RET_PTR, RET_SIZE).unwrap_err();
        assert_eq!(trap.message, "allocator trapped");
    }

    #[test]
    fn set_on_a_stream_goes_to_the_stream() {
        let mut cx = on(STREAM);
        assert_eq!(set(&mut cx, b"filter\0state\0", b"v1"), Status::Ok);
        assert_eq!(cx.stream(STREAM).properties.get(&b"filter\0state"[..]), Some(&b"v1".to_vec()));
        assert_eq!(get(&mut cx, b"filter\0state"), (Status::Ok, b"v1".to_vec()));
        // The embedder's copy is untouched.
        assert_eq!(set(&mut cx, b"node\0id", b"changed"), Status::Ok);
        assert_eq!(cx.embedder.properties.lock().unwrap().get(&b"node\0id"[..]), Some(&b"n1".to_vec()));
    }

    #[test]
    fn set_on_a_root_context_is_not_found() {
        // No stream info to hold it (Envoy's setProperty), whatever the path.
        let mut cx = on(ROOT);
        for path in [&b"mine"[..], b"node\0id\0", b"plugin_name"] {
            assert_eq!(set(&mut cx, path, b"1"), Status::NotFound);
        }
        assert_eq!(get(&mut cx, b"mine").0, Status::NotFound);
        assert_eq!(get(&mut cx, b"node\0id"), (Status::Ok, b"n1".to_vec()));
    }

    #[test]
    fn a_stream_without_properties_hands_them_to_the_embedder() {
        let mut cx = on(STREAM);
        make_bare(&mut cx);
        assert_eq!(get(&mut cx, b"node\0id"), (Status::Ok, b"n1".to_vec()));
        assert_eq!(get(&mut cx, b"request\0path"), (Status::NotFound, Vec::new()));
        // RecordingEmbedder changes only properties it knows.
        assert_eq!(set(&mut cx, b"node\0id", b"n2"), Status::Ok);
        assert_eq!(get(&mut cx, b"node\0id"), (Status::Ok, b"n2".to_vec()));
        assert_eq!(set(&mut cx, b"unknown", b"x"), Status::NotFound);
    }

    #[test]
    fn set_of_plugin_properties_on_a_stream_changes_nothing() {
        for path in [&b"plugin_name"[..], b"plugin_root_id", b"plugin_vm_id\0"] {
            let mut cx = on(STREAM);
            assert_eq!(set(&mut cx, path, b"x"), Status::Ok);
            assert_eq!(get(&mut cx, b"plugin_name"), (Status::Ok, b"test".to_vec()));
            assert_eq!(cx.stream(STREAM).properties.len(), 2);
        }
        let mut cx = on(99);
        assert_eq!(set(&mut cx, b"node\0id", b"x"), Status::NotFound);
    }

    #[test]
    fn set_refuses_bad_memory() {
        let ranges: &[(u64, u64)] = &[(OOB, 1), (MEM - 1, 2), (u64::MAX, 2), (100, u64::MAX), (u64::from(u32::MAX), 2)];
        for &(ptr, len) in ranges {
            for context in [ROOT, STREAM] {
                let mut cx = on(context);
                let (p, n) = cx.put(100, b"key");
                assert_eq!(status(proxy_set_property(&mut cx, ptr, len, p, n)), Status::InvalidMemoryAccess);
                assert_eq!(status(proxy_set_property(&mut cx, p, n, ptr, len)), Status::InvalidMemoryAccess);
                let (q, qn) = cx.put(200, b"plugin_name");
                assert_eq!(status(proxy_set_property(&mut cx, q, qn, ptr, len)), Status::InvalidMemoryAccess);
                assert_eq!(cx.stream(STREAM).properties.len(), 2);
            }
        }
    }
}
