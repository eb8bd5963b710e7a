//! The catalog's table of records: open addressing with linear probing, one 64-byte slot (one
//! cache line) per peer, holding the peer id's bytes and its record side by side.
//!
//! Why not `HashMap`: its control bytes live apart from its buckets, so a lookup in a table
//! that is not in cache misses twice, once for the control group and once for the bucket. A
//! refresh of a known entry is the commonest thing a catalog does (every peer, every announce
//! interval; 10^8 per interval in a simulated network of 10,000 nodes), and here it misses once.
//!
//! Keys are hashed with SipHash under secret keys (`PeerHashKeys`), so nobody can mint peer ids
//! that pile up in one probe run. The table holds at most 7/8 of its slots, doubles when fuller,
//! and removes by shifting the rest of a probe run back, so no tombstones accumulate.

use std::hash::BuildHasher;

/// A peer id as the table's key: its 32 bytes, compared as plain bytes. (`PeerId`'s own
/// equality is constant-time, which a public key does not need and every probe would pay.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key(pub(super) [u8; 32]);

impl Key {
    pub(super) fn of(peer: &weft_transport::PeerId) -> Self {
        Self(*peer.as_bytes())
    }
}

/// One slot: a key and its record, or empty. Aligned to a cache line: a catalog's record
/// (32 bytes) and its key make exactly one.
#[derive(Debug, Clone)]
#[repr(align(64))]
struct Slot<V> {
    key: Key,
    record: Option<V>,
}

/// Fewest slots once anything is stored.
const MIN_SLOTS: usize = 16;

/// Records by peer (see the module docs).
#[derive(Debug)]
pub(super) struct Table<V> {
    slots: Vec<Slot<V>>,
    len: usize,
    hasher: PeerHashKeys,
}

impl<V> Table<V> {
    pub(super) fn new(hasher: PeerHashKeys) -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            hasher,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn home(&self, key: &Key) -> usize {
        // The mask keeps the index below the slot count, a power of two.
        #[allow(clippy::cast_possible_truncation)]
        let hash = self.hasher.hash_one(key) as usize;
        hash & (self.slots.len() - 1)
    }

    /// The slot holding `key`, if any.
    fn find(&self, key: &Key) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let slot = &self.slots[i];
            slot.record.as_ref()?;
            if slot.key == *key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    pub(super) fn get(&self, key: &Key) -> Option<&V> {
        self.find(key).and_then(|i| self.slots[i].record.as_ref())
    }

    pub(super) fn get_mut(&mut self, key: &Key) -> Option<&mut V> {
        self.find(key).and_then(|i| self.slots[i].record.as_mut())
    }

    pub(super) fn contains(&self, key: &Key) -> bool {
        self.find(key).is_some()
    }

    /// Inserts a record, replacing any held for `key`.
    pub(super) fn insert(&mut self, key: Key, record: V) {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(&key);
        loop {
            let slot = &mut self.slots[i];
            match &slot.record {
                None => {
                    slot.key = key;
                    slot.record = Some(record);
                    self.len += 1;
                    return;
                }
                Some(_) if slot.key == key => {
                    slot.record = Some(record);
                    return;
                }
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let empty = (0..size).map(|_| Slot {
            key: Key([0; 32]),
            record: None,
        });
        let old = std::mem::replace(&mut self.slots, empty.collect());
        self.len = 0;
        for slot in old {
            if let Some(record) = slot.record {
                self.insert(slot.key, record);
            }
        }
    }

    /// Removes and returns the record for `key`; the rest of its probe run shifts back.
    pub(super) fn remove(&mut self, key: &Key) -> Option<V> {
        let mut hole = self.find(key)?;
        let removed = self.slots[hole].record.take();
        self.len -= 1;
        let mask = self.slots.len() - 1;
        let mut next = (hole + 1) & mask;
        while self.slots[next].record.is_some() {
            let home = self.home(&self.slots[next].key);
            // The entry at `next` may fill the hole unless its home lies cyclically in
            // (hole, next]: then the hole is before its home and lookups would miss it.
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.slots.swap(hole, next);
                hole = next;
            }
            next = (next + 1) & mask;
        }
        removed
    }

    /// Every key and record, in slot order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.slots
            .iter()
            .filter_map(|slot| slot.record.as_ref().map(|r| (&slot.key, r)))
    }

    /// Every record, in slot order.
    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().filter_map(|slot| slot.record.as_ref())
    }
}

/// Hash keys for the catalog's table of peers. Peer ids are chosen by whoever makes the keys,
/// so the table is keyed by a secret (SipHash with keys from the node's seeded RNG, as std's
/// `HashMap` does with its own random keys): nobody can mint ids that collide in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerHashKeys(u64, u64);

impl PeerHashKeys {
    pub(crate) fn from_seed(seed: u64) -> Self {
        let digest = blake3::derive_key("weft/discovery/catalog-hash/1", &seed.to_le_bytes());
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&digest[..8]);
        k1.copy_from_slice(&digest[8..16]);
        Self(u64::from_le_bytes(k0), u64::from_le_bytes(k1))
    }
}

impl BuildHasher for PeerHashKeys {
    // `SipHasher` is deprecated only in favour of `DefaultHasher`, which cannot be given keys;
    // it is SipHash-2-4, and keyed SipHash is what std's `HashMap` relies on against flooding.
    #[allow(deprecated)]
    type Hasher = std::hash::SipHasher;

    #[allow(deprecated)]
    fn build_hasher(&self) -> Self::Hasher {
        std::hash::SipHasher::new_with_keys(self.0, self.1)
    }
}

/// The size of one slot holding `V` (the catalog checks its records fill one cache line).
#[cfg(test)]
pub(super) fn slot_size<V>() -> usize {
    std::mem::size_of::<Slot<V>>()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Random inserts and removes over few distinct keys (long probe runs, many shifts), checked
    /// against an ordered map after every step.
    #[test]
    fn agrees_with_a_map() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut table = Table::new(PeerHashKeys::from_seed(1));
        let mut map = BTreeMap::new();
        for step in 0..20_000u32 {
            let mut key = [0u8; 32];
            key[0] = rng.random_range(0..200);
            let key = Key(key);
            if rng.random_bool(0.6) {
                table.insert(key, step);
                map.insert(key.0, step);
            } else {
                assert_eq!(table.remove(&key), map.remove(&key.0));
            }
            assert_eq!(table.len(), map.len());
            assert_eq!(table.get(&key), map.get(&key.0));
        }
        for (key, value) in &map {
            assert_eq!(table.get(&Key(*key)), Some(value));
        }
        let mut held: Vec<_> = table.iter().map(|(k, v)| (k.0, *v)).collect();
        held.sort_unstable();
        assert_eq!(held, map.into_iter().collect::<Vec<_>>());
    }
}
