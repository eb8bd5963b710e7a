//! Range fingerprints: what two peers compare to learn whether a range of keys differs.
//!
//! Negentropy v1 fingerprints a set of ids as `sha256(sum || varint(count))[..16]`, where `sum`
//! is the sum of the 32-byte ids read as little-endian 256-bit integers, modulo 2^256. Addition
//! modulo 2^256 is a group, so the sum of a range is the difference of two prefix sums: that is
//! what lets the [`Index`](super::Index) fingerprint any range in O(log n).

use std::fmt;

use sha2::{Digest, Sha256};

use super::{ItemId, negentropy::varint};

/// Bytes of a fingerprint on the wire.
pub const FINGERPRINT_LEN: usize = 16;

/// The sum of a set of ids as little-endian 256-bit integers, modulo 2^256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct IdSum([u64; 4]);

impl IdSum {
    /// The sum of no ids.
    pub const ZERO: Self = Self([0; 4]);

    /// The id as a 256-bit integer (little-endian, as Negentropy reads it).
    pub fn of(id: &ItemId) -> Self {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(id.0.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(bytes);
        }
        Self(limbs)
    }

    /// `self + other` modulo 2^256.
    #[must_use]
    pub fn wrapping_add(self, other: Self) -> Self {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let (sum, c1) = self.0[i].overflowing_add(other.0[i]);
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *limb = sum;
            carry = c1 | c2;
        }
        Self(out)
    }

    /// `self - other` modulo 2^256: the sum of a range from two prefix sums.
    #[must_use]
    pub fn wrapping_sub(self, other: Self) -> Self {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let (diff, b1) = self.0[i].overflowing_sub(other.0[i]);
            let (diff, b2) = diff.overflowing_sub(u64::from(borrow));
            *limb = diff;
            borrow = b1 | b2;
        }
        Self(out)
    }

    /// The 32 little-endian bytes.
    pub fn to_le_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }
}

/// A Negentropy v1 fingerprint of a set of ids: `sha256(sum || varint(count))[..16]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl Fingerprint {
    /// The fingerprint of `count` ids whose sum is `sum`.
    pub fn new(sum: IdSum, count: u64) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(sum.to_le_bytes());
        let mut len = Vec::with_capacity(varint::MAX_LEN);
        varint::encode(count, &mut len);
        hasher.update(&len);
        let digest = hasher.finalize();
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        Self(out)
    }

    /// The fingerprint of a list of ids (the direct definition; the index does it faster).
    pub fn of_ids<'a>(ids: impl IntoIterator<Item = &'a ItemId>) -> Self {
        let (sum, count) = ids
            .into_iter()
            .fold((IdSum::ZERO, 0u64), |(sum, count), id| {
                (sum.wrapping_add(IdSum::of(id)), count + 1)
            });
        Self::new(sum, count)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> ItemId {
        ItemId([byte; 32])
    }

    #[test]
    fn carries_cross_limbs_and_wrap_at_256_bits() {
        let mut low_limb_full = [0u8; 32];
        low_limb_full[..8].copy_from_slice(&[0xff; 8]);
        let mut one = [0u8; 32];
        one[0] = 1;
        let sum = IdSum::of(&ItemId(low_limb_full)).wrapping_add(IdSum::of(&ItemId(one)));
        let mut expected = [0u8; 32];
        expected[8] = 1;
        assert_eq!(sum.to_le_bytes(), expected);
        assert_eq!(
            IdSum::of(&id(0xff)).wrapping_add(IdSum::of(&ItemId(one))),
            IdSum::ZERO
        );
    }

    #[test]
    fn sub_undoes_add() {
        let a = IdSum::of(&id(0x11)).wrapping_add(IdSum::of(&id(0xfe)));
        let b = IdSum::of(&id(0xfe));
        assert_eq!(a.wrapping_sub(b), IdSum::of(&id(0x11)));
        assert_eq!(IdSum::ZERO.wrapping_sub(b).wrapping_add(b), IdSum::ZERO);
    }

    #[test]
    fn fingerprint_covers_the_count() {
        // The same sum over a different count must not collide: the count is hashed too.
        assert_ne!(
            Fingerprint::new(IdSum::ZERO, 0),
            Fingerprint::new(IdSum::ZERO, 1)
        );
        assert_eq!(
            Fingerprint::of_ids([&id(1), &id(2)]),
            Fingerprint::new(IdSum::of(&id(1)).wrapping_add(IdSum::of(&id(2))), 2)
        );
    }
}
