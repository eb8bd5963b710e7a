//! Positions in the DHT: 256-bit ids, XOR distance, and virtual time.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};
use weft_transport::PeerId;

/// A position in the 256-bit DHT key space.
///
/// A peer sits at `blake3(peer id)` and a name at `blake3(name)`. Hashing the peer id, rather than
/// using the public key directly, spreads ids uniformly whatever the key scheme.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DhtId(pub [u8; 32]);

impl DhtId {
    /// Where a peer sits in the DHT.
    pub fn of_peer(peer: &PeerId) -> Self {
        Self(*blake3::hash(peer.as_bytes()).as_bytes())
    }

    /// The key a name is stored under.
    pub fn of_name(name: &str) -> Self {
        Self(*blake3::hash(name.as_bytes()).as_bytes())
    }

    /// The XOR distance between two ids.
    pub fn distance(&self, other: &DhtId) -> Distance {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(out)
    }

    /// A uniformly random id whose distance to `self` falls in bucket `index` (it shares the first
    /// `index` bits with `self` and differs at bit `index`). Used to refresh a bucket.
    pub fn random_in_bucket<R: Rng>(&self, index: usize, rng: &mut R) -> DhtId {
        let mut out = [0u8; 32];
        rng.fill(&mut out[..]);
        for bit in 0..=index.min(255) {
            let byte = bit / 8;
            let mask = 0x80u8 >> (bit % 8);
            let mine = self.0[byte] & mask;
            // Copy the shared prefix, then flip the bit that selects the bucket.
            let want = if bit == index { mine ^ mask } else { mine };
            out[byte] = (out[byte] & !mask) | want;
        }
        DhtId(out)
    }
}

impl fmt::Debug for DhtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhtId(")?;
        for byte in &self.0[..5] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

/// The XOR distance between two [`DhtId`]s, ordered as a 256-bit big-endian number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 32]);

impl Distance {
    /// The number of leading zero bits: 256 for distance zero. Two ids at distance `d` share
    /// exactly `d.leading_zeros()` leading bits.
    pub fn leading_zeros(&self) -> usize {
        let mut zeros = 0;
        for byte in self.0 {
            if byte == 0 {
                zeros += 8;
            } else {
                zeros += byte.leading_zeros() as usize;
                break;
            }
        }
        zeros
    }

    /// The routing-table bucket this distance falls in (`None` for distance zero: oneself).
    /// Bucket 0 holds the farther half of the key space, bucket `i` a `2^-(i+1)` share of it.
    pub fn bucket(&self) -> Option<usize> {
        let zeros = self.leading_zeros();
        (zeros < 256).then_some(zeros)
    }
}

/// Wall-clock time, milliseconds since the Unix epoch: the shared
/// [`WallTime`](weft_transport::WallTime) of weft-transport. Only for what a signature covers (`issued_at`, expiry, removals) and the
/// checks of signed data against the local clock; timers, ages and schedules take the
/// monotonic part of [`Now`](weft_transport::Now).
pub use weft_transport::{Now, WallTime as Time};

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn distance_is_symmetric_and_zero_to_self() {
        let a = DhtId::of_name("a");
        let b = DhtId::of_name("b");
        assert_eq!(a.distance(&b), b.distance(&a));
        assert_eq!(a.distance(&a).bucket(), None);
        assert_eq!(a.distance(&a).leading_zeros(), 256);
    }

    #[test]
    fn random_in_bucket_lands_in_that_bucket() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let me = DhtId::of_name("me");
        for index in [0, 1, 7, 8, 9, 100, 255] {
            for _ in 0..20 {
                let id = me.random_in_bucket(index, &mut rng);
                assert_eq!(me.distance(&id).bucket(), Some(index));
            }
        }
    }
}
