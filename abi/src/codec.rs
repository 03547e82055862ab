//! The serialized header map: headers, trailers and gRPC metadata on the wire.
//!
//! Layout (all integers little-endian `u32`): the pair count `N`; then `N` pairs of
//! (key length, value length); then for each pair the key bytes, a 0 byte, the value bytes and a
//! 0 byte. Lengths exclude the 0 bytes. An empty map is zero bytes, a lone count of 0, or a single
//! 0 byte.
//!
//! Decoding never reads past its input: a count or length that runs past the buffer, a missing 0
//! terminator, or bytes left over after the last pair make the map malformed, and so does a map
//! over the [`MapLimits`]. [`decode_map`] says why ([`MapError`]); host functions use
//! [`decode_map_lenient`], which reads such a map as empty, as the C++ host does
//! (`src/pairs_util.cc` `PairsUtil::toPairs` returns no pairs, and no error).

/// Size limits applied when decoding a map from a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLimits {
    /// The most pairs a map may have.
    pub max_pairs: u32,
    /// The most bytes a serialized map may take.
    pub max_bytes: usize,
}

impl Default for MapLimits {
    /// The C++ host's limits: 1024 pairs and 1 MiB.
    fn default() -> Self {
        MapLimits { max_pairs: 1024, max_bytes: 1 << 20 }
    }
}

/// Why a serialized map could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The input ends before the count, the length table or a key or value does.
    Truncated,
    /// A key or value is not followed by its 0 byte.
    MissingTerminator,
    /// Bytes remain after the last pair.
    TrailingBytes,
    /// More pairs than [`MapLimits::max_pairs`].
    TooManyPairs,
    /// More bytes than [`MapLimits::max_bytes`].
    TooLarge,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MapError::Truncated => "serialized map is truncated: a count or length runs past its end",
            MapError::MissingTerminator => "serialized map lacks the 0 byte after a key or value",
            MapError::TrailingBytes => "serialized map has bytes after its last pair",
            MapError::TooManyPairs => "serialized map has more pairs than allowed",
            MapError::TooLarge => "serialized map is larger than allowed",
        })
    }
}

impl std::error::Error for MapError {}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The (key, value) pairs of a decoded map, borrowed from the serialized bytes.
pub type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// Decodes a serialized map as the C++ host does (`PairsUtil::toPairs`): the pairs, or none at
/// all when [`decode_map`] refuses the map (malformed or over `limits`). No error reaches the
/// guest: a malformed map empties what it is set into, and a callout or local reply goes out
/// without those headers.
pub fn decode_map_lenient(bytes: &[u8], limits: MapLimits) -> Pairs<'_> {
    decode_map(bytes, limits).unwrap_or_default()
}

/// Decodes a serialized map into (key, value) slices of `bytes`, in order, or says why it is
/// malformed.
pub fn decode_map(bytes: &[u8], limits: MapLimits) -> Result<Pairs<'_>, MapError> {
    if bytes.len() > limits.max_bytes {
        return Err(MapError::TooLarge);
    }
    if bytes.is_empty() || bytes == [0] {
        return Ok(Vec::new());
    }
    let count = read_u32(bytes, 0).ok_or(MapError::Truncated)?;
    if count > limits.max_pairs {
        return Err(MapError::TooManyPairs);
    }
    let count = count as usize;
    // The length table: 8 bytes a pair after the count; `count` is at most `max_pairs`, so no
    // overflow on 64-bit, and checked anyway.
    let table_end = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .ok_or(MapError::Truncated)?;
    if table_end > bytes.len() {
        return Err(MapError::Truncated);
    }
    let mut pairs = Vec::with_capacity(count);
    let mut at = table_end;
    for i in 0..count {
        let key_len = read_u32(bytes, 4 + i * 8).ok_or(MapError::Truncated)? as usize;
        let value_len = read_u32(bytes, 8 + i * 8).ok_or(MapError::Truncated)? as usize;
        let key = take_terminated(bytes, &mut at, key_len)?;
        let value = take_terminated(bytes, &mut at, value_len)?;
        pairs.push((key, value));
    }
    if at != bytes.len() {
        return Err(MapError::TrailingBytes);
    }
    Ok(pairs)
}

fn take_terminated<'a>(bytes: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], MapError> {
    let end = at.checked_add(len).ok_or(MapError::Truncated)?;
    let field = bytes.get(*at..end).ok_or(MapError::Truncated)?;
    match bytes.get(end) {
        Some(0) => {}
        Some(_) => return Err(MapError::MissingTerminator),
        None => return Err(MapError::Truncated),
    }
    *at = end + 1;
    Ok(field)
}

