//! Topic rendezvous through the registry: nodes whose only peer is a bootstrap node that does
//! not subscribe meet on a topic through the names they register, for gossip and for sync; a
//! topic's name is withdrawn with its last subscription.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{joined, received, shutdown_all, test_config, within};
use weft_gossip::TopicId;
use weft_node::{Config, Node, TopicKind, rendezvous_name};
use weft_registry::Event as RegistryEvent;
use weft_transport::PeerId;

/// Short lookup retries: the nodes subscribe one right after the other.
fn config() -> Config {
    let mut config = test_config();
    assert!(config.rendezvous.enabled, "on by default");
    config.rendezvous.retry_min = Duration::from_millis(100);
    config.rendezvous.retry_max = Duration::from_secs(2);
    config
}

/// A bootstrap node `x` (all layers, subscribes to nothing), and `n` nodes without discovery
/// whose only peer is `x`: nothing but the registry can introduce them to each other.
async fn network(n: usize) -> (Node, Vec<Node>) {
    let x = Node::builder()
        .config(config())
        .spawn()
        .await
        .expect("x spawns");
    let mut nodes = Vec::new();
    for _ in 0..n {
        let node = Node::builder()
            .config(config())
            .bootstrap([x.addr()])
            .without_discovery()
            .spawn()
            .await
            .expect("node spawns");
        assert_eq!(node.topic_bootstrap().await, vec![x.addr()]);
        nodes.push(node);
    }
    (x, nodes)
}

/// The providers `x` holds under `name`.
async fn held(x: &Node, name: &str) -> BTreeSet<PeerId> {
    let held = x.registry().expect("registry").held(name).await;
    held.expect("held").iter().map(|r| r.provider).collect()
}

/// Waits for `node`'s registry to report `name` published (`true`) or withdrawn (`false`).
async fn registry_reports(
    events: &mut weft_transport::Events<RegistryEvent>,
    name: &str,
    up: bool,
) {
    within(&format!("{name} to be published: {up}"), async {
        loop {
            match events.recv().await {
                Some(RegistryEvent::Published { name: n, .. }) if up && n == name => return,
                Some(RegistryEvent::Withdrawn { name: n, .. }) if !up && n == name => return,
                Some(_) => {}
                None => panic!("registry stopped"),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_meet_through_the_registry_with_no_peer_but_the_bootstrap() {
    let (x, nodes) = network(3).await;
    let topic = TopicId::from_name("rendezvous-tests/chat");
    let mut topics = Vec::new();
    for node in &nodes {
        topics.push(node.subscribe_gossip(topic).await.expect("subscribe"));
    }
    for (i, topic) in topics.iter_mut().enumerate() {
        // Three nodes each with a neighbour form one connected overlay.
        joined(topic, &format!("node {i}")).await;
    }
    topics[0]
        .sender()
        .broadcast("met through the registry")
        .await
        .expect("broadcast");
    for (i, topic) in topics.iter_mut().enumerate().skip(1) {
        received(topic, &format!("node {i}"), b"met through the registry").await;
    }
    // Every subscriber registered before it looked up, and one that was found had registered:
    // all three are on record at the bootstrap node, under the gossip name only.
    let name = rendezvous_name(TopicKind::Gossip, topic);
    let ids: BTreeSet<PeerId> = nodes.iter().map(Node::id).collect();
    assert_eq!(held(&x, &name).await, ids);
    assert!(
        held(&x, &rendezvous_name(TopicKind::Sync, topic))
            .await
            .is_empty()
    );

    // The last subscription of a topic ends: its name is withdrawn. A new one registers again.
    let mut events = nodes[0].registry().expect("registry").events();
    drop(topics.remove(0));
    registry_reports(&mut events, &name, false).await;
    assert!(!held(&x, &name).await.contains(&nodes[0].id()));
    let again = nodes[0].subscribe_gossip(topic).await.expect("subscribe");
    registry_reports(&mut events, &name, true).await;
    assert!(held(&x, &name).await.contains(&nodes[0].id()));

    // A shutdown withdraws the names of the topics still subscribed.
    nodes[1].shutdown().await;
    assert!(!held(&x, &name).await.contains(&nodes[1].id()));
    drop((topics, again));
    shutdown_all(&nodes).await;
    x.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_item_reaches_subscribers_that_met_through_the_registry() {
    let (x, nodes) = network(3).await;
    let topic = TopicId::from_name("rendezvous-tests/notes");
    let first = nodes[0].subscribe_sync(topic).await.expect("subscribe");
    let id = first
        .insert(1_700_000_000, b"a note")
        .await
        .expect("insert");
    let mut others = Vec::new();
    for node in &nodes[1..] {
        others.push(node.subscribe_sync(topic).await.expect("subscribe"));
    }
    for (i, synced) in others.iter_mut().enumerate() {
        within(&format!("node {} to receive the item", i + 1), async {
            while synced.get(id).await.expect("get").is_none() {
                if synced.recv().await.is_none() {
                    panic!("sync stopped");
                }
            }
        })
        .await;
    }
    let ids: BTreeSet<PeerId> = nodes.iter().map(Node::id).collect();
    assert_eq!(
        held(&x, &rendezvous_name(TopicKind::Sync, topic)).await,
        ids
    );
    drop((first, others));
    shutdown_all(&nodes).await;
    x.shutdown().await;
}
