//! Negentropy's varints: base 128, most significant group first, the high bit set on every
//! byte but the last. (Not LEB128, which puts the least significant group first.)

use super::MessageError;

/// The longest encoding of a `u64`: ceil(64 / 7) bytes.
pub(crate) const MAX_LEN: usize = 10;

/// Appends the encoding of `n` to `out`.
pub(crate) fn encode(n: u64, out: &mut Vec<u8>) {
    let groups = (64 - n.leading_zeros()).div_ceil(7).max(1);
    for group in (0..groups).rev() {
        // Truncating to the low 7 bits is the point of the cast.
        let byte = ((n >> (group * 7)) & 0x7f) as u8;
        out.push(if group == 0 { byte } else { byte | 0x80 });
    }
}

/// Reads one varint from the front of `input` and advances past it.
///
/// Unlike the reference, which stops silently at the end of input and shifts bits out of the
/// top, this refuses a varint cut off by the end of the message and one above `u64::MAX`:
/// either means the peer's message is not what it claims to be.
pub(crate) fn decode(input: &mut &[u8]) -> Result<u64, MessageError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        if value > u64::MAX >> 7 {
            return Err(MessageError::VarintOverflow);
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(value);
        }
    }
    Err(MessageError::TruncatedVarint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode(n, &mut out);
        out
    }

    #[test]
    fn encodes_most_significant_group_first() {
        assert_eq!(encoded(0), [0x00]);
        assert_eq!(encoded(0x7f), [0x7f]);
        assert_eq!(encoded(0x80), [0x81, 0x00]);
        assert_eq!(encoded(300), [0x82, 0x2c]);
        assert_eq!(encoded(u64::MAX).len(), MAX_LEN);
    }

    #[test]
    fn round_trips_edges() {
        for n in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let bytes = encoded(n);
            let mut input = &bytes[..];
            assert_eq!(decode(&mut input), Ok(n));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn refuses_truncated_and_overflowing_varints() {
        assert_eq!(decode(&mut &[][..]), Err(MessageError::TruncatedVarint));
        assert_eq!(decode(&mut &[0x81][..]), Err(MessageError::TruncatedVarint));
        // u64::MAX is 0x81 followed by nine 0xff groups; one more group is 2^64 or more.
        let mut too_big = encoded(u64::MAX);
        too_big.pop();
        too_big.extend([0xff, 0x7f]);
        assert_eq!(decode(&mut &too_big[..]), Err(MessageError::VarintOverflow));
        let mut huge = vec![0xffu8; 20];
        huge.push(0);
        assert_eq!(decode(&mut &huge[..]), Err(MessageError::VarintOverflow));
    }

    #[test]
    fn accepts_leading_zero_groups_as_the_reference_does() {
        assert_eq!(decode(&mut &[0x80, 0x80, 0x05][..]), Ok(5));
    }
}
