//! Header maps: HTTP headers and trailers, callout answers and gRPC metadata.
//!
//! Which map a callback may reach, and whether it may change it, is decided by
//! [`VmHost::map`](crate::VmHost): elsewhere `BadArgument` (as Envoy's `Context::getMap` and
//! `getConstMap` give no map), and `NotFound` for a map that no longer exists in `proxy_on_log`.
//! The callout and gRPC maps (types 4 to 7) are read-only. Keys match ASCII-case-insensitively
//! and are stored lowercased; pseudo-headers stay in front. A malformed or oversize serialized
//! map reads as empty, with no error, as the C++ host reads it (`PairsUtil::toPairs`).
//!
//! Headers the plugin's [`PluginPolicy`](crate::PluginPolicy) hides (in a stream map; in a
//! callout answer or gRPC metadata when it sanitises those too) are invisible here: reads
//! answer as for an absent header and leave them out of sizes and pairs, and writes leave them
//! as they are (the proxy forwards them unchanged): adding, replacing or removing one is OK and
//! does nothing, and `proxy_set_header_map_pairs` keeps them, dropping hidden names from the
//! new pairs.

use abi::{AbiVersion, MapType, Status};

use crate::{return_bytes, HostCx, HostResult};

fn map_type(raw: u32) -> Result<MapType, Status> {
    MapType::from_raw(raw).ok_or(Status::BadArgument)
}

/// `proxy_get_header_map_size`: writes Envoy's size of the map as a word: every key's and
/// value's length added up ([`HeaderMap::byte_size`](crate::HeaderMap::byte_size)), not the
/// serialized size. Like Envoy (`Context::getHeaderMapSize` asks `getMap`), only a map the
/// callback may change has one: types 4 to 7, and maps in `proxy_on_log`, are `BadArgument`.
pub fn proxy_get_header_map_size(cx: &mut dyn HostCx, map_type: u32, return_size: u64) -> HostResult {
    let map = self::map_type(map_type)?;
    let (mut mem, host) = cx.parts();
    let policy = host.sanitizing(map);
    let headers = host.map(map, true)?;
    let size = match &policy {
        Some(plugin) => plugin.policy.visible(headers).byte_size(),
        None => headers.byte_size(),
    } as u64;
    mem.write_word(return_size, size)?;
    Ok(())
}

/// `proxy_get_header_map_pairs`: returns the whole map, serialized. Always OK for a known map
/// type: a map the callback cannot reach now is read as empty (Envoy's
/// `Context::getHeaderMapPairs` serializes whatever `getConstMap` gives, null included). An
/// empty map comes back as address 0 and size 0, without calling the guest allocator
/// (`exports.cc` `get_header_map_pairs` hands back an empty string for no pairs).
pub fn proxy_get_header_map_pairs(cx: &mut dyn HostCx, map_type: u32, return_ptr: u64, return_size: u64) -> HostResult {
    let map = self::map_type(map_type)?;
    let host = cx.host();
    let policy = host.sanitizing(map);
    let bytes = match (host.map(map, false), &policy) {
        (Ok(headers), Some(plugin)) => {
            let shown = plugin.policy.visible(headers);
            if shown.is_empty() { Vec::new() } else { shown.encode() }
        }
        (Ok(headers), None) if !headers.is_empty() => headers.encode(),
        _ => Vec::new(),
    };
    return_bytes(cx, return_ptr, return_size, &bytes)
}

/// `proxy_set_header_map_pairs`: replaces the whole map with the serialized pairs (keys
/// lowercased, order kept, pseudo-headers in front). A malformed map, or one over the map
/// limits, reads as no pairs and empties the map, with OK (`PairsUtil::toPairs`, then Envoy's
/// `Context::setHeaderMapPairs`).
pub fn proxy_set_header_map_pairs(cx: &mut dyn HostCx, map_type: u32, map_ptr: u64, map_size: u64) -> HostResult {
    let map = self::map_type(map_type)?;
    let (mem, host) = cx.parts();
    let limits = host.map_limits;
    let policy = host.sanitizing(map);
    let target = host.map(map, true)?;
    let bytes = mem.read(map_ptr, map_size)?;
    let pairs = abi::decode_map_lenient(bytes, limits);
    match &policy {
        Some(plugin) => {
            let policy = &plugin.policy;
            let hidden: Vec<(Vec<u8>, Vec<u8>)> = target.pairs().iter().filter(|(k, _)| policy.hides_header(k)).cloned().collect();
            let shown = pairs.into_iter().filter(|(k, _)| !policy.hides_header(k));
            let kept: Vec<(Vec<u8>, Vec<u8>)> = shown.map(|(k, v)| (k.to_vec(), v.to_vec())).chain(hidden).collect();
            target.set_all(kept);
        }
        None => target.set_all(pairs),
    }
    Ok(())
}

