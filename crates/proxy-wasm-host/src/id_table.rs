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

use std::mem::MaybeUninit;

/// The multiplier of Fibonacci hashing: 2^32 divided by the golden ratio, odd. Consecutive ids
/// land far apart, and so do ids in steps of four.
const FIBONACCI: u32 = 0x9e37_79b9;

/// The fewest slots a table that holds anything has.
const MIN_SLOTS: usize = 8;

/// A map from host-made `u32` ids to `V`: `get`, `insert`, `remove` in expected constant time
/// (see the [module documentation](self)). Iteration order is unspecified.
pub(crate) struct IdTable<V> {
    /// A power of two of slots (none before the first insert), at most half of them full.
    slots: Vec<Slot<V>>,
    len: usize,
    /// `32 - log2(slots.len())`: the hash's top bits pick the slot.
    shift: u32,
}

/// One slot: `key` is 0 when it is empty, else its id plus one (every `u32` id fits), and
/// `value` is initialised exactly when the slot is full.
///
/// The key is a word of its own rather than `Option`'s tag: an `Option<V>` keeps its tag in a
/// niche of `V` (for a context, a flag byte in its middle), so moving one in or out copied the
/// value in pieces around that byte, at odd offsets, and read them back 16 bytes at a time
/// across those stores: a store-forwarding stall on every remove. Here a value moves whole
/// and aligned, and a probe compares one word (empty and found are both `key ==`).
#[repr(C)]
struct Slot<V> {
    value: MaybeUninit<V>,
    key: u64,
}

impl<V> Slot<V> {
    const EMPTY: Slot<V> = Slot { value: MaybeUninit::uninit(), key: 0 };

    #[inline(always)]
    fn is_full(&self) -> bool {
        self.key != 0
    }

    /// The id of a full slot.
    #[inline(always)]
    fn id(&self) -> u32 {
        (self.key - 1) as u32
    }

    /// The value of a full slot.
    #[inline(always)]
    fn get(&self) -> Option<&V> {
        // SAFETY: a full slot's value is initialised (the type's invariant).
        self.is_full().then(|| unsafe { self.value.assume_init_ref() })
    }
}

/// The key of `id` in a slot: never 0, which marks an empty slot.
#[inline(always)]
fn key(id: u32) -> u64 {
    u64::from(id) + 1
}

impl<V> Default for IdTable<V> {
    fn default() -> Self {
        IdTable { slots: Vec::new(), len: 0, shift: 32 }
    }
}

