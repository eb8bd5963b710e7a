//! The topology query: a gossip topic's overlay as far as peers say who their neighbours are,
//! for the status page's graph ([`crate::Node::topology`]).
//!
//! - `crawl`: which peers to ask and the graph their answers draw (no I/O).
//! - `server`: the `topology/1` answers this node gives.
//! - this file: the protocol, its two frames, `[topology]`, and the crawl's runner.
//!
//! One bidirectional stream per question on a `topology/1` connection: a [`TopologyRequest`]
//! frame naming the topic, one [`TopologyAnswer`] frame back with the answering node's
//! neighbours on it (its active view; never its passive view, which would hand an attacker
//! the peers a node falls back on). A node that has not joined the topic says so. What any
//! peer of the network may learn this way is what the topic's gossip tells it anyway: who
//! links to whom. `[topology] answer = false` turns the answers off.

mod crawl;
mod server;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use weft_gossip::{Gossip, TopicId};
use weft_transport::{Endpoint, FramedRecv, FramedSend, PeerAddr, PeerId, Protocol};

use crate::duration;

pub use crawl::{Crawl, CrawlLimits, CrawlNode, Reply};
pub(crate) use server::Server;

/// The topology protocol: ALPN `weft/<network>/topology/1`.
pub const PROTOCOL: Protocol = Protocol::new("topology", 1);

/// Neighbours sent in one answer at most (an active view is far smaller: 5 by default).
pub const MAX_ANSWER_PEERS: usize = 32;

/// Peers asked at once during a crawl.
const PARALLEL_QUERIES: usize = 8;

/// The largest request frame: a 32-byte topic in CBOR.
const MAX_REQUEST_FRAME: usize = 64;

/// The largest answer frame: [`MAX_ANSWER_PEERS`] ids of 32 bytes in CBOR.
const MAX_ANSWER_FRAME: usize = MAX_ANSWER_PEERS * 40 + 64;

/// The question: who are your neighbours on this topic?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyRequest {
    /// The gossip topic.
    pub topic: TopicId,
}

/// The answer to a [`TopologyRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopologyAnswer {
    /// The answering node's neighbours on the topic (at most [`MAX_ANSWER_PEERS`]).
    Neighbors(Vec<PeerId>),
    /// The answering node has not joined the topic.
    NotJoined,
}

/// `[topology]`: answering topology queries, and how far this node's own queries go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopologyConfig {
    /// Whether this node tells peers of its network its neighbours on a topic (default `true`).
    pub answer: bool,
    /// Peers one query of this node asks at most (default 32, at least 1).
    pub max_asked: usize,
    /// The deepest peers asked: 1 the neighbours only, 2 theirs too (default 3, at least 1).
    pub max_depth: u8,
    /// How long one peer may take to answer (default `"1s"`).
    #[serde(with = "duration::serde_human")]
    pub query_timeout: Duration,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        let limits = CrawlLimits::default();
        Self {
            answer: true,
            max_asked: limits.max_asked,
            max_depth: limits.max_depth,
            query_timeout: Duration::from_secs(1),
        }
    }
}

impl TopologyConfig {
    /// What cannot run; the error names the key.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max_asked == 0 {
            return Err(("topology.max_asked", "must be at least 1".into()));
        }
        if self.max_depth == 0 {
            return Err(("topology.max_depth", "must be at least 1".into()));
        }
        if self.query_timeout.is_zero() {
            return Err(("topology.query_timeout", "must be more than zero".into()));
        }
        Ok(())
    }

    fn limits(&self) -> CrawlLimits {
        CrawlLimits {
            max_asked: self.max_asked,
            max_depth: self.max_depth,
            ..CrawlLimits::default()
        }
    }
}

/// A topic's overlay as far as the crawl reached: this node, its neighbours, theirs, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The topic.
    pub topic: TopicId,
    /// This node.
    pub me: PeerId,
    /// Every node seen, by id.
    pub nodes: Vec<(PeerId, CrawlNode)>,
    /// Every link seen, each once.
    pub edges: Vec<(PeerId, PeerId)>,
    /// Peers asked.
    pub asked: usize,
    /// Peers asked that did not answer.
    pub unanswered: usize,
    /// Whether a limit left peers unasked or nodes out.
    pub truncated: bool,
}

/// Why a topology query did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// This node has not joined the topic, so it has no neighbours to start from.
    #[error("this node has not joined the topic")]
    NotJoined,
    /// The gossip layer has stopped.
    #[error("gossip has stopped")]
    Stopped,
}

/// Crawls `topic`'s overlay from this node (see [`crate::Node::topology`]).
pub(crate) async fn query(
    endpoint: &Endpoint,
    gossip: &Gossip,
    topic: TopicId,
    config: &TopologyConfig,
) -> Result<Topology, TopologyError> {
    let topics = gossip.topics().await.map_err(|_| TopologyError::Stopped)?;
    let views = topics
        .into_iter()
        .find(|views| views.topic == topic)
        .ok_or(TopologyError::NotJoined)?;
    let mut crawl = Crawl::new(endpoint.id(), &views.active, config.limits());
    let mut asking = JoinSet::new();
    loop {
        while asking.len() < PARALLEL_QUERIES
            && let Some(peer) = crawl.next_to_ask()
        {
            let endpoint = endpoint.clone();
            let within = config.query_timeout;
            asking.spawn(async move {
                let answer = tokio::time::timeout(within, ask(&endpoint, peer, topic)).await;
                (peer, answer.ok().flatten())
            });
        }
        let Some(done) = asking.join_next().await else {
            break;
        };
        match done {
            Ok((peer, Some(TopologyAnswer::Neighbors(neighbors)))) => {
                let neighbors = &neighbors[..neighbors.len().min(MAX_ANSWER_PEERS)];
                crawl.answered(peer, neighbors);
            }
            Ok((peer, _)) => crawl.failed(peer),
            // A panicked query task: its peer stays pending, counted unanswered below.
            Err(_) => {}
        }
    }
    let unanswered = crawl
        .nodes()
        .values()
        .filter(|node| matches!(node.reply, Reply::Failed | Reply::Pending))
        .count();
    Ok(Topology {
        topic,
        me: endpoint.id(),
        nodes: crawl
            .nodes()
            .iter()
            .map(|(id, node)| (*id, *node))
            .collect(),
        edges: crawl.edges().iter().copied().collect(),
        asked: crawl.asked(),
        unanswered,
        truncated: crawl.truncated(),
    })
}

/// Asks one peer; `None` when it cannot be reached or its answer is unreadable.
async fn ask(endpoint: &Endpoint, peer: PeerId, topic: TopicId) -> Option<TopologyAnswer> {
    let connection = endpoint
        .connect(&PeerAddr::new(peer), PROTOCOL)
        .await
        .ok()?;
    let (send, recv) = connection.open_bi().await.ok()?;
    let mut send = FramedSend::<TopologyRequest>::new(send, MAX_REQUEST_FRAME);
    send.send(&TopologyRequest { topic }).await.ok()?;
    send.finish().ok()?;
    let mut recv = FramedRecv::<TopologyAnswer>::new(recv, MAX_ANSWER_FRAME);
    recv.recv().await.ok()
}
