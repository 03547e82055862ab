//! [`IdTable`]: the table of the ids a VM hands out (context ids, callout ids, metric ids).
//!
//! Every host call that touches a stream finds its context here by id (the effective context),
//! so the lookup is on the path of nearly every host function, and each stream inserts and
//! removes its context. The ids are `u32`s the host makes (a counter, or a counter in steps of
//! four with a type in the low bits), never ones a guest chooses, though a guest may ask for
//! any id. A general hash map spends a lookup on what such keys do not need: hashbrown's is a
//! chain of a multiply, a 16-byte group load, a compare, a mask, a bit scan, a multiply and the
//! key's load, each waiting on the one before. This table is open addressing with linear
//! probing over a power-of-two array, the slot picked by Fibonacci hashing (a multiply and a
//! shift), at most half full, and a removal shifts the entries after it back (no tombstones):
//! a lookup is the multiply, the shift and the key's load, and usually one slot.

/// The multiplier of Fibonacci hashing: 2^32 divided by the golden ratio, odd. Consecutive ids
/// land far apart, and so do ids in steps of four.
const FIBONACCI: u32 = 0x9e37_79b9;

/// The fewest slots a table that holds anything has.
const MIN_SLOTS: usize = 8;

/// A map from host-made `u32` ids to `V`: `get`, `insert`, `remove` in expected constant time
/// (see the [module documentation](self)). Iteration order is unspecified.
pub(crate) struct IdTable<V> {
    /// A power of two of slots (none before the first insert), at most half of them full.
    slots: Vec<Option<Entry<V>>>,
    len: usize,
    /// `32 - log2(slots.len())`: the hash's top bits pick the slot.
    shift: u32,
}

/// A full slot: the value first, so that it sits at the slot's start, aligned as it is
/// wherever it was made. Behind a 4-byte id it was copied in and out at an offset of 4 bytes,
/// and each copy read back, 16 bytes at a time, stores made at other offsets: a
/// store-forwarding stall per 16 bytes on every insert and remove (a sixth of an empty
/// stream's time in `perf`).
#[repr(C)]
struct Entry<V> {
    value: V,
    id: u32,
}

impl<V> Default for IdTable<V> {
    fn default() -> Self {
        IdTable { slots: Vec::new(), len: 0, shift: 32 }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for IdTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V> IdTable<V> {
    /// Where `id`'s probe starts. Only called on a table with slots (the shift is then below
    /// 32, and the result below `slots.len()`).
    #[inline(always)]
    fn home(&self, id: u32) -> usize {
        (id.wrapping_mul(FIBONACCI) >> self.shift) as usize
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Where `id` is (`Ok`), or the empty slot that ends its probe, where it would go (`Err`).
    /// Only called on a table with slots.
    #[inline]
    fn probe(&self, id: u32) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = self.home(id);
        // Ends: at most half the slots are full, so an empty one comes.
        loop {
            match &self.slots[i] {
                Some(e) if e.id == id => return Ok(i),
                Some(_) => i = (i + 1) & mask,
                None => return Err(i),
            }
        }
    }

    /// The slot holding `id`, if any.
    #[inline]
    fn find(&self, id: u32) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.probe(id).ok()
    }

    /// How many ids the table holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it holds `id`.
    #[inline]
    pub(crate) fn contains_key(&self, id: &u32) -> bool {
        self.find(*id).is_some()
    }

    /// The value of `id`.
    #[inline]
    pub(crate) fn get(&self, id: &u32) -> Option<&V> {
        let i = self.find(*id)?;
        self.slots[i].as_ref().map(|e| &e.value)
    }

    /// The value of `id`, to change.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: &u32) -> Option<&mut V> {
        let i = self.find(*id)?;
        self.slots[i].as_mut().map(|e| &mut e.value)
    }

    /// Puts `value` under `id`; the value it had, if any, is given back.
    #[inline]
    pub(crate) fn insert(&mut self, id: u32, value: V) -> Option<V> {
        // One probe finds `id`, or the slot it goes to unless the table must grow first.
        let free = if self.slots.is_empty() {
            None
        } else {
            match self.probe(id) {
                Ok(i) => return self.slots[i].replace(Entry { value, id }).map(|old| old.value),
                Err(i) => Some(i),
            }
        };
        let i = match free {
            Some(i) if (self.len + 1) * 2 <= self.slots.len() => i,
            _ => {
                self.grow();
                self.probe(id).expect_err("an id not in the table is not in it after growing")
            }
        };
        self.slots[i] = Some(Entry { value, id });
        self.len += 1;
        None
    }

