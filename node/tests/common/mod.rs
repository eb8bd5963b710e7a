//! Shared helpers of the node tests: fast loopback configs, three nodes from one ticket, and
//! waits that end on an event or fail after a generous timeout (never sleep-and-hope).

#![allow(dead_code, unreachable_pub)]

use std::{collections::BTreeSet, future::Future, path::Path, time::Duration};

use weft_node::{Config, Node};
use weft_transport::{PeerId, Ticket};

/// How long any one wait may take before the test fails. Generous: CI machines are slow.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A config for tests: loopback, discovery and sync on short timings, grafts tuned for
/// loopback round trips.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.node.network = "weft-node-tests".into();
    config.node.bind = "127.0.0.1:0".parse().expect("loopback address");
    config.discovery = weft_discovery::Config::for_tests();
    config.gossip.broadcast = weft_gossip::PlumtreeConfig::for_link_rtt(Duration::from_millis(2));
    config.sync.fallback_wait = Duration::from_millis(200);
    config.sync.retry_base = Duration::from_millis(50);
    config
}

/// A node with [`test_config`], in `dir` if given (else ephemeral), bootstrapping from
/// `ticket` if given (parsed from its string, as a user would paste it).
pub async fn spawn(dir: Option<&Path>, ticket: Option<&Ticket>) -> Node {
    let mut builder = Node::builder().config(test_config());
    if let Some(dir) = dir {
        builder = builder.data_dir(dir);
    }
    if let Some(ticket) = ticket {
        let parsed: Ticket = ticket.to_string().parse().expect("ticket parses");
        builder = builder.bootstrap([parsed.into()]);
    }
    builder.spawn().await.expect("node spawns")
}

/// Three nodes: the first, and two that bootstrap from its ticket. Each with a data directory
/// under `root` when given.
pub async fn three_nodes(root: Option<&Path>) -> Vec<Node> {
    let dir = |name: &str| root.map(|root| root.join(name));
    let first = spawn(dir("a").as_deref(), None).await;
    let ticket = first.ticket();
    let second = spawn(dir("b").as_deref(), Some(&ticket)).await;
    let third = spawn(dir("c").as_deref(), Some(&ticket)).await;
    vec![first, second, third]
}

/// Waits until every node's discovery catalog holds every other node.
pub async fn catalogs_complete(nodes: &[Node]) {
    let all: BTreeSet<PeerId> = nodes.iter().map(Node::id).collect();
    for (i, node) in nodes.iter().enumerate() {
        let discovery = node.discovery().expect("discovery runs");
        let mut changes = discovery.watch();
        within(
            &format!("node {i}'s catalog to hold all {}", all.len()),
            async {
                loop {
                    let ids = discovery.catalog().await.expect("catalog").ids();
                    if all.is_subset(&ids) {
                        return;
                    }
                    changes.changed().await.expect("discovery runs");
                }
            },
        )
        .await;
    }
}

/// Waits until `topic` has joined (its first neighbour is up).
pub async fn joined(topic: &mut weft_gossip::Topic, who: &str) {
    within(&format!("{who} to join the topic"), async {
        loop {
            match topic.recv().await {
                Some(weft_gossip::Event::Joined) => return,
                Some(_) => {}
                None => panic!("gossip stopped"),
            }
        }
    })
    .await;
}

/// Waits until `topic` delivers a broadcast whose content is `content`.
pub async fn received(topic: &mut weft_gossip::Topic, who: &str, content: &[u8]) {
    within(&format!("{who} to receive the message"), async {
        loop {
            match topic.recv().await {
                Some(weft_gossip::Event::Received { content: got, .. })
                    if got.as_bytes() == content =>
                {
                    return;
                }
                Some(_) => {}
                None => panic!("gossip stopped"),
            }
        }
    })
    .await;
}

/// Runs `future`, failing the test with `what` if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {PATIENCE:?} waiting for {what}"),
    }
}

/// Shuts every node down.
pub async fn shutdown_all(nodes: &[Node]) {
    for node in nodes {
        node.shutdown().await;
    }
}
