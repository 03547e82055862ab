//! The host's header map: ordered pairs, case-insensitive keys, lowercased on write.

/// An ordered list of header (or trailer, or metadata) pairs.
///
/// Keys match ASCII-case-insensitively and are stored lowercased when written through the ABI,
/// as HTTP/2 and Envoy do. Several values for one key are kept in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> Self {
        HeaderMap::default()
    }

    /// A map of these pairs, keys kept as given.
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        HeaderMap { pairs: pairs.into_iter().map(|(k, v)| (k.as_ref().to_vec(), v.as_ref().to_vec())).collect() }
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.pairs
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The value of `key`: several values are joined by `", "` in order (Envoy returns only
    /// the first, a weakness its own code notes). `None` when absent.
    pub fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        let mut values = self.pairs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v);
        let first = values.next()?;
        match values.next() {
            None => Some(std::borrow::Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = first.clone();
                for v in std::iter::once(second).chain(values) {
                    joined.extend_from_slice(b", ");
                    joined.extend_from_slice(v);
                }
                Some(std::borrow::Cow::Owned(joined))
            }
        }
    }

    /// The value of `key` as UTF-8, for embedders and tests.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Appends a value for `key` (lowercased), keeping existing ones.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        self.pairs.push((key.to_ascii_lowercase(), value.to_vec()));
    }

    /// Sets `key` (lowercased) to exactly this value: the first occurrence is replaced in place,
    /// later ones removed; appended when absent.
    pub fn replace(&mut self, key: &[u8], value: &[u8]) {
        match self.pairs.iter().position(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some(i) => {
                self.pairs[i] = (key.to_ascii_lowercase(), value.to_vec());
                let mut n = 0;
                self.pairs.retain(|(k, _)| {
                    n += 1;
                    n - 1 <= i || !k.eq_ignore_ascii_case(key)
                });
            }
            None => self.add(key, value),
        }
    }

    /// Removes every value of `key`.
    pub fn remove(&mut self, key: &[u8]) {
        self.pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }

    /// Replaces every pair with these (keys lowercased).
    pub fn set_all<K: AsRef<[u8]>, V: AsRef<[u8]>>(&mut self, pairs: impl IntoIterator<Item = (K, V)>) {
        self.pairs.clear();
        for (k, v) in pairs {
            self.add(k.as_ref(), v.as_ref());
        }
    }

    /// The serialized form ([`abi::encode_map`]).
    pub fn encode(&self) -> Vec<u8> {
        abi::encode_map(&self.pairs)
    }

    /// The size of the serialized form.
    pub fn encoded_len(&self) -> usize {
        abi::encoded_len(&self.pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_joins_repeated_values_case_insensitively() {
        let m = HeaderMap::from_pairs([("Accept", "a"), ("x", "1"), ("accept", "b")]);
        assert_eq!(m.get(b"ACCEPT").as_deref(), Some(&b"a, b"[..]));
        assert_eq!(m.get(b"x").as_deref(), Some(&b"1"[..]));
        assert_eq!(m.get(b"y"), None);
    }

    #[test]
    fn replace_keeps_position_and_drops_duplicates() {
        let mut m = HeaderMap::from_pairs([("a", "1"), ("B", "2"), ("c", "3"), ("b", "4")]);
        m.replace(b"b", b"9");
        assert_eq!(m, HeaderMap::from_pairs([("a", "1"), ("b", "9"), ("c", "3")]));
        m.replace(b"D", b"4");
        assert_eq!(m.pairs().last().unwrap(), &(b"d".to_vec(), b"4".to_vec()));
        m.remove(b"A");
        assert_eq!(m.len(), 3);
    }
}
