//! Shared fixtures of the runtime tests (`net.rs` on the memory network, `loopback.rs` on real
//! QUIC over 127.0.0.1): endpoints, a swarm joined through its first node with one merged event
//! stream, and the scenarios both files run (`scenarios`).

#![allow(dead_code, unreachable_pub)]

pub mod scenarios;

use std::{collections::BTreeSet, time::Duration};

use tokio::{sync::mpsc, task::JoinHandle, time::timeout};
use weft_gossip::{Config, Event, Gossip, PlumtreeConfig, TopicId, TopicSender};
use weft_transport::{Endpoint, MemoryNetwork, NetworkId, PeerId, SecretKey};

/// The topic every swarm joins.
pub const TOPIC: &str = "test";

/// Events buffered per subscription: more than a test ever leaves unread.
pub const EVENT_CAPACITY: usize = 4096;

/// Where the endpoints live.
#[derive(Debug)]
pub enum Net {
    /// The in-process memory network (partitions can be injected).
    Memory(MemoryNetwork),
    /// Real QUIC on 127.0.0.1, relays and address lookup off, isolated by a network id.
    Loopback(NetworkId),
}

impl Net {
    pub fn memory(seed: u64) -> Self {
        Self::Memory(MemoryNetwork::new(seed))
    }

    /// `name` gives the test its own network id, so tests running at once never meet.
    pub fn loopback(name: &str) -> Self {
        Self::Loopback(NetworkId::from_name(name))
    }

    /// An endpoint whose key is fixed by `seed` (a restarted node keeps its id).
    pub async fn endpoint(&self, seed: u8) -> Endpoint {
        let builder = Endpoint::builder()
            .secret_key(SecretKey::from_bytes(&[seed; 32]))
            .connect_timeout(Duration::from_secs(2));
        let builder = match self {
            Self::Memory(net) => builder.memory(net),
            Self::Loopback(network) => builder
                .network(*network)
                .bind_addr("127.0.0.1:0".parse().unwrap()),
        };
        builder.bind().await.unwrap()
    }

    pub fn memory_network(&self) -> &MemoryNetwork {
        match self {
            Self::Memory(net) => net,
            Self::Loopback(_) => panic!("not a memory network"),
        }
    }
}

