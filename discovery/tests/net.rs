//! The runtime on the in-process memory network: joining, changes, departures, crashes,
//! partitions and a hostile peer. Every wait is for a catalog state or an event, with a
//! generous deadline that only a broken node misses.
#![cfg(feature = "net")]

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use serde_bytes::ByteBuf;
use tokio::time::timeout;
use weft_discovery::{
    CatalogSnapshot, Config, DepartReason, Discovery, Event, Message, PROTOCOL, SyncMessage,
};
use weft_gossip::Gossip;
use weft_transport::{Endpoint, MemoryNetwork, PeerAddr, PeerId, SecretKey, encode_frame};

/// Deadline for anything the network should do within a few announce intervals.
const WITHIN: Duration = Duration::from_secs(20);

fn config() -> Config {
    Config {
        // A loaded debug build can take a while to pass a departure along: a tight drift would
        // make it look too old.
        max_drift: Duration::from_secs(2),
        ..Config::for_tests()
    }
}

/// Timings for the twenty-node swarm: a debug build verifying every announcement on two cores
/// cannot keep up with twenty nodes announcing every second, so they announce every few seconds.
/// Joining rides catalog sync, not announcements.
fn slow_config() -> Config {
    Config {
        announce_interval: Duration::from_secs(4),
        announce_jitter: Duration::from_millis(500),
        purge_after: Duration::from_secs(15),
        stale_after: Duration::from_secs(8),
        sync_timeout: Duration::from_secs(5),
        ping_timeout: Duration::from_secs(5),
        ..config()
    }
}

fn gossip_config() -> weft_gossip::Config {
    // Memory-network links are fast: graft after a few ms, not after simulated-WAN delays.
    let mut config = weft_gossip::Config {
        broadcast: weft_gossip::PlumtreeConfig::for_link_rtt(Duration::from_millis(4)),
        ..weft_gossip::Config::default()
    };
    config.membership.shuffle_interval = Duration::from_secs(5);
    config
}

struct TestNode {
    endpoint: Endpoint,
    _gossip: Gossip,
    discovery: Discovery,
}

impl TestNode {
    fn id(&self) -> PeerId {
        self.endpoint.id()
    }
}

async fn endpoint(net: &MemoryNetwork, seed: u8) -> Endpoint {
    Endpoint::builder()
        .secret_key(SecretKey::from_bytes(&[seed; 32]))
        .memory(net)
        .connect_timeout(Duration::from_secs(5))
        .bind()
        .await
        .unwrap()
}

async fn node_with(
    net: &MemoryNetwork,
    seed: u8,
    bootstrap: Option<&TestNode>,
    config: Config,
) -> TestNode {
    let endpoint = endpoint(net, seed).await;
    let gossip = Gossip::builder()
        .config(gossip_config())
        .spawn(&endpoint)
        .await
        .unwrap();
    let mut builder = Discovery::builder()
        .config(config)
        .shutdown_grace(Duration::from_millis(100));
    if let Some(first) = bootstrap {
        // Half the nodes bootstrap from a ticket, half from an address.
        builder = if seed.is_multiple_of(2) {
            builder.bootstrap_tickets([first.endpoint.addr().to_ticket()])
        } else {
            builder.bootstrap([PeerAddr::new(first.id())])
        };
    }
    let discovery = builder.spawn(&endpoint, &gossip).await.unwrap();
    TestNode {
        endpoint,
        _gossip: gossip,
        discovery,
    }
}

async fn swarm(net: &MemoryNetwork, count: u8) -> Vec<TestNode> {
    swarm_with(net, count, config()).await
}

async fn swarm_with(net: &MemoryNetwork, count: u8, config: Config) -> Vec<TestNode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut nodes: Vec<TestNode> = Vec::new();
    for seed in 1..=count {
        let node = node_with(net, seed, nodes.first(), config.clone()).await;
        nodes.push(node);
    }
    nodes
}

/// Waits until `discovery`'s catalog satisfies `done`, woken by its watch.
async fn wait_catalog(
    discovery: &Discovery,
    what: &str,
    done: impl Fn(&CatalogSnapshot) -> bool,
) -> CatalogSnapshot {
    let mut watch = discovery.watch();
    let mut last = None;
    let result = timeout(WITHIN, async {
        loop {
            watch.borrow_and_update();
            let catalog = discovery.catalog().await.unwrap();
            if done(&catalog) {
                return catalog;
            }
            last = Some(catalog.ids());
            watch.changed().await.unwrap();
        }
    })
    .await;
    match result {
        Ok(catalog) => catalog,
        Err(_) => {
            let stats = timeout(Duration::from_secs(1), discovery.stats()).await;
            panic!(
                "{}: {what} not reached; catalog holds {:?}; stats {stats:?}",
                discovery.id().fmt_short(),
                last.map(|ids| ids.iter().map(PeerId::fmt_short).collect::<Vec<_>>())
            )
        }
    }
}