/// `proxy_get_header_map_value`: returns the value of a key; the first one when it has several
/// (Envoy's `Context::getHeaderMapValue`, which notes the weakness; joining them would corrupt
/// `set-cookie`).
///
/// A missing key is `NotFound`, except for ABI 0.1.0 guests, which get OK and an empty value
/// (address 0, length 0), as their SDKs expect. The return pointers are checked before the
/// key is looked up, so they give `InvalidMemoryAccess` whether or not the key exists.
pub fn proxy_get_header_map_value(
    cx: &mut dyn HostCx,
    map_type: u32,
    key_ptr: u64,
    key_size: u64,
    return_ptr: u64,
    return_size: u64,
) -> HostResult {
    let map = self::map_type(map_type)?;
    // The value is copied out of the map before the guest allocator runs (which needs `cx`):
    // onto the stack when short, as header values mostly are.
    let mut short = [0u8; SHORT_VALUE];
    let long: Vec<u8>;
    let value: &[u8] = {
        let (mem, host) = cx.parts();
        let abi = host.abi_version();
        // Read first (whether the key is hidden needs the plugin, which the map's borrow would
        // lock out), but a bad map is refused before bad memory.
        let key = mem.read(key_ptr, key_size);
        let hidden = key.as_ref().is_ok_and(|key| host.hides_header_in(map).is_some_and(|p| p.policy.hides_header(key)));
        let headers = match host.map(map, false) {
            Ok(headers) => Some(headers),
            // A map gone in proxy_on_log: NOT_FOUND, or OK and empty for 0.1.0 (Envoy's
            // getHeaderMapValue in the access-log phase).
            Err(Status::NotFound) if abi == AbiVersion::V010 => None,
            Err(status) => return Err(status.into()),
        };
        let key = key?;
        mem.check_word(return_ptr)?;
        mem.check_word(return_size)?;
        match headers.and_then(|h| h.get(key)).filter(|_| !hidden) {
            Some(v) if v.len() <= SHORT_VALUE => {
                short[..v.len()].copy_from_slice(&v);
                &short[..v.len()]
            }
            Some(v) => {
                long = v.into_owned();
                &long
            }
            None if abi == AbiVersion::V010 => &[],
            None => return Err(Status::NotFound.into()),
        }
    };
    // The return words were checked above, before the allocator ran.
    cx.return_allocated(return_ptr, return_size, value)
}

/// Header values up to this many bytes are copied out of the map onto the stack.
const SHORT_VALUE: usize = 128;

/// `proxy_add_header_map_value`: adds a value for the key (lowercased), keeping the values it
/// already has: at the end, or after the last pseudo-header for a `:`-key.
pub fn proxy_add_header_map_value(
    cx: &mut dyn HostCx,
    map_type: u32,
    key_ptr: u64,
    key_size: u64,
    value_ptr: u64,
    value_size: u64,
) -> HostResult {
    let map = self::map_type(map_type)?;
    let (mem, host) = cx.parts();
    let policy = host.sanitizing(map);
    let headers = host.map(map, true)?;
    let key = mem.read(key_ptr, key_size)?;
    let value = mem.read(value_ptr, value_size)?;
    if !policy.is_some_and(|plugin| plugin.policy.hides_header(key)) {
        headers.add(key, value);
    }
    Ok(())
}

/// `proxy_replace_header_map_value`: sets the key (lowercased) to exactly this value: every
/// value it had is removed and the pair added at the end (Envoy's `HeaderMapImpl::setCopy`), so
/// a present key moves.
pub fn proxy_replace_header_map_value(
    cx: &mut dyn HostCx,
    map_type: u32,
    key_ptr: u64,
    key_size: u64,
    value_ptr: u64,
    value_size: u64,
) -> HostResult {
    let map = self::map_type(map_type)?;
    let (mem, host) = cx.parts();
    let policy = host.sanitizing(map);
    let headers = host.map(map, true)?;
    let key = mem.read(key_ptr, key_size)?;
    let value = mem.read(value_ptr, value_size)?;
    if !policy.is_some_and(|plugin| plugin.policy.hides_header(key)) {
        headers.replace(key, value);
    }
    Ok(())
}

