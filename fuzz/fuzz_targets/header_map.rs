//! The serialized header map from a guest: decoding never panics or reads past its input, and
//! whatever decodes re-encodes to a map that decodes to the same pairs; the host's `HeaderMap`
//! agrees with the codec on the encoding and its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use abi::{decode_map, encode_map, encoded_len, MapLimits};
use proxy_wasm_host::HeaderMap;

fuzz_target!(|input: (u16, u32, &[u8])| {
    let (max_pairs, max_bytes, bytes) = input;
    let limits = MapLimits { max_pairs: u32::from(max_pairs), max_bytes: max_bytes as usize };
    let Ok(pairs) = decode_map(bytes, limits) else { return };
    assert!(pairs.len() <= usize::from(max_pairs));
    let encoded = encode_map(&pairs);
    assert_eq!(encoded.len(), encoded_len(&pairs));
    let again = decode_map(&encoded, MapLimits { max_pairs: u32::MAX, max_bytes: usize::MAX }).expect("re-encoded map decodes");
    assert_eq!(again, pairs);
    let map = HeaderMap::from_pairs(pairs.iter().copied());
    assert_eq!(map.encode().len(), map.encoded_len());
    assert_eq!(map.len(), pairs.len());
});
