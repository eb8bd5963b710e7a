//! The status page's two answers: the overview (one poll shows the whole node) and a topic's
//! topology graph.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use weft_gossip::TopicId;
use weft_transport::PeerId;

use super::NodeApi;
use crate::admin::{
    Api, ApiError, GossipTopicView, HeldName, Overview, RegistryOverview, SyncTopicOverview,
    TopologyEdge, TopologyGraph, TopologyNode,
};
use crate::{Topology, TopologyError, topology::Reply};

/// Peers without a measured round trip that one overview pings, at most. The pongs land in
/// discovery's catalog, so the page's next poll shows them; a page open for a few seconds has
/// every peer measured, at a cost of a few pings per second at most.
const PINGS_PER_OVERVIEW: usize = 3;

/// Names held shown at most.
const MAX_HELD_NAMES: usize = 64;

/// How long a topology graph is served again rather than crawled anew: however many pages
/// poll, peers are asked at most once per topic in this time.
const TOPOLOGY_MAX_AGE: Duration = Duration::from_secs(1);

/// The last graph crawled (one at a time: the lock is held while crawling).
#[derive(Debug, Default)]
pub(crate) struct TopologyCache {
    last: tokio::sync::Mutex<Option<(Instant, TopicId, TopologyGraph)>>,
}

impl NodeApi {
    /// Everything the status page shows but the graph.
    pub(super) async fn overview_now(&self) -> Result<Overview, ApiError> {
        let status = self.status().await?;
        // Without discovery there are no peers to list, which is not an error here.
        let peers = self.peers().await.map(|p| p.peers).unwrap_or_default();
        self.ping_unmeasured(&peers);
        let gossip = self.gossip_views().await?;
        let registry = match self.node().registry() {
            Some(registry) => {
                let metrics = registry.metrics();
                let provided = registry
                    .local_registrations()
                    .await
                    .map(|records| records.into_iter().map(|r| r.name).collect())
                    .unwrap_or_default();
                let held = registry
                    .held_names(MAX_HELD_NAMES)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, providers)| HeldName { name, providers })
                    .collect();
                Some(RegistryOverview {
                    records_held: gauge(metrics.records_held.get()),
                    routing_peers: gauge(metrics.routing_table_peers.get()),
                    held,
                    provided,
                })
            }
            None => None,
        };
        let mut sync = Vec::new();
        for name in self.sync.names().await {
            let status = self.sync.status(name.clone()).await?;
            sync.push(SyncTopicOverview {
                topic: TopicId::from_name(&name).to_string(),
                name: Some(name),
                items: status.items,
                sessions: status.sessions,
            });
        }
        Ok(Overview {
            status,
            peers,
            gossip,
            registry,
            sync,
            events: self.recent.snapshot(),
        })
    }

    /// Pings up to [`PINGS_PER_OVERVIEW`] peers with no round trip yet, without waiting.
    fn ping_unmeasured(&self, peers: &[crate::admin::Peer]) {
        let Some(discovery) = self.node().discovery() else {
            return;
        };
        let unmeasured = peers.iter().filter(|peer| peer.rtt_us.is_none());
        for peer in unmeasured.take(PINGS_PER_OVERVIEW) {
            let Ok(id) = peer.id.parse::<PeerId>() else {
                continue;
            };
            let discovery = discovery.clone();
            // Bounded by discovery's own ping timeout; the result goes to its catalog.
            tokio::spawn(async move { discovery.ping(id).await });
        }
    }

    /// Every gossip topic's views, named where the node knows the name: discovery's own, and
    /// those the admin API joined.
    async fn gossip_views(&self) -> Result<Vec<GossipTopicView>, ApiError> {
        let mut names: BTreeMap<TopicId, String> = BTreeMap::new();
        if self.node().discovery().is_some() {
            let network = self.node().endpoint().network();
            names.insert(
                TopicId(weft_discovery::topic_bytes(&network)),
                "discovery".into(),
            );
        }
        for name in self.gossip.names().await {
            names.insert(TopicId::from_name(&name), name);
        }
        for name in self.sync.names().await {
            let overlay = weft_sync::overlay_topic(TopicId::from_name(&name));
            names.insert(overlay, format!("{name} (sync)"));
        }
        let topics = self
            .node()
            .gossip()
            .topics()
            .await
            .map_err(|err| ApiError::unavailable(format_args!("gossip has stopped: {err}")))?;
        let hex = |peers: Vec<PeerId>| peers.iter().map(ToString::to_string).collect();
        let mut views: Vec<GossipTopicView> = topics
            .into_iter()
            .map(|views| GossipTopicView {
                topic: views.topic.to_string(),
                name: names.get(&views.topic).cloned(),
                active: hex(views.active),
                passive: hex(views.passive),
            })
            .collect();
        // Named topics first, by name; then the rest by id: a stable order for the page.
        views.sort_by(|a, b| {
            (a.name.is_none(), &a.name, &a.topic).cmp(&(b.name.is_none(), &b.name, &b.topic))
        });
        Ok(views)
    }

    /// The overlay of `topic` (a hex id or a name), crawled at most once per
    /// [`TOPOLOGY_MAX_AGE`].
    pub(super) async fn topology_of(&self, topic: &str) -> Result<TopologyGraph, ApiError> {
        let topic = parse_topic(topic)?;
        let mut last = self.topology.last.lock().await;
        if let Some((at, cached, graph)) = &*last
            && *cached == topic
            && at.elapsed() < TOPOLOGY_MAX_AGE
        {
            return Ok(graph.clone());
        }
        let graph = match self.node().topology(topic).await {
            Ok(topology) => graph(&topology),
            Err(TopologyError::NotJoined) => {
                return Err(ApiError::not_found(format_args!(
                    "this node has not joined the gossip topic {topic}"
                )));
            }
            Err(err) => return Err(ApiError::unavailable(err)),
        };
        *last = Some((Instant::now(), topic, graph.clone()));
        Ok(graph)
    }
}

/// A topic named by its 64-hex-character id, or else by its name.
fn parse_topic(text: &str) -> Result<TopicId, ApiError> {
    if text.is_empty() {
        return Err(ApiError::bad_request("the topic is empty"));
    }
    let mut bytes = [0u8; 32];
    if text.len() == 64 && hex::decode_to_slice(text, &mut bytes).is_ok() {
        return Ok(TopicId(bytes));
    }
    Ok(TopicId::from_name(text))
}

/// The graph as the page draws it: this node first.
fn graph(topology: &Topology) -> TopologyGraph {
    let mut nodes: Vec<TopologyNode> = topology
        .nodes
        .iter()
        .map(|(id, node)| TopologyNode {
            id: id.to_string(),
            me: *id == topology.me,
            depth: node.depth,
            answered: node.reply == Reply::Answered,
        })
        .collect();
    nodes.sort_by_key(|node| (!node.me, node.depth));
    TopologyGraph {
        topic: topology.topic.to_string(),
        nodes,
        edges: topology
            .edges
            .iter()
            .map(|(from, to)| TopologyEdge {
                from: from.to_string(),
                to: to.to_string(),
            })
            .collect(),
        asked: topology.asked,
        unanswered: topology.unanswered,
        truncated: topology.truncated,
    }
}

fn gauge(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
