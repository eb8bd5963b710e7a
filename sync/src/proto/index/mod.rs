//! The index: a topic's set of keys, ordered, with O(log n) range fingerprints.
//!
//! Keys live in sorted leaves of at most [`LEAF_MAX`] keys. Each leaf keeps the prefix sums
//! of its ids, and a Fenwick tree over the leaves keeps their counts and id sums, so the sum of
//! the ids below any rank is one descent of the tree plus one array read. Since sums are taken
//! modulo 2^256 they subtract, and a range's fingerprint is two prefix sums and one hash,
//! whatever the range's length.
//!
//! Inserting touches one leaf (O([`LEAF_MAX`]) to shift it) and O(log n) tree nodes; a leaf
//! that overflows splits in two and the tree is rebuilt in O(leaves), which happens at most
//! once per [`LEAF_MAX`] / 2 inserts.

mod fenwick;

use std::{fmt, ops::Range};

use fenwick::Fenwick;

use super::{
    ItemId, ItemKey,
    fingerprint::{Fingerprint, IdSum},
};

/// Most keys in a leaf; one more splits it.
const LEAF_MAX: usize = 256;

/// Keys per leaf when building in bulk: half full, so live inserts split late.
const LEAF_FILL: usize = LEAF_MAX / 2;

/// A sorted run of keys with the prefix sums of their ids.
#[derive(Clone)]
struct Leaf {
    keys: Vec<ItemKey>,
    /// `sums[i]` is the sum of the ids of `keys[..i]`, so `sums.len() == keys.len() + 1`.
    sums: Vec<IdSum>,
    /// The last key, kept inline: finding a key's leaf binary-searches these, and reading
    /// them from `keys` would be a cache miss per step.
    last: ItemKey,
}

impl Leaf {
    fn new(keys: Vec<ItemKey>) -> Self {
        let mut sums = Vec::with_capacity(keys.len() + 1);
        let mut sum = IdSum::ZERO;
        sums.push(sum);
        for key in &keys {
            sum = sum.wrapping_add(IdSum::of(&key.id));
            sums.push(sum);
        }
        let last = keys
            .last()
            .copied()
            .unwrap_or(ItemKey::new(0, ItemId([0; 32])));
        Self { keys, sums, last }
    }

    fn total(&self) -> (usize, IdSum) {
        (self.keys.len(), self.sums[self.keys.len()])
    }
}

