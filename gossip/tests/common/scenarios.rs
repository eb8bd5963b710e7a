//! The scenarios run on both networks: each takes a fresh [`Net`] and panics on failure.

use std::{
    collections::{BTreeSet, HashSet},
    time::Duration,
};

use weft_gossip::{BroadcastError, Error, Event, PROTOCOL};
use weft_transport::iroh::ConnectionError;

use super::{Net, Swarm};

/// Generous bound for anything the network should do "soon": it only matters when a test fails.
const SOON: Duration = Duration::from_secs(20);

fn content(node: usize, seq: u32) -> Vec<u8> {
    [
        u32::try_from(node).unwrap().to_be_bytes(),
        seq.to_be_bytes(),
    ]
    .concat()
}

/// Every node broadcasts `per_node` messages (interleaved across nodes); every other node
/// delivers each exactly once, and never its own.
pub async fn every_broadcast_exactly_once(net: Net, nodes: u8, per_node: u32) {
    let mut swarm = Swarm::start(net, nodes).await;
    let n = swarm.alive().len();
    for seq in 0..per_node {
        for i in 0..n {
            swarm.broadcast(i, &content(i, seq)).await;
        }
    }
    let expected = (n - 1) * per_node as usize;
    let mut seen: Vec<HashSet<Vec<u8>>> = vec![HashSet::new(); n];
    let mut complete = 0;
    while complete < n {
        let Some((i, event)) = swarm.next_event(SOON).await else {
            let got: Vec<usize> = seen.iter().map(HashSet::len).collect();
            let mut views = Vec::new();
            for i in 0..n {
                views.push(swarm.neighbors(i).await.len());
            }
            panic!("deliveries per node {got:?} of {expected}; neighbours per node {views:?}");
        };
        match event {
            Event::Received { content, .. } => {
                let bytes = content.as_bytes().to_vec();
                assert_ne!(
                    bytes[..4],
                    content_owner(i),
                    "node {i} delivered its own message"
                );
                assert!(seen[i].insert(bytes), "node {i}: duplicate delivery");
                if seen[i].len() == expected {
                    complete += 1;
                }
            }
            Event::Lagged(missed) => panic!("node {i} lagged by {missed}"),
            _ => {}
        }
    }
    // Nothing more arrives, checked without sleeping: every node sends a last message, and
    // until each node has all the others' last ones, no earlier message may come again. (A
    // check, not a proof: a copy could still be in flight on a slower path. The dedup cache
    // is what rules duplicates out; this catches a runtime that delivers around it.)
    let last = |i: usize| content(i, u32::MAX);
    for i in 0..n {
        swarm.broadcast(i, &last(i)).await;
    }
    let mut lasts: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    while lasts.iter().any(|l| l.len() < n - 1) {
        let (i, event) = swarm
            .next_event(SOON)
            .await
            .expect("last messages delivered");
        if let Event::Received { content, .. } = event {
            let bytes = content.as_bytes();
            let from = (0..n)
                .find(|j| bytes == last(*j).as_slice())
                .unwrap_or_else(|| panic!("node {i}: late duplicate {bytes:?}"));
            assert!(lasts[i].insert(from), "node {i}: duplicate last message");
        }
    }
}

fn content_owner(node: usize) -> [u8; 4] {
    u32::try_from(node).unwrap().to_be_bytes()
}

