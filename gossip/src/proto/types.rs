//! Small shared types: peer identities, topic and message ids, message content.

use std::{fmt, hash::Hash, sync::Arc};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use weft_transport::PeerId;

/// What the protocol needs from a peer identity.
///
/// The protocol is generic over it so the simulator can use plain integers (cheap to hash and
/// copy) while the runtime uses [`PeerId`].
pub trait PeerIdentity:
    Copy + Ord + Hash + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Bytes that identify the peer, mixed into message ids so two senders never share an id.
    fn id_bytes(&self) -> [u8; 32];
}

impl PeerIdentity for PeerId {
    fn id_bytes(&self) -> [u8; 32] {
        *self.as_bytes()
    }
}

impl PeerIdentity for u32 {
    fn id_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..4].copy_from_slice(&self.to_be_bytes());
        out
    }
}

impl PeerIdentity for u64 {
    fn id_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..8].copy_from_slice(&self.to_be_bytes());
        out
    }
}

/// Names a topic: a separate overlay and broadcast tree. On the wire: a 32-byte CBOR byte string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicId(#[serde(with = "bytes32")] pub [u8; 32]);

impl TopicId {
    /// The topic id for a human-readable name (`blake3` of it).
    pub fn from_name(name: &str) -> Self {
        Self(*blake3::hash(name.as_bytes()).as_bytes())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({})", &hex::encode(self.0)[..10])
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Identifies one broadcast: `blake3(sender || nonce || content)`.
///
/// The nonce is a per-node counter plus random bits, so two broadcasts with equal content are
/// two messages (a frequent surprise with content-addressed ids).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(#[serde(with = "bytes32")] pub [u8; 32]);

impl MessageId {
    /// Computes the id of a broadcast.
    pub fn new(sender: &[u8; 32], nonce: u64, content: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(sender);
        hasher.update(&nonce.to_be_bytes());
        hasher.update(content);
        Self(*hasher.finalize().as_bytes())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", &hex::encode(self.0)[..10])
    }
}

/// The payload of a broadcast. Cheap to clone (shared), serialised as a CBOR byte string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Content(Arc<[u8]>);

impl Content {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Content({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Content {
    fn from(value: Vec<u8>) -> Self {
        Self(value.into())
    }
}

impl From<&[u8]> for Content {
    fn from(value: &[u8]) -> Self {
        Self(value.into())
    }
}

impl<const N: usize> From<&[u8; N]> for Content {
    fn from(value: &[u8; N]) -> Self {
        Self(value.as_slice().into())
    }
}

impl Serialize for Content {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_bytes::Bytes::new(&self.0).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let buf = serde_bytes::ByteBuf::deserialize(deserializer)?;
        Ok(Self(buf.into_vec().into()))
    }
}

/// 32-byte arrays as CBOR byte strings (serde's default would be an array of 32 integers).
mod bytes32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &[u8; 32],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; 32], D::Error> {
        let array = serde_bytes::ByteArray::<32>::deserialize(deserializer)?;
        Ok(array.into_array())
    }
}

/// How far a broadcast travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Scope {
    /// Through the whole swarm of the topic.
    Swarm,
    /// Only to the direct neighbours, which do not forward it.
    Neighbors,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_content_gives_distinct_ids_with_distinct_nonces() {
        let a = MessageId::new(&[1; 32], 0, b"hi");
        let b = MessageId::new(&[1; 32], 1, b"hi");
        let c = MessageId::new(&[2; 32], 0, b"hi");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, MessageId::new(&[1; 32], 0, b"hi"));
    }

    #[test]
    fn content_roundtrips_as_cbor_bytes() {
        let content = Content::from(&[1u8, 2, 3]);
        let bytes = weft_transport::cbor_encode(&content).unwrap();
        // A CBOR byte string of 3 bytes: one header byte plus the bytes.
        assert_eq!(bytes, vec![0x43, 1, 2, 3]);
        let back: Content = weft_transport::cbor_decode(&bytes).unwrap();
        assert_eq!(back, content);
    }
}
