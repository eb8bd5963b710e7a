//! Three nodes on loopback QUIC that bootstrap from one ticket: discovery, gossip, registry and
//! sync across the composed node, and what peers see of a graceful shutdown.

mod common;

use common::{catalogs_complete, joined, received, shutdown_all, three_nodes, within};
use weft_discovery::{DepartReason, Event as DiscoveryEvent};
use weft_gossip::TopicId;
use weft_registry::{Event as RegistryEvent, Registration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_from_one_ticket_discover_each_other() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    for node in &nodes {
        let catalog = node
            .discovery()
            .expect("discovery")
            .catalog()
            .await
            .expect("catalog");
        assert_eq!(catalog.peers.len(), 2, "{catalog}");
    }
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossip_message_reaches_the_other_nodes() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    let topic = TopicId::from_name("node-tests/chat");
    let mut topics = Vec::new();
    for node in &nodes {
        topics.push(node.subscribe_gossip(topic).await.expect("subscribe"));
    }
    for (i, topic) in topics.iter_mut().enumerate() {
        joined(topic, &format!("node {i}")).await;
    }
    topics[0]
        .sender()
        .broadcast("hello from a")
        .await
        .expect("broadcast");
    for (i, topic) in topics.iter_mut().enumerate().skip(1) {
        received(topic, &format!("node {i}"), b"hello from a").await;
    }
    // Every layer's counters saw it (read through the node's registry, as `/metrics` does).
    let sender = counters(&nodes[0]);
    assert!(sender["weft_gossip_pushes_sent_total"] >= 1.0, "{sender:?}");
    for node in &nodes[1..] {
        let counters = counters(node);
        assert!(
            counters["weft_gossip_delivered_total"] >= 1.0,
            "{counters:?}"
        );
        assert!(counters["weft_gossip_neighbors"] >= 1.0, "{counters:?}");
        assert!(
            counters["weft_gossip_bytes_received_total"] > 0.0,
            "{counters:?}"
        );
        assert_eq!(counters["weft_discovery_catalog_size"], 2.0, "{counters:?}");
        assert!(
            counters["weft_transport_inbound_admitted_total"] >= 1.0,
            "{counters:?}"
        );
        assert!(
            counters["weft_transport_dials_total"] >= 1.0,
            "{counters:?}"
        );
    }
    drop(topics);
    shutdown_all(&nodes).await;
}

/// A node's counters by sample name, parsed from the text `/metrics` serves.
fn counters(node: &weft_node::Node) -> std::collections::HashMap<String, f64> {
    let text = node.encode_metrics();
    assert!(text.ends_with("# EOF\n"), "{text}");
    iroh_metrics::parse_prometheus_metrics(&text)
}