/// The set of [`ItemKey`]s of a topic, in (timestamp, id) order, with O(log n) rank queries
/// and range fingerprints.
///
/// Ranks are positions in that order: the key of rank 0 is the smallest.
///
/// ```
/// use weft_sync::proto::{Index, ItemId, ItemKey};
///
/// let mut index = Index::from_keys((0..1000u64).map(|t| ItemKey::new(t, ItemId([7; 32]))));
/// assert!(index.insert(ItemKey::new(500, ItemId([9; 32]))));
/// let from = index.lower_bound(&ItemKey::new(500, ItemId([0; 32])));
/// assert_eq!(from, 500);
/// let fingerprint = index.fingerprint(from..from + 2);
/// assert_eq!(fingerprint, index.fingerprint(500..502));
/// ```
#[derive(Clone, Default)]
pub struct Index {
    /// Sorted, none empty, each key above every key of the leaf before.
    leaves: Vec<Leaf>,
    tree: Fenwick,
    len: usize,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of the given keys, in any order, duplicates ignored. Sorts once and builds
    /// every leaf and the tree in linear time, so it is the way to load a large set.
    pub fn from_keys(keys: impl IntoIterator<Item = ItemKey>) -> Self {
        let mut keys: Vec<ItemKey> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let leaves: Vec<Leaf> = keys
            .chunks(LEAF_FILL)
            .map(|chunk| Leaf::new(chunk.to_vec()))
            .collect();
        let mut index = Self {
            leaves,
            tree: Fenwick::default(),
            len: keys.len(),
        };
        index.rebuild_tree();
        index
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the index holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `key`; false if it was already there.
    pub fn insert(&mut self, key: ItemKey) -> bool {
        if self.leaves.is_empty() {
            self.leaves.push(Leaf::new(vec![key]));
            self.len = 1;
            self.rebuild_tree();
            return true;
        }
        // The first leaf whose last key is not below `key`; past the end, the last leaf grows.
        let leaf_at = self
            .leaf_for(&key)
            .unwrap_or(self.leaves.len().saturating_sub(1));
        let leaf = &mut self.leaves[leaf_at];
        let Err(pos) = leaf.keys.binary_search(&key) else {
            return false;
        };
        let id = IdSum::of(&key.id);
        leaf.keys.insert(pos, key);
        if pos + 1 == leaf.keys.len() {
            leaf.last = key;
        }
        leaf.sums.insert(pos + 1, leaf.sums[pos]);
        for sum in &mut leaf.sums[pos + 1..] {
            *sum = sum.wrapping_add(id);
        }
        self.len += 1;
        if leaf.keys.len() > LEAF_MAX {
            let upper = leaf.keys.split_off(leaf.keys.len() / 2);
            let lower = std::mem::take(&mut leaf.keys);
            *leaf = Leaf::new(lower);
            self.leaves.insert(leaf_at + 1, Leaf::new(upper));
            self.rebuild_tree();
        } else {
            self.tree.add_one(leaf_at, id);
        }
        true
    }

    /// Whether `key` is in the index.
    pub fn contains(&self, key: &ItemKey) -> bool {
        self.leaf_for(key)
            .is_some_and(|leaf| self.leaves[leaf].keys.binary_search(key).is_ok())
    }

    /// The rank of the first key at or above `bound`: the number of keys below it.
    pub fn lower_bound(&self, bound: &ItemKey) -> usize {
        match self.leaf_for(bound) {
            None => self.len,
            Some(leaf) => {
                let offset = self.leaves[leaf].keys.partition_point(|key| key < bound);
                self.tree.count_before(leaf) + offset
            }
        }
    }

    /// The key of rank `rank`, if there are more than `rank` keys.
    pub fn get(&self, rank: usize) -> Option<ItemKey> {
        if rank >= self.len {
            return None;
        }
        let (leaf, offset, _) = self.tree.select(rank);
        self.leaves.get(leaf)?.keys.get(offset).copied()
    }

    /// The fingerprint of the keys of ranks in `ranks`, in O(log n).
    ///
    /// # Panics
    ///
    /// If the range is decreasing or ends past [`len`](Self::len), as slice indexing does.
    pub fn fingerprint(&self, ranks: Range<usize>) -> Fingerprint {
        assert!(
            ranks.start <= ranks.end && ranks.end <= self.len,
            "rank range {ranks:?} out of an index of {} keys",
            self.len
        );
        let sum = self
            .sum_below(ranks.end)
            .wrapping_sub(self.sum_below(ranks.start));
        Fingerprint::new(sum, (ranks.end - ranks.start) as u64)
    }

    /// The keys of ranks in `ranks`, in order.
    ///
    /// # Panics
    ///
    /// If the range is decreasing or ends past [`len`](Self::len), as slice indexing does.
    pub fn range(&self, ranks: Range<usize>) -> Keys<'_> {
        assert!(
            ranks.start <= ranks.end && ranks.end <= self.len,
            "rank range {ranks:?} out of an index of {} keys",
            self.len
        );
        let (leaf, offset) = if ranks.start < self.len {
            let (leaf, offset, _) = self.tree.select(ranks.start);
            (leaf, offset)
        } else {
            (self.leaves.len(), 0)
        };
        Keys {
            leaves: &self.leaves,
            leaf,
            offset,
            remaining: ranks.end - ranks.start,
        }
    }

    /// Every key, in order.
    pub fn iter(&self) -> Keys<'_> {
        self.range(0..self.len)
    }

    /// The sum of the ids of the keys of ranks below `rank` (`rank <= len`).
    fn sum_below(&self, rank: usize) -> IdSum {
        if rank >= self.len {
            return self.tree.total_sum();
        }
        let (leaf, offset, before) = self.tree.select(rank);
        before.wrapping_add(self.leaves[leaf].sums[offset])
    }

    /// The first leaf whose last key is at or above `key`, if any.
    fn leaf_for(&self, key: &ItemKey) -> Option<usize> {
        let leaf = self.leaves.partition_point(|leaf| leaf.last < *key);
        (leaf < self.leaves.len()).then_some(leaf)
    }

    fn rebuild_tree(&mut self) {
        self.tree = Fenwick::build(self.leaves.iter().map(Leaf::total));
    }
}

impl FromIterator<ItemKey> for Index {
    fn from_iter<I: IntoIterator<Item = ItemKey>>(keys: I) -> Self {
        Self::from_keys(keys)
    }
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A million keys is not a debug line: show the shape.
        f.debug_struct("Index")
            .field("len", &self.len)
            .field("leaves", &self.leaves.len())
            .finish()
    }
}

/// The keys of a rank range of an [`Index`], in order. See [`Index::range`].
#[derive(Clone, Debug)]
pub struct Keys<'a> {
    leaves: &'a [Leaf],
    leaf: usize,
    offset: usize,
    remaining: usize,
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Leaf({} keys)", self.keys.len())
    }
}

impl Iterator for Keys<'_> {
    type Item = ItemKey;

    fn next(&mut self) -> Option<ItemKey> {
        if self.remaining == 0 {
            return None;
        }
        let keys = &self.leaves.get(self.leaf)?.keys;
        let key = *keys.get(self.offset)?;
        self.offset += 1;
        if self.offset == keys.len() {
            self.leaf += 1;
            self.offset = 0;
        }
        self.remaining -= 1;
        Some(key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Keys<'_> {}

#[cfg(test)]
mod tests;