/// `proxy_remove_header_map_value`: removes every value of the key; OK when it was absent.
pub fn proxy_remove_header_map_value(cx: &mut dyn HostCx, map_type: u32, key_ptr: u64, key_size: u64) -> HostResult {
    let map = self::map_type(map_type)?;
    let (mem, host) = cx.parts();
    let policy = host.sanitizing(map);
    let headers = host.map(map, true)?;
    let key = mem.read(key_ptr, key_size)?;
    if !policy.is_some_and(|plugin| plugin.policy.hides_header(key)) {
        headers.remove(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use abi::{AbiVersion, Callback, MapType, Status};

    use crate::host::CallData;
    use crate::hostcalls::testing::{status, TestCx, MEM, OOB, RET_PTR, RET_SCALAR, RET_SIZE, ROOT, STREAM, TCP};
    use crate::hostcalls::{
        proxy_add_header_map_value, proxy_get_header_map_pairs, proxy_get_header_map_size, proxy_get_header_map_value,
        proxy_remove_header_map_value, proxy_replace_header_map_value, proxy_set_header_map_pairs,
    };
    use crate::{HeaderMap, Trap};

    const REQ: u32 = MapType::HttpRequestHeaders as u32;

    /// The TestCx request headers, serialized: `{":path": "/", "x-a": "1"}`.
    const REQUEST_HEADERS: &[u8] = &[
        2, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, b':', b'p', b'a', b't', b'h', 0, b'/', 0, b'x',
        b'-', b'a', 0, b'1', 0,
    ];

    fn request_headers(cx: &mut TestCx) -> HeaderMap {
        cx.stream(STREAM).request_headers.clone()
    }

    /// Every host function of this family, called on `map` with valid inputs placed in memory
    /// (key `x-a`, value `v`, map `{k: v}`) and valid return slots.
    fn call_each(cx: &mut TestCx, map: u32) -> Vec<(&'static str, Result<i32, Trap>)> {
        let (k, kn) = cx.put(100, b"x-a");
        let (v, vn) = cx.put(200, b"v");
        let (m, mn) = cx.put(300, &abi::encode_map(&[("k", "v")]));
        vec![
            ("size", proxy_get_header_map_size(cx, map, RET_SCALAR)),
            ("pairs", proxy_get_header_map_pairs(cx, map, RET_PTR, RET_SIZE)),
            ("set", proxy_set_header_map_pairs(cx, map, m, mn)),
            ("get", proxy_get_header_map_value(cx, map, k, kn, RET_PTR, RET_SIZE)),
            ("add", proxy_add_header_map_value(cx, map, k, kn, v, vn)),
            ("replace", proxy_replace_header_map_value(cx, map, k, kn, v, vn)),
            ("remove", proxy_remove_header_map_value(cx, map, k, kn)),
        ]
    }

    /// A TestCx whose plugin hides the credentials preset, with `Authorization` and `cookie`
    /// among the request headers.
    fn sanitizing() -> TestCx {
        let mut cx = TestCx::new();
        cx.set_policy(crate::PluginPolicy::default().hide_headers(crate::CREDENTIAL_HEADERS));
        cx.stream(STREAM).request_headers.add(b"Authorization", b"Bearer s3cret");
        cx.stream(STREAM).request_headers.add(b"cookie", b"c=1");
        cx
    }

    #[test]
    fn hidden_headers_read_as_absent_and_are_left_out_of_sizes_and_pairs() {
        let mut cx = sanitizing();
        for key in [&b"authorization"[..], b"AUTHORIZATION", b"Cookie"] {
            let (k, kn) = cx.put(100, key);
            assert_eq!(status(proxy_get_header_map_value(&mut cx, REQ, k, kn, RET_PTR, RET_SIZE)), Status::NotFound);
        }
        assert_eq!(status(proxy_get_header_map_pairs(&mut cx, REQ, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), REQUEST_HEADERS);
        assert_eq!(status(proxy_get_header_map_size(&mut cx, REQ, RET_SCALAR)), Status::Ok);
        let unsanitized = request_headers(&mut TestCx::new()).byte_size();
        assert_eq!(cx.u32_at(RET_SCALAR) as usize, unsanitized, "Envoy's byte size, without the hidden headers");
        // An ABI 0.1.0 guest gets what it gets for any absent header: OK and an empty value.
        let mut old = TestCx::with_version(AbiVersion::V010);
        old.set_policy(crate::PluginPolicy::default().hide_headers(["authorization"]));
        old.stream(STREAM).request_headers.add(b"authorization", b"x");
        let (k, kn) = old.put(100, b"authorization");
        assert_eq!(status(proxy_get_header_map_value(&mut old, REQ, k, kn, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!(old.u32_at(RET_SIZE), 0);
    }

    #[test]
    fn writes_leave_hidden_headers_as_the_proxy_has_them() {
        let mut cx = sanitizing();
        let before = request_headers(&mut cx);
        let (k, kn) = cx.put(100, b"authorization");
        let (v, vn) = cx.put(200, b"forged");
        assert_eq!(status(proxy_add_header_map_value(&mut cx, REQ, k, kn, v, vn)), Status::Ok);
        assert_eq!(status(proxy_replace_header_map_value(&mut cx, REQ, k, kn, v, vn)), Status::Ok);
        assert_eq!(status(proxy_remove_header_map_value(&mut cx, REQ, k, kn)), Status::Ok);
        assert_eq!(request_headers(&mut cx), before);
        // Set pairs replaces what the plugin sees and keeps the hidden ones.
        let (m, mn) = cx.put(300, &abi::encode_map(&[("x-b", "2"), ("cookie", "forged")]));
        assert_eq!(status(proxy_set_header_map_pairs(&mut cx, REQ, m, mn)), Status::Ok);
        assert_eq!(
            request_headers(&mut cx),
            HeaderMap::from_pairs([("x-b", "2"), ("authorization", "Bearer s3cret"), ("cookie", "c=1")])
        );
    }

    #[test]
    fn callout_answers_are_sanitised_only_when_the_policy_says_so() {
        let answer = || CallData::HttpCallResponse {
            headers: HeaderMap::from_pairs([(":status", "200"), ("set-cookie", "s=1"), ("authorization", "t")]),
            body: Vec::new(),
            trailers: HeaderMap::new(),
        };
        let map = MapType::HttpCallResponseHeaders as u32;
        for (callout_responses, want) in [(false, Status::Ok), (true, Status::NotFound)] {
            let mut cx = TestCx::new();
            let mut policy = crate::PluginPolicy::default().hide_headers(["authorization"]);
            policy.sanitize_callout_responses = callout_responses;
            cx.set_policy(policy);
            cx.enter(Callback::OnHttpCallResponse, ROOT);
            cx.set_data(answer());
            let (k, kn) = cx.put(100, b"authorization");
            assert_eq!(status(proxy_get_header_map_value(&mut cx, map, k, kn, RET_PTR, RET_SIZE)), want);
        }
    }

    #[test]
    fn size_is_envoys_byte_size_and_pairs_serialize_the_map() {
        let mut cx = TestCx::new();
        assert_eq!(status(proxy_get_header_map_size(&mut cx, REQ, RET_SCALAR)), Status::Ok);
        // ":path" "/" "x-a" "1": 5 + 1 + 3 + 1 (HeaderMapImpl::byteSize), not the serialized size.
        assert_eq!(cx.u32_at(RET_SCALAR), 10);
        assert_eq!(status(proxy_get_header_map_pairs(&mut cx, REQ, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), REQUEST_HEADERS);
    }

    #[test]
    fn pairs_of_an_empty_map_are_nothing_and_allocate_nothing() {
        let mut cx = TestCx::new();
        cx.stream(STREAM).request_headers = HeaderMap::new();
        assert_eq!(status(proxy_get_header_map_size(&mut cx, REQ, RET_SCALAR)), Status::Ok);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        cx.put(RET_PTR, &[0xaa; 16]);
        assert_eq!(status(proxy_get_header_map_pairs(&mut cx, REQ, RET_PTR, RET_SIZE)), Status::Ok);
        // Address 0, size 0, as the C++ host hands back an empty string for no pairs.
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(cx.allocations, 0);
    }

    #[test]
    fn set_pairs_replaces_the_map_and_lowercases_keys() {
        let mut cx = TestCx::new();
        let (p, n) = cx.put(100, &abi::encode_map(&[("X-B", "2"), (":path", "/new"), ("x-b", "3")]));
        assert_eq!(status(proxy_set_header_map_pairs(&mut cx, REQ, p, n)), Status::Ok);
        // Pseudo-headers go in front, as in Envoy's header list.
        assert_eq!(request_headers(&mut cx), HeaderMap::from_pairs([(":path", "/new"), ("x-b", "2"), ("x-b", "3")]));
        // Every spelling of an empty map empties it.
        for empty in [&[][..], &[0][..], &[0, 0, 0, 0][..]] {
            let mut cx = TestCx::new();
            let (p, n) = cx.put(100, empty);
            assert_eq!(status(proxy_set_header_map_pairs(&mut cx, REQ, p, n)), Status::Ok);
            assert!(request_headers(&mut cx).is_empty());
        }
    }

    #[test]
    fn set_pairs_of_a_malformed_or_oversized_map_empties_the_map() {
        let mut truncated = abi::encode_map(&[("a", "1")]);
        truncated.pop();
        let mut long_key = abi::encode_map(&[("a", "1")]);
        long_key[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut trailing = abi::encode_map(&[("a", "1")]);
        trailing.push(9);
        let too_many = abi::encode_map(&vec![("k", "v"); 1025]);
        let cases: &[&[u8]] =
            &[&truncated, &long_key, &trailing, &[1, 0, 0, 0], &[1, 0], &[0xff, 0xff, 0xff, 0xff], &too_many];
        for (i, bytes) in cases.iter().enumerate() {
            let mut cx = TestCx::new();
            let (p, n) = cx.put(100, bytes);
            // PairsUtil::toPairs reads it as no pairs; setHeaderMapPairs then empties the map.
            assert_eq!(status(proxy_set_header_map_pairs(&mut cx, REQ, p, n)), Status::Ok, "case {i}");
            assert!(request_headers(&mut cx).is_empty(), "case {i} left the map");
        }
        // Exactly 1024 pairs is within the limit.
        let mut cx = TestCx::new();
        cx.mem.resize(1 << 20, 0);
        let (p, n) = cx.put(100_000, &abi::encode_map(&vec![("k", "v"); 1024]));
        assert_eq!(status(proxy_set_header_map_pairs(&mut cx, REQ, p, n)), Status::Ok);
        assert_eq!(request_headers(&mut cx).len(), 1024);
    }

    #[test]
    fn set_pairs_applies_the_byte_limit() {
        let mut cx = TestCx::new();
        cx.host.map_limits.max_bytes = 16;
        let (p, n) = cx.put(100, &abi::encode_map(&[("key", "value")]));
        assert_eq!(status(proxy_set_header_map_pairs(&mut cx, REQ, p, n)), Status::Ok);
        assert!(request_headers(&mut cx).is_empty());
    }

    #[test]
    fn get_value_matches_case_insensitively_and_answers_the_first_value() {
        let mut cx = TestCx::new();
        cx.stream(STREAM).request_headers.add(b"X-A", b"2");
        cx.stream(STREAM).request_headers.add(b"empty", b"");
        let cases: &[(&[u8], &[u8])] = &[(b"x-a", b"1"), (b"X-A", b"1"), (b":PATH", b"/")];
        for &(key, want) in cases {
            let (k, kn) = cx.put(100, key);
            assert_eq!(status(proxy_get_header_map_value(&mut cx, REQ, k, kn, RET_PTR, RET_SIZE)), Status::Ok);
            assert_eq!(cx.returned(RET_PTR, RET_SIZE), want);
        }
        // An empty value is address 0, length 0.
        let allocations = cx.allocations;
        let (k, kn) = cx.put(100, b"empty");
        assert_eq!(status(proxy_get_header_map_value(&mut cx, REQ, k, kn, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(cx.allocations, allocations);
    }

    #[test]
    fn get_value_of_a_missing_key_depends_on_the_abi_version() {
        for (version, expected) in
            [(AbiVersion::V021, Status::NotFound), (AbiVersion::V020, Status::NotFound), (AbiVersion::V010, Status::Ok)]
        {
            let mut cx = TestCx::with_version(version);
            cx.put(RET_PTR, &[0xaa; 16]);
            let (k, kn) = cx.put(100, b"x-missing");
            assert_eq!(
                status(proxy_get_header_map_value(&mut cx, REQ, k, kn, RET_PTR, RET_SIZE)),
                expected,
                "{version}"
            );
            if expected == Status::Ok {
                assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
            } else {
                assert_eq!(cx.u32_at(RET_PTR), 0xaaaa_aaaa);
            }
            assert_eq!(cx.allocations, 0);
        }
    }

    #[test]
    fn get_value_refuses_bad_memory() {
        let cases: &[(u64, u64, u64, u64)] = &[
            (OOB, 1, RET_PTR, RET_SIZE),
            (MEM - 1, 2, RET_PTR, RET_SIZE),
            (u64::MAX, 2, RET_PTR, RET_SIZE),
            (100, u64::MAX, RET_PTR, RET_SIZE),
            (u64::from(u32::MAX), u64::from(u32::MAX), RET_PTR, RET_SIZE),
            (100, 3, OOB, RET_SIZE),
            (100, 3, RET_PTR, MEM - 3),
            (100, 3, u64::MAX, RET_SIZE),
        ];
        for &(key_ptr, key_size, ret_ptr, ret_size) in cases {
            // An existing key (x-a) and a missing one (x-b): the same answer.
            for key in [b"x-a", b"x-b"] {
                let mut cx = TestCx::new();
                cx.put(100, key);
                assert_eq!(
                    status(proxy_get_header_map_value(&mut cx, REQ, key_ptr, key_size, ret_ptr, ret_size)),
                    Status::InvalidMemoryAccess,
                    "key {key_ptr}+{key_size} ret {ret_ptr} {ret_size}"
                );
                assert_eq!(cx.allocations, 0);
            }
        }
    }

    #[test]
    fn add_replace_and_remove_edit_the_map() {
        let mut cx = TestCx::new();
        let (k, kn) = cx.put(100, b"X-A");
        let (v, vn) = cx.put(200, b"2");
        let (e, en) = cx.put(300, b"");
        assert_eq!(status(proxy_add_header_map_value(&mut cx, REQ, k, kn, v, vn)), Status::Ok);
        assert_eq!(request_headers(&mut cx), HeaderMap::from_pairs([(":path", "/"), ("x-a", "1"), ("x-a", "2")]));
        assert_eq!(status(proxy_add_header_map_value(&mut cx, REQ, e, en, e, en)), Status::Ok);
        assert_eq!(request_headers(&mut cx).len(), 4);
        assert_eq!(status(proxy_remove_header_map_value(&mut cx, REQ, e, en)), Status::Ok);

        let (r, rn) = cx.put(400, b"9");
        assert_eq!(status(proxy_replace_header_map_value(&mut cx, REQ, k, kn, r, rn)), Status::Ok);
        assert_eq!(request_headers(&mut cx), HeaderMap::from_pairs([(":path", "/"), ("x-a", "9")]));
        // Replacing moves the key to the end (Envoy's setCopy: remove, then add).
        let (o, on) = cx.put(600, b"other");
        assert_eq!(status(proxy_add_header_map_value(&mut cx, REQ, o, on, v, vn)), Status::Ok);
        assert_eq!(status(proxy_replace_header_map_value(&mut cx, REQ, k, kn, r, rn)), Status::Ok);
        assert_eq!(request_headers(&mut cx), HeaderMap::from_pairs([(":path", "/"), ("other", "2"), ("x-a", "9")]));
        assert_eq!(status(proxy_remove_header_map_value(&mut cx, REQ, o, on)), Status::Ok);
        let (n, nn) = cx.put(500, b"new");
        assert_eq!(status(proxy_replace_header_map_value(&mut cx, REQ, n, nn, e, en)), Status::Ok);
        assert_eq!(request_headers(&mut cx), HeaderMap::from_pairs([(":path", "/"), ("x-a", "9"), ("new", "")]));

        assert_eq!(status(proxy_remove_header_map_value(&mut cx, REQ, k, kn)), Status::Ok);
        assert_eq!(request_headers(&mut cx), HeaderMap::from_pairs([(":path", "/"), ("new", "")]));
        // Removing an absent key is OK and changes nothing.
        assert_eq!(status(proxy_remove_header_map_value(&mut cx, REQ, k, kn)), Status::Ok);
        assert_eq!(request_headers(&mut cx), HeaderMap::from_pairs([(":path", "/"), ("new", "")]));
    }

    #[test]
    fn edits_refuse_bad_memory_without_changing_the_map() {
        let ranges: &[(u64, u64)] = &[(OOB, 1), (MEM - 1, 2), (u64::MAX, 2), (100, u64::MAX), (u64::from(u32::MAX), 2)];
        for &(ptr, len) in ranges {
            let mut cx = TestCx::new();
            let (ok, okn) = cx.put(100, b"x-a");
            let results = [
                proxy_add_header_map_value(&mut cx, REQ, ptr, len, ok, okn),
                proxy_add_header_map_value(&mut cx, REQ, ok, okn, ptr, len),
                proxy_replace_header_map_value(&mut cx, REQ, ptr, len, ok, okn),
                proxy_replace_header_map_value(&mut cx, REQ, ok, okn, ptr, len),
                proxy_remove_header_map_value(&mut cx, REQ, ptr, len),
                proxy_set_header_map_pairs(&mut cx, REQ, ptr, len),
            ];
            for (i, r) in results.into_iter().enumerate() {
                assert_eq!(status(r), Status::InvalidMemoryAccess, "call {i} with {ptr}+{len}");
            }
            assert_eq!(request_headers(&mut cx).encode(), REQUEST_HEADERS);
        }
    }

    #[test]
    fn size_and_pairs_refuse_bad_return_pointers() {
        for bad in [OOB, MEM - 3, u64::MAX] {
            let mut cx = TestCx::new();
            assert_eq!(status(proxy_get_header_map_size(&mut cx, REQ, bad)), Status::InvalidMemoryAccess);
            assert_eq!(status(proxy_get_header_map_pairs(&mut cx, REQ, bad, RET_SIZE)), Status::InvalidMemoryAccess);
            assert_eq!(status(proxy_get_header_map_pairs(&mut cx, REQ, RET_PTR, bad)), Status::InvalidMemoryAccess);
            assert_eq!(cx.allocations, 0);
        }
    }

    #[test]
    fn reads_report_allocator_faults() {
        type Call = fn(&mut TestCx) -> Result<i32, Trap>;
        let calls: [(&str, Call); 2] = [
            ("pairs", |cx| proxy_get_header_map_pairs(cx, REQ, RET_PTR, RET_SIZE)),
            ("value", |cx| {
                let (k, kn) = cx.put(100, b"x-a");
                proxy_get_header_map_value(cx, REQ, k, kn, RET_PTR, RET_SIZE)
            }),
        ];
        for (name, call) in calls {
            for answer in [0, MEM, u64::MAX] {
                let mut cx = TestCx::new();
                cx.alloc_answer = Some(answer);
                assert_eq!(status(call(&mut cx)), Status::InvalidMemoryAccess, "{name}, allocator answered {answer}");
            }
            let mut cx = TestCx::new();
            cx.alloc_traps = true;
            assert_eq!(call(&mut cx).unwrap_err().message, "allocator trapped", "{name}");
        }
    }

    #[test]
    fn unknown_map_types_are_bad_arguments_before_memory_checks() {
        for map in [8, 99, u32::MAX] {
            let mut cx = TestCx::new();
            for (name, r) in call_each(&mut cx, map) {
                assert_eq!(status(r), Status::BadArgument, "{name} on map {map}");
            }
            let results = [
                proxy_get_header_map_size(&mut cx, map, OOB),
                proxy_get_header_map_pairs(&mut cx, map, OOB, OOB),
                proxy_set_header_map_pairs(&mut cx, map, OOB, 1),
                proxy_get_header_map_value(&mut cx, map, OOB, 1, OOB, OOB),
                proxy_add_header_map_value(&mut cx, map, OOB, 1, OOB, 1),
                proxy_replace_header_map_value(&mut cx, map, OOB, 1, OOB, 1),
                proxy_remove_header_map_value(&mut cx, map, OOB, 1),
            ];
            for (i, r) in results.into_iter().enumerate() {
                assert_eq!(status(r), Status::BadArgument, "call {i} on map {map}");
            }
            assert_eq!(request_headers(&mut cx).encode(), REQUEST_HEADERS);
        }
    }

    /// (callback, context, map, status of reads, status of writes): maps a callback may not
    /// touch at all. Reads are `get` (value) and `size` (which Envoy answers from the writable
    /// map); `pairs` is always OK, with nothing.
    const UNAVAILABLE: &[(Callback, u32, MapType, Status, Status)] = &[
        // Stream maps from a root context.
        (Callback::OnTick, ROOT, MapType::HttpRequestHeaders, Status::BadArgument, Status::BadArgument),
        (Callback::OnTick, ROOT, MapType::HttpResponseHeaders, Status::BadArgument, Status::BadArgument),
        // Parts of the stream that have not arrived.
        (Callback::OnRequestHeaders, STREAM, MapType::HttpResponseHeaders, Status::BadArgument, Status::BadArgument),
        (Callback::OnRequestHeaders, STREAM, MapType::HttpRequestTrailers, Status::BadArgument, Status::BadArgument),
        (Callback::OnRequestHeaders, STREAM, MapType::HttpResponseTrailers, Status::BadArgument, Status::BadArgument),
        // A TCP connection has no HTTP maps.
        (Callback::OnNewConnection, TCP, MapType::HttpRequestHeaders, Status::BadArgument, Status::BadArgument),
        // Callout and gRPC maps outside their callbacks.
        (
            Callback::OnRequestHeaders,
            STREAM,
            MapType::HttpCallResponseHeaders,
            Status::BadArgument,
            Status::BadArgument,
        ),
        (Callback::OnTick, ROOT, MapType::HttpCallResponseTrailers, Status::BadArgument, Status::BadArgument),
        (Callback::OnTick, ROOT, MapType::GrpcReceiveInitialMetadata, Status::BadArgument, Status::BadArgument),
        (Callback::OnTick, ROOT, MapType::GrpcReceiveTrailingMetadata, Status::BadArgument, Status::BadArgument),
        // In proxy_on_log a map that does not exist reads as NotFound; every write is refused.
        (Callback::OnLog, STREAM, MapType::HttpResponseHeaders, Status::NotFound, Status::BadArgument),
        (Callback::OnLog, ROOT, MapType::HttpRequestHeaders, Status::NotFound, Status::BadArgument),
        (Callback::OnLog, STREAM, MapType::HttpCallResponseHeaders, Status::NotFound, Status::BadArgument),
    ];

    #[test]
    fn maps_not_available_now_are_refused() {
        for &(callback, context, map, read, write) in UNAVAILABLE {
            let mut cx = TestCx::new();
            cx.enter(callback, context);
            for (name, r) in call_each(&mut cx, map.raw()) {
                let expected = match name {
                    "get" => read,
                    "pairs" => Status::Ok,
                    _ => write,
                };
                assert_eq!(status(r), expected, "{name} of {map} in {callback} on {context}");
                if name == "pairs" {
                    assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0), "pairs of {map}");
                }
            }
            assert_eq!(cx.allocations, 0);
            // Availability is checked before memory.
            assert_eq!(status(proxy_get_header_map_value(&mut cx, map.raw(), OOB, 1, OOB, OOB)), read);
            assert_eq!(status(proxy_set_header_map_pairs(&mut cx, map.raw(), OOB, 1)), write);
        }
    }

    /// What the family answers, in `call_each` order, on a map the plugin may read but not
    /// change (in `proxy_on_log`; a callout's or gRPC call's map): the reads OK, the size and
    /// every write BAD_ARGUMENT.
    const READ_ONLY: [(&str, Status); 7] = [
        ("size", Status::BadArgument),
        ("pairs", Status::Ok),
        ("set", Status::BadArgument),
        ("get", Status::Ok),
        ("add", Status::BadArgument),
        ("replace", Status::BadArgument),
        ("remove", Status::BadArgument),
    ];

    #[test]
    fn on_log_reads_maps_but_refuses_writes() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnLog, STREAM);
        let results = call_each(&mut cx, REQ);
        let statuses: Vec<_> = results.into_iter().map(|(name, r)| (name, status(r))).collect();
        assert_eq!(statuses, READ_ONLY);
        assert_eq!(request_headers(&mut cx).encode(), REQUEST_HEADERS);
    }

    #[test]
    fn callout_and_grpc_maps_are_reachable_in_their_callbacks() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnHttpCallResponse, ROOT);
        cx.set_data(CallData::HttpCallResponse {
            headers: HeaderMap::from_pairs([(":status", "200")]),
            body: Vec::new(),
            trailers: HeaderMap::from_pairs([("t", "1")]),
        });
        let (k, kn) = cx.put(100, b":status");
        let map = MapType::HttpCallResponseHeaders.raw();
        assert_eq!(status(proxy_get_header_map_value(&mut cx, map, k, kn, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"200");
        let map = MapType::HttpCallResponseTrailers.raw();
        assert_eq!(status(proxy_get_header_map_pairs(&mut cx, map, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), abi::encode_map(&[("t", "1")]));

        cx.enter(Callback::OnGrpcReceiveInitialMetadata, ROOT);
        cx.set_data(CallData::GrpcInitialMetadata(HeaderMap::from_pairs([("m", "1")])));
        let map = MapType::GrpcReceiveInitialMetadata.raw();
        let (m, mn) = cx.put(100, b"m");
        assert_eq!(status(proxy_get_header_map_value(&mut cx, map, m, mn, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!(cx.returned(RET_PTR, RET_SIZE), b"1");
    }

    #[test]
    fn callout_and_grpc_maps_are_read_only() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnGrpcReceiveTrailingMetadata, ROOT);
        cx.set_data(CallData::GrpcTrailingMetadata(HeaderMap::from_pairs([("x-a", "1")])));
        let results = call_each(&mut cx, MapType::GrpcReceiveTrailingMetadata.raw());
        let statuses: Vec<_> = results.into_iter().map(|(name, r)| (name, status(r))).collect();
        // Envoy's getMap has none of them: size and every write are BAD_ARGUMENT.
        assert_eq!(statuses, READ_ONLY);
        let CallData::GrpcTrailingMetadata(m) = &cx.host.call.data else { panic!("the call data changed") };
        assert_eq!(m, &HeaderMap::from_pairs([("x-a", "1")]));
    }

    #[test]
    fn in_proxy_on_log_request_trailers_never_read_and_v010_gets_an_empty_value() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnLog, STREAM);
        cx.phase(STREAM).request_trailers = true;
        cx.stream(STREAM).request_trailers.add(b"t", b"1");
        let (k, kn) = cx.put(100, b"t");
        let trailers = MapType::HttpRequestTrailers.raw();
        // Envoy's access log has no request trailers, even when they arrived.
        assert_eq!(status(proxy_get_header_map_value(&mut cx, trailers, k, kn, RET_PTR, RET_SIZE)), Status::NotFound);
        let mut cx = TestCx::with_version(AbiVersion::V010);
        cx.enter(Callback::OnLog, STREAM);
        let (k, kn) = cx.put(100, b"t");
        cx.put(RET_PTR, &[0xaa; 16]);
        assert_eq!(status(proxy_get_header_map_value(&mut cx, trailers, k, kn, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
    }

    #[test]
    fn trailers_are_created_by_a_write_in_the_last_body_callback_not_by_a_read() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnRequestBody, STREAM);
        cx.phase(STREAM).request_trailers_creatable = true;
        let trailers = MapType::HttpRequestTrailers.raw();
        let (k, kn) = cx.put(100, b"x-t");
        assert_eq!(status(proxy_get_header_map_value(&mut cx, trailers, k, kn, RET_PTR, RET_SIZE)), Status::BadArgument);
        assert_eq!(status(proxy_get_header_map_pairs(&mut cx, trailers, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!(status(proxy_add_header_map_value(&mut cx, trailers, k, kn, k, kn)), Status::Ok);
        assert_eq!(status(proxy_get_header_map_value(&mut cx, trailers, k, kn, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!(cx.stream(STREAM).request_trailers, HeaderMap::from_pairs([("x-t", "x-t")]));
        // Not the last body callback: no trailers to create.
        let mut cx = TestCx::new();
        cx.enter(Callback::OnRequestBody, STREAM);
        let (k, kn) = cx.put(100, b"x-t");
        assert_eq!(status(proxy_add_header_map_value(&mut cx, trailers, k, kn, k, kn)), Status::BadArgument);
    }

    #[test]
    fn response_maps_are_writable_once_they_arrived() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnResponseHeaders, STREAM);
        cx.phase(STREAM).response_headers = true;
        let (m, mn) = cx.put(100, &abi::encode_map(&[(":status", "404")]));
        let map = MapType::HttpResponseHeaders.raw();
        assert_eq!(status(proxy_set_header_map_pairs(&mut cx, map, m, mn)), Status::Ok);
        assert_eq!(cx.stream(STREAM).response_headers, HeaderMap::from_pairs([(":status", "404")]));
    }
}