/// The node with the most neighbours is shut down. Each of its neighbours reports it down,
/// drops it from its active view and stays connected; the freed slots are refilled from the
/// passive views (at least one new link among them); every live node still gets broadcasts.
pub async fn killed_node_is_reported_down_and_replaced(net: Net, nodes: u8) {
    let mut swarm = Swarm::start(net, nodes).await;
    let views = swarm.settled_views().await;
    let victim_index = (1..views.len())
        .max_by_key(|i| views[*i].len())
        .expect("two nodes at least");
    let victim = swarm.id(victim_index);
    let had: BTreeSet<usize> = (0..views.len())
        .filter(|i| views[*i].contains(&victim))
        .collect();
    assert!(
        had.len() >= 2,
        "the victim has {} neighbours; views {views:?}",
        had.len()
    );
    swarm.kill(victim_index).await;

    // Every former neighbour says NeighborDown; at least one of them then takes a new one.
    let mut down = BTreeSet::new();
    let mut refilled = BTreeSet::new();
    while down.len() < had.len() || refilled.is_empty() {
        let Some((i, event)) = swarm.next_event(SOON).await else {
            panic!("former neighbours {had:?}: down {down:?}, refilled {refilled:?}");
        };
        match event {
            Event::NeighborDown(peer) if peer == victim => {
                down.insert(i);
            }
            // (Events from before the kill may still be queued, so an old NeighborUp of the
            // victim is no error; the views are checked below.)
            Event::NeighborUp(peer) if peer != victim && down.contains(&i) && had.contains(&i) => {
                refilled.insert(i);
            }
            _ => {}
        }
    }
    for i in swarm.alive() {
        let view = swarm.neighbors(i).await;
        assert!(
            !view.contains(&victim),
            "node {i} still lists the dead node"
        );
        assert!(!view.is_empty(), "node {i} lost every neighbour");
    }

    // Broadcasts still reach every live node.
    let alive = swarm.alive();
    let sender = alive[0];
    swarm.broadcast(sender, b"after").await;
    let receivers: Vec<usize> = alive.into_iter().filter(|i| *i != sender).collect();
    swarm.expect_received(&receivers, b"after", SOON).await;
}

/// A broadcast larger than the configured maximum fails in the caller; one of exactly the
/// maximum goes out and arrives.
pub async fn oversized_broadcast_is_an_error(net: Net) {
    let mut swarm = Swarm::start(net, 2).await;
    let gossip = &swarm.node(0).gossip;
    let max = gossip.max_content_size();
    let sender = &swarm.node(0).sender;
    let err = sender.broadcast(vec![7u8; max + 1]).await.unwrap_err();
    assert!(
        matches!(err, Error::Broadcast(BroadcastError::TooLarge { size, max: m }) if size == max + 1 && m == max),
        "{err}"
    );
    sender.broadcast(vec![7u8; max]).await.unwrap();
    swarm.expect_received(&[1], &vec![7u8; max], SOON).await;
}

/// A rogue peer opens `gossip/1` connections and writes garbage: a frame that is not CBOR of a
/// gossip message, and a length prefix over the maximum. The node closes each such connection
/// and keeps receiving and sending broadcasts.
pub async fn malformed_frames_drop_the_peer_not_the_node(net: Net) {
    let mut swarm = Swarm::start(net, 3).await;
    let target = swarm.node(0).endpoint.addr();
    let garbage: [&[u8]; 2] = [
        &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
        &[0xff, 0xff, 0xff, 0xff, 1, 2, 3],
    ];
    for (n, bytes) in garbage.into_iter().enumerate() {
        let rogue = swarm.net.endpoint(200 + u8::try_from(n).unwrap()).await;
        let conn = rogue.connect(&target, PROTOCOL).await.unwrap();
        let mut stream = conn.open_uni().await.unwrap();
        stream.write_all(bytes).await.unwrap();
        let reason = tokio::time::timeout(SOON, conn.closed())
            .await
            .expect("rogue connection closed by the node");
        assert!(
            matches!(&reason, ConnectionError::ApplicationClosed(close) if &close.reason[..] == b"bad frame"),
            "closed for another reason: {reason:?}"
        );
        rogue.shutdown().await;
    }
    // The node still receives and sends.
    swarm.broadcast(1, b"still fine").await;
    swarm.expect_received(&[0, 2], b"still fine", SOON).await;
    swarm.broadcast(0, b"me too").await;
    swarm.expect_received(&[1, 2], b"me too", SOON).await;
}