/// Drops the values left in the table. A value's drop that panics leaves the values after it
/// undropped (leaked, never read): the table's values are contexts and callouts, whose drops
/// do not panic.
impl<V> Drop for IdTable<V> {
    fn drop(&mut self) {
        if std::mem::needs_drop::<V>() {
            for slot in self.slots.iter_mut().filter(|s| s.is_full()) {
                // SAFETY: a full slot's value is initialised, and dropped once: the table is
                // going away and no slot is read after this.
                unsafe { slot.value.assume_init_drop() };
            }
        }
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

    /// Where `id` is (`Ok`), or the empty slot that ends its run, where it would go (`Err`).
    /// The table must have slots.
    #[inline]
    fn probe(&self, id: u32) -> Result<usize, usize> {
        let (mask, key) = (self.mask(), key(id));
        let mut i = self.home(id);
        // Ends: at most half the slots are full, so an empty one comes.
        loop {
            match self.slots[i].key {
                k if k == key => return Ok(i),
                0 => return Err(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The full slot of `id`, if any.
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

    /// Whether the table holds no id.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `id` is in the table.
    #[inline]
    pub(crate) fn contains_key(&self, id: &u32) -> bool {
        self.find(*id).is_some()
    }

    /// The value of `id`.
    #[inline]
    pub(crate) fn get(&self, id: &u32) -> Option<&V> {
        let i = self.find(*id)?;
        self.slots[i].get()
    }

    /// The value of `id`, to change.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: &u32) -> Option<&mut V> {
        let i = self.find(*id)?;
        // SAFETY: `find` answers full slots only, and a full slot's value is initialised.
        Some(unsafe { self.slots[i].value.assume_init_mut() })
    }

    /// Puts `value` under `id`, giving back the value it replaces.
    #[inline]
    pub(crate) fn insert(&mut self, id: u32, value: V) -> Option<V> {
        self.insert_with(id, || value)
    }

    /// Puts the value `make` makes under `id`, giving back the value it replaces. `make` runs
    /// once the slot is found, so that a new id's value can be made in its slot: a value made before
    /// the probe is built on the stack a field at a time and then copied into the slot 16
    /// bytes at a time, each copy waiting on the stores it spans (a store-forwarding stall,
    /// 2.5% of an empty stream's time for its context).
    #[inline(always)]
    pub(crate) fn insert_with(&mut self, id: u32, make: impl FnOnce() -> V) -> Option<V> {
        // One probe finds `id`, or the slot it goes to unless the table must grow first.
        let free = if self.slots.is_empty() {
            None
        } else {
            match self.probe(id) {
                // SAFETY: `probe`'s `Ok` is a full slot, whose value is initialised.
                Ok(i) => return Some(std::mem::replace(unsafe { self.slots[i].value.assume_init_mut() }, make())),
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
        // The slot is empty: overwriting it drops nothing.
        self.slots[i] = Slot { value: MaybeUninit::new(make()), key: key(id) };
        self.len += 1;
        None
    }

    /// Takes `id`'s value out of the table.
    #[inline]
    pub(crate) fn remove(&mut self, id: &u32) -> Option<V> {
        let mut hole = self.find(*id)?;
        let slot = &mut self.slots[hole];
        slot.key = 0;
        // SAFETY: `find` answers full slots only, so the value is initialised; the slot is
        // marked empty above, so the value is read out once and never dropped in place.
        let value = unsafe { slot.value.assume_init_read() };
        self.len -= 1;
        // Backward shift: an entry after the hole, in the same run of full slots, moves into the
        // hole unless its home lies after the hole (cyclically), so that every entry stays
        // reachable from its home without passing an empty slot.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let slot = &self.slots[j];
            if !slot.is_full() {
                break;
            }
            let home = self.home(slot.id());
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                // The hole is empty: the swap moves the entry into it and leaves `j` empty.
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        Some(value)
    }

    /// Every id and its value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &V)> {
        self.slots.iter().filter_map(|s| s.get().map(|v| (s.id(), v)))
    }

    /// Every value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().filter_map(Slot::get)
    }

    /// Doubles the slots (or makes the first ones) and puts every entry back.
    #[cold]
    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).max(MIN_SLOTS);
        let mut empty = Vec::with_capacity(slots);
        // Pushed one by one: collected from an iterator, the array was zeroed whole by `calloc`,
        // values and all (about 100 instructions more per new VM), where only the keys need
        // writing (a value's bytes are never read while its key is 0).
        for _ in 0..slots {
            empty.push(Slot::EMPTY);
        }
        // Worked out before the arrays change, so that its arithmetic cannot panic while the
        // entries are in `old` (they would leak).
        let shift = 32 - slots.trailing_zeros();
        let old = std::mem::replace(&mut self.slots, empty);
        self.shift = shift;
        for slot in old.into_iter().filter(Slot::is_full) {
            // Each id is in `old` once, so it goes to an empty slot; `len` is unchanged.
            let i = self.probe(slot.id()).expect_err("ids are unique");
            self.slots[i] = slot;
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
        let mut seen: Vec<_> = table.iter().map(|(k, v)| (k, *v)).collect();
        seen.sort_unstable();
        let mut want: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    /// The id in slot `i`, if it is full.
    fn id_at<V>(t: &IdTable<V>, i: usize) -> Option<u32> {
        t.slots[i].is_full().then(|| t.slots[i].id())
    }

    #[test]
    fn the_lowest_and_highest_ids_are_ids_like_any_other() {
        let mut t = IdTable::default();
        assert_eq!(t.get(&0), None);
        t.insert(u32::MAX, "max");
        assert_eq!(t.get(&0), None, "0 is not an empty slot's id");
        t.insert(0, "zero");
        assert_eq!((t.get(&0), t.get(&u32::MAX)), (Some(&"zero"), Some(&"max")));
        assert_eq!(t.remove(&0), Some("zero"));
        assert_eq!((t.get(&0), t.get(&u32::MAX)), (None, Some(&"max")));
    }

    /// Every value is dropped exactly once, whichever way it leaves: replaced, removed, moved
    /// by a growth or a backward shift, or left in the table when it is dropped.
    #[test]
    fn every_value_is_dropped_once() {
        use std::rc::Rc;
        let token = Rc::new(());
        let mut t = IdTable::default();
        for id in 0..100u32 {
            t.insert(id, Rc::clone(&token));
        }
        assert_eq!(Rc::strong_count(&token), 101);
        drop(t.insert(7, Rc::clone(&token)));
        assert_eq!(Rc::strong_count(&token), 101, "the replaced value was dropped");
        for id in (0..100u32).step_by(3) {
            drop(t.remove(&id));
        }
        assert_eq!(Rc::strong_count(&token), 101 - 34);
        assert_eq!(t.len(), 66);
        drop(t);
        assert_eq!(Rc::strong_count(&token), 1, "the table's drop dropped the rest");
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
        assert_eq!(id_at(&t, 0), Some(at_last[1]), "the second wrapped to slot 0");
        assert_eq!(t.remove(&at_last[0]), Some(u64::from(at_last[0])));
        for id in &at_last[1..] {
            assert_eq!(t.get(id), Some(&u64::from(*id)));
        }
        assert_eq!(id_at(&t, last), Some(at_last[1]), "shifted back to its home");
    }
}
