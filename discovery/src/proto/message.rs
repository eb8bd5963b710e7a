//! Wire messages: what goes on the gossip topic ([`Announcement`]) and what goes between two
//! peers directly ([`Message`]: sync and ping).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use weft_transport::{
    FrameError, NetworkId, Protocol, SignatureError, Signed, cbor_decode, cbor_encode,
};

use super::{
    entry::{Departure, PeerEntry},
    shared::SharedEntry,
    sync::SyncMessage,
};

/// The layer's protocol: the direct stream that carries catalog sync ([`Message::Sync`]).
/// Pings have their own, [`PING_PROTOCOL`].
pub const PROTOCOL: Protocol = Protocol::new("discovery-sync", 1);

/// The direct-stream protocol that carries [`Message::Ping`] and [`Message::Pong`].
pub const PING_PROTOCOL: Protocol = Protocol::new("discovery-ping", 1);

/// The 32-byte id of the gossip topic discovery announces on in `network`:
/// `blake3("weft/discovery/topic/1" || network_id)`. The runtime wraps it in gossip's topic id;
/// the proto does not depend on gossip.
///
/// ```
/// use weft_discovery::topic_bytes;
/// use weft_transport::NetworkId;
///
/// let a = topic_bytes(&NetworkId::from_name("a"));
/// assert_ne!(a, topic_bytes(&NetworkId::from_name("b")));
/// ```
pub fn topic_bytes(network: &NetworkId) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"weft/discovery/topic/1");
    hasher.update(network.as_bytes());
    *hasher.finalize().as_bytes()
}

/// What discovery broadcasts on its gossip topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Announcement {
    /// A peer's current entry (shared: one broadcast reaches many receivers).
    Entry(SharedEntry),
    /// A peer leaving.
    Departure(Signed<Departure>),
}

impl From<Signed<PeerEntry>> for Announcement {
    fn from(entry: Signed<PeerEntry>) -> Self {
        Self::Entry(SharedEntry::new(entry))
    }
}

impl From<SharedEntry> for Announcement {
    fn from(entry: SharedEntry) -> Self {
        Self::Entry(entry)
    }
}

impl From<Signed<Departure>> for Announcement {
    fn from(departure: Signed<Departure>) -> Self {
        Self::Departure(departure)
    }
}

/// The wire form: each signed record as its own envelope bytes, so a bad signature is reported
/// as such rather than as an undecodable message.
#[derive(Serialize, Deserialize)]
enum AnnouncementWire {
    Entry(ByteBuf),
    Departure(ByteBuf),
}

/// Why received bytes were not accepted as a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Larger than the configured maximum; not decoded.
    #[error("message of {len} bytes is larger than the maximum of {max}")]
    TooLarge {
        /// Received length.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// Not a valid message.
    #[error("malformed message: {0}")]
    Malformed(#[from] FrameError),
    /// A signed record in it does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl Announcement {
    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let wire = match self {
            Self::Entry(entry) => AnnouncementWire::Entry(ByteBuf::from(entry.to_bytes())),
            Self::Departure(dep) => AnnouncementWire::Departure(ByteBuf::from(dep.to_bytes())),
        };
        // An enum of byte strings always encodes.
        cbor_encode(&wire).unwrap_or_default()
    }

    /// Decodes and verifies an announcement of at most `max` bytes.
    pub fn decode(bytes: &[u8], max: usize) -> Result<Self, MessageError> {
        if bytes.len() > max {
            return Err(MessageError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        Ok(match cbor_decode::<AnnouncementWire>(bytes)? {
            AnnouncementWire::Entry(b) => Self::Entry(SharedEntry::new(Signed::from_bytes(&b)?)),
            AnnouncementWire::Departure(b) => Self::Departure(Signed::from_bytes(&b)?),
        })
    }
}

/// A message between two peers on a direct stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// A delta catalog sync step.
    Sync(SyncMessage),
    /// Are you there? Answered with a [`Message::Pong`] carrying the same nonce.
    Ping {
        /// Chosen by the pinger, echoed in the pong.
        nonce: u64,
    },
    /// The answer to a ping: the responder's freshly signed entry.
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// The responder's entry.
        entry: SharedEntry,
    },
}

impl Message {
    /// The wire bytes (CBOR; the runtime frames them).
    pub fn encode(&self) -> Vec<u8> {
        // Every field is a plain value or a byte string: encoding cannot fail.
        cbor_encode(self).unwrap_or_default()
    }

    /// Decodes a message of at most `max` bytes. Signed entries inside are verified while
    /// decoding: one bad signature makes the whole message malformed.
    pub fn decode(bytes: &[u8], max: usize) -> Result<Self, MessageError> {
        if bytes.len() > max {
            return Err(MessageError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        Ok(cbor_decode(bytes)?)
    }
}
