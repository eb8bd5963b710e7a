//! The registry actor on the in-process memory network: 30 nodes, real QUIC underneath.

#![cfg(feature = "net")]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use weft_registry::{
    Config, PROTOCOL, Registry,
    proto::{DhtId, MAX_MESSAGE_SIZE, Request, Response},
    sim::censor_answer,
};
use weft_transport::{
    Endpoint, FramedSend, MemoryNetwork, PeerAddr, PeerId, SecretKey, accept_request,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

/// These tests run one at a time: each drives up to 30 QUIC endpoints in a debug build, and
/// several at once on a small machine starve each other into timeouts.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Node {
    endpoint: Endpoint,
    registry: Registry,
}

fn config() -> Config {
    // Generous timeouts: dials and handshakes of debug builds on a loaded machine can take a
    // second. A smaller k keeps the number of QUIC handshakes (the cost of these tests) down.
    Config {
        k: 8,
        request_timeout_ms: 8_000,
        ..Config::default()
    }
}

async fn network(count: u8, config: &Config) -> (MemoryNetwork, Vec<Node>) {
    network_with(count, config, Duration::from_secs(3)).await
}

async fn network_with(
    count: u8,
    config: &Config,
    connect_timeout: Duration,
) -> (MemoryNetwork, Vec<Node>) {
    let net = MemoryNetwork::new(7);
    let mut nodes = Vec::new();
    for seed in 1..=count {
        let endpoint = Endpoint::builder()
            .secret_key(SecretKey::from_bytes(&[seed; 32]))
            .memory(&net)
            .connect_timeout(connect_timeout)
            .bind()
            .await
            .unwrap();
        let registry = Registry::builder()
            .config(config.clone())
            .spawn(&endpoint)
            .await
            .unwrap();
        nodes.push(Node { endpoint, registry });
    }
    // Each node learns the first node and its predecessor, as discovery would tell it.
    let first = PeerAddr::new(nodes[0].endpoint.id());
    for i in 1..nodes.len() {
        let before = PeerAddr::new(nodes[i - 1].endpoint.id());
        nodes[i]
            .registry
            .add_peers([first.clone(), before])
            .await
            .unwrap();
        // Let the bootstrap run before the next node joins.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    (net, nodes)
}

async fn providers(node: &Node, name: &str) -> Vec<PeerId> {
    lookup(node.registry.clone(), name.to_owned()).await
}

async fn lookup(registry: Registry, name: String) -> Vec<PeerId> {
    let mut ids: Vec<PeerId> = registry
        .lookup_all_refresh(&name)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.provider)
        .collect();
    ids.sort();
    ids
}

