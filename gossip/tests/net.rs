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
