//! The sync session frame, `weft_sync::proto::Frame` (handshake, refusal, data, abort).
//!
//! Checks: what decodes encodes, decodes to an equal value, and encodes to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_fuzz::assert_round_trip;
use weft_sync::proto::Frame;
use weft_transport::cbor_decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = cbor_decode::<Frame>(data) {
        assert_round_trip(&frame);
    }
});
