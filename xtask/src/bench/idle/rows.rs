//! The rows of `bench idle`: how each kind of node is started and joined through the first.
//!
//! Every row binds its nodes to 127.0.0.1 with default configs (only the network name is
//! set), node 0 is the bootstrap node and nodes 1.. join through it alone, one after the
//! other, each waiting until it has joined before the next starts. What a row returns keeps
//! its nodes running until it is dropped.

use std::{any::Any, net::SocketAddr, time::Duration};

use anyhow::{Context, Result};
use weft_discovery::Discovery;
use weft_gossip::{Event as GossipEvent, Gossip, Topic, TopicId};
use weft_node::Node;
use weft_transport::{Endpoint, NetworkId, PeerAddr};

/// The network every weft row runs on.
const NETWORK: &str = "weft-idle-bench";
/// The gossip topic every row joins.
const TOPIC: &str = "idle";
/// The full node's sync topic.
const SYNC_TOPIC: &str = "idle-sync";
/// How long one node may take to join before the row gives up on it (it is counted).
const JOIN_PATIENCE: Duration = Duration::from_secs(30);

/// The rows, in the order they print.
pub(crate) const ROWS: &[(&str, &str)] = &[
    ("endpoint", "weft endpoint alone"),
    ("gossip", "weft endpoint + gossip (1 topic)"),
    ("discovery", "weft endpoint + gossip (1 topic) + discovery"),
    ("node", "weft-node, all layers (1 gossip + 1 sync topic)"),
    ("iroh-gossip", "iroh-gossip 0.101 (1 topic)"),
];

/// What a started row holds: its nodes, kept alive until dropped.
pub(crate) struct Started {
    /// Everything the nodes need to keep running.
    pub(crate) hold: Vec<Box<dyn Any + Send>>,
    /// Nodes that did not join within [`JOIN_PATIENCE`].
    pub(crate) not_joined: usize,
    /// The weft rows' endpoints, to count their connections.
    pub(crate) endpoints: Vec<Endpoint>,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn weft_endpoint() -> Result<Endpoint> {
    Ok(Endpoint::builder()
        .network(NetworkId::from_name(NETWORK))
        .bind_addr(loopback())
        .bind()
        .await?)
}

/// Starts `nodes` nodes of row `row`.
pub(crate) async fn start(row: &str, nodes: usize) -> Result<Started> {
    let mut started = Started {
        hold: Vec::with_capacity(nodes),
        not_joined: 0,
        endpoints: Vec::new(),
    };
    match row {
        "endpoint" => {
            for _ in 0..nodes {
                started.endpoints.push(weft_endpoint().await?);
            }
        }
        "gossip" | "discovery" => {
            let with_discovery = row == "discovery";
            let mut first: Option<PeerAddr> = None;
            for _ in 0..nodes {
                let endpoint = weft_endpoint().await?;
                let gossip = Gossip::builder().spawn(&endpoint).await?;
                let bootstrap: Vec<PeerAddr> = first.iter().cloned().collect();
                if with_discovery {
                    let discovery = Discovery::builder()
                        .bootstrap(bootstrap.clone())
                        .spawn(&endpoint, &gossip)
                        .await?;
                    started.hold.push(Box::new(discovery));
                }
                let topic = gossip
                    .subscribe(TopicId::from_name(TOPIC), bootstrap)
                    .await?;
                let topic = if first.is_some() {
                    joined(topic, &mut started.not_joined).await
                } else {
                    first = Some(endpoint.addr());
                    topic
                };
                started.hold.push(Box::new(topic));
                started.hold.push(Box::new(gossip));
                started.endpoints.push(endpoint);
            }
        }
        "node" => {
            let mut first: Option<PeerAddr> = None;
            for _ in 0..nodes {
                let node = Node::builder()
                    .ephemeral()
                    .network(NETWORK)
                    .bind_addr(loopback())
                    .bootstrap(first.iter().cloned())
                    .spawn()
                    .await?;
                let topic = node.subscribe_gossip(TopicId::from_name(TOPIC)).await?;
                let mut synced = node.subscribe_sync(TopicId::from_name(SYNC_TOPIC)).await?;
                if first.is_some() {
                    let topic = joined(topic, &mut started.not_joined).await;
                    started.hold.push(Box::new(topic));
                    // A sync topic has joined once a session with a neighbour has begun.
                    let session = tokio::time::timeout(JOIN_PATIENCE, async {
                        while let Some(event) = synced.recv().await {
                            if matches!(event, weft_sync::proto::Event::SessionStarted { .. }) {
                                return true;
                            }
                        }
                        false
                    })
                    .await;
                    if !matches!(session, Ok(true)) {
                        started.not_joined += 1;
                    }
                } else {
                    first = Some(node.addr());
                    started.hold.push(Box::new(topic));
                }
                started.hold.push(Box::new(synced));
                started.endpoints.push(node.endpoint().clone());
                started.hold.push(Box::new(node));
            }
        }
        "iroh-gossip" => iroh_gossip(nodes, &mut started).await?,
        other => anyhow::bail!(
            "unknown row {other:?}; known: {}",
            ROWS.iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    Ok(started)
}

/// Waits for `topic`'s `Joined` (counting it in `not_joined` if it does not come in time);
/// the topic, to be kept.
async fn joined(mut topic: Topic, not_joined: &mut usize) -> Topic {
    let wait = tokio::time::timeout(JOIN_PATIENCE, async {
        while let Some(event) = topic.recv().await {
            if matches!(event, GossipEvent::Joined) {
                return true;
            }
        }
        false
    })
    .await;
    if !matches!(wait, Ok(true)) {
        *not_joined += 1;
    }
    topic
}

/// The reference: iroh-gossip 0.101 on an iroh endpoint set up as weft's is (minimal preset,
/// no relay, bound to 127.0.0.1 only, addresses from a memory lookup), one topic.
async fn iroh_gossip(nodes: usize, started: &mut Started) -> Result<()> {
    use iroh::{
        Endpoint as IrohEndpoint, RelayMode, address_lookup::memory::MemoryLookup,
        endpoint::presets, protocol::Router,
    };
    use iroh_gossip::{ALPN, Gossip as IrohGossip, TopicId as IrohTopicId};

    let topic_id = IrohTopicId::from_bytes(*blake3::hash(TOPIC.as_bytes()).as_bytes());
    let mut first: Option<iroh::EndpointAddr> = None;
    for _ in 0..nodes {
        let lookup = MemoryLookup::new();
        if let Some(addr) = &first {
            lookup.add_endpoint_info(addr.clone());
        }
        let endpoint = IrohEndpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .address_lookup(lookup)
            .clear_ip_transports()
            .bind_addr(loopback())
            .context("bind address")?
            .bind()
            .await?;
        let gossip = IrohGossip::builder().spawn(endpoint.clone());
        let router = Router::builder(endpoint.clone())
            .accept(ALPN, gossip.clone())
            .spawn();
        let topic = match &first {
            Some(addr) => {
                let join = gossip.subscribe_and_join(topic_id, vec![addr.id]);
                match tokio::time::timeout(JOIN_PATIENCE, join).await {
                    Ok(topic) => Some(topic?),
                    Err(_) => {
                        started.not_joined += 1;
                        None
                    }
                }
            }
            None => {
                first = Some(endpoint.addr());
                Some(gossip.subscribe(topic_id, vec![]).await?)
            }
        };
        started.hold.push(Box::new(topic));
        started.hold.push(Box::new(router));
        started.hold.push(Box::new(gossip));
        started.hold.push(Box::new(endpoint));
    }
    Ok(())
}
