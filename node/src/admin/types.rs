//! The admin API's requests and responses: one serde type per body, shared by the server and
//! the client so the two cannot drift apart.
//!
//! Peer ids, tickets and topic names travel as text (the forms `weft` prints), so the JSON is
//! readable with `curl` and does not depend on how a layer serialises its own types. Byte
//! payloads travel as base64 in a [`Payload`].

use std::fmt;
use std::net::SocketAddr;

use data_encoding::BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Opaque bytes (a gossip message, a sync item, a service request), base64 in JSON.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as text, with invalid UTF-8 replaced, for a human reading a terminal.
    pub fn to_text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// `true` when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64
            .decode(text.as_bytes())
            .map(Payload)
            .map_err(|err| serde::de::Error::custom(format_args!("invalid base64: {err}")))
    }
}

/// `GET /v1/status`: who the node is and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's peer id (its public key), as text.
    pub id: String,
    /// A ticket other nodes can bootstrap from (`weft ticket`).
    pub ticket: String,
    /// The network's name.
    pub network: String,
    /// The direct addresses the endpoint is bound to or was seen at.
    pub addresses: Vec<SocketAddr>,
    /// The relay the node uses, if any.
    pub relay: Option<String>,
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
    /// The `weft-node` version.
    pub version: String,
    /// Every layer, in dependency order, with whether the node runs it.
    pub layers: Vec<LayerStatus>,
    /// The service names the node answers calls for (`[[service]]` and the application's).
    #[serde(default)]
    pub services: Vec<String>,
}

/// One layer of a running node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStatus {
    /// `transport`, `gossip`, `discovery`, `registry` or `sync`.
    pub name: String,
    /// `false` once the layer has stopped (or when it was left out of the node).
    pub running: bool,
    /// `false` when the node was built without it (`[layers]`, `Builder::without_*`).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `GET /v1/peers`: the peers this node knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peers {
    /// Known peers, in the order the node lists them.
    pub peers: Vec<Peer>,
}

/// A peer the node knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The peer's id, as text.
    pub id: String,
    /// Its direct addresses.
    pub addresses: Vec<SocketAddr>,
    /// Its relay, if any.
    pub relay: Option<String>,
    /// The last measured round-trip time in microseconds, if one was measured.
    pub rtt_us: Option<u64>,
}

/// `POST /v1/gossip/publish`: broadcast a message on a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipPublish {
    /// The topic's name (the node derives the topic id from it).
    pub topic: String,
    /// The message.
    pub content: Payload,
}

/// The answer to [`GossipPublish`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The message's id, as text.
    pub message_id: String,
}

/// A request naming one topic: `POST /v1/gossip/subscribe` and `POST /v1/sync/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRequest {
    /// The topic's name.
    pub topic: String,
}

/// One line of a `POST /v1/gossip/subscribe` stream (JSON lines, one event per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GossipEvent {
    /// A message arrived on the topic.
    Message {
        /// The peer that published it, as text.
        from: String,
        /// The message.
        content: Payload,
    },
    /// A neighbour joined this node's view of the topic.
    NeighborUp {
        /// The neighbour, as text.
        peer: String,
    },
    /// A neighbour left this node's view of the topic.
    NeighborDown {
        /// The neighbour, as text.
        peer: String,
    },
    /// The subscriber read too slowly and this many events were dropped for it.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

/// `POST /v1/registry/provide`: register this node as a provider of a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryProvide {
    /// The name.
    pub name: String,
    /// Application metadata stored with the record.
    #[serde(default)]
    pub metadata: Payload,
}

/// The answer to [`RegistryProvide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provided {
    /// The name.
    pub name: String,
    /// How many nodes accepted the record.
    pub holders: u64,
}

/// `POST /v1/registry/find`: look a name's providers up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryFind {
    /// The name.
    pub name: String,
}

/// The answer to [`RegistryFind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Providers {
    /// The name.
    pub name: String,
    /// The providers found (empty when nobody provides the name).
    pub providers: Vec<Provider>,
}

/// One provider record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// The provider's id, as text.
    pub id: String,
    /// Its direct addresses.
    pub addresses: Vec<SocketAddr>,
    /// Its relay, if any.
    pub relay: Option<String>,
    /// The metadata it registered.
    pub metadata: Payload,
    /// Milliseconds until the record expires.
    pub expires_in_ms: u64,
}

/// `POST /v1/call`: call a service by name, with failover between its providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The service's name.
    pub name: String,
    /// The request.
    pub request: Payload,
    /// A timeout for the whole call, in milliseconds; the node's default when absent.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// The answer to [`Call`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallReply {
    /// The provider that answered, as text.
    pub provider: String,
    /// Its response.
    pub response: Payload,
    /// Milliseconds from the call to the answer, failovers included.
    pub elapsed_ms: u64,
    /// Providers tried before the one that answered, and why each failed.
    pub failed: Vec<CallFailure>,
}

/// A provider that did not answer a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFailure {
    /// The provider, as text.
    pub provider: String,
    /// What went wrong.
    pub error: String,
}

/// `POST /v1/sync/add`: join a sync topic and, with content, add an item to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncAdd {
    /// The topic's name.
    pub topic: String,
    /// The item to add; joining the topic only when absent.
    #[serde(default)]
    pub content: Option<Payload>,
    /// The item's timestamp in milliseconds since the Unix epoch; now when absent.
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// The answer to [`SyncAdd`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncAdded {
    /// The topic's name.
    pub topic: String,
    /// The added item's id, as text, when an item was given.
    pub item: Option<String>,
}

/// `POST /v1/sync/list`: a page of a sync topic's items, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncList {
    /// The topic's name.
    pub topic: String,
    /// Only items with a timestamp at or after this (milliseconds since the Unix epoch).
    #[serde(default)]
    pub since: u64,
    /// At most this many items; the node caps it.
    pub limit: u32,
}

/// The answer to [`SyncList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncItems {
    /// The topic's name.
    pub topic: String,
    /// The items, oldest first.
    pub items: Vec<SyncItem>,
    /// `true` when more items follow the last one.
    pub more: bool,
}

/// One item of a sync topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncItem {
    /// The item's id, as text.
    pub id: String,
    /// Its timestamp in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Its content.
    pub content: Payload,
}

/// The answer to `POST /v1/sync/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The topic's name.
    pub topic: String,
    /// `true` when the node syncs this topic.
    pub joined: bool,
    /// How many items the node holds for it.
    pub items: u64,
    /// The open sessions.
    pub sessions: Vec<SyncSession>,
}

/// One sync session with a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSession {
    /// The peer, as text.
    pub peer: String,
    /// `true` when this node opened the session.
    pub initiator: bool,
    /// `true` once caught up and in live mode.
    pub live: bool,
}

/// The answer to `POST /v1/shutdown`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShuttingDown {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_base64_in_json() {
        let json = serde_json::to_string(&Payload::from("hi")).unwrap();
        assert_eq!(json, "\"aGk=\"");
        let back: Payload = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_bytes(), b"hi");
        assert!(serde_json::from_str::<Payload>("\"not base64!\"").is_err());
    }

    #[test]
    fn gossip_events_are_tagged() {
        let line = serde_json::to_string(&GossipEvent::Lagged { missed: 3 }).unwrap();
        assert_eq!(line, r#"{"event":"lagged","missed":3}"#);
    }
}
