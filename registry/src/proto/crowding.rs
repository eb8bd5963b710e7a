//! Crowding: how many more peers sit near a key than a uniform spread of ids would put there.
//!
//! A peer's position is `blake3(peer id)` and peer ids are free, so an attacker can grind
//! identities until their positions sit next to a name's key, closer than any honest node, and
//! then take every one of the `k` places that records for the name are stored at and looked up
//! from. Honest positions are uniform: among `N` nodes, about `N·f` sit within a fraction `f` of
//! the key space around any key. A lookup, a store and an answer therefore reach past the
//! closest peers by the *excess* of peers near the key over what `N` uniform ids allow: with
//! `a` ground identities ahead of the honest ones, the `k + a` closest include the `k` closest
//! honest nodes, which is where honest providers store and honest lookups look. Without an
//! attack the excess is 0 and nothing changes; under one, the extra cost is one request per
//! identity ground, bounded by [`MAX_EXCESS_FACTOR`]` × k`.
//!
//! `N` is estimated from the spacing of the peers nearest the node's own position, which an
//! attacker grinding next to a name's key does not change.

use weft_transport::{PeerAddr, PeerId};

use super::{
    id::{DhtId, Distance},
    node::Node,
};

/// The excess counted is at most this many times `k`: bounds the extra requests per lookup and
/// the peers an answer names (`k` × (1 + this)).
pub const MAX_EXCESS_FACTOR: usize = 4;

/// Peers a uniform spread of `size` ids may put within a fraction `fraction` of the key space
/// of a point, with margin for chance: the expected count `e`, three standard deviations, and
/// three more (honest counts above this are rarer than 1 in 10,000).
fn allowance(size: f64, fraction: f64) -> f64 {
    let expected = size * fraction;
    expected + 3.0 * expected.sqrt() + 3.0
}

/// `distance` as a fraction of the key space (its top 64 bits are plenty).
pub(super) fn fraction(distance: &Distance) -> f64 {
    let mut top = [0u8; 8];
    top.copy_from_slice(&distance.0[..8]);
    // Lossy by design: 53 bits of mantissa are more precision than any count here needs.
    #[allow(clippy::cast_precision_loss)]
    let fraction = u64::from_be_bytes(top) as f64 / 2f64.powi(64);
    fraction
}

/// How many of the peers at `distances` (closest first) are more than `size` uniform ids would
/// put that close: the largest `i − allowance` over the first `i` of them, at most `cap`.
pub fn excess<'a>(
    distances: impl IntoIterator<Item = &'a Distance>,
    size: f64,
    cap: usize,
) -> usize {
    let mut most = 0usize;
    for (i, distance) in distances.into_iter().enumerate() {
        let count = i + 1;
        let allowed = allowance(size, fraction(distance));
        #[allow(clippy::cast_precision_loss)]
        let over = count as f64 - allowed;
        if over >= 1.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let over = over as usize;
            most = most.max(over);
        }
        if most >= cap {
            return cap;
        }
    }
    most
}

/// The network's size as seen from the distances of the peers nearest this node's own
/// position (closest first): the `m`-th nearest of `N` uniform ids sits about `m / N` of the key
/// space away. At least the number of peers given plus one (this node).
pub fn estimate_size<'a>(nearest: impl IntoIterator<Item = &'a Distance>) -> f64 {
    let mut count = 0usize;
    let mut last = None;
    for distance in nearest {
        count += 1;
        last = Some(fraction(distance));
    }
    #[allow(clippy::cast_precision_loss)]
    let known = count as f64 + 1.0;
    match last {
        Some(f) if f > 0.0 => (known - 1.0) / f,
        _ => known,
    }
    .max(known)
}

impl Node {
    /// The network's size as this node estimates it from the peers nearest its own position,
    /// when crowding-aware lookups are on (see `crowding`).
    pub(super) fn network_size(&self) -> Option<f64> {
        if !self.config.crowding_aware {
            return None;
        }
        let local = self.table.local();
        let nearest: Vec<Distance> = self
            .table
            .closest(&local, self.config.k, None)
            .iter()
            .map(|addr| DhtId::of_peer(&addr.id).distance(&local))
            .collect();
        Some(estimate_size(&nearest))
    }