/// Registers `name` on `node`'s registry and waits until at least `holders` nodes acknowledged
/// the record (a publish that found no peer yet is repeated when the registry learns some).
async fn register(node: &weft_node::Node, name: &str, holders: usize) -> Registration {
    let registry = node.registry().expect("registry");
    let mut events = registry.events();
    let registration = registry
        .register(name, b"meta".to_vec())
        .await
        .expect("register");
    if registration.holders() < holders {
        within(&format!("{name} to reach {holders} holders"), async {
            loop {
                match events.recv().await {
                    Some(RegistryEvent::Published { holders: n, .. }) if n >= holders => return,
                    Some(_) => {}
                    None => panic!("registry stopped"),
                }
            }
        })
        .await;
    }
    registration
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_registered_on_one_node_is_found_from_another() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    // The provider bootstrapped from the first node, so its registry knew that node from the
    // start: the first node holds the record, and the second (which also bootstrapped from
    // it) finds the record through it.
    let _registration = register(&nodes[2], "node-tests/echo", 1).await;
    let found = nodes[1]
        .registry()
        .expect("registry")
        .lookup_all_refresh("node-tests/echo")
        .await
        .expect("lookup");
    let looked_up = counters(&nodes[1]);
    assert!(
        looked_up["weft_registry_lookups_total"] >= 1.0,
        "{looked_up:?}"
    );
    assert!(
        looked_up["weft_registry_lookups_found_total"] >= 1.0,
        "{looked_up:?}"
    );
    assert!(counters(&nodes[2])["weft_registry_names_provided"] >= 1.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].provider, nodes[2].id());
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_item_inserted_on_one_node_arrives_on_the_others() {
    let root = tempfile::tempdir().expect("temp dir");
    let nodes = three_nodes(Some(root.path())).await;
    catalogs_complete(&nodes).await;
    let topic = TopicId::from_name("node-tests/notes");
    let first = nodes[0].subscribe_sync(topic).await.expect("subscribe");
    let id = first
        .insert(1_700_000_000, b"a note")
        .await
        .expect("insert");
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let mut synced = node.subscribe_sync(topic).await.expect("subscribe");
        within(&format!("node {i} to receive the item"), async {
            while synced.get(id).await.expect("get").is_none() {
                match synced.recv().await {
                    Some(_) => {}
                    None => panic!("sync stopped"),
                }
            }
        })
        .await;
    }
    drop(first);
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_see_the_departure_and_the_withdrawal_of_a_node_that_shuts_down() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    let leaving = &nodes[2];
    // Kept alive: the shutdown, not a drop, must withdraw it.
    // The leaving node bootstrapped from the observer: the observer holds its record.
    let _registration = register(leaving, "node-tests/leaving", 1).await;
    let observer = &nodes[0];
    let registry = observer.registry().expect("registry");
    let before = registry
        .lookup_all_refresh("node-tests/leaving")
        .await
        .expect("lookup");
    assert_eq!(before.len(), 1, "found before the shutdown");
    let mut events = observer.discovery().expect("discovery").events();

    let started = std::time::Instant::now();
    leaving.shutdown().await;
    let grace = leaving.config().node.shutdown_grace;
    assert!(
        started.elapsed() <= grace + std::time::Duration::from_secs(1),
        "the shutdown took {:?}, the grace is {grace:?}",
        started.elapsed()
    );
    leaving.shutdown().await; // idempotent
    assert!(leaving.is_shut_down());

    within("the observer to see the departure", async {
        loop {
            match events.recv().await {
                Some(DiscoveryEvent::PeerDeparted { peer, reason }) if peer == leaving.id() => {
                    assert_eq!(reason, DepartReason::Departed, "a departure, not a purge");
                    return;
                }
                Some(_) => {}
                None => panic!("discovery stopped"),
            }
        }
    })
    .await;
    // The shutdown waited for the holders' acknowledgements of the removal: no holder keeps
    // the record (which would otherwise live out its TTL, minutes).
    assert!(
        registry
            .held("node-tests/leaving")
            .await
            .expect("held")
            .is_empty()
    );
    let found = registry
        .lookup_all_refresh("node-tests/leaving")
        .await
        .expect("lookup");
    assert!(found.is_empty(), "{found:?}");
    shutdown_all(&nodes[..2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_left_out_are_absent_and_say_so() {
    let node = weft_node::Node::builder()
        .config(common::test_config())
        .without_discovery()
        .without_registry()
        .without_sync()
        .spawn()
        .await
        .expect("spawn");
    assert!(node.discovery().is_none());
    assert!(node.registry().is_none());
    assert!(node.sync().is_none());
    let err = node
        .subscribe_sync(TopicId::from_name("node-tests/none"))
        .await
        .expect_err("no sync layer");
    assert!(
        matches!(err, weft_node::Error::LayerDisabled("sync")),
        "{err}"
    );
    // Gossip always runs: discovery and sync ride on it.
    let _topic = node
        .subscribe_gossip(TopicId::from_name("node-tests/alone"))
        .await
        .expect("gossip runs");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_setters_override_the_config() {
    let mut config = common::test_config();
    config.node.network = "from-config".into();
    config.node.bind = "127.0.0.1:1".parse().expect("addr");
    let peer = weft_transport::PeerAddr::new(weft_transport::SecretKey::generate().peer_id())
        .with_direct("127.0.0.1:9".parse().expect("addr"));
    let node = weft_node::Node::builder()
        .network("from-builder")
        .bind_addr("127.0.0.1:0".parse().expect("addr"))
        .bootstrap([peer.clone()])
        .config(config) // after the setters: they win all the same
        .without_discovery()
        .spawn()
        .await
        .expect("spawn");
    assert_eq!(node.config().node.network, "from-builder");
    assert_eq!(
        node.endpoint().network(),
        weft_transport::NetworkId::from_name("from-builder")
    );
    assert_ne!(node.addr().direct.iter().next().map(|a| a.port()), Some(1));
    assert_eq!(node.config().bootstrap.peers, vec![peer.clone()]);
    assert!(node.topic_bootstrap().await.contains(&peer));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_left_out_in_the_config_are_absent_and_the_builder_can_only_remove() {
    let mut config = common::test_config();
    config.layers.discovery = false;
    config.layers.sync = false;
    let node = weft_node::Node::builder()
        .config(config)
        .without_registry()
        .spawn()
        .await
        .expect("spawn");
    assert!(node.discovery().is_none() && node.registry().is_none() && node.sync().is_none());
    // The effective config says what runs.
    let layers = node.config().layers;
    assert!(!layers.discovery && !layers.registry && !layers.sync);
    node.shutdown().await;

    // A service in the config needs the registry the builder took away.
    let mut config = common::test_config();
    config
        .services
        .push(weft_node::ServiceConfig::new("echo", ["cat"]));
    let err = weft_node::Node::builder()
        .config(config)
        .without_registry()
        .spawn()
        .await
        .expect_err("services need the registry");
    assert!(
        matches!(&err, weft_node::SpawnError::Config(_)) && err.to_string().contains("registry"),
        "{err}"
    );
}

/// A protocol of the application's own: echoes one stream per exchange, and counts its
/// shutdowns.
#[derive(Debug, Clone, Default)]
struct Echo {
    shutdowns: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

const ECHO: weft_transport::Protocol = weft_transport::Protocol::new("test-echo", 1);

impl weft_transport::iroh::ProtocolHandler for Echo {
    async fn accept(
        &self,
        connection: weft_transport::iroh::Connection,
    ) -> Result<(), weft_transport::iroh::AcceptError> {
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let Ok(bytes) = recv.read_to_end(1024).await else {
                break;
            };
            let _ = send.write_all(&bytes).await;
            let _ = send.finish();
        }
        Ok(())
    }

    async fn shutdown(&self) {
        self.shutdowns
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_of_ones_own_is_served_next_to_the_layers() {
    let echo = Echo::default();
    // No bootstrap between the two: the only inbound connection is the echo one.
    let server = weft_node::Node::builder()
        .config(common::test_config())
        .protocol(ECHO, echo.clone())
        .spawn()
        .await
        .expect("spawn");
    let client = common::spawn(None, None).await;

    let connection = within("the dial", client.endpoint().connect(&server.addr(), ECHO))
        .await
        .expect("the server speaks the protocol");
    let (mut send, mut recv) = connection.open_bi().await.expect("a stream");
    send.write_all(b"hello").await.expect("write");
    send.finish().expect("finish");
    let answer = within("the echo", recv.read_to_end(1024))
        .await
        .expect("read");
    assert_eq!(answer, b"hello");
    // It went through the endpoint's inbound admission, as the layers' connections do.
    assert_eq!(server.endpoint().inbound_stats().held, 1);

    // A node on another network cannot speak it: the ALPN is namespaced.
    let mut other = common::test_config();
    other.node.network = "another-network".into();
    let stranger = weft_node::Node::builder()
        .config(other)
        .spawn()
        .await
        .expect("spawn");
    let refused = within(
        "the dial",
        stranger.endpoint().connect(&server.addr(), ECHO),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");

    // The node's shutdown runs the protocol's, once.
    server.shutdown().await;
    assert_eq!(echo.shutdowns.load(std::sync::atomic::Ordering::SeqCst), 1);
    shutdown_all(&[client, stranger]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_whose_alpn_is_taken_fails_the_spawn() {
    let err = weft_node::Node::builder()
        .config(common::test_config())
        .protocol(weft_node::service::PROTOCOL, Echo::default())
        .spawn()
        .await
        .expect_err("call/1 is the node's");
    assert!(matches!(err, weft_node::SpawnError::Protocol(_)), "{err}");
    let err = weft_node::Node::builder()
        .config(common::test_config())
        .protocol(ECHO, Echo::default())
        .protocol(ECHO, Echo::default())
        .spawn()
        .await
        .expect_err("twice");
    assert!(err.to_string().contains("test-echo"), "{err}");
}
