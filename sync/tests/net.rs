//! The sync runtime on the memory network and on loopback QUIC: sessions follow gossip
//! neighbours, sets converge, live items flow, and bad peers are refused.

mod common;

use std::time::Duration;

use common::{Net, Node, items, wait_for, wait_for_count};
use weft_gossip::TopicId;
use weft_sync::{
    Item,
    proto::{EndReason, Event, Frame, Refusal},
    store::{MemoryStore, Store},
};
use weft_transport::{FramedRecv, FramedSend, PeerAddr};

fn store_with(items: &[Item]) -> MemoryStore {
    let mut store = MemoryStore::new();
    store.insert_many(items).unwrap();
    store
}

async fn converge_and_go_live(net: Net) {
    let topic = TopicId::from_name("converge");
    let a = Node::start(&net, 1).await;
    let b = Node::start(&net, 2).await;
    let c = Node::start(&net, 3).await;
    let mut ta = a.subscribe(topic, store_with(&items(0..300)), vec![]).await;
    let mut tb = b
        .subscribe(topic, store_with(&items(200..500)), vec![a.addr()])
        .await;
    let mut tc = c
        .subscribe(topic, store_with(&items(450..600)), vec![a.addr()])
        .await;
    for t in [&mut ta, &mut tb, &mut tc] {
        wait_for_count(t, 600).await;
    }
    // Live: an item inserted at c reaches a and b once each.
    let id = tc.insert(10_000, b"live").await.unwrap();
    for t in [&mut ta, &mut tb] {
        let from = wait_for(t, "the live item", |e| match e {
            Event::ItemReceived { item, from } if item.id() == id => Some(*from),
            _ => None,
        })
        .await;
        assert!(from == a.id() || from == b.id() || from == c.id());
        assert_eq!(t.get(id).await.unwrap().unwrap().payload(), b"live");
        assert_eq!(t.item_count().await.unwrap(), 601);
    }
}

#[tokio::test]
async fn three_nodes_converge_and_go_live_on_the_memory_network() {
    converge_and_go_live(Net::memory(1)).await;
}

#[tokio::test]
async fn three_nodes_converge_and_go_live_on_loopback_quic() {
    converge_and_go_live(Net::loopback("sync-converge")).await;
}

