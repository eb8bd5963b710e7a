//! The frame reader: `FrameDecoder` fed the same bytes whole and in chunks, and
//! `decode_header`. Frames hold any CBOR (`ciborium::Value`).
//!
//! Input: one control byte (maximum frame size, chunk length), then the stream.
//! Checks: chunking never changes what is decoded; a header is refused exactly when it
//! announces more than the maximum; every decoded frame re-encodes to a frame that decodes to
//! the same bytes again.

#![no_main]

use ciborium::Value;
use libfuzzer_sys::fuzz_target;
use weft_transport::{
    DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, FrameDecoder, FrameError, decode_header, encode_frame,
};

const MAXES: [usize; 4] = [0, 64, 4096, DEFAULT_MAX_FRAME_SIZE];

#[derive(Debug, PartialEq)]
enum Outcome {
    /// A frame, as re-encoded.
    Frame(Vec<u8>),
    Malformed,
    TooLarge,
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let max = MAXES[usize::from(control & 3)];
    let step = usize::from(control >> 2) + 1;

    if let Some(header) = stream.first_chunk::<FRAME_HEADER_LEN>() {
        let announced = u32::from_be_bytes(*header) as usize;
        match decode_header(*header, max) {
            Ok(len) => assert!(len == announced && len <= max),
            Err(FrameError::TooLarge { .. }) => assert!(announced > max),
            Err(other) => panic!("decode_header failed with {other}"),
        }
    }

    let whole = decode_all(max, std::iter::once(stream));
    let chunked = decode_all(max, stream.chunks(step));
    assert_eq!(whole, chunked, "chunking changed the frames");
    let bytewise = decode_all(max, stream.chunks(1));
    assert_eq!(whole, bytewise, "byte-by-byte feeding changed the frames");
});

fn decode_all<'a>(max: usize, chunks: impl Iterator<Item = &'a [u8]>) -> Vec<Outcome> {
    let mut decoder = FrameDecoder::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.extend(chunk);
        loop {
            match decoder.next_frame::<Value>() {
                Ok(Some(value)) => out.push(Outcome::Frame(reencode(&value))),
                Ok(None) => break,
                // The frame is consumed; the next one may be fine.
                Err(FrameError::Malformed(_)) => out.push(Outcome::Malformed),
                // The stream cannot go on: the reader closes it.
                Err(FrameError::TooLarge { .. }) => {
                    out.push(Outcome::TooLarge);
                    return out;
                }
                Err(other) => panic!("next_frame failed with {other}"),
            }
        }
    }
    out
}

/// Re-encodes a decoded frame, checks it decodes and re-encodes to the same bytes.
fn reencode(value: &Value) -> Vec<u8> {
    let frame = encode_frame(value, usize::MAX).expect("a decoded value encodes");
    let mut decoder = FrameDecoder::new(usize::MAX);
    decoder.extend(&frame);
    let again: Value = decoder
        .next_frame()
        .expect("a re-encoded frame decodes")
        .expect("a re-encoded frame is whole");
    assert_eq!(
        encode_frame(&again, usize::MAX).expect("encodes"),
        frame,
        "frame encoding is not stable"
    );
    frame
}