/// Every graft wait scaled for fast links (memory network, loopback), not for WAN delays; no
/// shuffle during a test.
pub fn fast_config() -> Config {
    let mut config = Config {
        broadcast: PlumtreeConfig::for_link_rtt(Duration::from_millis(4)),
        ..Config::default()
    };
    config.membership.shuffle_interval = Duration::from_secs(5);
    config
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A gossip instance on `endpoint` with the test config.
pub async fn spawn_gossip(endpoint: &Endpoint) -> Gossip {
    Gossip::builder()
        .config(fast_config())
        .event_capacity(EVENT_CAPACITY)
        .spawn(endpoint)
        .await
        .unwrap()
}

/// One member of a [`Swarm`].
#[derive(Debug)]
pub struct Node {
    pub endpoint: Endpoint,
    pub gossip: Gossip,
    pub sender: TopicSender,
    /// Moves this node's topic events into the swarm's merged stream.
    forward: JoinHandle<()>,
}

/// Nodes on one topic, all joined through node 0. Their events arrive on one stream, tagged
/// with the node's index; indices stay valid after a node is killed.
#[derive(Debug)]
pub struct Swarm {
    pub net: Net,
    nodes: Vec<Option<Node>>,
    events: mpsc::Receiver<(usize, Event<PeerId>)>,
    events_tx: mpsc::Sender<(usize, Event<PeerId>)>,
}

impl Swarm {
    /// Starts `count` nodes (keys from seeds 1..=count) and waits until each has joined.
    pub async fn start(net: Net, count: u8) -> Self {
        init_tracing();
        let (events_tx, events) = mpsc::channel(EVENT_CAPACITY);
        let mut swarm = Self {
            net,
            nodes: Vec::new(),
            events,
            events_tx,
        };
        for seed in 1..=count {
            swarm.add(seed).await;
        }
        let all: Vec<usize> = (0..swarm.nodes.len()).collect();
        let missing = swarm
            .wait_each(&all, Duration::from_secs(10), |_, e| *e == Event::Joined)
            .await;
        assert!(missing.is_empty(), "nodes {missing:?} did not join");
        swarm
    }

    /// Starts one more node (key from `seed`) that joins through node 0 (or through nobody,
    /// if it is the first), and returns its index. Does not wait for it to join.
    pub async fn add(&mut self, seed: u8) -> usize {
        let endpoint = self.net.endpoint(seed).await;
        let gossip = spawn_gossip(&endpoint).await;
        let bootstrap = match self.nodes.first() {
            Some(Some(first)) => vec![first.endpoint.addr()],
            _ => vec![],
        };
        let topic = gossip
            .subscribe(TopicId::from_name(TOPIC), bootstrap)
            .await
            .unwrap();
        let (sender, mut events) = topic.split();
        let index = self.nodes.len();
        let tx = self.events_tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if tx.send((index, event)).await.is_err() {
                    return;
                }
            }
        });
        self.nodes.push(Some(Node {
            endpoint,
            gossip,
            sender,
            forward,
        }));
        index
    }

    /// Shuts node `i` down without a goodbye: its endpoint closes every connection, so the
    /// neighbours learn of it from the transport, not from a gossip `Disconnect`.
    ///
    /// On the memory network this returns once the id is free again (the endpoint's last clone,
    /// held by the actor's tasks, is gone), so the node can be restarted with the same key.
    pub async fn kill(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("node alive");
        let id = node.endpoint.id();
        node.endpoint.shutdown().await;
        node.forward.abort();
        let _ = node.forward.await;
        drop((node.endpoint, node.gossip, node.sender));
        if let Net::Memory(net) = &self.net {
            // No event tells when the actor's tasks have unwound: poll the network's table.
            timeout(Duration::from_secs(10), async {
                while net.peers().contains(&id) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the killed endpoint is released");
        }
    }

    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node alive")
    }

    pub fn id(&self, i: usize) -> PeerId {
        self.node(i).endpoint.id()
    }

    /// Indices of the nodes still running.
    pub fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }

    pub async fn neighbors(&self, i: usize) -> Vec<PeerId> {
        self.node(i).sender.neighbors().await.unwrap()
    }

    pub async fn broadcast(&self, i: usize, content: &[u8]) {
        self.node(i)
            .sender
            .broadcast(content.to_vec())
            .await
            .unwrap();
    }

    /// Waits until the active views are symmetric (each link listed at both ends; a join
    /// leaves half-made links for a moment) and returns them, by node index (empty for dead
    /// nodes). Re-checks after every membership event, or after a quiet 100 ms.
    pub async fn settled_views(&mut self) -> Vec<Vec<PeerId>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut views = Vec::new();
            for i in 0..self.nodes.len() {
                views.push(match &self.nodes[i] {
                    Some(node) => node.sender.neighbors().await.unwrap(),
                    None => Vec::new(),
                });
            }
            let ids: Vec<Option<PeerId>> = self
                .nodes
                .iter()
                .map(|n| n.as_ref().map(|n| n.endpoint.id()))
                .collect();
            let index = |id: &PeerId| ids.iter().position(|x| x.as_ref() == Some(id));
            let symmetric = views.iter().enumerate().all(|(i, view)| {
                view.iter().all(|peer| {
                    index(peer).is_some_and(|j| ids[i].is_some_and(|me| views[j].contains(&me)))
                })
            });
            if symmetric {
                return views;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "views never settled: {views:?}"
            );
            let _ = timeout(Duration::from_millis(100), async {
                while let Some((_, event)) = self.events.recv().await {
                    if matches!(event, Event::NeighborUp(_) | Event::NeighborDown(_)) {
                        return;
                    }
                }
            })
            .await;
        }
    }

    /// The next event of any node, or `None` after `within`.
    pub async fn next_event(&mut self, within: Duration) -> Option<(usize, Event<PeerId>)> {
        timeout(within, self.events.recv()).await.ok().flatten()
    }

    /// Waits until each node in `nodes` had an event matching `matches`; returns those that did
    /// not within `within` (empty: all did). Events of other nodes, and of nodes already
    /// matched, are consumed and dropped.
    pub async fn wait_each(
        &mut self,
        nodes: &[usize],
        within: Duration,
        mut matches: impl FnMut(usize, &Event<PeerId>) -> bool,
    ) -> Vec<usize> {
        let mut waiting: BTreeSet<usize> = nodes.iter().copied().collect();
        let _ = timeout(within, async {
            while !waiting.is_empty() {
                let Some((i, event)) = self.events.recv().await else {
                    return;
                };
                if waiting.contains(&i) && matches(i, &event) {
                    waiting.remove(&i);
                }
            }
        })
        .await;
        waiting.into_iter().collect()
    }

    /// Waits until each node in `nodes` received a broadcast of `content`; panics naming
    /// those that did not within `within`.
    pub async fn expect_received(&mut self, nodes: &[usize], content: &[u8], within: Duration) {
        let missing = self
            .wait_each(nodes, within, |_, event| {
                matches!(event, Event::Received { content: got, .. } if got.as_bytes() == content)
            })
            .await;
        assert!(
            missing.is_empty(),
            "nodes {missing:?} did not receive {:?}",
            String::from_utf8_lossy(content)
        );
    }
}

/// Waits (up to 10 s) for an event of one subscription that `matches`.
pub async fn wait_for(
    subscription: &mut weft_gossip::Topic,
    matches: impl Fn(&Event<PeerId>) -> bool,
) {
    timeout(Duration::from_secs(10), async {
        while let Some(event) = subscription.recv().await {
            if matches(&event) {
                return;
            }
        }
        panic!("the subscription ended");
    })
    .await
    .expect("the awaited event came within 10 s");
}
