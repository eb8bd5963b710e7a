//! Steps of the wall clock under running nodes: an hour ahead, back, and an hour behind. Timers
//! run on monotonic time, so nothing is evicted and nothing stalls: announcements go on, every
//! catalog stays complete, pings keep working, and each node re-signs its entry for the new
//! clock at once. Waits are for counters and catalog states, each with a deadline.
#![cfg(feature = "net")]

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::{Instant, timeout};
use weft_discovery::{Config, Discovery, Event};
use weft_gossip::Gossip;
use weft_transport::{
    Endpoint, MemoryNetwork, OffsetWallClock, PeerAddr, PeerId, SecretKey, WallClock,
};

const WITHIN: Duration = Duration::from_secs(20);
const HOUR: Duration = Duration::from_secs(3600);

/// A step of the wall clock, and what to call it.
type Step = (&'static str, fn(&OffsetWallClock));

struct TestNode {
    endpoint: Endpoint,
    _gossip: Gossip,
    discovery: Discovery,
}

async fn node(
    net: &MemoryNetwork,
    seed: u8,
    bootstrap: Option<PeerId>,
    clock: Arc<OffsetWallClock>,
) -> TestNode {
    let endpoint = Endpoint::builder()
        .secret_key(SecretKey::from_bytes(&[seed; 32]))
        .memory(net)
        .bind()
        .await
        .unwrap();
    let mut gossip_config = weft_gossip::Config {
        broadcast: weft_gossip::PlumtreeConfig::for_link_rtt(Duration::from_millis(4)),
        ..weft_gossip::Config::default()
    };
    gossip_config.membership.shuffle_interval = Duration::from_secs(5);
    let gossip = Gossip::builder()
        .config(gossip_config)
        .spawn(&endpoint)
        .await
        .unwrap();
    let config = Config {
        // Announce every second, purge after three: a stalled announce loop or a purge fired
        // by the step shows within a few seconds.
        max_drift: Duration::from_secs(2),
        ..Config::for_tests()
    };
    let discovery = Discovery::builder()
        .config(config)
        .wall_clock(clock)
        .bootstrap(bootstrap.map(PeerAddr::new))
        .spawn(&endpoint, &gossip)
        .await
        .unwrap();
    TestNode {
        endpoint,
        _gossip: gossip,
        discovery,
    }
}

/// Waits until `done` holds, checking every 50 ms (the announce interval is one second).
async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WITHIN;
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_steps_both_ways_evict_nothing_and_stall_nothing() {
    let net = MemoryNetwork::new(9);
    let clock = Arc::new(OffsetWallClock::default());
    let mut nodes = Vec::new();
    for seed in 1..=3u8 {
        let first = nodes.first().map(|n: &TestNode| n.endpoint.id());
        nodes.push(node(&net, seed, first, clock.clone()).await);
    }
    let all: BTreeSet<PeerId> = nodes.iter().map(|n| n.endpoint.id()).collect();
    for (i, n) in nodes.iter().enumerate() {
        wait_until(&format!("node {i}: a complete catalog"), || async {
            n.discovery.catalog().await.unwrap().ids() == all
        })
        .await;
    }

    // Every departure from now on is a failure: record them all.
    let departures = Arc::new(Mutex::new(Vec::new()));
    for n in &nodes {
        let mut events = n.discovery.events();
        let departures = departures.clone();
        let me = n.endpoint.id();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Event::PeerDeparted { peer, reason } = event {
                    departures.lock().unwrap().push((me, peer, reason));
                }
            }
        });
    }

    let steps: [Step; 3] = [
        ("an hour ahead", |c| c.step_forward(HOUR)),
        ("back an hour", |c| c.step_back(HOUR)),
        ("an hour behind", |c| c.step_back(HOUR)),
    ];
    for (label, step) in steps {
        let mut before = Vec::new();
        for n in &nodes {
            before.push(n.discovery.stats().await.unwrap().announcements);
        }
        step(&clock);
        let stepped_at = clock.now();
        for (i, n) in nodes.iter().enumerate() {
            // The announce loop goes on: four more rounds cover more than `purge_after`, so an
            // entry not refreshed since the step would have been purged by now.
            wait_until(&format!("{label}: node {i} announces on"), || async {
                n.discovery.stats().await.unwrap().announcements >= before[i] + 4
            })
            .await;
            // Every peer's entry in the catalog was re-signed by the new clock.
            wait_until(
                &format!("{label}: node {i} holds entries of the new clock"),
                || async {
                    let catalog = n.discovery.catalog().await.unwrap();
                    catalog.ids() == all
                        && catalog.peers.values().all(|record| {
                            let ts = record.entry().timestamp;
                            ts.since(stepped_at) < HOUR / 2 && stepped_at.since(ts) < HOUR / 2
                        })
                },
            )
            .await;
        }
        // Pings keep working, with microsecond resolution.
        for peer in nodes.iter().skip(1) {
            let rtt = timeout(WITHIN, nodes[0].discovery.ping(peer.endpoint.id()))
                .await
                .unwrap()
                .unwrap_or_else(|err| panic!("{label}: ping failed: {err}"));
            assert!(rtt < Duration::from_secs(1), "{label}: rtt {rtt:?}");
            assert!(
                rtt.subsec_nanos() % 1_000_000 != 0,
                "{label}: rtt {rtt:?} has millisecond resolution"
            );
        }
        let departed = departures.lock().unwrap().clone();
        assert!(
            departed.is_empty(),
            "{label}: peers left catalogs: {departed:?}"
        );
    }
}
