//! Helpers shared by the fuzz targets (`fuzz_targets/`), and the seed inputs
//! (`examples/seeds.rs` writes them to `fuzz/seeds/<target>/`).
//!
//! Nothing here links libFuzzer: the seed generator builds on stable.

use std::fmt::Debug;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_bytes::ByteBuf;
use weft_transport::{DomainTag, PeerId, SecretKey, Signature, cbor_decode, cbor_encode};

pub mod seeds;

/// A fixed key: `n` repeated. Seeds are signed with `key(1)`, and targets that sign fuzzed
/// payloads sign with it too, so a mutated seed still names the right signer.
pub fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n; 32])
}

/// The peer id of [`key`]`(n)`.
pub fn peer(n: u8) -> PeerId {
    key(n).peer_id()
}

/// Splits fuzz input into messages: each is a big-endian `u16` length and that many bytes (the
/// last one is cut short when the input ends). [`join_chunks`] is the inverse, for seeds.
pub fn chunks(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = data.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (chunk, rest) = rest.split_at(len);
        data = rest;
        Some(chunk)
    })
}

/// Joins messages in the form [`chunks`] reads.
pub fn join_chunks<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        let len = u16::try_from(part.len()).expect("seed messages are small");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// What decoded must encode, decode again to an equal value, and encode to the same bytes.
pub fn assert_round_trip<T>(value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let bytes = cbor_encode(value).expect("a decoded value encodes");
    let again: T = cbor_decode(&bytes).expect("an encoded value decodes");
    assert_eq!(&again, value, "decode(encode(x)) != x");
    assert_eq!(
        cbor_encode(&again).expect("encodes"),
        bytes,
        "encoding is not stable"
    );
}

/// The wire form of `weft_transport::Signed` (its fields are private to the transport), so a
/// target can wrap fuzzed payload bytes in an envelope with a valid signature.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Who signed.
    pub signer: PeerId,
    /// The signed bytes.
    pub payload: ByteBuf,
    /// The signature over `payload` in the record's domain.
    pub signature: Signature,
}

/// An envelope around `payload`, signed by `key` in `domain`: the signature verifies whatever
/// the payload bytes are, so the payload's decoder is reached.
pub fn sign_raw(key: &SecretKey, domain: DomainTag, payload: &[u8]) -> Vec<u8> {
    let envelope = Envelope {
        signer: key.peer_id(),
        payload: ByteBuf::from(payload.to_vec()),
        signature: key.sign(domain, payload),
    };
    cbor_encode(&envelope).expect("an envelope encodes")
}
