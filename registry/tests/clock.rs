//! Steps of the wall clock under running registry nodes: an hour ahead, back, and an hour
//! behind. Timers and republish schedules run on monotonic time, so republishing goes on, the
//! provider re-signs its record for the new clock at once, and lookups keep finding it. Waits
//! are for the provider's republish counter (its record's `issued_at`) and for lookup results,
//! each with a deadline.
#![cfg(feature = "net")]

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;
use weft_registry::{Config, Registry, Time};
use weft_transport::{Endpoint, MemoryNetwork, OffsetWallClock, PeerAddr, SecretKey, WallClock};

const WITHIN: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

/// A step of the wall clock, and what to call it.
type Step = (&'static str, fn(&OffsetWallClock));

/// Waits until `done` holds, checking every 50 ms (the tick is 200 ms, republishing every 2 s).
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

/// Whether `t` reads within half an hour of the clock: stamped after the last step.
fn near(t: Time, clock: &OffsetWallClock) -> bool {
    let now = clock.now();
    t.since(now) < HOUR / 2 && now.since(t) < HOUR / 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_steps_both_ways_stall_no_republish_and_lose_no_record() {
    let config = Config {
        k: 4,
        request_timeout_ms: 8_000,
        // Republish every 2 s (half the TTL), maintenance every 200 ms.
        record_ttl_ms: 4_000,
        tick_interval_ms: 200,
        ..Config::default()
    };
    let net = MemoryNetwork::new(11);
    let clock = Arc::new(OffsetWallClock::default());
    let mut nodes: Vec<(Endpoint, Registry)> = Vec::new();
    for seed in 1..=6u8 {
        let endpoint = Endpoint::builder()
            .secret_key(SecretKey::from_bytes(&[seed; 32]))
            .memory(&net)
            .connect_timeout(Duration::from_secs(3))
            .bind()
            .await
            .unwrap();
        let registry = Registry::builder()
            .config(config.clone())
            .wall_clock(clock.clone())
            .spawn(&endpoint)
            .await
            .unwrap();
        if let Some((first, _)) = nodes.first() {
            registry
                .add_peers([PeerAddr::new(first.id())])
                .await
                .unwrap();
        }
        nodes.push((endpoint, registry));
    }
    let provider = &nodes[1].1;
    let seeker = &nodes[5].1;
    let _registration = provider.register("svc", b"v1".to_vec()).await.unwrap();
    let found = || async {
        seeker
            .lookup_all_refresh("svc")
            .await
            .unwrap()
            .iter()
            .any(|r| r.provider == provider.id() && near(r.issued_at, &clock))
    };
    wait_until("a lookup finds the provider", found).await;

    let issued = || async { provider.local_registrations().await.unwrap()[0].issued_at };
    let steps: [Step; 3] = [
        ("an hour ahead", |c| c.step_forward(HOUR)),
        ("back an hour", |c| c.step_back(HOUR)),
        ("an hour behind", |c| c.step_back(HOUR)),
    ];
    for (label, step) in steps {
        step(&clock);
        // Re-signed for the new clock at once (the next tick notices the step)...
        wait_until(&format!("{label}: re-signed by the new clock"), || async {
            near(issued().await, &clock)
        })
        .await;
        // ... and republished on schedule after that, twice.
        for round in 0..2 {
            let last = issued().await;
            wait_until(&format!("{label}: republish {round}"), || async {
                issued().await != last
            })
            .await;
        }
        // Lookups find a record valid by the new clock.
        wait_until(&format!("{label}: a lookup finds the provider"), found).await;
    }
}
