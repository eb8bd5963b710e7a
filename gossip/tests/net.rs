//! The runtime on the in-process memory network. The scenarios shared with `loopback.rs` are
//! in `common/scenarios.rs`; partitions need the memory network and live here.

mod common;

use std::time::Duration;

use common::{Net, Swarm, scenarios};
use weft_gossip::Event;
use weft_transport::PeerId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_deliver_every_broadcast_exactly_once() {
    scenarios::every_broadcast_exactly_once(Net::memory(1), 10, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_broadcast_is_an_error() {
    scenarios::oversized_broadcast_is_an_error(Net::memory(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_reported_down_and_replaced() {
    scenarios::killed_node_is_reported_down_and_replaced(Net::memory(3), 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_drop_the_peer_not_the_node() {
    scenarios::malformed_frames_drop_the_peer_not_the_node(Net::memory(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_heals() {
    let mut swarm = Swarm::start(Net::memory(5), 6).await;
    let ids: Vec<PeerId> = (0..6).map(|i| swarm.id(i)).collect();
    swarm.net.memory_network().partition(&ids[..3], &ids[3..]);
    swarm.broadcast(0, b"during").await;
    // The own half gets it while split.
    swarm
        .expect_received(&[1, 2], b"during", Duration::from_secs(10))
        .await;
    // Stay split a while, so the halves notice (this sleep is part of the scenario, not a wait).
    tokio::time::sleep(Duration::from_millis(500)).await;
    swarm.net.memory_network().heal();
    // After the heal the other half gets it too, and later broadcasts reach everyone.
    swarm
        .expect_received(&[3, 4, 5], b"during", Duration::from_secs(20))
        .await;
    swarm.broadcast(5, b"after").await;
    swarm
        .expect_received(&[0, 1, 2, 3, 4], b"after", Duration::from_secs(20))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_rejoins_with_the_same_key() {
    let mut swarm = Swarm::start(Net::memory(6), 5).await;
    let old_id = swarm.id(4);
    // Node 4 stops (its neighbours may or may not have noticed yet)...
    swarm.kill(4).await;
    // ...and comes back with the same key (seed 5, as at the start).
    let back = swarm.add(5).await;
    assert_eq!(swarm.id(back), old_id);
    let missing = swarm
        .wait_each(&[back], Duration::from_secs(10), |_, e| *e == Event::Joined)
        .await;
    assert!(missing.is_empty(), "the restarted node did not join");
    swarm.broadcast(1, b"welcome back").await;
    swarm
        .expect_received(&[back], b"welcome back", Duration::from_secs(20))
        .await;
    swarm.broadcast(back, b"hello again").await;
    swarm
        .expect_received(&[2], b"hello again", Duration::from_secs(20))
        .await;
}

/// `Gossip::topics` reports each joined topic's active view as the topic's own `neighbors`
/// does, and a passive view apart from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_report_the_views_of_every_joined_topic() {
    let mut swarm = Swarm::start(Net::memory(7), 4).await;
    let views = swarm.settled_views().await;
    for (i, active) in views.iter().enumerate() {
        let topics = swarm.node(i).gossip.topics().await.unwrap();
        assert_eq!(topics.len(), 1, "node {i} joined one topic");
        let topic = &topics[0];
        assert_eq!(topic.topic, weft_gossip::TopicId::from_name(common::TOPIC));
        let mut reported = topic.active.clone();
        let mut expected = active.clone();
        reported.sort();
        expected.sort();
        assert_eq!(reported, expected, "node {i}: active view = neighbors()");
        assert!(!reported.is_empty(), "node {i} has neighbours");
        assert!(
            topic
                .passive
                .iter()
                .all(|peer| !topic.active.contains(peer)),
            "node {i}: a peer is active or passive, not both"
        );
        assert!(!topic.active.contains(&swarm.id(i)) && !topic.passive.contains(&swarm.id(i)));
    }
}

/// With collection off the overlay works as before and every counter stays at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_counts_nothing_and_delivers_all() {
    let net = Net::memory(8);
    let topic = weft_gossip::TopicId::from_name("quiet");
    let mut nodes = Vec::new();
    for seed in 1..=3u8 {
        let endpoint = net.endpoint(seed).await;
        let gossip = weft_gossip::Gossip::builder()
            .config(common::fast_config())
            .collect_metrics(false)
            .spawn(&endpoint)
            .await
            .unwrap();
        let bootstrap = match nodes.first() {
            Some((first, _, _)) => vec![weft_transport::Endpoint::addr(first)],
            None => vec![],
        };
        let subscription = gossip.subscribe(topic, bootstrap).await.unwrap();
        nodes.push((endpoint, gossip, subscription));
    }
    for (_, _, subscription) in &mut nodes[1..] {
        common::wait_for(subscription, |event| *event == Event::Joined).await;
    }
    nodes[0]
        .2
        .sender()
        .broadcast(b"hello".to_vec())
        .await
        .unwrap();
    for (_, _, subscription) in &mut nodes[1..] {
        common::wait_for(subscription, |event| {
            matches!(event, Event::Received { content, .. } if content.as_bytes() == b"hello")
        })
        .await;
    }
    for (_, gossip, _) in &nodes {
        let metrics = gossip.metrics();
        assert_eq!(gossip.bytes_sent(), 0);
        assert_eq!(metrics.pushes_sent.get() + metrics.pushes_received.get(), 0);
        assert_eq!(metrics.delivered.get() + metrics.neighbor_up.get(), 0);
        assert_eq!(
            metrics.frames_received.get() + metrics.bytes_received.get(),
            0
        );
    }
}
