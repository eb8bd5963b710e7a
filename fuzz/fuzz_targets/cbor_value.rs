//! `cbor_decode` of a frame body, as any CBOR value and as the transport's own types.
//!
//! Checks: the scratch buffer size never changes the result; what decodes re-encodes stably
//! (after at most one normalisation by ciborium).

#![no_main]

use ciborium::Value;
use libfuzzer_sys::fuzz_target;
use weft_fuzz::assert_round_trip;
use weft_transport::{
    NetworkId, PeerAddr, PeerId, Signature, cbor_decode, cbor_decode_with_scratch, cbor_encode,
};

fuzz_target!(|data: &[u8]| {
    let default = cbor_decode::<Value>(data).ok().map(|v| encode(&v));
    let small = cbor_decode_with_scratch::<Value>(data, &mut [0u8; 8])
        .ok()
        .map(|v| encode(&v));
    let mut big_scratch = vec![0u8; data.len().max(1)];
    let big = cbor_decode_with_scratch::<Value>(data, &mut big_scratch)
        .ok()
        .map(|v| encode(&v));
    assert_eq!(default, big, "scratch size changed the result");
    // A scratch smaller than a string may refuse it, but never decode it differently.
    if let Some(small) = small {
        assert_eq!(Some(small), default, "a small scratch decoded differently");
    }
    // One re-encoding may normalise (ciborium reads a bignum tag around an indefinite-length
    // byte string as a tag, but the definite one it writes back as an integer: `c2 5f ff` →
    // `c2 40` → `00`, kept in the seeds); from then on the encoding is a fixed point.
    if let Some(bytes) = &default {
        let again: Value = cbor_decode(bytes).expect("a re-encoded value decodes");
        let normalised = encode(&again);
        let thrice: Value = cbor_decode(&normalised).expect("a normalised value decodes");
        assert_eq!(encode(&thrice), normalised, "value encoding is not stable");
    }

    if let Ok(addr) = cbor_decode::<PeerAddr>(data) {
        assert_round_trip(&addr);
    }
    if let Ok(id) = cbor_decode::<PeerId>(data) {
        assert_round_trip(&id);
    }
    if let Ok(network) = cbor_decode::<NetworkId>(data) {
        assert_round_trip(&network);
    }
    if let Ok(signature) = cbor_decode::<Signature>(data) {
        assert_round_trip(&signature);
    }
});

fn encode(value: &Value) -> Vec<u8> {
    cbor_encode(value).expect("a decoded value encodes")
}
