//! Connection exhaustion on real QUIC over 127.0.0.1: a discovery node whose endpoint admits 8
//! inbound connections is attacked by 32 throwaway identities on the discovery ALPNs (sync and
//! ping; half sit idle after the handshake, half send half a frame; one more connects before
//! every honest step, as in `gossip/tests/exhaustion.rs`), while honest peers join through it
//! and keep syncing catalogs with it and pinging it. Every honest operation must complete, and
//! at the end the victim's catalog must hold every honest peer. Prints the figures:
//! `cargo test -p weft-discovery --test exhaustion -- --nocapture`.
#![cfg(feature = "net")]

use std::{collections::BTreeSet, time::Duration};

use tokio::time::timeout;
use weft_discovery::{CatalogSnapshot, Config, Discovery, PING_PROTOCOL, PROTOCOL};
use weft_gossip::Gossip;
use weft_transport::{Endpoint, NetworkId, PeerAddr, PeerId, iroh::Connection};

const LIMIT: usize = 8;
const ATTACKERS: usize = 4 * LIMIT;
const HONEST: usize = 3;
/// Tries per honest operation before the test fails.
const TRIES: usize = 5;
const NETWORK: &str = "discovery-exhaustion";
/// Generous: a guard against a broken node, never a timing goal.
const WITHIN: Duration = Duration::from_secs(30);

fn builder() -> weft_transport::EndpointBuilder {
    Endpoint::builder()
        .network(NetworkId::from_name(NETWORK))
        .bind_addr("127.0.0.1:0".parse().unwrap())
        .connect_timeout(Duration::from_secs(5))
}

/// The node under attack: a small inbound limit, quick to drop connections that send nothing.
/// Three per peer, not two as in the gossip and registry tests: an honest peer holds one
/// connection per ALPN (gossip, discovery sync, discovery ping), and with two its pings were
/// refused (`PerPeer`) and lost.
async fn victim() -> Endpoint {
    builder()
        .max_inbound(LIMIT)
        .max_inbound_per_peer(3)
        .first_data_deadline(Duration::from_millis(300))
        .displace_after_idle(Duration::from_millis(50))
        .bind()
        .await
        .unwrap()
}

fn config() -> Config {
    // Generous time-outs for a debug build on a loaded machine; the default announce interval
    // (30 s) keeps announcements out of the picture, so the catalogs fill through syncs.
    Config {
        sync_timeout: Duration::from_secs(2),
        ping_timeout: Duration::from_secs(2),
        max_drift: Duration::from_secs(2),
        ..Config::default()
    }
}

fn gossip_config() -> weft_gossip::Config {
    weft_gossip::Config {
        broadcast: weft_gossip::PlumtreeConfig::for_link_rtt(Duration::from_millis(4)),
        ..weft_gossip::Config::default()
    }
}

/// One node: its endpoint, its gossip (kept alive for discovery) and its discovery.
struct Node {
    endpoint: Endpoint,
    _gossip: Gossip,
    discovery: Discovery,
}

/// A node with no bootstrap peer: honest peers join through the victim once the attack is on.
async fn node(endpoint: Endpoint) -> Node {
    let gossip = Gossip::builder()
        .config(gossip_config())
        .spawn(&endpoint)
        .await
        .unwrap();
    let discovery = Discovery::builder()
        .config(config())
        .spawn(&endpoint, &gossip)
        .await
        .unwrap();
    Node {
        endpoint,
        _gossip: gossip,
        discovery,
    }
}

/// A throwaway identity (a fresh random key, as peer ids cost nothing) that connects to the
/// victim on one of discovery's two ALPNs and then idles, or sends half a frame and then
/// nothing. Kept alive by the caller until the end.
async fn attacker(victim: &PeerAddr, i: usize) -> Endpoint {
    let attacker = builder().bind().await.unwrap();
    let protocol = if i % 4 < 2 { PROTOCOL } else { PING_PROTOCOL };
    // Refused or displaced connections are the point; an error here is an outcome, not a bug.
    if let Ok(conn) = attacker.dial(victim, protocol).await
        && i % 2 == 1
    {
        send_half_a_frame(&conn).await;
    }
    attacker
}

/// Discovery reads one frame per unidirectional stream: open one and send two bytes of the
/// length prefix, then nothing.
async fn send_half_a_frame(conn: &Connection) {
    if let Ok(mut send) = conn.open_uni().await {
        let _ = send.write_all(&[0, 0]).await;
        std::mem::forget(send);
    }
}

