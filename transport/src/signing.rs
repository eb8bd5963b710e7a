//! Domain-separated signatures and the signed envelope.
//!
//! Every signature in weft covers `blake3(tag || 0x00 || payload)`, where the tag names the
//! record kind and version (`weft/discovery/entry/1`). A signature made for one kind of record
//! therefore never verifies as another kind. The zero byte ends the tag, so no (tag, payload)
//! pair can be re-split into another.

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_bytes::ByteBuf;

use crate::{
    frame::{cbor_decode, cbor_encode},
    identity::{PeerId, SecretKey},
};

/// The tag that separates one kind of signed record from every other.
///
/// Tags are ASCII, contain no zero byte, and end in a version: `weft/<layer>/<kind>/<version>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainTag(&'static str);

impl DomainTag {
    /// Names a domain. Panics at compile time (in `const` use) or at once if the tag has a zero
    /// byte or non-ASCII character, since such a tag would break domain separation.
    pub const fn new(tag: &'static str) -> Self {
        let bytes = tag.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            assert!(
                bytes[i] != 0 && bytes[i].is_ascii(),
                "domain tags are ASCII without zero bytes"
            );
            i += 1;
        }
        Self(tag)
    }

    /// The tag as text.
    pub const fn as_str(&self) -> &'static str {
        self.0
    }

    /// The 32-byte digest that is signed for `payload` in this domain.
    pub fn digest(&self, payload: &[u8]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.0.as_bytes());
        hasher.update(&[0]);
        hasher.update(payload);
        *hasher.finalize().as_bytes()
    }
}

/// An ed25519 signature made through a [`DomainTag`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(iroh_base::Signature);

/// A 64-byte string on the wire (66 bytes in CBOR).
impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteArray::<64>::deserialize(deserializer)?;
        Ok(Self::from_bytes(&bytes))
    }
}

impl Signature {
    /// The 64 signature bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }

    /// A signature from its 64 bytes (not yet verified against anything).
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        Self(iroh_base::Signature::from_bytes(bytes))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        write!(
            f,
            "Signature({:02x}{:02x}{:02x}{:02x}..)",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )
    }
}

impl SecretKey {
    /// Signs `payload` in the domain `tag`.
    pub fn sign(&self, tag: DomainTag, payload: &[u8]) -> Signature {
        Signature(self.sign_raw(&tag.digest(payload)))
    }
}

impl PeerId {
    /// Verifies that this peer signed `payload` in the domain `tag`.
    pub fn verify(
        &self,
        tag: DomainTag,
        payload: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        self.verify_raw(&tag.digest(payload), &signature.0)
            .map_err(|_| SignatureError::BadSignature {
                signer: *self,
                domain: tag.as_str(),
            })
    }
}

/// A record kind that travels signed, inside a [`Signed`] envelope.
pub trait SignedPayload: Serialize + DeserializeOwned {
    /// The domain every signature over this kind is made in.
    const DOMAIN: DomainTag;

    /// The peer that must have signed this record, when the record names one (a peer entry
    /// names its peer, a provider record its provider). `None` accepts any signer.
    fn required_signer(&self) -> Option<PeerId> {
        None
    }
}

/// Why a signature or a signed envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not verify under the signer's key in this domain.
    #[error("signature by {signer:?} does not verify in domain {domain}")]
    BadSignature {
        /// Who claimed to sign.
        signer: PeerId,
        /// The domain the signature was checked in.
        domain: &'static str,
    },
    /// The record names a peer, and someone else signed it.
    #[error("record must be signed by {expected:?} but was signed by {actual:?}")]
    WrongSigner {
        /// The peer the record names.
        expected: PeerId,
        /// The peer that signed it.
        actual: PeerId,
    },
    /// The bytes are not an envelope, or its payload is not the expected record.
    #[error("malformed signed envelope: {0}")]
    Malformed(String),
}

