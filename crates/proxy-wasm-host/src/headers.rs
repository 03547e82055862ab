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

    /// The value of `key`: its first value when it has several, as Envoy answers
    /// (`source/extensions/common/wasm/context.cc` `Context::getHeaderMapValue` returns
    /// `entry[0]`; joining would corrupt `set-cookie`). `None` when absent.
    pub fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| std::borrow::Cow::Borrowed(&v[..]))
    }

    /// The value of `key` as UTF-8, for embedders and tests.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Where a new pair with `key` goes: a pseudo-header (`:`-key) after the last pseudo-header,
    /// any other key at the end, as Envoy's header list keeps pseudo-headers in front
    /// (`source/common/http/header_map_impl.h` `HeaderList::insert`).
    fn insert_at(&self, key: &[u8]) -> usize {
        if key.first() == Some(&b':') {
            self.pairs.iter().rposition(|(k, _)| k.first() == Some(&b':')).map_or(0, |i| i + 1)
        } else {
            self.pairs.len()
        }
    }

    /// Adds a value for `key` (lowercased), keeping existing ones: at the end, or after the last
    /// pseudo-header for a `:`-key (Envoy's `addCopy`).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let at = self.insert_at(key);
        self.pairs.insert(at, (key.to_ascii_lowercase(), value.to_vec()));
    }

    /// Sets `key` (lowercased) to exactly this value: every value it had is removed, then the
    /// pair is added as [`add`](Self::add) adds it, so a present key moves to the end (Envoy's
    /// `HeaderMapImpl::setCopy`: `remove`, then `addCopy`).
    pub fn replace(&mut self, key: &[u8], value: &[u8]) {
        self.remove(key);
        self.add(key, value);
    }

    /// Removes every value of `key`.
    pub fn remove(&mut self, key: &[u8]) {
        self.pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }

    /// Replaces every pair with these (keys lowercased), each added as [`add`](Self::add) adds
    /// it, so pseudo-headers end up in front (Envoy's `Context::setHeaderMapPairs`).
    pub fn set_all<K: AsRef<[u8]>, V: AsRef<[u8]>>(&mut self, pairs: impl IntoIterator<Item = (K, V)>) {
        self.pairs.clear();
        for (k, v) in pairs {
            self.add(k.as_ref(), v.as_ref());
        }
    }

    /// The size Envoy reports for the map (`HeaderMapImpl::byteSize`): the lengths of every key
    /// and value added up, without counts or separators.
    pub fn byte_size(&self) -> usize {
        self.pairs.iter().map(|(k, v)| k.len() + v.len()).sum()
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
    fn get_answers_the_first_value_case_insensitively() {
        let m = HeaderMap::from_pairs([("Set-Cookie", "a=1, Path=/"), ("x", "1"), ("set-cookie", "b=2")]);
        assert_eq!(m.get(b"SET-COOKIE").as_deref(), Some(&b"a=1, Path=/"[..]));
        assert_eq!(m.get(b"x").as_deref(), Some(&b"1"[..]));
        assert_eq!(m.get(b"y"), None);
    }

    #[test]
    fn replace_removes_every_value_and_appends() {
        let mut m = HeaderMap::from_pairs([("a", "1"), ("B", "2"), ("c", "3"), ("b", "4")]);
        m.replace(b"b", b"9");
        assert_eq!(m, HeaderMap::from_pairs([("a", "1"), ("c", "3"), ("b", "9")]));
        m.replace(b"D", b"4");
        assert_eq!(m.pairs().last().unwrap(), &(b"d".to_vec(), b"4".to_vec()));
        m.remove(b"A");
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn pseudo_headers_stay_in_front() {
        let mut m = HeaderMap::from_pairs([(":path", "/"), ("x-a", "1")]);
        m.add(b":x", b"1");
        m.add(b"x-b", b"2");
        m.replace(b":path", b"/new");
        let keys: Vec<&[u8]> = m.pairs().iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(keys, [&b":x"[..], b":path", b"x-a", b"x-b"]);
        m.set_all([("x-set", "1"), (":status", "201")]);
        assert_eq!(m, HeaderMap::from_pairs([(":status", "201"), ("x-set", "1")]));
        // Into a map without pseudo-headers, a pseudo-header goes first.
        let mut m = HeaderMap::from_pairs([("x", "1")]);
        m.add(b":a", b"1");
        assert_eq!(m.pairs()[0].0, b":a");
    }

    #[test]
    fn byte_size_adds_key_and_value_lengths() {
        let m = HeaderMap::from_pairs([(":path", "/a"), ("x-a", "1"), ("x-multi", "a"), ("x-multi", "b")]);
        assert_eq!(m.byte_size(), 27);
        assert_eq!(HeaderMap::new().byte_size(), 0);
    }
}