    /// The peers an answer names as closer to `target` for `asker`: the `k` closest known, plus
    /// their crowding excess when crowding-aware (so ground identities next to a key do not
    /// hide the honest nodes behind them).
    pub(super) fn closer_to(&self, target: &DhtId, asker: &PeerId) -> Vec<PeerAddr> {
        let k = self.config.k;
        let Some(size) = self.network_size() else {
            return self.table.closest(target, k, Some(asker));
        };
        let cap = MAX_EXCESS_FACTOR * k;
        let mut closest = self.table.closest(target, k + cap, Some(asker));
        let distances: Vec<Distance> = closest
            .iter()
            .map(|addr| DhtId::of_peer(&addr.id).distance(target))
            .collect();
        closest.truncate(k + excess(&distances, size, cap));
        closest
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::proto::DhtId;

    fn random_ids(n: usize, seed: u64) -> Vec<DhtId> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| DhtId(rng.random())).collect()
    }

    fn sorted_distances(ids: &[DhtId], to: &DhtId) -> Vec<Distance> {
        let mut out: Vec<Distance> = ids.iter().map(|id| id.distance(to)).collect();
        out.sort();
        out
    }

    /// An id sharing its first `bits` bits with `key`, the rest random.
    fn ground_next_to(key: &DhtId, bits: usize, rng: &mut ChaCha8Rng) -> DhtId {
        let mut id = DhtId(rng.random());
        for bit in 0..bits {
            let mask = 0x80u8 >> (bit % 8);
            id.0[bit / 8] = (id.0[bit / 8] & !mask) | (key.0[bit / 8] & mask);
        }
        id
    }

    #[test]
    fn uniform_ids_show_no_excess_at_any_size() {
        for (n, seed) in [(30, 1), (1_000, 2), (10_000, 3)] {
            let ids = random_ids(n, seed);
            for key in random_ids(50, seed + 100) {
                let distances = sorted_distances(&ids, &key);
                let size = f64::from(u32::try_from(n).unwrap());
                assert_eq!(excess(distances.iter().take(100), size, 80), 0, "n {n}");
            }
        }
    }

    #[test]
    fn ground_identities_show_as_excess() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let honest = random_ids(30, 8);
        let key = DhtId(rng.random());
        let mut ids = honest.clone();
        ids.extend((0..12).map(|_| ground_next_to(&key, 10, &mut rng)));
        let distances = sorted_distances(&ids, &key);
        let found = excess(&distances, 42.0, 32);
        // Twelve ground, a few of which a uniform spread could explain.
        assert!((8..=12).contains(&found), "excess {found}");
        // So the k + excess closest reach past them to honest nodes.
        let reach: Vec<&Distance> = distances.iter().take(8 + found).collect();
        let honest_reached = reach
            .iter()
            .filter(|d| honest.iter().any(|h| h.distance(&key) == ***d))
            .count();
        assert!(
            honest_reached >= 4,
            "{honest_reached} honest among the closest"
        );
        // Bounded.
        assert_eq!(excess(&distances, 42.0, 3), 3);
    }

    #[test]
    fn size_is_estimated_from_the_spacing_near_oneself() {
        for (n, seed) in [(100usize, 11), (1_000, 12), (10_000, 13)] {
            let ids = random_ids(n, seed);
            let me = ids[0];
            let nearest = sorted_distances(&ids[1..], &me);
            let estimate = estimate_size(nearest.iter().take(20));
            let n = f64::from(u32::try_from(n).unwrap());
            assert!(
                estimate > n / 3.0 && estimate < n * 3.0,
                "n {n}: estimated {estimate}"
            );
        }
        assert!((estimate_size([].iter()) - 1.0).abs() < f64::EPSILON);
    }
}
