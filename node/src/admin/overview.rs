//! The status page's answers: [`Overview`] (`GET /v1/overview`, everything the page shows but
//! the graph) and [`TopologyGraph`] (`GET /v1/topology?topic=...`). Ids and topics travel as
//! hex text, like the rest of the admin API.

use serde::{Deserialize, Serialize};

use super::types::{Peer, Status, SyncSession};

/// `GET /v1/overview`: the node at a glance, in one answer (the status page polls it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// Who the node is and what it runs (as `GET /v1/status`).
    pub status: Status,
    /// The peers discovery knows, with round-trip times where measured (empty without
    /// discovery).
    pub peers: Vec<Peer>,
    /// Every gossip topic joined (sync topics' overlays included), with both views.
    pub gossip: Vec<GossipTopicView>,
    /// The registry's records and names; `None` when the node runs no registry.
    pub registry: Option<RegistryOverview>,
    /// The sync topics joined through the admin API.
    pub sync: Vec<SyncTopicOverview>,
    /// What happened lately, oldest first (at most [`crate::MAX_RECENT_EVENTS`]).
    pub events: Vec<RecentEvent>,
}

/// One gossip topic's overlay as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipTopicView {
    /// The topic id, as hex.
    pub topic: String,
    /// The name it was joined by, when the node knows one (`"<name> (sync)"` for a sync
    /// topic's overlay).
    pub name: Option<String>,
    /// Its neighbours (active view).
    pub active: Vec<String>,
    /// Its reserve peers (passive view).
    pub passive: Vec<String>,
}

/// The registry at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryOverview {
    /// Provider records this node stores for others and itself.
    pub records_held: u64,
    /// Peers in its routing table.
    pub routing_peers: u64,
    /// The names it holds records for, with how many providers each (at most 64, by name).
    pub held: Vec<HeldName>,
    /// The names this node provides, in order.
    pub provided: Vec<String>,
}

/// A name the registry holds records for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldName {
    /// The name.
    pub name: String,
    /// Its providers whose records this node holds.
    pub providers: usize,
}

/// One sync topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncTopicOverview {
    /// The topic id, as hex.
    pub topic: String,
    /// Its name.
    pub name: Option<String>,
    /// Items stored.
    pub items: u64,
    /// Sessions with peers now.
    pub sessions: Vec<SyncSession>,
}

/// Something that happened on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentEvent {
    /// The node's uptime when it happened, in milliseconds.
    pub at_ms: u64,
    /// The layer it came from: `gossip`, `discovery`, `registry`, `sync`, `node`.
    pub layer: String,
    /// What happened, in a line.
    pub text: String,
}

/// `GET /v1/topology?topic=<hex id or name>`: a topic's overlay as a graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyGraph {
    /// The topic id, as hex.
    pub topic: String,
    /// Every node seen; this one first.
    pub nodes: Vec<TopologyNode>,
    /// Every link seen, each once.
    pub edges: Vec<TopologyEdge>,
    /// Peers asked.
    pub asked: usize,
    /// Peers asked that did not answer.
    pub unanswered: usize,
    /// Whether a limit left peers unasked or nodes out.
    pub truncated: bool,
}

/// A node of a [`TopologyGraph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyNode {
    /// Its peer id, as hex.
    pub id: String,
    /// Whether it is the node answering.
    pub me: bool,
    /// Hops from the node answering.
    pub depth: u8,
    /// Whether it told its neighbours (`false`: not asked, or no answer).
    pub answered: bool,
}

/// A link of a [`TopologyGraph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyEdge {
    /// One end.
    pub from: String,
    /// The other end.
    pub to: String,
}
