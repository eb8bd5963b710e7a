//! Signed envelopes: `Signed::<T>::from_bytes` for every signed record a peer sends — the
//! discovery entry and departure, the registry provider record and removal.
//!
//! Input: a control byte (record kind in bits 0-1; bit 2 set: the rest is the payload, which
//! the target signs with `key(1)` so the payload decoder is reached past the signature; else
//! the rest is a whole envelope), then the bytes.
//! Checks: the signer is the record's required signer; the envelope re-encodes and decodes to
//! an equal one; the signed bytes decode to the same payload; a canonical entry re-encodes to
//! its signed bytes; the records' own checks (limits, validity at some time) never panic.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};
use weft_discovery::{Departure, Limits, PeerEntry, SharedEntry};
use weft_fuzz::{key, sign_raw};
use weft_registry::{ProviderRecord, RecordLimits, Removal, Time};
use weft_transport::{Signed, SignedPayload, cbor_decode, cbor_encode};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let signed = control & 4 != 0;
    // A time to validate registry records at, from the input's length (cheap, varied).
    let now = Time(u64::from(control >> 3).wrapping_mul(rest.len() as u64) << 20);
    match control & 3 {
        0 => {
            if let Some(entry) = decode::<PeerEntry>(rest, signed) {
                let _ = entry.payload().check_limits(&Limits::default());
                let _ = entry.payload().addr();
                let shared = SharedEntry::new(entry.clone());
                if shared.is_canonical() {
                    assert_eq!(
                        cbor_encode(entry.payload()).unwrap(),
                        entry.payload_bytes(),
                        "a canonical entry does not re-encode to its signed bytes"
                    );
                }
                assert_eq!(shared.wire_size(), entry.to_bytes().len());
            }
        }
        1 => {
            let _ = decode::<Departure>(rest, signed);
        }
        2 => {
            if let Some(record) = decode::<ProviderRecord>(rest, signed) {
                let record = record.payload();
                let _ = record.validate(now, &RecordLimits::default());
                let _ = record.expires_at();
                let _ = record.provider_addr();
            }
        }
        _ => {
            if let Some(removal) = decode::<Removal>(rest, signed) {
                let _ = removal.payload().validate(now, &RecordLimits::default());
            }
        }
    }
});

fn decode<T>(bytes: &[u8], sign: bool) -> Option<Signed<T>>
where
    T: SignedPayload + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let envelope;
    let bytes = if sign {
        envelope = sign_raw(&key(1), T::DOMAIN, bytes);
        &envelope
    } else {
        bytes
    };
    let signed = Signed::<T>::from_bytes(bytes).ok()?;
    if let Some(required) = signed.payload().required_signer() {
        assert_eq!(
            required,
            signed.signer(),
            "a record verified for another signer"
        );
    }
    let again = Signed::<T>::from_bytes(&signed.to_bytes()).expect("a re-encoded envelope decodes");
    assert_eq!(again, signed);
    assert_eq!(again.payload(), signed.payload());
    let payload: T = cbor_decode(signed.payload_bytes()).expect("signed bytes decode");
    assert_eq!(&payload, signed.payload());
    // Through serde too (how envelopes travel inside messages).
    let via_serde: Signed<T> = cbor_decode(&cbor_encode(&signed).unwrap()).unwrap();
    assert_eq!(via_serde, signed);
    Some(signed)
}