/// Looks `name` up from every node at once; returns what each found.
async fn from_every_node(nodes: &[Node], name: &str) -> Vec<Vec<PeerId>> {
    let tasks: Vec<_> = nodes
        .iter()
        .map(|node| tokio::spawn(lookup(node.registry.clone(), name.to_owned())))
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // Diagnostics when it fails.
async fn three_providers_found_from_every_node_and_withdrawal_removes_one() {
    let _serial = SERIAL.lock().await;
    let (_net, nodes) = network(30, &config()).await;
    let mut registrations = Vec::new();
    for node in &nodes[..3] {
        let registration = node.registry.register("svc", b"v1".to_vec()).await.unwrap();
        assert!(registration.holders() > 0);
        registrations.push(registration);
    }
    let mut expected: Vec<PeerId> = nodes[..3].iter().map(|n| n.endpoint.id()).collect();
    expected.sort();
    for found in from_every_node(&nodes, "svc").await {
        assert_eq!(found, expected);
    }
    // An unknown name is empty, not an error.
    assert!(
        nodes[5]
            .registry
            .lookup_all("nobody")
            .await
            .unwrap()
            .is_empty()
    );
    let local = nodes[0].registry.local_registrations().await.unwrap();
    assert_eq!(local.len(), 1);
    // Some node holds the three providers' records (stored at the closest nodes), and its
    // held names say so; `max` bounds the answer.
    let mut holders = 0;
    for node in &nodes {
        let names = node.registry.held_names(16).await.unwrap();
        if names.contains(&("svc".to_owned(), 3)) {
            holders += 1;
        }
        assert!(node.registry.held_names(0).await.unwrap().is_empty());
    }
    assert!(holders > 0, "some node holds svc's three records");

    // Withdraw one: no node returns it any more.
    let gone = registrations.remove(0);
    assert!(gone.withdraw().await.unwrap() > 0);
    expected.retain(|id| *id != nodes[0].endpoint.id());
    let all = from_every_node(&nodes, "svc").await;
    if all.iter().any(|f| *f != expected) {
        for (i, node) in nodes.iter().enumerate() {
            let held = node.registry.held("svc").await.unwrap();
            let stale = held.iter().any(|r| r.provider == nodes[0].endpoint.id());
            eprintln!(
                "node {i}: found {:?} holds {} stale {stale}",
                all[i].len(),
                held.len()
            );
        }
    }
    for found in all {
        assert_eq!(found, expected);
    }
    // Dropping a registration withdraws it too, in the background.
    drop(registrations.remove(0));
    expected.retain(|id| *id != nodes[1].endpoint.id());
    let mut tries = 0;
    while from_every_node(&nodes, "svc")
        .await
        .iter()
        .any(|f| *f != expected)
    {
        tries += 1;
        assert!(tries < 20, "the dropped registration was not withdrawn");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_provider_expires_and_live_one_is_republished() {
    let _serial = SERIAL.lock().await;
    let config = Config {
        record_ttl_ms: 10_000,
        tick_interval_ms: 250,
        ..config()
    };
    let (net, nodes) = network(30, &config).await;
    let live = nodes[1].registry.register("svc", vec![]).await.unwrap();
    let dead = nodes[2].registry.register("svc", vec![]).await.unwrap();
    // The dead provider vanishes without withdrawing: cut off from everyone, as a crash or a
    // pulled cable would (a shutdown would withdraw).
    std::mem::forget(dead);
    net.isolate(nodes[2].endpoint.id());
    assert!(
        providers(&nodes[5], "svc")
            .await
            .contains(&nodes[2].endpoint.id())
    );
    tokio::time::sleep(Duration::from_millis(11_000)).await;
    let found = providers(&nodes[5], "svc").await;
    assert!(
        !found.contains(&nodes[2].endpoint.id()),
        "expired record returned"
    );
    assert!(
        found.contains(&nodes[1].endpoint.id()),
        "republish did not keep it"
    );
    drop(live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_work_across_a_healed_partition() {
    let _serial = SERIAL.lock().await;
    // Short timeouts keep the partition short, so the QUIC connections that lost packets
    // during it are not backed off for long once it heals.
    let config = Config {
        record_ttl_ms: 8_000,
        tick_interval_ms: 250,
        request_timeout_ms: 3_000,
        ..config()
    };
    let (net, nodes) = network_with(30, &config, Duration::from_secs(2)).await;
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.endpoint.id()).collect();
    let (a, b) = ids.split_at(15);
    net.partition(a, b);
    let _registration = nodes[1].registry.register("svc", vec![]).await.unwrap();
    net.heal();
    // Peers that failed during the partition come back as discovery re-announces them (two
    // of the other side to each node here); the record reaches the other side by hand-over
    // and, at the latest, by the next republish (half a TTL). Lookups converge on it.
    for (i, node) in nodes.iter().enumerate() {
        let other = if i < 15 { b } else { a };
        let peers = [other[i % 15], other[(i + 7) % 15]].map(PeerAddr::new);
        node.registry.add_peers(peers).await.unwrap();
    }
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let found = from_every_node(&nodes, "svc").await;
        if found.iter().all(|f| *f == vec![ids[1]]) {
            break;
        }
        let missing = found.iter().filter(|f| f.is_empty()).count();
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{missing} nodes still find nothing 40 s after the heal"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_lookup_is_served_locally() {
    let _serial = SERIAL.lock().await;
    let (_net, nodes) = network(6, &config()).await;
    let _registration = nodes[0].registry.register("svc", vec![]).await.unwrap();
    assert_eq!(nodes[3].registry.lookup_all("svc").await.unwrap().len(), 1);
    // Shut the provider and everyone else out: the cache still answers.
    for node in nodes
        .iter()
        .filter(|n| n.endpoint.id() != nodes[3].endpoint.id())
    {
        node.endpoint.shutdown().await;
    }
    assert_eq!(nodes[3].registry.lookup_all("svc").await.unwrap().len(), 1);
}

/// Speaks `registry/1` but answers every request with something that is not a response.
#[derive(Debug, Clone, Default)]
struct Garbage {
    served: Arc<AtomicUsize>,
}

impl ProtocolHandler for Garbage {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        while let Ok((send, _recv)) = connection.accept_bi().await {
            self.served.fetch_add(1, Ordering::Relaxed);
            let mut send = FramedSend::<String>::new(send, 1024);
            let _ = send.send(&"not a response".to_owned()).await;
            let _ = send.finish();
        }
        Ok(())
    }
}

/// Speaks `registry/1` but never answers.
#[derive(Debug, Clone, Default)]
struct Silent {
    served: Arc<AtomicUsize>,
}

impl ProtocolHandler for Silent {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let mut streams = Vec::new();
        while let Ok(stream) = connection.accept_bi().await {
            self.served.fetch_add(1, Ordering::Relaxed);
            streams.push(stream); // Held open, never answered.
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_go_around_peers_that_answer_garbage_or_nothing() {
    let _serial = SERIAL.lock().await;
    let config = Config {
        request_timeout_ms: 2_000,
        ..config()
    };
    let (net, nodes) = network(8, &config).await;
    let garbage = Garbage::default();
    let silent = Silent::default();
    let mut bad = Vec::new();
    for seed in 100..106u8 {
        let endpoint = Endpoint::builder()
            .secret_key(SecretKey::from_bytes(&[seed; 32]))
            .memory(&net)
            .bind()
            .await
            .unwrap();
        if seed % 2 == 0 {
            endpoint.register(PROTOCOL, garbage.clone()).unwrap();
        } else {
            endpoint.register(PROTOCOL, silent.clone()).unwrap();
        }
        bad.push(endpoint);
    }
    // Every honest node is told about the bad ones too.
    for node in &nodes {
        let peers = bad.iter().map(|e| PeerAddr::new(e.id()));
        node.registry.add_peers(peers).await.unwrap();
    }
    let _registration = nodes[2].registry.register("svc", vec![]).await.unwrap();
    for found in from_every_node(&nodes, "svc").await {
        assert_eq!(found, vec![nodes[2].endpoint.id()]);
    }
    // The test means something only if the bad peers were asked.
    assert!(garbage.served.load(Ordering::Relaxed) > 0);
    assert!(silent.served.load(Ordering::Relaxed) > 0);
}

/// Speaks `registry/1` as an identity ground next to a name's key does to censor it: answers
/// every request, acknowledges every store, returns no record, names only its accomplices.
#[derive(Debug, Clone)]
struct Censor {
    me: PeerId,
    accomplices: Arc<Vec<PeerAddr>>,
    served: Arc<AtomicUsize>,
}

impl ProtocolHandler for Censor {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        while let Ok((request, responder)) =
            accept_request::<Request, Response>(&connection, MAX_MESSAGE_SIZE).await
        {
            self.served.fetch_add(1, Ordering::Relaxed);
            let closer: Vec<PeerAddr> = self
                .accomplices
                .iter()
                .filter(|addr| addr.id != self.me)
                .cloned()
                .collect();
            let response = match request {
                Request::Ping
                | Request::FindNode { .. }
                | Request::GetProviders { .. }
                | Request::AddProvider { .. }
                | Request::RemoveProvider { .. } => censor_answer(&request, closer),
                _ => continue,
            };
            let _ = responder.respond(&response).await;
        }
        Ok(())
    }
}

/// Keys whose positions share `bits` leading bits with `name`'s key, found by trying seeds in
/// turn as an attacker grinds keys (about `2^bits` tries each).
fn ground_keys(name: &str, bits: usize, count: usize) -> Vec<SecretKey> {
    let key = DhtId::of_name(name);
    (0u32..)
        .map(|seed| {
            let mut bytes = [0xc5u8; 32];
            bytes[..4].copy_from_slice(&seed.to_le_bytes());
            SecretKey::from_bytes(&bytes)
        })
        .filter(|secret| {
            DhtId::of_peer(&secret.peer_id())
                .distance(&key)
                .leading_zeros()
                >= bits
        })
        .take(count)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_ground_next_to_a_name_cannot_hide_it() {
    let _serial = SERIAL.lock().await;
    // Issue 15's attack: 30 honest nodes with k = 8, and 12 identities sharing 10 leading bits
    // with the name's key, which every honest node learns as it would from discovery. Plain
    // Kademlia found the name from 0 of the 29 other honest nodes.
    let (net, nodes) = network(30, &config()).await;
    let keys = ground_keys("svc", 10, 12);
    let accomplices: Arc<Vec<PeerAddr>> =
        Arc::new(keys.iter().map(|k| PeerAddr::new(k.peer_id())).collect());
    let served = Arc::new(AtomicUsize::new(0));
    let mut censors = Vec::new();
    for key in keys {
        let endpoint = Endpoint::builder()
            .secret_key(key.clone())
            .memory(&net)
            .bind()
            .await
            .unwrap();
        let censor = Censor {
            me: key.peer_id(),
            accomplices: accomplices.clone(),
            served: served.clone(),
        };
        endpoint.register(PROTOCOL, censor).unwrap();
        censors.push(endpoint);
    }
    for node in &nodes {
        node.registry
            .add_peers(accomplices.iter().cloned())
            .await
            .unwrap();
    }
    let provider = nodes[3].endpoint.id();
    let _registration = nodes[3].registry.register("svc", vec![]).await.unwrap();
    let found = from_every_node(&nodes, "svc")
        .await
        .iter()
        .filter(|found| found.contains(&provider))
        .count();
    assert_eq!(found, nodes.len(), "found from {found} of {}", nodes.len());
    // The test means something only if the censors were in the way.
    assert!(served.load(Ordering::Relaxed) > 0);
}