/// A record together with its signer and a verified signature.
///
/// A `Signed<T>` exists only in two ways: [`Signed::sign`] made it, or its signature verified when
/// it was decoded (through [`Signed::from_bytes`] or serde). Code that holds one can trust it.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weft_transport::{DomainTag, SecretKey, Signed, SignedPayload};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct Hello { text: String }
/// impl SignedPayload for Hello {
///     const DOMAIN: DomainTag = DomainTag::new("weft/example/hello/1");
/// }
///
/// let key = SecretKey::generate();
/// let signed = Signed::sign(&key, Hello { text: "hi".into() }).unwrap();
/// let bytes = signed.to_bytes();
/// let back = Signed::<Hello>::from_bytes(&bytes).unwrap();
/// assert_eq!(back.payload().text, "hi");
/// assert_eq!(back.signer(), key.peer_id());
/// ```
#[derive(Clone)]
pub struct Signed<T> {
    signer: PeerId,
    payload: T,
    payload_bytes: Vec<u8>,
    signature: Signature,
}

/// The wire form of a [`Signed`] envelope: a CBOR map of signer, payload bytes, signature.
#[derive(Serialize, Deserialize)]
struct Envelope {
    signer: PeerId,
    payload: ByteBuf,
    signature: Signature,
}

impl<T: SignedPayload> Signed<T> {
    /// Encodes `payload` canonically and signs it with `key`.
    ///
    /// Fails with [`SignatureError::WrongSigner`] when the payload names another signer.
    pub fn sign(key: &SecretKey, payload: T) -> Result<Self, SignatureError> {
        let signer = key.peer_id();
        if let Some(expected) = payload.required_signer()
            && expected != signer
        {
            return Err(SignatureError::WrongSigner {
                expected,
                actual: signer,
            });
        }
        let payload_bytes =
            cbor_encode(&payload).map_err(|err| SignatureError::Malformed(err.to_string()))?;
        let signature = key.sign(T::DOMAIN, &payload_bytes);
        Ok(Self {
            signer,
            payload,
            payload_bytes,
            signature,
        })
    }

    /// Decodes and verifies an envelope made by [`Signed::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        let envelope: Envelope =
            cbor_decode(bytes).map_err(|err| SignatureError::Malformed(err.to_string()))?;
        Self::verify_envelope(envelope)
    }

    fn verify_envelope(envelope: Envelope) -> Result<Self, SignatureError> {
        let Envelope {
            signer,
            payload,
            signature,
        } = envelope;
        signer.verify(T::DOMAIN, &payload, &signature)?;
        let decoded: T =
            cbor_decode(&payload).map_err(|err| SignatureError::Malformed(err.to_string()))?;
        if let Some(expected) = decoded.required_signer()
            && expected != signer
        {
            return Err(SignatureError::WrongSigner {
                expected,
                actual: signer,
            });
        }
        Ok(Self {
            signer,
            payload: decoded,
            payload_bytes: payload.into_vec(),
            signature,
        })
    }

    /// The envelope's wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding a struct of byte strings into a Vec cannot fail.
        cbor_encode(&self.envelope()).unwrap_or_default()
    }

    fn envelope(&self) -> Envelope {
        Envelope {
            signer: self.signer,
            payload: ByteBuf::from(self.payload_bytes.clone()),
            signature: self.signature,
        }
    }
}

impl<T> Signed<T> {
    /// The peer whose signature verified.
    pub fn signer(&self) -> PeerId {
        self.signer
    }

    /// The verified record.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// Takes the verified record out of the envelope.
    pub fn into_payload(self) -> T {
        self.payload
    }

    /// The exact bytes that were signed (the canonical CBOR of the payload).
    pub fn payload_bytes(&self) -> &[u8] {
        &self.payload_bytes
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

impl<T: fmt::Debug> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("signer", &self.signer)
            .field("payload", &self.payload)
            .finish()
    }
}

