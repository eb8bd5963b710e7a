//! Range bounds: where one range of a message ends and the next begins.
//!
//! A bound is a timestamp and a prefix of an id; it stands for the key (timestamp, prefix
//! padded with zeros), and a range holds the keys from the previous bound (inclusive) to this
//! one (exclusive). On the wire the timestamp is a delta from the previous bound of the same
//! message plus one, with 0 meaning infinity, so the last range of a message can reach past
//! every key.

use std::cmp::Ordering;

use super::{MessageError, varint};
use crate::proto::{ItemId, ItemKey};

/// Bytes of an id.
const ID_LEN: usize = 32;

/// A range bound: a timestamp and the first `prefix_len` bytes of an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bound {
    timestamp: u64,
    /// The prefix, padded with zeros to 32 bytes, so that comparing it compares the key it
    /// stands for.
    id: [u8; ID_LEN],
    prefix_len: usize,
}

impl Bound {
    /// The bound before every key: where a message's first range begins.
    pub(crate) const ZERO: Self = Self::timestamp_only(0);

    /// The bound after every key (timestamp `u64::MAX`, encoded as 0).
    pub(crate) const INFINITY: Self = Self::timestamp_only(u64::MAX);

    /// A bound on a timestamp alone: before every key of that timestamp.
    pub(crate) const fn timestamp_only(timestamp: u64) -> Self {
        Self {
            timestamp,
            id: [0; ID_LEN],
            prefix_len: 0,
        }
    }

    /// The bound that is exactly `key`.
    pub(crate) fn of_key(key: &ItemKey) -> Self {
        Self {
            timestamp: key.timestamp,
            id: key.id.0,
            prefix_len: ID_LEN,
        }
    }

    /// The shortest bound above `prev` and at most `curr` (`prev < curr`): the reference
    /// splits ranges on these, and matching them byte for byte keeps our messages identical.
    pub(crate) fn between(prev: &ItemKey, curr: &ItemKey) -> Self {
        if prev.timestamp != curr.timestamp {
            return Self::timestamp_only(curr.timestamp);
        }
        let shared = prev
            .id
            .0
            .iter()
            .zip(curr.id.0)
            .take_while(|(a, b)| **a == *b)
            .count();
        // Distinct keys of one timestamp differ somewhere in the id; the `min` only guards
        // against a caller passing equal keys.
        let prefix_len = (shared + 1).min(ID_LEN);
        let mut id = [0u8; ID_LEN];
        id[..prefix_len].copy_from_slice(&curr.id.0[..prefix_len]);
        Self {
            timestamp: curr.timestamp,
            id,
            prefix_len,
        }
    }

    /// The key this bound stands for: the first key a range ending here excludes.
    pub(crate) fn key(&self) -> ItemKey {
        ItemKey::new(self.timestamp, ItemId(self.id))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> Ordering {
        // The prefix length does not take part: a bound stands for its padded key.
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Writes the bounds of one message, tracking the previous timestamp for the deltas.
#[derive(Debug, Default)]
pub(crate) struct BoundWriter {
    last_timestamp: u64,
}

impl BoundWriter {
    /// Appends `bound` to `out`.
    pub(crate) fn write(&mut self, bound: &Bound, out: &mut Vec<u8>) {
        if bound.timestamp == u64::MAX {
            self.last_timestamp = u64::MAX;
            varint::encode(0, out);
        } else {
            // Saturating as the reference does: a bound below the previous one is never
            // written by this crate, but the encoding must match when it is.
            let delta = bound.timestamp.saturating_sub(self.last_timestamp);
            self.last_timestamp = bound.timestamp;
            varint::encode(delta.saturating_add(1), out);
        }
        varint::encode(bound.prefix_len as u64, out);
        out.extend_from_slice(&bound.id[..bound.prefix_len]);
    }
}

/// Reads the bounds of one message, tracking the previous timestamp for the deltas.
#[derive(Debug, Default)]
pub(crate) struct BoundReader {
    last_timestamp: u64,
}

impl BoundReader {
    /// Reads one bound from the front of `input` and advances past it.
    pub(crate) fn read(&mut self, input: &mut &[u8]) -> Result<Bound, MessageError> {
        let encoded = varint::decode(input)?;
        let delta = encoded.checked_sub(1).unwrap_or(u64::MAX);
        // Saturating as the reference does: infinity plus anything stays infinity.
        let timestamp = delta.saturating_add(self.last_timestamp);
        self.last_timestamp = timestamp;

        let encoded_len = varint::decode(input)?;
        let prefix_len = usize::try_from(encoded_len)
            .ok()
            .filter(|&len| len <= ID_LEN)
            .ok_or(MessageError::IdPrefixTooLong(encoded_len))?;
        let Some((prefix, rest)) = input.split_at_checked(prefix_len) else {
            return Err(MessageError::Truncated);
        };
        let mut id = [0u8; ID_LEN];
        id[..prefix_len].copy_from_slice(prefix);
        *input = rest;
        Ok(Bound {
            timestamp,
            id,
            prefix_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(timestamp: u64, first: u8, second: u8) -> ItemKey {
        let mut id = [0u8; 32];
        id[0] = first;
        id[1] = second;
        ItemKey::new(timestamp, ItemId(id))
    }

    #[test]
    fn bounds_round_trip_with_deltas_and_infinity() {
        let bounds = [
            Bound::timestamp_only(5),
            Bound::between(&key(5, 1, 2), &key(5, 1, 3)),
            Bound::of_key(&key(9, 7, 7)),
            Bound::INFINITY,
        ];
        let mut writer = BoundWriter::default();
        let mut out = Vec::new();
        for bound in &bounds {
            writer.write(bound, &mut out);
        }
        // 5 is delta 5 from 0, written as 6; infinity is written as 0.
        assert_eq!(&out[..2], &[6, 0]);
        let mut reader = BoundReader::default();
        let mut input = &out[..];
        for bound in &bounds {
            assert_eq!(reader.read(&mut input).as_ref(), Ok(bound));
        }
        assert!(input.is_empty());
    }

    #[test]
    fn between_is_the_shortest_separating_prefix() {
        let bound = Bound::between(&key(5, 1, 2), &key(5, 1, 3));
        assert_eq!(bound.prefix_len, 2);
        assert!(key(5, 1, 2) < bound.key() && bound.key() <= key(5, 1, 3));
        assert_eq!(
            Bound::between(&key(4, 9, 9), &key(5, 0, 0)),
            Bound::timestamp_only(5)
        );
    }

    #[test]
    fn refuses_long_prefixes_and_truncated_bounds() {
        let mut reader = BoundReader::default();
        assert_eq!(
            reader.read(&mut &[1, 33][..]),
            Err(MessageError::IdPrefixTooLong(33))
        );
        let mut reader = BoundReader::default();
        assert_eq!(
            reader.read(&mut &[1, 3, 0xaa][..]),
            Err(MessageError::Truncated)
        );
        let mut reader = BoundReader::default();
        assert_eq!(
            reader.read(&mut &[1][..]),
            Err(MessageError::TruncatedVarint)
        );
    }
}