#[tokio::test]
async fn caught_up_reports_what_moved_and_a_shutdown_ends_the_peer_s_session() {
    let net = Net::memory(2);
    let topic = TopicId::from_name("stats");
    let a = Node::start(&net, 1).await;
    let b = Node::start(&net, 2).await;
    let mut ta = a.subscribe(topic, store_with(&items(0..100)), vec![]).await;
    let mut tb = b
        .subscribe(topic, store_with(&items(50..150)), vec![a.addr()])
        .await;
    let stats = wait_for(&mut tb, "caught up", |e| match e {
        Event::CaughtUp { stats, .. } => Some(*stats),
        _ => None,
    })
    .await;
    // Who initiated depends on the ids; each side received the 50 it lacked.
    assert_eq!(stats.items_received, 50);
    assert_eq!(stats.items_sent, 50);
    assert!(stats.bytes_received > 0 && stats.bytes_sent > 0);
    wait_for_count(&mut ta, 150).await;
    assert_eq!(ta.sessions().await.unwrap().len(), 1);

    b.sync.shutdown().await;
    let reason = wait_for(&mut ta, "the session to end", |e| match e {
        Event::SessionEnded { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, EndReason::PeerClosed);
    assert!(tb.insert(1, b"after shutdown").await.is_err());
}

#[tokio::test]
async fn an_endpoint_shutdown_after_the_last_handle_is_gone_still_ends_the_sessions_first() {
    let net = Net::memory(8);
    let topic = TopicId::from_name("handles gone");
    let a = Node::start(&net, 1).await;
    let b = Node::start(&net, 2).await;
    let mut ta = a.subscribe(topic, store_with(&items(0..10)), vec![]).await;
    let tb = b.subscribe(topic, MemoryStore::new(), vec![a.addr()]).await;
    wait_for(&mut ta, "caught up", |e| {
        matches!(e, Event::CaughtUp { .. }).then_some(())
    })
    .await;

    // Every handle of b's sync is gone: its actor ends the sessions on its own, and the
    // endpoint's shutdown (through the sync handler) waits for that before the connections
    // close, so a sees a clean end, not a lost connection.
    let Node {
        endpoint,
        gossip,
        sync,
    } = b;
    drop((sync, tb));
    endpoint.shutdown().await;
    let reason = wait_for(&mut ta, "the session to end", |e| match e {
        Event::SessionEnded { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, EndReason::PeerClosed);
    drop(gossip);
}

/// A raw peer: opens a `sync/1` stream and speaks frames by hand.
async fn raw_session(attacker: &Node, victim: PeerAddr) -> (FramedSend<Frame>, FramedRecv<Frame>) {
    let conn = attacker
        .endpoint
        .connect(&victim, weft_sync::PROTOCOL)
        .await
        .unwrap();
    let (send, recv) = conn.open_bi().await.unwrap();
    (
        FramedSend::new(send, 1 << 20),
        FramedRecv::new(recv, 1 << 20),
    )
}

#[tokio::test]
async fn an_unknown_topic_is_refused_over_quic_and_an_oversized_frame_fails_the_session() {
    let net = Net::memory(3);
    let victim = Node::start(&net, 1).await;
    let attacker = Node::start(&net, 2).await;
    let topic = TopicId::from_name("guarded");
    let mut tv = victim
        .subscribe(topic, store_with(&items(0..10)), vec![])
        .await;

    let (mut send, mut recv) = raw_session(&attacker, victim.addr()).await;
    send.send(&Frame::Hello {
        topic: TopicId::from_name("something else"),
        protocol: "set-reconciliation/1".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        recv.recv().await.unwrap(),
        Frame::Refuse(Refusal::UnknownTopic)
    );

    // A frame over the victim's 1 MiB limit: refused before it is buffered.
    let (mut send, mut recv) = raw_session(&attacker, victim.addr()).await;
    send.send(&Frame::Hello {
        topic,
        protocol: "set-reconciliation/1".into(),
    })
    .await
    .unwrap();
    assert_eq!(recv.recv().await.unwrap(), Frame::Accept);
    let mut huge = FramedSend::<Frame>::new(send.into_inner(), usize::MAX);
    let _ = huge.send(&Frame::Data(vec![0; 2 << 20])).await;
    let error = wait_for(&mut tv, "the session to fail", |e| match e {
        Event::SessionFailed { error, .. } => Some(error.to_string()),
        _ => None,
    })
    .await;
    assert!(error.contains("frame"), "{error}");
    assert_eq!(tv.item_count().await.unwrap(), 10);
}

#[tokio::test]
async fn a_session_follows_the_overlay_when_a_peer_restarts() {
    let net = Net::memory(4);
    let topic = TopicId::from_name("restart");
    let a = Node::start(&net, 1).await;
    let mut ta = a.subscribe(topic, store_with(&items(0..20)), vec![]).await;
    {
        let b = Node::start(&net, 2).await;
        let mut tb = b.subscribe(topic, MemoryStore::new(), vec![a.addr()]).await;
        wait_for_count(&mut tb, 20).await;
        b.sync.shutdown().await;
        b.endpoint.shutdown().await;
    }
    wait_for(&mut ta, "the session to end", |e| {
        matches!(e, Event::SessionEnded { .. } | Event::SessionFailed { .. }).then_some(())
    })
    .await;
    ta.insert(100, b"while b was away").await.unwrap();
    let b = Node::start(&net, 2).await;
    let mut tb = b.subscribe(topic, MemoryStore::new(), vec![a.addr()]).await;
    wait_for_count(&mut tb, 21).await;
}

#[tokio::test]
async fn a_persistent_store_keeps_its_items_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.redb");
    let net = Net::memory(5);
    let topic = TopicId::from_name("persistent");
    let a = Node::start(&net, 1).await;
    let _ta = a.subscribe(topic, store_with(&items(0..50)), vec![]).await;
    {
        let db = weft_sync::store::RedbDatabase::open(&path).unwrap();
        let b = Node::start(&net, 2).await;
        let mut tb = b
            .subscribe(topic, db.store(*topic.as_bytes()).unwrap(), vec![a.addr()])
            .await;
        wait_for_count(&mut tb, 50).await;
        b.sync.shutdown().await;
        b.endpoint.shutdown().await;
    }
    let db = weft_sync::store::RedbDatabase::open(&path).unwrap();
    let store = db.store(*topic.as_bytes()).unwrap();
    assert_eq!(store.len().unwrap(), 50);
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_how_many_events_it_lost() {
    let net = Net::memory(6);
    let topic = TopicId::from_name("lagged");
    let a = Node::start(&net, 1).await;
    let ta = a.subscribe(topic, store_with(&items(0..200)), vec![]).await;
    let endpoint = net.endpoint(2).await;
    let gossip = weft_gossip::Gossip::builder()
        .spawn(&endpoint)
        .await
        .unwrap();
    let sync = weft_sync::SyncManager::builder()
        .config(common::fast_config())
        .event_capacity(8)
        .spawn(&endpoint, &gossip)
        .await
        .unwrap();
    let mut tb = sync
        .subscribe(topic, MemoryStore::new(), vec![a.addr()])
        .await
        .unwrap();
    // Not reading events while 200 items arrive: the queue of 8 overflows.
    while tb.item_count().await.unwrap() < 200 {
        tokio::task::yield_now().await;
    }
    // Read what the queue held; the next event after the overflow (here: one more item)
    // comes after a `Lagged`.
    for _ in 0..8 {
        let event = tb.recv().await.unwrap();
        assert!(!matches!(event, Event::Lagged(_)));
    }
    ta.insert(1_000, b"one more").await.unwrap();
    let lost = wait_for(&mut tb, "Lagged", |e| match e {
        Event::Lagged(n) => Some(*n),
        _ => None,
    })
    .await;
    assert!(lost > 0);
    // Every item is still in the store.
    for item in items(0..200) {
        assert!(tb.get(item.id()).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_frame_that_is_not_a_session_frame_fails_the_session() {
    let net = Net::memory(7);
    let victim = Node::start(&net, 1).await;
    let attacker = Node::start(&net, 2).await;
    let topic = TopicId::from_name("garbage");
    let mut tv = victim
        .subscribe(topic, store_with(&items(0..10)), vec![])
        .await;
    let (mut send, mut recv) = raw_session(&attacker, victim.addr()).await;
    send.send(&Frame::Hello {
        topic,
        protocol: "set-reconciliation/1".into(),
    })
    .await
    .unwrap();
    assert_eq!(recv.recv().await.unwrap(), Frame::Accept);
    // A well-framed body that is not CBOR of a frame.
    let mut raw = FramedSend::<Frame>::new(send.into_inner(), 1 << 20);
    raw.send_encoded(&[0, 0, 0, 3, 0xff, 0xfe, 0xfd])
        .await
        .unwrap();
    let error = wait_for(&mut tv, "the session to fail", |e| match e {
        Event::SessionFailed { error, .. } => Some(error.to_string()),
        _ => None,
    })
    .await;
    assert!(error.contains("stream failed"), "{error}");
    assert_eq!(tv.item_count().await.unwrap(), 10);
}
