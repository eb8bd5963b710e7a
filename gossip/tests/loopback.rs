//! The runtime on real QUIC over 127.0.0.1 (relays and address lookup off; each test on its own
//! network id). The scenarios are the memory-network ones, in `common/scenarios.rs`.

mod common;

use common::{Net, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_deliver_every_broadcast_exactly_once() {
    scenarios::every_broadcast_exactly_once(Net::loopback("gossip-loopback-once"), 10, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_reported_down_and_replaced() {
    scenarios::killed_node_is_reported_down_and_replaced(Net::loopback("gossip-loopback-kill"), 10)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_broadcast_is_an_error() {
    scenarios::oversized_broadcast_is_an_error(Net::loopback("gossip-loopback-oversized")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_drop_the_peer_not_the_node() {
    scenarios::malformed_frames_drop_the_peer_not_the_node(Net::loopback("gossip-loopback-rogue"))
        .await;
}