/// The number of bytes [`encode_map`] produces for these pairs.
pub fn encoded_len<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> usize {
    4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.as_ref().len() + v.as_ref().len() + 2)
        .sum::<usize>()
}

/// Serializes pairs, in order. An empty map is a lone count of 0.
///
/// # Panics
/// If a key, a value or the pair count does not fit in a `u32`: the host never holds such a map.
pub fn encode_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(pairs));
    let len32 = |n: usize| u32::try_from(n).expect("header map field larger than 4 GiB");
    out.extend_from_slice(&len32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len32(k.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len32(v.as_ref().len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &[u8] = &[
        2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'1', 0, b'b', 0, b'2',
        b'2', 0,
    ];

    fn pairs(v: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        v.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn encodes_the_reference_example() {
        assert_eq!(encode_map(&pairs(&[("a", "1"), ("b", "22")])), EXAMPLE);
        assert_eq!(encoded_len(&pairs(&[("a", "1"), ("b", "22")])), EXAMPLE.len());
    }

    #[test]
    fn decodes_the_reference_example() {
        let m = decode_map(EXAMPLE, MapLimits::default()).unwrap();
        assert_eq!(m, vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"22"[..])]);
    }

    #[test]
    fn round_trips_empty_binary_and_repeated_keys() {
        let cases = [
            pairs(&[]),
            pairs(&[("", "")]),
            pairs(&[(":path", "/"), ("x", ""), ("x", "2")]),
            vec![(vec![0xff, 0, 1], vec![0u8; 300])],
        ];
        for case in cases {
            let bytes = encode_map(&case);
            let back: Vec<_> = decode_map(&bytes, MapLimits::default())
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
            assert_eq!(back, case);
        }
    }

    #[test]
    fn accepts_every_spelling_of_empty() {
        for empty in [&[][..], &[0][..], &[0, 0, 0, 0][..]] {
            assert!(decode_map(empty, MapLimits::default()).unwrap().is_empty());
        }
    }

    #[test]
    fn refuses_malformed_maps_without_reading_past_them() {
        let l = MapLimits::default();
        // A count with no length table.
        assert_eq!(decode_map(&[1, 0, 0, 0], l), Err(MapError::Truncated));
        // Fewer than 4 bytes that are not a single 0.
        assert_eq!(decode_map(&[1, 0], l), Err(MapError::Truncated));
        // A huge count.
        assert_eq!(decode_map(&[0xff, 0xff, 0xff, 0xff], l), Err(MapError::TooManyPairs));
        // Every prefix of the example is truncated.
        for n in 1..EXAMPLE.len() {
            assert!(decode_map(&EXAMPLE[..n], l).is_err(), "prefix {n}");
        }
        // A length running past the end.
        let mut m = EXAMPLE.to_vec();
        m[4] = 0xff;
        assert_eq!(decode_map(&m, l), Err(MapError::Truncated));
        let mut m = EXAMPLE.to_vec();
        m[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_map(&m, l), Err(MapError::Truncated));
        // A terminator that is not 0.
        let mut m = EXAMPLE.to_vec();
        m[21] = b'x';
        assert_eq!(decode_map(&m, l), Err(MapError::MissingTerminator));
        // Bytes after the last pair.
        let mut m = EXAMPLE.to_vec();
        m.push(7);
        assert_eq!(decode_map(&m, l), Err(MapError::TrailingBytes));
    }

    #[test]
    fn lenient_decoding_reads_anything_refused_as_empty() {
        let good = encode_map(&[("a", "1")]);
        assert_eq!(decode_map_lenient(&good, MapLimits::default()), vec![(&b"a"[..], &b"1"[..])]);
        let mut truncated = good.clone();
        truncated.pop();
        let too_many = encode_map(&vec![("k", "v"); 1025]);
        for bad in [&truncated[..], &[5, 0, 0, 0][..], &too_many[..], &[1, 2][..]] {
            assert!(decode_map_lenient(bad, MapLimits::default()).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn applies_limits() {
        let big = encode_map(&[("k", "v"); 3]);
        let l = MapLimits { max_pairs: 2, max_bytes: 1 << 20 };
        assert_eq!(decode_map(&big, l), Err(MapError::TooManyPairs));
        let l = MapLimits { max_pairs: 10, max_bytes: 8 };
        assert_eq!(decode_map(&big, l), Err(MapError::TooLarge));
    }
}
