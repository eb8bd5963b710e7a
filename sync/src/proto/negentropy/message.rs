//! Negentropy v1 messages: a version byte, then ranges, each a bound, a mode and a payload.
//!
//! ```text
//! message = version:u8 range*
//! range   = bound mode:varint payload
//! payload = ""                                  (mode 0, Skip)
//!         | fingerprint:[u8; 16]                (mode 1, Fingerprint)
//!         | count:varint id:[u8; 32]{count}     (mode 2, IdList)
//! ```

use super::{
    MessageError,
    bound::{Bound, BoundReader, BoundWriter},
    varint,
};
use crate::proto::{
    ItemId,
    fingerprint::{FINGERPRINT_LEN, Fingerprint},
};

/// The version byte that opens every Negentropy v1 message.
pub const NEGENTROPY_V1: u8 = 0x61;

/// Bytes of an id in an id list.
const ID_LEN: usize = 32;

/// What a range's payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Nothing to say about the range: the sender has no difference to report in it.
    Skip = 0,
    /// The fingerprint of the sender's keys in the range.
    Fingerprint = 1,
    /// Every id the sender has in the range.
    IdList = 2,
}

impl Mode {
    fn from_wire(mode: u64) -> Result<Self, MessageError> {
        match mode {
            0 => Ok(Self::Skip),
            1 => Ok(Self::Fingerprint),
            2 => Ok(Self::IdList),
            other => Err(MessageError::BadMode(other)),
        }
    }
}

/// A range's payload as read from a message.
#[derive(Debug)]
pub(crate) enum Payload<'a> {
    /// Mode 0.
    Skip,
    /// Mode 1.
    Fingerprint(Fingerprint),
    /// Mode 2.
    IdList(IdList<'a>),
}

/// The ids of an id list, still in the message's bytes (checked to be whole ids).
#[derive(Debug)]
pub(crate) struct IdList<'a>(&'a [u8]);

impl IdList<'_> {
    /// The ids, in message order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ItemId> + '_ {
        self.0.chunks_exact(ID_LEN).map(|chunk| {
            let mut id = [0u8; ID_LEN];
            id.copy_from_slice(chunk);
            ItemId(id)
        })
    }
}

/// Reads the ranges of a message after its version byte, checking as it goes.
#[derive(Debug)]
pub(crate) struct RangeReader<'a> {
    input: &'a [u8],
    bounds: BoundReader,
    prev: Bound,
}

impl<'a> RangeReader<'a> {
    /// A reader over the bytes after the version byte.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            bounds: BoundReader::default(),
            prev: Bound::ZERO,
        }
    }

    /// The next range, or `None` at the end of the message.
    ///
    /// Bounds must not decrease: a range ending below where the previous one ended is not
    /// something a conforming peer writes. Equal bounds (an empty range) are allowed, as the
    /// reference can write one after an id list that filled its frame.
    pub(crate) fn next_range(&mut self) -> Result<Option<(Bound, Payload<'a>)>, MessageError> {
        if self.input.is_empty() {
            return Ok(None);
        }
        let bound = self.bounds.read(&mut self.input)?;
        if bound < self.prev {
            return Err(MessageError::BoundsOutOfOrder);
        }
        self.prev = bound;
        let payload = match Mode::from_wire(varint::decode(&mut self.input)?)? {
            Mode::Skip => Payload::Skip,
            Mode::Fingerprint => {
                let Some((fingerprint, rest)) = self.input.split_first_chunk::<FINGERPRINT_LEN>()
                else {
                    return Err(MessageError::Truncated);
                };
                self.input = rest;
                Payload::Fingerprint(Fingerprint(*fingerprint))
            }
            Mode::IdList => {
                let count = varint::decode(&mut self.input)?;
                // The count comes from the peer: check that the ids are there before using it,
                // so a huge count costs nothing.
                let available = self.input.len() / ID_LEN;
                let ids = usize::try_from(count)
                    .ok()
                    .filter(|&count| count <= available)
                    .ok_or(MessageError::IdListTruncated { count, available })?;
                let (ids, rest) = self.input.split_at(ids * ID_LEN);
                self.input = rest;
                Payload::IdList(IdList(ids))
            }
        };
        Ok(Some((bound, payload)))
    }
}

