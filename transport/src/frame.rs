//! Framing: CBOR messages behind a 4-byte big-endian length prefix.
//!
//! ```text
//! +----------------+---------------------------+
//! | length: u32 BE | CBOR body (length bytes)  |
//! +----------------+---------------------------+
//! ```
//!
//! A reader checks the announced length against its maximum *before* it allocates anything for
//! the body, so a peer cannot make it reserve 4 GiB by sending four bytes. These types are pure;
//! the async stream adapters live in `stream` (feature `net`).

use serde::{Serialize, de::DeserializeOwned};

/// Bytes in the length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// The default largest frame body a reader accepts: 1 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 1024 * 1024;

/// Why a frame could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame announces (or would need) more bytes than allowed. Nothing was allocated for it.
    #[error("frame of {len} bytes is larger than the maximum of {max}")]
    TooLarge {
        /// The announced or encoded body length.
        len: u64,
        /// The maximum in force.
        max: usize,
    },
    /// The body is not valid CBOR for the expected message type.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The stream ended cleanly before a frame began.
    #[error("stream closed")]
    Closed,
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the frame announced.
        expected: usize,
    },
    /// The underlying stream failed.
    #[error("stream i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `value` as CBOR.
pub fn cbor_encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out)
        .map_err(|err| FrameError::Malformed(err.to_string()))?;
    Ok(out)
}

/// Decodes CBOR bytes as a `T`. Trailing bytes after the value are an error.
pub fn cbor_decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    cbor_decode_with_scratch(bytes, &mut [0u8; 4096])
}

/// Like [`cbor_decode`], with a caller's scratch buffer. Byte strings up to the scratch size are
/// copied once; a scratch as large as the frame makes large payloads cheap to decode.
pub fn cbor_decode_with_scratch<T: DeserializeOwned>(
    bytes: &[u8],
    scratch: &mut [u8],
) -> Result<T, FrameError> {
    let mut reader = bytes;
    let value = ciborium::de::from_reader_with_buffer(&mut reader, scratch)
        .map_err(|err| FrameError::Malformed(err.to_string()))?;
    if !reader.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes after the message",
            reader.len()
        )));
    }
    Ok(value)
}

/// Encodes `value` as one frame: length prefix and CBOR body.
///
/// Fails with [`FrameError::TooLarge`] when the body exceeds `max`, so a sender learns at once
/// that its peer would refuse the frame.
pub fn encode_frame<T: Serialize + ?Sized>(value: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_frame_into(value, max, &mut out)?;
    Ok(out)
}

/// Like [`encode_frame`], but into `out` (cleared first), so a sender can reuse one buffer.
pub fn encode_frame_into<T: Serialize + ?Sized>(
    value: &T,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    out.clear();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    ciborium::ser::into_writer(value, &mut *out)
        .map_err(|err| FrameError::Malformed(err.to_string()))?;
    let len = out.len() - FRAME_HEADER_LEN;
    let announced = check_len(len as u64, max)?;
    out[..FRAME_HEADER_LEN].copy_from_slice(&announced.to_be_bytes());
    Ok(())
}

/// Reads the body length from a frame header, refusing one over `max`.
pub fn decode_header(header: [u8; FRAME_HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header);
    check_len(u64::from(len), max).map(|len| len as usize)
}

fn check_len(len: u64, max: usize) -> Result<u32, FrameError> {
    match u32::try_from(len) {
        Ok(small) if len <= max as u64 => Ok(small),
        _ => Err(FrameError::TooLarge { len, max }),
    }
}

/// How much framing adds to a message: the length prefix. Layers that bound message sizes count
/// it, so a configured maximum is the true maximum on the wire.
pub const fn frame_overhead() -> usize {
    FRAME_HEADER_LEN
}

/// Decodes frames from a byte buffer that grows as data arrives (for sans-IO users and tests).
///
/// ```
/// use weft_transport::{FrameDecoder, encode_frame};
///
/// let frame = encode_frame(&"hello", 1024).unwrap();
/// let mut decoder = FrameDecoder::new(1024);
/// decoder.extend(&frame[..3]);
/// assert!(decoder.next_frame::<String>().unwrap().is_none());
/// decoder.extend(&frame[3..]);
/// assert_eq!(decoder.next_frame::<String>().unwrap().as_deref(), Some("hello"));
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames larger than `max`.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next whole frame, if one has arrived.
    ///
    /// An oversized header is reported as soon as its four bytes are in, before the body.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let Some(header) = self.buf.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = decode_header(*header, self.max)?;
        if self.buf.len() < FRAME_HEADER_LEN + len {
            return Ok(None);
        }
        let body: Vec<u8> = self.buf.drain(..FRAME_HEADER_LEN + len).collect();
        cbor_decode(&body[FRAME_HEADER_LEN..]).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_over_max_is_refused() {
        let err = decode_header(u32::MAX.to_be_bytes(), DEFAULT_MAX_FRAME_SIZE).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, .. } if len == u64::from(u32::MAX)));
    }

    #[test]
    fn encoder_refuses_oversized_message() {
        let big = vec![7u8; 100];
        let err = encode_frame(&serde_bytes::Bytes::new(&big), 50).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 50, .. }));
    }

    #[test]
    fn cbor_claiming_a_huge_string_is_malformed_not_an_allocation() {
        // A CBOR byte string header announcing 2^32 bytes, followed by nothing.
        let bytes = [0x5a, 0xff, 0xff, 0xff, 0xff];
        let err = cbor_decode::<serde_bytes::ByteBuf>(&bytes).unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)));
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut bytes = cbor_encode(&1u32).unwrap();
        bytes.push(0);
        assert!(matches!(
            cbor_decode::<u32>(&bytes),
            Err(FrameError::Malformed(_))
        ));
    }
}