async fn wait_complete(nodes: &[TestNode], expected: &BTreeSet<PeerId>) {
    for (i, node) in nodes.iter().enumerate() {
        let what = format!("node {i}: a complete catalog");
        wait_catalog(&node.discovery, &what, |c| c.ids() == *expected).await;
    }
}

fn ids(nodes: &[TestNode]) -> BTreeSet<PeerId> {
    nodes.iter().map(TestNode::id).collect()
}

/// Waits for `peer` to depart from `discovery`'s catalog and returns why.
async fn wait_departed(events: &mut weft_transport::Events<Event>, peer: PeerId) -> DepartReason {
    timeout(WITHIN, async {
        loop {
            match events.recv().await {
                Some(Event::PeerDeparted { peer: p, reason }) if p == peer => {
                    return reason;
                }
                Some(_) => {}
                None => panic!("discovery stopped"),
            }
        }
    })
    .await
    .expect("departure seen in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_nodes_from_one_bootstrap_reach_complete_catalogs() {
    let net = MemoryNetwork::new(1);
    let mut nodes = swarm_with(&net, 20, slow_config()).await;
    wait_complete(&nodes, &ids(&nodes)).await;

    // A late node with no bootstrap dials one peer by address and learns everyone.
    let late = node_with(&net, 21, None, slow_config()).await;
    late.discovery
        .dial(PeerAddr::new(nodes[7].id()))
        .await
        .unwrap();
    nodes.push(late);
    wait_complete(&nodes, &ids(&nodes)).await;

    // Ping measures a round trip to a peer named by id; an explicit sync with a peer holding
    // the same catalog teaches nothing.
    let last = &nodes[20].discovery;
    last.ping(nodes[3].id()).await.unwrap();
    let learnt = last.sync_with(PeerAddr::new(nodes[11].id())).await.unwrap();
    assert_eq!(learnt, 0);
    // The snapshot prints as a table: a header, the local peer, twenty others.
    let table = last.catalog().await.unwrap().to_string();
    assert_eq!(table.lines().count(), 22, "{table}");
    let stats = last.stats().await.unwrap();
    assert!(stats.new >= 20, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_and_metadata_change_propagates() {
    let net = MemoryNetwork::new(2);
    let nodes = swarm(&net, 5).await;
    wait_complete(&nodes, &ids(&nodes)).await;
    let changed = nodes[2].id();
    let tags: BTreeSet<String> = ["storage".to_string()].into();
    let metadata: BTreeMap<String, String> = [("region".to_string(), "eu".to_string())].into();
    nodes[2]
        .discovery
        .update_local(tags.clone(), metadata.clone())
        .await
        .unwrap();
    for node in &nodes {
        let catalog = wait_catalog(&node.discovery, "the new tags", |c| {
            c.entry(&changed).is_some_and(|e| e.tags == tags)
        })
        .await;
        assert_eq!(catalog.entry(&changed).unwrap().metadata, metadata);
    }
    // An update beyond the limits is refused and changes nothing.
    let too_many: BTreeSet<String> = (0..100).map(|i| format!("tag{i}")).collect();
    let err = nodes[2]
        .discovery
        .update_local(too_many, BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, weft_discovery::Error::LocalUpdateRefused(_)),
        "{err}"
    );
    let local = nodes[2].discovery.catalog().await.unwrap().local;
    assert_eq!((local.tags, local.metadata), (tags, metadata));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departure_propagates() {
    let net = MemoryNetwork::new(3);
    let mut nodes = swarm(&net, 5).await;
    wait_complete(&nodes, &ids(&nodes)).await;
    let mut events: Vec<_> = nodes[..4].iter().map(|n| n.discovery.events()).collect();
    let leaving = nodes.pop().unwrap();
    let leaving_id = leaving.id();
    leaving.discovery.shutdown().await;
    assert!(matches!(
        leaving.discovery.catalog().await,
        Err(weft_discovery::Error::Closed)
    ));
    // Idempotent, and a stream asked for after the end has ended too.
    leaving.discovery.shutdown().await;
    assert_eq!(leaving.discovery.events().recv().await, None);
    for events in &mut events {
        assert_eq!(
            wait_departed(events, leaving_id).await,
            DepartReason::Departed
        );
    }
    wait_complete(&nodes, &ids(&nodes)).await;
    leaving.endpoint.shutdown().await;
}

/// The two other ways a layer ends, in the order users write them: the endpoint's shutdown
/// (which shuts every layer down), and dropping the last handle. Both depart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_shutdown_or_the_last_handles_drop_departs() {
    let net = MemoryNetwork::new(5);
    let mut nodes = swarm(&net, 5).await;
    wait_complete(&nodes, &ids(&nodes)).await;
    let mut events: Vec<_> = nodes[..3].iter().map(|n| n.discovery.events()).collect();

    let by_endpoint = nodes.pop().unwrap();
    let by_endpoint_id = by_endpoint.id();
    by_endpoint.endpoint.shutdown().await;
    assert!(matches!(
        by_endpoint.discovery.catalog().await,
        Err(weft_discovery::Error::Closed)
    ));
    for events in &mut events {
        assert_eq!(
            wait_departed(events, by_endpoint_id).await,
            DepartReason::Departed
        );
    }

    let dropped = nodes.pop().unwrap();
    let dropped_id = dropped.id();
    let TestNode {
        endpoint,
        _gossip: gossip,
        discovery,
    } = dropped;
    drop(discovery);
    for events in &mut events {
        assert_eq!(
            wait_departed(events, dropped_id).await,
            DepartReason::Departed
        );
    }
    drop(gossip);
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_is_purged() {
    let net = MemoryNetwork::new(4);
    let mut nodes = swarm(&net, 4).await;
    wait_complete(&nodes, &ids(&nodes)).await;
    let mut events: Vec<_> = nodes[..3].iter().map(|n| n.discovery.events()).collect();
    // Crash: the node falls silent without a departure (an endpoint shutdown would depart).
    let crashed = nodes.pop().unwrap();
    let crashed_id = crashed.id();
    net.isolate(crashed_id);
    for events in &mut events {
        assert_eq!(
            wait_departed(events, crashed_id).await,
            DepartReason::Purged
        );
    }
    wait_complete(&nodes, &ids(&nodes)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_and_heal_reconverge() {
    let net = MemoryNetwork::new(5);
    let nodes = swarm(&net, 6).await;
    let all = ids(&nodes);
    wait_complete(&nodes, &all).await;
    let (left, right): (Vec<PeerId>, Vec<PeerId>) = (
        all.iter().take(3).copied().collect(),
        all.iter().skip(3).copied().collect(),
    );
    net.partition(&left, &right);
    // Each side purges the other.
    for node in &nodes {
        let other: Vec<PeerId> = if left.contains(&node.id()) {
            right.clone()
        } else {
            left.clone()
        };
        wait_catalog(&node.discovery, "the other side purged", |c| {
            other.iter().all(|p| !c.contains(p))
        })
        .await;
    }
    net.heal();
    wait_complete(&nodes, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sync_frames_do_no_harm() {
    let net = MemoryNetwork::new(6);
    let nodes = swarm(&net, 3).await;
    wait_complete(&nodes, &ids(&nodes)).await;
    let target = PeerAddr::new(nodes[0].id());
    let rogue = endpoint(&net, 99).await;

    // A frame that is not a message: the node drops the connection.
    let conn = rogue.dial(&target, PROTOCOL).await.unwrap();
    let mut stream = conn.open_uni().await.unwrap();
    stream
        .write_all(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let _ = stream.finish();
    assert!(
        timeout(WITHIN, conn.closed()).await.is_ok(),
        "garbage: connection not closed"
    );

    // A header announcing more than the maximum message size: refused before reading it.
    let conn = rogue.dial(&target, PROTOCOL).await.unwrap();
    let mut stream = conn.open_uni().await.unwrap();
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let _ = stream.finish();
    assert!(
        timeout(WITHIN, conn.closed()).await.is_ok(),
        "oversized: connection not closed"
    );

    // Well-formed messages that fit no session, and a bad offer: protocol violations, counted.
    let conn = rogue.dial(&target, PROTOCOL).await.unwrap();
    let messages = [
        Message::Sync(SyncMessage::Entries {
            session: 7,
            entries: Vec::new(),
        }),
        Message::Sync(SyncMessage::Offer {
            session: 8,
            buckets: 0,
            fingerprints: ByteBuf::new(),
        }),
    ];
    for message in &messages {
        let mut stream = conn.open_uni().await.unwrap();
        stream
            .write_all(&encode_frame(message, 1 << 20).unwrap())
            .await
            .unwrap();
        let _ = stream.finish();
    }
    let discovery = &nodes[0].discovery;
    timeout(WITHIN, async {
        while discovery.stats().await.unwrap().violations < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("violations counted");

    // The node still works: a change elsewhere reaches it, and its catalog is intact.
    let tags: BTreeSet<String> = ["after".to_string()].into();
    nodes[1]
        .discovery
        .update_local(tags.clone(), BTreeMap::new())
        .await
        .unwrap();
    let changed = nodes[1].id();
    let catalog = wait_catalog(discovery, "the change after the attack", |c| {
        c.entry(&changed).is_some_and(|e| e.tags == tags)
    })
    .await;
    assert_eq!(catalog.ids(), ids(&nodes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_quic_nodes_learn_addresses_and_dial_by_id() {
    let mut nodes: Vec<TestNode> = Vec::new();
    for seed in 41..44u8 {
        let endpoint = Endpoint::builder()
            .secret_key(SecretKey::from_bytes(&[seed; 32]))
            .bind_addr("127.0.0.1:0".parse().unwrap())
            .connect_timeout(Duration::from_secs(5))
            .bind()
            .await
            .unwrap();
        let gossip = Gossip::builder()
            .config(gossip_config())
            .spawn(&endpoint)
            .await
            .unwrap();
        let mut builder = Discovery::builder().config(config());
        if let Some(first) = nodes.first() {
            builder = builder.bootstrap_tickets([first.endpoint.addr().to_ticket()]);
        }
        let discovery = builder.spawn(&endpoint, &gossip).await.unwrap();
        nodes.push(TestNode {
            endpoint,
            _gossip: gossip,
            discovery,
        });
    }
    wait_complete(&nodes, &ids(&nodes)).await;
    // Entries carry the real addresses, and a peer is reachable by id alone.
    let catalog = nodes[2].discovery.catalog().await.unwrap();
    let first = catalog.entry(&nodes[0].id()).unwrap();
    assert_eq!(first.direct, nodes[0].endpoint.addr().direct);
    assert!(!first.direct.is_empty());
    nodes[2].discovery.ping(nodes[1].id()).await.unwrap();
    nodes[1]
        .endpoint
        .connect(&PeerAddr::new(nodes[2].id()), PROTOCOL)
        .await
        .unwrap();
    // A stranger syncs with a node that knows nothing of it: the answer finds its way back.
    let endpoint = Endpoint::builder()
        .secret_key(SecretKey::from_bytes(&[44; 32]))
        .bind_addr("127.0.0.1:0".parse().unwrap())
        .bind()
        .await
        .unwrap();
    let gossip = Gossip::builder().spawn(&endpoint).await.unwrap();
    let stranger = Discovery::builder()
        .config(config())
        .spawn(&endpoint, &gossip)
        .await
        .unwrap();
    let learnt = stranger.sync_with(nodes[0].endpoint.addr()).await.unwrap();
    // Learnt counts the peers other than the one synced with.
    assert_eq!(learnt, 2);
    assert_eq!(stranger.catalog().await.unwrap().peers.len(), 3);
    endpoint.shutdown().await;
    for node in &nodes {
        node.endpoint.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_told_it_lagged() {
    let net = MemoryNetwork::new(7);
    let endpoint = endpoint(&net, 1).await;
    let gossip = Gossip::builder()
        .config(gossip_config())
        .spawn(&endpoint)
        .await
        .unwrap();
    let discovery = Discovery::builder()
        .config(config())
        .event_capacity(1)
        .spawn(&endpoint, &gossip)
        .await
        .unwrap();
    let first = TestNode {
        endpoint,
        _gossip: gossip,
        discovery,
    };
    let mut events = first.discovery.events();
    let mut nodes = vec![first];
    for seed in 2..=4 {
        let node = node_with(&net, seed, nodes.first(), config()).await;
        nodes.push(node);
    }
    wait_complete(&nodes, &ids(&nodes)).await;
    // Three discoveries into a queue of two (the least a queue holds): the first two are
    // queued, the third is missed.
    for _ in 0..2 {
        assert!(matches!(
            events.recv().await,
            Some(Event::PeerDiscovered(_) | Event::PeerUpdated(_))
        ));
    }
    // The gap is reported together with the next event: a peer's update.
    nodes[1]
        .discovery
        .update_local(["lagging".to_string()].into(), Default::default())
        .await
        .unwrap();
    let Some(Event::Lagged(missed)) = events.recv().await else {
        panic!("expected Lagged before the next event");
    };
    assert!(missed >= 1, "{missed}");
    assert!(matches!(
        events.recv().await,
        Some(Event::PeerDiscovered(_) | Event::PeerUpdated(_))
    ));
}
