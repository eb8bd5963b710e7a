//! Subscribers and endings on the memory network: many subscribers per topic, each with its own
//! queue; a topic left with its last subscriber; `Gossip::shutdown`, the last handle's drop and
//! `Endpoint::shutdown` each telling the neighbours at once. Every wait is for an event.

mod common;

use std::time::Duration;

use common::{Net, fast_config, init_tracing, spawn_gossip};
use tokio::{sync::mpsc, task::JoinSet, time::timeout};
use weft_gossip::{
    Error, Event, Gossip, PROTOCOL, Topic, TopicEvents, TopicId,
    proto::{MembershipMessage, Message, TopicMessage},
};
use weft_transport::{
    Endpoint, FramedRecv, FramedSend, PeerAddr, PeerId,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

/// Bound for what should happen at once; only reached when a test fails. The endpoints stay up
/// unless a test shuts one down, so no connection time-out can stand in for a goodbye.
const SOON: Duration = Duration::from_secs(5);

fn topic() -> TopicId {
    TopicId::from_name("lifecycle")
}

/// Waits for the first event matching `matches` (others are skipped) and returns it.
async fn wait_for(
    events: &mut TopicEvents,
    what: &str,
    mut matches: impl FnMut(&Event<PeerId>) -> bool,
) -> Event<PeerId> {
    timeout(SOON, async {
        loop {
            match events.recv().await {
                Some(event) if matches(&event) => return event,
                Some(_) => {}
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {SOON:?}"))
}

fn received(content: &[u8]) -> impl FnMut(&Event<PeerId>) -> bool + '_ {
    move |event| matches!(event, Event::Received { content: got, .. } if got.as_bytes() == content)
}

/// Two nodes on the memory network: `a` waits on the topic, `b` joins through it. Returns both
/// endpoints and gossips, and their topics once both have joined.
async fn pair(seed: u64) -> (Net, [(Endpoint, Gossip); 2], Topic, Topic) {
    init_tracing();
    let net = Net::memory(seed);
    let a_ep = net.endpoint(1).await;
    let b_ep = net.endpoint(2).await;
    let a = spawn_gossip(&a_ep).await;
    let b = spawn_gossip(&b_ep).await;
    let mut a_topic = a.subscribe(topic(), vec![]).await.unwrap();
    let mut b_topic = b.subscribe(topic(), vec![a_ep.addr()]).await.unwrap();
    for t in [&mut a_topic, &mut b_topic] {
        let joined = timeout(SOON, async {
            while let Some(event) = t.recv().await {
                if event == Event::Joined {
                    return;
                }
            }
        });
        joined.await.expect("both joined");
    }
    (net, [(a_ep, a), (b_ep, b)], a_topic, b_topic)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscribers_both_receive_every_broadcast() {
    let (_net, [(_, a), (b_ep, b)], a_topic, b_first) = pair(11).await;
    let (a_sender, _a_events) = a_topic.split();
    let (_b_first_sender, mut first) = b_first.split();
    // The second subscriber of a joined topic starts from its state: the neighbour, then Joined.
    let (_, mut second) = b.subscribe(topic(), vec![]).await.unwrap().split();
    let a_id = a.id();
    assert_eq!(second.recv().await, Some(Event::NeighborUp(a_id)));
    assert_eq!(second.recv().await, Some(Event::Joined));

    for n in 0..10u8 {
        a_sender.broadcast(vec![n]).await.unwrap();
    }
    for events in [&mut first, &mut second] {
        for n in 0..10u8 {
            wait_for(events, "the next broadcast", received(&[n])).await;
        }
    }
    // One node, one neighbour: the second subscription added no link.
    assert_eq!(a_sender.neighbors().await.unwrap(), vec![b_ep.id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_one_subscriber_keeps_the_topic_for_the_other() {
    let (_net, [(a_ep, _a), (b_ep, b)], a_topic, b_first) = pair(12).await;
    let (a_sender, mut a_events) = a_topic.split();
    let (b_sender, mut b_events) = b.subscribe(topic(), vec![]).await.unwrap().split();
    drop(b_first);
    // This round trip is served after the drop (sent from the same task, in order).
    assert_eq!(b_sender.neighbors().await.unwrap(), vec![a_ep.id()]);

    // Both ways still work; had b left, its Disconnect would have reached a before this (one
    // stream per peer keeps b's messages in order).
    b_sender.broadcast(b"still here".to_vec()).await.unwrap();
    wait_for(&mut a_events, "b's broadcast", received(b"still here")).await;
    a_sender.broadcast(b"hello".to_vec()).await.unwrap();
    wait_for(&mut b_events, "a's broadcast", received(b"hello")).await;
    assert_eq!(a_sender.neighbors().await.unwrap(), vec![b_ep.id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_subscriber_leaves_the_topic() {
    let (_net, [(a_ep, _a), (b_ep, b)], a_topic, b_first) = pair(13).await;
    let (a_sender, mut a_events) = a_topic.split();
    let (b_sender, b_events) = b.subscribe(topic(), vec![]).await.unwrap().split();
    drop(b_first);
    drop(b_events);
    // The sending half alone keeps the subscriber.
    b_sender.broadcast(b"sender only".to_vec()).await.unwrap();
    wait_for(&mut a_events, "b's broadcast", received(b"sender only")).await;
    drop(b_sender);
    let b_id = b_ep.id();
    wait_for(&mut a_events, "b's departure", |e| {
        *e == Event::NeighborDown(b_id)
    })
    .await;
    assert!(a_sender.neighbors().await.unwrap().is_empty());
    // The gossip instance itself still runs: the topic can be joined again.
    let (again, mut again_events) = b.subscribe(topic(), vec![]).await.unwrap().split();
    again.join_peers(vec![a_ep.addr()]).await.unwrap();
    wait_for(&mut again_events, "the rejoin", |e| *e == Event::Joined).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_lags_without_holding_back_another() {
    init_tracing();
    let net = Net::memory(14);
    let a_ep = net.endpoint(1).await;
    let b_ep = net.endpoint(2).await;
    let a = spawn_gossip(&a_ep).await;
    let b = Gossip::builder()
        .config(fast_config())
        .event_capacity(4)
        .spawn(&b_ep)
        .await
        .unwrap();
    let (a_sender, mut a_events) = a.subscribe(topic(), vec![]).await.unwrap().split();
    // The slow one: NeighborUp and Joined fill half its queue, and it is not read until the end.
    let (b_sender, mut slow) = b
        .subscribe(topic(), vec![a_ep.addr()])
        .await
        .unwrap()
        .split();
    let (_, mut fast) = b.subscribe(topic(), vec![]).await.unwrap().split();
    wait_for(&mut fast, "Joined", |e| *e == Event::Joined).await;
    wait_for(&mut a_events, "Joined", |e| *e == Event::Joined).await;

    const COUNT: u8 = 20;
    for n in 0..COUNT {
        a_sender.broadcast(vec![n]).await.unwrap();
        // Read as it comes: the fast subscriber never has more than one event queued.
        let event = wait_for(&mut fast, "the next broadcast", |e| {
            matches!(e, Event::Received { .. } | Event::Lagged(_))
        })
        .await;
        assert!(
            matches!(&event, Event::Received { content, .. } if content.as_bytes() == [n]),
            "fast subscriber got {event:?} for broadcast {n}"
        );
    }
    // A round trip through b's actor: it has handed the last broadcast to every subscriber
    // (the fast one may have had it first).
    b_sender.neighbors().await.unwrap();
    // The slow one has its first four events queued; the rest were counted as missed.
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(timeout(SOON, slow.recv()).await.unwrap().unwrap());
    }
    assert_eq!(got[..2], [Event::NeighborUp(a.id()), Event::Joined]);
    let firsts: Vec<u8> = got[2..]
        .iter()
        .map(|e| match e {
            Event::Received { content, .. } => content.as_bytes()[0],
            other => panic!("expected a broadcast, got {other:?}"),
        })
        .collect();
    assert_eq!(firsts, [0, 1]);
    // With room again, the next event comes after the count of those it missed.
    a_sender.broadcast(b"last".to_vec()).await.unwrap();
    wait_for(&mut fast, "the last broadcast", received(b"last")).await;
    assert_eq!(
        timeout(SOON, slow.recv()).await.unwrap(),
        Some(Event::Lagged(u64::from(COUNT) - 2)),
        "the slow subscriber is told what it missed"
    );
    wait_for(&mut slow, "the last broadcast", received(b"last")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_subscribe_joins_through_its_bootstrap_peers() {
    init_tracing();
    let net = Net::memory(15);
    let a_ep = net.endpoint(1).await;
    let b_ep = net.endpoint(2).await;
    let a = spawn_gossip(&a_ep).await;
    let b = spawn_gossip(&b_ep).await;
    let (_a_sender, mut a_events) = a.subscribe(topic(), vec![]).await.unwrap().split();
    // b's first subscriber waits alone; the second brings a bootstrap peer.
    let (_, mut first) = b.subscribe(topic(), vec![]).await.unwrap().split();
    let (_, mut second) = b
        .subscribe(topic(), vec![a_ep.addr()])
        .await
        .unwrap()
        .split();
    for events in [&mut first, &mut second, &mut a_events] {
        wait_for(events, "Joined", |e| *e == Event::Joined).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_the_neighbours_at_once() {
    let (_net, [(_, _a), (b_ep, b)], a_topic, b_topic) = pair(16).await;
    let (_a_sender, mut a_events) = a_topic.split();
    let (b_sender, mut b_events) = b_topic.split();
    b.shutdown().await;
    // b's endpoint is still up: only b's goodbye can tell a this soon.
    let b_id = b_ep.id();
    wait_for(&mut a_events, "b's departure", |e| {
        *e == Event::NeighborDown(b_id)
    })
    .await;
    // Everything after it is closed, and a second shutdown is a no-op.
    assert_eq!(
        timeout(SOON, b_events.recv()).await.expect("stream ends"),
        None
    );
    assert!(matches!(
        b_sender.broadcast(b"late".to_vec()).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        b.subscribe(topic(), vec![]).await,
        Err(Error::Closed)
    ));
    timeout(SOON, b.shutdown())
        .await
        .expect("a second shutdown returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handles_leaves_every_topic() {
    let (_net, [(a_ep, a), (b_ep, b)], a_topic, b_topic) = pair(17).await;
    let (_a_sender, mut a_events) = a_topic.split();
    // A second topic, so that every topic is left, not just the first.
    let other = TopicId::from_name("lifecycle-2");
    let (_a_other_sender, mut a_other) = a.subscribe(other, vec![]).await.unwrap().split();
    let (b_other_sender, mut b_other) =
        b.subscribe(other, vec![a_ep.addr()]).await.unwrap().split();
    wait_for(&mut b_other, "Joined", |e| *e == Event::Joined).await;
    drop((b, b_topic, b_other, b_other_sender));
    let b_id = b_ep.id();
    for events in [&mut a_events, &mut a_other] {
        wait_for(events, "b's departure", |e| *e == Event::NeighborDown(b_id)).await;
    }
}

/// A runtime frame as the spy reads and writes it: `[message, [addr…]]`.
type Frame = (Message<PeerId>, Vec<PeerAddr>);

/// What the spy saw on one connection.
#[derive(Debug)]
enum Seen {
    Frame(Message<PeerId>),
    Closed,
}

/// A stand-in neighbour: accepts `gossip/1`, accepts every joiner (replying from its own
/// connection, which it then keeps open) and reports each frame, and each connection's end,
/// in order.
#[derive(Debug, Clone)]
struct Spy {
    endpoint: Endpoint,
    seen: mpsc::Sender<Seen>,
    replies: mpsc::Sender<(Connection, FramedSend<Frame>)>,
}

impl ProtocolHandler for Spy {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let from = PeerId::from(conn.remote_id());
        let mut streams = JoinSet::new();
        while let Ok(stream) = conn.accept_uni().await {
            let spy = self.clone();
            streams.spawn(async move {
                let mut recv = FramedRecv::<Frame, _>::new(stream, 1 << 20);
                while let Ok((message, addrs)) = recv.recv().await {
                    if matches!(
                        message.message,
                        TopicMessage::Membership(MembershipMessage::Join)
                    ) {
                        spy.accept_joiner(from, message.topic, addrs).await;
                    }
                    let _ = spy.seen.send(Seen::Frame(message)).await;
                }
            });
        }
        // Frames read after the close are still reported before it.
        while streams.join_next().await.is_some() {}
        let _ = self.seen.send(Seen::Closed).await;
        Ok(())
    }
}

impl Spy {
    async fn accept_joiner(&self, from: PeerId, topic: TopicId, addrs: Vec<PeerAddr>) {
        let addr = addrs
            .into_iter()
            .find(|a| a.id == from)
            .unwrap_or_else(|| PeerAddr::new(from));
        let conn = self.endpoint.connect(&addr, PROTOCOL).await.unwrap();
        let mut send = FramedSend::new(conn.open_uni().await.unwrap(), 1 << 20);
        let reply = Message {
            topic,
            message: TopicMessage::Membership(MembershipMessage::NeighborReply { accepted: true }),
        };
        send.send(&(reply, vec![self.endpoint.addr()]))
            .await
            .unwrap();
        let _ = self.replies.send((conn, send)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_shutdown_sends_the_goodbye_before_closing() {
    init_tracing();
    let net = Net::memory(18);
    let spy_ep = net.endpoint(1).await;
    let (seen_tx, mut seen) = mpsc::channel(256);
    let (replies_tx, mut replies) = mpsc::channel(4);
    spy_ep
        .register(
            PROTOCOL,
            Spy {
                endpoint: spy_ep.clone(),
                seen: seen_tx,
                replies: replies_tx,
            },
        )
        .unwrap();

    let node_ep = net.endpoint(2).await;
    let node = spawn_gossip(&node_ep).await;
    let (topic_sender, mut topic_events) = node
        .subscribe(topic(), vec![spy_ep.addr()])
        .await
        .unwrap()
        .split();
    wait_for(&mut topic_events, "Joined", |e| *e == Event::Joined).await;
    // Keep the spy's side of the link open: only the node ends it.
    let _reply_link = replies.recv().await.unwrap();

    node_ep.shutdown().await;
    let mut goodbye = false;
    loop {
        match timeout(SOON, seen.recv())
            .await
            .expect("the connection ends")
        {
            Some(Seen::Frame(Message {
                message: TopicMessage::Membership(MembershipMessage::Disconnect { alive }),
                ..
            })) => {
                assert!(!alive, "a shut-down node says it is gone for good");
                goodbye = true;
            }
            Some(Seen::Frame(_)) => {}
            Some(Seen::Closed) | None => break,
        }
    }
    assert!(goodbye, "the connection closed before the goodbye arrived");
    drop((topic_sender, topic_events, node));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_sees_a_topic_without_keeping_it() {
    let (_net, [(a_ep, _a), (_, b)], a_topic, b_topic) = pair(17).await;
    let err = b.observe(TopicId::from_name("not joined")).await;
    assert!(matches!(err, Err(Error::NotJoined(_))), "{err:?}");
    let mut observer = b.observe(topic()).await.unwrap();
    // It starts from the topic's state, like a late subscriber.
    assert_eq!(observer.recv().await, Some(Event::NeighborUp(a_ep.id())));
    assert_eq!(observer.recv().await, Some(Event::Joined));
    assert_eq!(observer.neighbors().await.unwrap(), vec![a_ep.id()]);
    let mut more = Vec::new();
    for _ in 1..weft_gossip::MAX_OBSERVERS {
        more.push(b.observe(topic()).await.unwrap());
    }
    let err = b.observe(topic()).await;
    assert!(matches!(err, Err(Error::TooManyObservers(_))), "{err:?}");
    // A dropped observer frees its place.
    more.pop();
    more.push(b.observe(topic()).await.unwrap());

    let (a_sender, mut a_events) = a_topic.split();
    a_sender.broadcast(b"observed".to_vec()).await.unwrap();
    timeout(SOON, async {
        loop {
            match observer.recv().await {
                Some(Event::Received { content, .. }) if content.as_bytes() == b"observed" => {
                    return;
                }
                Some(_) => {}
                None => panic!("the observer's stream ended early"),
            }
        }
    })
    .await
    .expect("the observer gets the broadcast");
    // The last subscriber goes: the topic is left although observers remain, and their
    // streams end.
    drop(b_topic);
    let b_id = b.id();
    wait_for(&mut a_events, "b's departure", |e| {
        *e == Event::NeighborDown(b_id)
    })
    .await;
    timeout(SOON, async { while observer.recv().await.is_some() {} })
        .await
        .expect("the observer's stream ends with the topic");
    assert!(observer.neighbors().await.unwrap().is_empty());
}
