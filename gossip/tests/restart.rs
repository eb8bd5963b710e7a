//! A peer killed without a word (its process gone: no QUIC close, no gossip `Disconnect`) and
//! restarted with its key on a new port. Its new connection supersedes the dead ones the
//! survivor still holds, so the link comes back at once, not after QUIC's idle time-out
//! (30 s), during which the survivor's replies would go down the dead connection.

mod common;

use std::time::Duration;

use common::{Net, spawn_gossip};
use tokio::runtime::Runtime;
use weft_gossip::{Event, TopicEvents, TopicId};
use weft_transport::PeerId;

/// Well under QUIC's 30 s idle time-out: only superseding brings the link back this soon.
const WITHIN: Duration = Duration::from_secs(15);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Waits for the first event `want` accepts, failing after [`WITHIN`].
async fn wait_for(events: &mut TopicEvents, what: &str, want: impl Fn(&Event<PeerId>) -> bool) {
    tokio::time::timeout(WITHIN, async {
        while let Some(event) = events.recv().await {
            if want(&event) {
                return;
            }
        }
        panic!("the event stream ended before {what}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {WITHIN:?}"));
}

#[test]
fn a_restarted_peer_supersedes_its_dead_connections() {
    common::init_tracing();
    let topic = TopicId::from_name("restart");
    let net = Net::loopback("gossip-restart");
    let main = runtime();
    let (a_endpoint, _a, a_sender, mut a_events) = main.block_on(async {
        let endpoint = net.endpoint(1).await;
        let gossip = spawn_gossip(&endpoint).await;
        let (sender, events) = gossip.subscribe(topic, vec![]).await.unwrap().split();
        (endpoint, gossip, sender, events)
    });
    let a_addr = a_endpoint.addr();

    // b's first life, in a runtime of its own: shutting that runtime down stops every task at
    // once, sockets included, as a SIGKILL would. Nothing is closed, nothing said.
    let doomed = runtime();
    let first_life = doomed.block_on(async {
        let endpoint = net.endpoint(2).await;
        let gossip = spawn_gossip(&endpoint).await;
        let topic = gossip.subscribe(topic, vec![a_addr.clone()]).await.unwrap();
        (endpoint, gossip, topic)
    });
    let b = first_life.0.id();
    main.block_on(wait_for(&mut a_events, "b up", |e| {
        *e == Event::NeighborUp(b)
    }));
    doomed.shutdown_background();
    // Dropping the handles would try to close through the dead runtime.
    std::mem::forget(first_life);

    main.block_on(async {
        // b's second life: same key, new port, joining through a.
        let endpoint = net.endpoint(2).await;
        let gossip = spawn_gossip(&endpoint).await;
        let (_b_sender, mut b_events) = gossip
            .subscribe(topic, vec![a_addr.clone()])
            .await
            .unwrap()
            .split();
        // a sees the old link end and the new one come up (the sync layer restarts its
        // sessions on these), and b hears from a.
        wait_for(&mut a_events, "b down", |e| *e == Event::NeighborDown(b)).await;
        wait_for(&mut a_events, "b up again", |e| *e == Event::NeighborUp(b)).await;
        wait_for(&mut b_events, "a up at b", |e| *e == Event::NeighborUp(a_endpoint.id())).await;
        a_sender.broadcast(b"after the restart".to_vec()).await.unwrap();
        wait_for(&mut b_events, "the broadcast at b", |e| {
            matches!(e, Event::Received { content, .. } if content.as_bytes() == b"after the restart")
        })
        .await;
        let stats = a_endpoint.inbound_stats();
        assert!(stats.superseded >= 1, "{stats:?}");
        gossip.shutdown().await;
    });
}