    /// Takes `id` out, giving its value back.
    #[inline]
    pub(crate) fn remove(&mut self, id: &u32) -> Option<V> {
        let mut hole = self.find(*id)?;
        let Entry { value, .. } = self.slots[hole].take()?;
        self.len -= 1;
        // Backward shift: an entry after the hole, in the same run of full slots, moves into the
        // hole unless its home lies after the hole (cyclically), so that every entry stays
        // reachable from its home without passing an empty slot.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some(entry) = &self.slots[j] else { break };
            let home = self.home(entry.id);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
        }
        Some(value)
    }

    /// Every id and its value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&u32, &V)> {
        self.slots.iter().filter_map(|s| s.as_ref().map(|e| (&e.id, &e.value)))
    }

    /// Every value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Twice the slots (`MIN_SLOTS` the first time), every entry placed again.
    #[cold]
    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, std::iter::repeat_with(|| None).take(slots).collect());
        self.shift = 32 - slots.trailing_zeros();
        self.len = 0;
        for Entry { value, id } in old.into_iter().flatten() {
            self.insert(id, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::IdTable;

    /// Every entry is reachable and the table agrees with a `HashMap`.
    fn agrees(table: &IdTable<u64>, model: &HashMap<u32, u64>) {
        assert_eq!(table.len(), model.len());
        for (id, v) in model {
            assert_eq!(table.get(id), Some(v), "id {id}");
        }
        let mut seen: Vec<_> = table.iter().map(|(k, v)| (*k, *v)).collect();
        seen.sort_unstable();
        let mut want: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    #[test]
    fn empty_table_answers_without_slots() {
        let mut t = IdTable::<u8>::default();
        assert!(t.is_empty());
        assert_eq!(t.get(&0), None);
        assert_eq!(t.get_mut(&7), None);
        assert!(!t.contains_key(&u32::MAX));
        assert_eq!(t.remove(&1), None);
        assert!(t.slots.is_empty(), "no slots until the first insert");
    }

    #[test]
    fn insert_replaces_and_remove_gives_back() {
        let mut t = IdTable::default();
        assert_eq!(t.insert(5, "a"), None);
        assert_eq!(t.insert(5, "b"), Some("a"));
        assert_eq!(t.len(), 1);
        *t.get_mut(&5).unwrap() = "c";
        assert_eq!(t.remove(&5), Some("c"));
        assert_eq!(t.remove(&5), None);
        assert!(t.is_empty());
    }

    #[test]
    fn stays_at_most_half_full() {
        let mut t = IdTable::default();
        for id in 0..1000 {
            t.insert(id, ());
            assert!(t.len() * 2 <= t.slots.len(), "{} entries in {} slots", t.len(), t.slots.len());
            assert!(t.slots.len().is_power_of_two());
        }
    }

    /// The stream pattern (a few long-lived roots, contexts made and ended mostly in order,
    /// some outliving many others), the callout pattern (ids in steps of four) and ids at the
    /// top of the range: checked against a `HashMap` along the way.
    #[test]
    fn agrees_with_a_hash_map_through_churn() {
        let mut t = IdTable::default();
        let mut model = HashMap::new();
        for root in [1, 2, 3] {
            t.insert(root, u64::from(root));
            model.insert(root, u64::from(root));
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for (next, step) in (4u32..).zip(0..20_000u64) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let id = match state % 4 {
                0 => next.wrapping_mul(4) | 1,
                1 => u32::MAX - (state % 64) as u32,
                _ => next,
            };
            assert_eq!(t.insert(id, step), model.insert(id, step));
            if model.len() > 40 {
                // End an older one: now and then the oldest still open, else any.
                let open: Vec<u32> = model.keys().copied().filter(|k| *k > 3).collect();
                let victim = if state.is_multiple_of(3) {
                    open.iter().copied().min()
                } else {
                    open.get((state >> 8) as usize % open.len().max(1)).copied()
                };
                if let Some(v) = victim {
                    assert_eq!(t.remove(&v), model.remove(&v));
                }
            }
            assert!(!t.contains_key(&0), "an id never given out is absent");
            if step % 97 == 0 {
                agrees(&t, &model);
            }
        }
        agrees(&t, &model);
        for id in model.keys().copied().collect::<Vec<_>>() {
            assert_eq!(t.remove(&id), model.remove(&id));
            agrees(&t, &model);
        }
        assert!(t.is_empty());
    }

    /// Removal keeps entries that wrapped past the array's end reachable: ids whose home is the
    /// last slot fill it and the first slots; removing the first moves the others back.
    #[test]
    fn removal_across_the_end_of_the_array() {
        let mut t = IdTable::default();
        // Make the slots, then empty them again.
        t.insert(0, 0u64);
        t.remove(&0);
        let last = t.slots.len() - 1;
        let at_last: Vec<u32> = (1..u32::MAX).filter(|id| t.home(*id) == last).take(3).collect();
        for id in &at_last {
            t.insert(*id, u64::from(*id));
        }
        assert_eq!(t.slots[0].as_ref().map(|e| e.id), Some(at_last[1]), "the second wrapped to slot 0");
        assert_eq!(t.remove(&at_last[0]), Some(u64::from(at_last[0])));
        for id in &at_last[1..] {
            assert_eq!(t.get(id), Some(&u64::from(*id)));
        }
        assert_eq!(t.slots[last].as_ref().map(|e| e.id), Some(at_last[1]), "shifted back to its home");
    }
}