/// Writes a range's bound and mode; the payload follows.
pub(crate) fn write_header(bounds: &mut BoundWriter, bound: &Bound, mode: Mode, out: &mut Vec<u8>) {
    bounds.write(bound, out);
    varint::encode(mode as u64, out);
}

/// Writes a whole Fingerprint range.
pub(crate) fn write_fingerprint(
    bounds: &mut BoundWriter,
    bound: &Bound,
    fingerprint: &Fingerprint,
    out: &mut Vec<u8>,
) {
    write_header(bounds, bound, Mode::Fingerprint, out);
    out.extend_from_slice(&fingerprint.0);
}

/// Writes a whole IdList range.
pub(crate) fn write_id_list(
    bounds: &mut BoundWriter,
    bound: &Bound,
    ids: impl ExactSizeIterator<Item = ItemId>,
    out: &mut Vec<u8>,
) {
    write_header(bounds, bound, Mode::IdList, out);
    varint::encode(ids.len() as u64, out);
    for id in ids {
        out.extend_from_slice(&id.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Result<usize, MessageError> {
        let mut reader = RangeReader::new(input);
        let mut ranges = 0;
        while reader.next_range()?.is_some() {
            ranges += 1;
        }
        Ok(ranges)
    }

    #[test]
    fn reads_what_it_writes() {
        let mut out = Vec::new();
        let mut bounds = BoundWriter::default();
        write_header(&mut bounds, &Bound::timestamp_only(3), Mode::Skip, &mut out);
        write_fingerprint(
            &mut bounds,
            &Bound::timestamp_only(7),
            &Fingerprint([9; 16]),
            &mut out,
        );
        write_id_list(
            &mut bounds,
            &Bound::INFINITY,
            [ItemId([1; 32]), ItemId([2; 32])].into_iter(),
            &mut out,
        );
        let mut reader = RangeReader::new(&out);
        assert!(matches!(reader.next_range(), Ok(Some((_, Payload::Skip)))));
        assert!(matches!(
            reader.next_range(),
            Ok(Some((_, Payload::Fingerprint(Fingerprint([9, ..])))))
        ));
        let Ok(Some((bound, Payload::IdList(ids)))) = reader.next_range() else {
            panic!("expected an id list");
        };
        assert_eq!(bound, Bound::INFINITY);
        assert_eq!(
            ids.iter().collect::<Vec<_>>(),
            [ItemId([1; 32]), ItemId([2; 32])]
        );
        assert!(matches!(reader.next_range(), Ok(None)));
    }

    #[test]
    fn refuses_bad_modes() {
        assert_eq!(read_all(&[1, 0, 3]), Err(MessageError::BadMode(3)));
        assert_eq!(read_all(&[1, 0]), Err(MessageError::TruncatedVarint));
    }

    #[test]
    fn refuses_truncated_fingerprints() {
        assert_eq!(
            read_all(&[0, 0, 1, 0xaa, 0xbb]),
            Err(MessageError::Truncated)
        );
    }

    #[test]
    fn refuses_id_lists_shorter_than_their_count() {
        let mut message = vec![0, 0, 2, 2];
        message.extend([0xbb; 32]);
        message.extend([0xcc; 31]);
        assert_eq!(
            read_all(&message),
            Err(MessageError::IdListTruncated {
                count: 2,
                available: 1
            })
        );
        // A count of 2^34 with no ids must be refused before anything is reserved for them.
        assert_eq!(
            read_all(&[0, 0, 2, 0xc0, 0x80, 0x80, 0x80, 0x00]),
            Err(MessageError::IdListTruncated {
                count: 1 << 34,
                available: 0
            })
        );
    }

    #[test]
    fn refuses_bounds_that_go_backwards() {
        // (5, [0x20]) then (5 + 0, [0x10]): the same timestamp, a smaller id.
        let message = [6, 1, 0x20, 0, 1, 1, 0x10, 0];
        assert_eq!(read_all(&message), Err(MessageError::BoundsOutOfOrder));
        // Equal bounds are an empty range, which the reference can send.
        assert_eq!(read_all(&[6, 0, 0, 1, 0, 0]), Ok(2));
    }
}
