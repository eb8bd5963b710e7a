//! `PeerId` parsing: from hex text (also the key file format), from 32 bytes, from CBOR.
//!
//! Checks: what parses prints and parses back to the same id; bytes survive.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_fuzz::assert_round_trip;
use weft_transport::{PeerId, cbor_decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = text.parse::<PeerId>()
    {
        assert_eq!(text.to_ascii_lowercase(), id.to_string());
        assert_eq!(id.to_string().parse::<PeerId>().unwrap(), id);
    }
    if let Some(bytes) = data.first_chunk::<32>()
        && let Ok(id) = PeerId::from_bytes(bytes)
    {
        assert_eq!(id.as_bytes(), bytes);
        assert_eq!(id.to_string().parse::<PeerId>().unwrap(), id);
    }
    if let Ok(id) = cbor_decode::<PeerId>(data) {
        assert_round_trip(&id);
    }
});