/// Runs `op` until it succeeds, at most `TRIES` times, and returns how many tries it took. A
/// message lost to a refused or displaced connection is not sent again by discovery: the
/// operation fails at its time-out, and the caller tries again, as an application would.
async fn retried<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    mut op: impl FnMut() -> F,
) -> usize {
    let mut errors = Vec::new();
    for tries in 1..=TRIES {
        match op().await {
            Ok(_) => return tries,
            Err(err) => errors.push(err.to_string()),
        }
    }
    panic!("{what} failed {TRIES} times: {errors:?}");
}

/// Waits until `discovery`'s catalog holds every peer of `ids`, woken by its watch.
async fn wait_holds(discovery: &Discovery, ids: &BTreeSet<PeerId>, what: &str) {
    let mut watch = discovery.watch();
    let mut last: Option<CatalogSnapshot> = None;
    let result = timeout(WITHIN, async {
        loop {
            watch.borrow_and_update();
            let catalog = discovery.catalog().await.unwrap();
            if ids.iter().all(|id| catalog.contains(id)) {
                return;
            }
            last = Some(catalog);
            watch.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "{what}: the catalog never held {:?}; last {:?}",
        ids.iter().map(PeerId::fmt_short).collect::<Vec<_>>(),
        last.map(|c| c.ids().iter().map(PeerId::fmt_short).collect::<Vec<_>>())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::print_stdout,
    reason = "the figures the issue asks to report; shown with --nocapture"
)]
async fn honest_syncs_and_pings_succeed_against_a_node_under_attack() {
    // Logs only when asked for (`RUST_LOG`): aborted attackers' endpoints complain at the end.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let victim = node(victim().await).await;
    let victim_addr = victim.endpoint.addr();
    let mut honest = Vec::new();
    for _ in 0..HONEST {
        honest.push(node(builder().bind().await.unwrap()).await);
    }
    let honest_ids: BTreeSet<PeerId> = honest.iter().map(|n| n.endpoint.id()).collect();

    // The first LIMIT attackers fill the victim's slots.
    let mut attackers = Vec::new();
    for i in 0..LIMIT {
        attackers.push(attacker(&victim_addr, i).await);
    }

    // Honest peers join the discovery topic through the victim, one after another: a node that
    // has not finished a sync session yet serves one at a time and answers further offers with
    // `Busy`, which is not what this test is about.
    for (i, member) in honest.iter().enumerate() {
        member.discovery.dial(victim_addr.clone()).await.unwrap();
        let joined = format!("honest {i} joined");
        wait_holds(&victim.discovery, &[member.endpoint.id()].into(), &joined).await;
        wait_holds(&member.discovery, &[victim_addr.id].into(), &joined).await;
    }

    // One more attacker connects per step, then one honest peer (in turn) syncs catalogs with
    // the victim and pings it; both must complete before the next step.
    let mut syncs = 0;
    let mut pings = 0;
    let mut retries = 0;
    for step in LIMIT..ATTACKERS {
        attackers.push(attacker(&victim_addr, step).await);
        let member = &honest[step % HONEST];
        let what = format!("step {step}: sync");
        let tries = retried(&what, || member.discovery.sync_with(victim_addr.clone())).await;
        syncs += 1;
        retries += tries - 1;
        let what = format!("step {step}: ping");
        let tries = retried(&what, || member.discovery.ping(victim_addr.id)).await;
        pings += 1;
        retries += tries - 1;
    }
    let stats = victim.endpoint.inbound_stats();
    // Every honest peer handed the victim its entry in a sync; after its last sync every honest
    // peer has also learned every other one from the victim.
    wait_holds(&victim.discovery, &honest_ids, "the victim at the end").await;
    for (i, member) in honest.iter().enumerate() {
        wait_holds(
            &member.discovery,
            &honest_ids,
            &format!("honest {i} at the end"),
        )
        .await;
    }
    assert!(stats.held <= LIMIT, "{stats:?}");
    assert!(
        stats.displaced + stats.refused > 0,
        "no attack happened: {stats:?}"
    );
    println!(
        "discovery under attack: {ATTACKERS} throwaway identities on {} and {} (half idle, half \
         half-sent), limit {LIMIT}; honest: {HONEST} peers, {syncs} catalog syncs and {pings} \
         pings completed (tries repeated after a failure: {retries}), all honest peers in the victim's \
         catalog; admission: held {}, displaced {}, refused {}",
        PROTOCOL, PING_PROTOCOL, stats.held, stats.displaced, stats.refused
    );
    for endpoint in attackers {
        endpoint.shutdown().await;
    }
}
