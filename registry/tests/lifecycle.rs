//! Endings on the memory network, in the orders users write them: the last handle dropped,
//! `Registry::shutdown`, `Endpoint::shutdown`; each withdraws what was registered, so a lookup
//! from another node finds nothing after. Every wait is for an event (the provider's
//! `Withdrawn`, then the end of its event stream), never for time.

#![cfg(feature = "net")]

use std::time::Duration;

use tokio::time::timeout;
use weft_registry::{Config, Error, Event, Registry};
use weft_transport::{Endpoint, Events, MemoryNetwork, PeerAddr, PeerId, SecretKey};

/// Bound for what should happen at once; only reached when a test fails.
const SOON: Duration = Duration::from_secs(20);

/// Nodes in each test's network.
const NODES: u8 = 6;

fn config() -> Config {
    // Generous time-outs: debug builds on a loaded machine. A small k: few handshakes.
    Config {
        k: 4,
        request_timeout_ms: 8_000,
        ..Config::default()
    }
}

struct Node {
    endpoint: Endpoint,
    registry: Registry,
}

/// `NODES` registries on a memory network, each bootstrapped through the first.
async fn network(seed: u64) -> (MemoryNetwork, Vec<Node>) {
    let net = MemoryNetwork::new(seed);
    let mut nodes: Vec<Node> = Vec::new();
    for n in 1..=NODES {
        let endpoint = Endpoint::builder()
            .secret_key(SecretKey::from_bytes(&[n; 32]))
            .memory(&net)
            .connect_timeout(Duration::from_secs(5))
            .bind()
            .await
            .unwrap();
        let registry = Registry::builder()
            .config(config())
            // A cap, not a wait: plenty for a debug build to hear every holder.
            .shutdown_grace(SOON)
            .spawn(&endpoint)
            .await
            .unwrap();
        if let Some(first) = nodes.first() {
            let mut events = registry.events();
            registry
                .add_peers([PeerAddr::new(first.endpoint.id())])
                .await
                .unwrap();
            wait_for(&mut events, "the bootstrap", |e| {
                matches!(e, Event::Bootstrapped { .. })
            })
            .await;
        }
        nodes.push(Node { endpoint, registry });
    }
    (net, nodes)
}

/// Waits for the first event matching `matches` (others are skipped).
async fn wait_for(events: &mut Events<Event>, what: &str, mut matches: impl FnMut(&Event) -> bool) {
    timeout(SOON, async {
        loop {
            match events.recv().await {
                Some(event) if matches(&event) => return,
                Some(_) => {}
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {SOON:?}"));
}

/// Waits for the stream's end: the registry has stopped.
async fn wait_for_end(events: &mut Events<Event>) {
    timeout(SOON, async { while events.recv().await.is_some() {} })
        .await
        .expect("the registry stopped");
}

async fn providers(registry: &Registry, name: &str) -> Vec<PeerId> {
    let mut found: Vec<PeerId> = registry
        .lookup_all_refresh(name)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.provider)
        .collect();
    found.sort();
    found
}

/// `provider` registers `name`; a lookup from `seeker` finds it.
async fn registered(provider: &Node, seeker: &Node, name: &str) -> weft_registry::Registration {
    let registration = provider
        .registry
        .register(name, b"v1".to_vec())
        .await
        .unwrap();
    assert!(registration.holders() > 0, "stored somewhere");
    assert_eq!(
        providers(&seeker.registry, name).await,
        vec![provider.endpoint.id()]
    );
    registration
}

fn withdrawn(name: &'static str) -> impl FnMut(&Event) -> bool {
    move |event| matches!(event, Event::Withdrawn { name: n, holders } if n == name && *holders > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_withdraws() {
    let (_net, mut nodes) = network(31).await;
    let provider = nodes.remove(1);
    let seeker = &nodes[3];
    let registration = registered(&provider, seeker, "svc").await;
    let mut events = provider.registry.events();
    // The registration is the last handle once the registry is dropped: dropping it must
    // still withdraw.
    drop(provider.registry);
    drop(registration);
    wait_for(&mut events, "the withdrawal", withdrawn("svc")).await;
    wait_for_end(&mut events).await;
    assert!(providers(&seeker.registry, "svc").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_withdraws_every_registration_and_later_calls_fail() {
    let (_net, nodes) = network(32).await;
    let (provider, seeker) = (&nodes[1], &nodes[4]);
    // Kept alive: shutdown, not the drop, withdraws them.
    let first = registered(provider, seeker, "svc-a").await;
    let second = registered(provider, seeker, "svc-b").await;
    let mut events = provider.registry.events();
    provider.registry.shutdown().await;
    // Idempotent, from any clone: returns at once now.
    provider.registry.clone().shutdown().await;
    wait_for(&mut events, "svc-a withdrawn", withdrawn("svc-a")).await;
    wait_for_end(&mut events).await;
    for name in ["svc-a", "svc-b"] {
        assert!(providers(&seeker.registry, name).await.is_empty(), "{name}");
    }

    let registry = &provider.registry;
    assert!(matches!(
        registry.register("late", vec![]).await,
        Err(Error::Closed)
    ));
    assert!(matches!(registry.lookup("svc-a").await, Err(Error::Closed)));
    assert!(matches!(
        registry.add_peers([seeker.endpoint.addr()]).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        registry.local_registrations().await,
        Err(Error::Closed)
    ));
    assert!(matches!(first.withdraw().await, Err(Error::Closed)));
    drop(second); // Nothing left to do: no panic, no hang.
    assert!(registry.events().recv().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_shutdown_withdraws() {
    let (_net, nodes) = network(33).await;
    let (provider, seeker) = (&nodes[2], &nodes[5]);
    let _registration = registered(provider, seeker, "svc").await;
    let mut events = provider.registry.events();
    provider.endpoint.shutdown().await;
    // The endpoint waited for the registry: its withdrawal is over, its stream ended.
    wait_for(&mut events, "the withdrawal", withdrawn("svc")).await;
    assert!(events.recv().await.is_none());
    assert!(providers(&seeker.registry, "svc").await.is_empty());
    assert!(matches!(
        provider.registry.register("late", vec![]).await,
        Err(Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_registration_withdraws_while_the_registry_runs() {
    let (_net, nodes) = network(34).await;
    let (provider, seeker) = (&nodes[3], &nodes[1]);
    let registration = registered(provider, seeker, "svc").await;
    let mut events = provider.registry.events();
    drop(registration);
    wait_for(&mut events, "the withdrawal", withdrawn("svc")).await;
    assert!(providers(&seeker.registry, "svc").await.is_empty());
    // The registry itself still serves.
    let again = registered(provider, seeker, "svc").await;
    assert_eq!(again.name(), "svc");
}
