//! A Fenwick tree of (count, id sum) over the index's leaves: prefix sums and select-by-rank in
//! O(log leaves).

use crate::proto::fingerprint::IdSum;

/// Per-leaf counts and id sums, as a Fenwick (binary indexed) tree.
#[derive(Clone, Debug, Default)]
pub(super) struct Fenwick {
    /// 1-based: node `i` covers the leaves `i - lowbit(i) .. i` (0-based, end exclusive).
    /// Slot 0 is unused, so the arithmetic stays the textbook one.
    counts: Vec<usize>,
    sums: Vec<IdSum>,
}

impl Fenwick {
    /// A tree over leaves with these (count, sum) totals, in O(leaves).
    pub(super) fn build(leaves: impl ExactSizeIterator<Item = (usize, IdSum)>) -> Self {
        let n = leaves.len();
        let mut counts = Vec::with_capacity(n + 1);
        let mut sums = Vec::with_capacity(n + 1);
        counts.push(0);
        sums.push(IdSum::ZERO);
        for (count, sum) in leaves {
            counts.push(count);
            sums.push(sum);
        }
        for i in 1..=n {
            let parent = i + lowbit(i);
            if parent <= n {
                counts[parent] += counts[i];
                sums[parent] = sums[parent].wrapping_add(sums[i]);
            }
        }
        Self { counts, sums }
    }

    /// Number of leaves.
    fn leaves(&self) -> usize {
        self.counts.len().saturating_sub(1)
    }

    /// Adds one key with id sum `sum` to leaf `leaf`.
    pub(super) fn add_one(&mut self, leaf: usize, sum: IdSum) {
        let mut i = leaf + 1;
        while i <= self.leaves() {
            self.counts[i] += 1;
            self.sums[i] = self.sums[i].wrapping_add(sum);
            i += lowbit(i);
        }
    }

    /// The number of keys in the leaves before `leaf`.
    pub(super) fn count_before(&self, leaf: usize) -> usize {
        let mut i = leaf;
        let mut count = 0;
        while i > 0 {
            count += self.counts[i];
            i -= lowbit(i);
        }
        count
    }

    /// The sum of every id.
    pub(super) fn total_sum(&self) -> IdSum {
        let mut i = self.leaves();
        let mut sum = IdSum::ZERO;
        while i > 0 {
            sum = sum.wrapping_add(self.sums[i]);
            i -= lowbit(i);
        }
        sum
    }

    /// The leaf holding the key of rank `rank`, the key's offset in it, and the sum of the ids
    /// in the leaves before it. `rank` must be below the total count, and no leaf empty.
    pub(super) fn select(&self, rank: usize) -> (usize, usize, IdSum) {
        let n = self.leaves();
        let mut pos = 0;
        let mut rest = rank;
        let mut sum = IdSum::ZERO;
        let mut step = if n == 0 { 0 } else { 1 << n.ilog2() };
        while step > 0 {
            let next = pos + step;
            if next <= n && self.counts[next] <= rest {
                pos = next;
                rest -= self.counts[next];
                sum = sum.wrapping_add(self.sums[next]);
            }
            step >>= 1;
        }
        (pos, rest, sum)
    }
}

/// The lowest set bit of `i`.
fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}