impl<T: PartialEq> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.signer == other.signer
            && self.payload_bytes == other.payload_bytes
            && self.signature == other.signature
    }
}

impl<T: Eq> Eq for Signed<T> {}

impl<T: SignedPayload> Serialize for Signed<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.envelope().serialize(serializer)
    }
}

impl<'de, T: SignedPayload> Deserialize<'de> for Signed<T> {
    /// Verifies while decoding: a message containing a `Signed<T>` with a bad signature fails to
    /// decode as a whole.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let envelope = Envelope::deserialize(deserializer)?;
        Self::verify_envelope(envelope).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Record {
        owner: PeerId,
        value: u32,
    }

    impl SignedPayload for Record {
        const DOMAIN: DomainTag = DomainTag::new("weft/test/record/1");
        fn required_signer(&self) -> Option<PeerId> {
            Some(self.owner)
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct OtherRecord {
        owner: PeerId,
        value: u32,
    }

    impl SignedPayload for OtherRecord {
        const DOMAIN: DomainTag = DomainTag::new("weft/test/other/1");
    }

    fn record(key: &SecretKey) -> Record {
        Record {
            owner: key.peer_id(),
            value: 7,
        }
    }

    #[test]
    fn round_trip_verifies() {
        let key = SecretKey::generate();
        let signed = Signed::sign(&key, record(&key)).unwrap();
        let back = Signed::<Record>::from_bytes(&signed.to_bytes()).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.payload().value, 7);
    }

    #[test]
    fn forged_signature_fails_decoding() {
        let key = SecretKey::generate();
        let signed = Signed::sign(&key, record(&key)).unwrap();
        // Change the payload after signing: the signature no longer covers it.
        let mut envelope: Envelope = cbor_decode(&signed.to_bytes()).unwrap();
        let tampered = Record {
            owner: key.peer_id(),
            value: 8,
        };
        envelope.payload = ByteBuf::from(cbor_encode(&tampered).unwrap());
        let bytes = cbor_encode(&envelope).unwrap();
        let err = Signed::<Record>::from_bytes(&bytes).unwrap_err();
        assert!(matches!(err, SignatureError::BadSignature { .. }), "{err}");
        // The same holds when the envelope is nested inside another message.
        let nested: Result<Vec<Signed<Record>>, _> =
            cbor_decode(&cbor_encode(&vec![envelope]).unwrap());
        assert!(nested.is_err());
    }

    #[test]
    fn record_signed_by_another_key_is_refused() {
        let owner = SecretKey::generate();
        let intruder = SecretKey::generate();
        let err = Signed::sign(&intruder, record(&owner)).unwrap_err();
        assert!(matches!(err, SignatureError::WrongSigner { .. }));

        // Build the envelope by hand, signed validly but by the wrong key.
        let payload = cbor_encode(&record(&owner)).unwrap();
        let envelope = Envelope {
            signer: intruder.peer_id(),
            signature: intruder.sign(Record::DOMAIN, &payload),
            payload: ByteBuf::from(payload),
        };
        let err = Signed::<Record>::from_bytes(&cbor_encode(&envelope).unwrap()).unwrap_err();
        assert!(matches!(err, SignatureError::WrongSigner { .. }), "{err}");
    }

    #[test]
    fn signature_does_not_cross_domains() {
        let key = SecretKey::generate();
        let other = Signed::sign(
            &key,
            OtherRecord {
                owner: key.peer_id(),
                value: 7,
            },
        )
        .unwrap();
        let err = Signed::<Record>::from_bytes(&other.to_bytes()).unwrap_err();
        assert!(matches!(err, SignatureError::BadSignature { .. }));
    }

    #[test]
    fn garbage_is_malformed() {
        let err = Signed::<Record>::from_bytes(b"\xff\x00garbage").unwrap_err();
        assert!(matches!(err, SignatureError::Malformed(_)));
    }
}
