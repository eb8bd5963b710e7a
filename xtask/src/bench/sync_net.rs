//! The sync benchmark on real QUIC over loopback (for `cargo xtask bench sync-net`): N nodes on
//! 127.0.0.1, each with an endpoint, gossip and a sync manager, all syncing one topic joined
//! through the first node.
//!
//! 1. Catch-up: every node but the last holds the same `items` items; once their sessions
//!    are all live and have stayed the same for `settle_quiet`, the last node subscribes with an
//!    empty store. Reported: the time until it holds every item, and what its sessions moved
//!    (each session's `CaughtUp` stats, and their sum).
//! 2. Live mode: `warmup` items (not counted) and then `rounds` items, each inserted at a
//!    node picked by a seeded RNG every `interval`; the latency of each is the time from just
//!    before `insert` until `ItemReceived` at each other node, measured in-process.
//! 3. The same nodes broadcast on a separate weft-gossip topic with the same pacing, payload
//!    size, senders and warm-up, right after the sync phase (not interleaved with it, so each
//!    phase's process CPU time is its own).
//!
//! Both live phases print the same percentiles in one table with a sync/gossip ratio column,
//! the median latency of each item's first and last delivery, the process CPU time per item
//! (and, before the live phases, while idle), and the latencies by hops: gossip reports the
//! hops of each delivery; for sync the hops are the shortest path in the session graph, which
//! a flood's first copy matches unless queueing reorders it.
//!
//! `--rounds` sets the timed live items (default 200): the command line's own default of 5
//! rounds is for the other benchmarks and is not used here.

mod broadcast;
mod driver;
mod live;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use anyhow::Result;
use tokio::sync::mpsc;
use weft_gossip::{Gossip, TopicId};
use weft_sync::{
    Item, SyncManager,
    proto::Config,
    store::{MemoryStore, Store},
};
use weft_transport::{Endpoint, NetworkId, PeerId};

use self::{
    broadcast::GossipTopic,
    driver::{Driver, Note, NoteKind, catch_up, settle_sessions},
    live::{LivePhase, by_hops, compare, distances, process_cpu},
};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct SyncNetConfig {
    /// Nodes (the last one joins empty and catches up).
    pub(crate) nodes: usize,
    /// Items every node but the last holds before the catch-up.
    pub(crate) items: usize,
    /// Payload bytes per item and per broadcast (at least 20: a tag, a sequence number and a
    /// timestamp).
    pub(crate) payload: usize,
    /// Timed live items (and timed broadcasts).
    pub(crate) rounds: usize,
    /// Live items (and broadcasts) before the timed ones, not counted.
    pub(crate) warmup: usize,
    /// Time between two live items (and two broadcasts).
    pub(crate) interval: Duration,
    /// Sessions and memberships count as settled after staying the same this long.
    pub(crate) settle_quiet: Duration,
    /// Seed of the choice of the inserting node.
    pub(crate) seed: u64,
}

impl Default for SyncNetConfig {
    fn default() -> Self {
        Self {
            nodes: 20,
            items: 100_000,
            payload: 100,
            rounds: 200,
            warmup: 20,
            interval: Duration::from_millis(10),
            settle_quiet: Duration::from_millis(500),
            seed: 0x5eed_0001,
        }
    }
}

/// How long any one wait of the benchmark may take before it reports a failure.
const PATIENCE: Duration = Duration::from_secs(120);
/// How long a live phase waits for its deliveries after its last insert.
const DELIVERY_WAIT: Duration = Duration::from_secs(10);
/// Payload tags: live items and broadcasts carry `LIVE`, the catch-up items `BULK`.
const LIVE: &[u8; 4] = b"LIVE";
const BULK: &[u8; 4] = b"BULK";

/// One delivery: the receiving node, the item's sequence number, its latency, and the hops
/// it took where the protocol tells (gossip does, sync does not).
type Delivery = (usize, u64, Duration, Option<u16>);

/// Runs the benchmark (needs a multi-threaded tokio runtime).
pub(crate) async fn run(bench: SyncNetConfig) -> Result<()> {
    anyhow::ensure!(bench.nodes >= 3, "sync-net needs at least 3 nodes");
    anyhow::ensure!(
        bench.payload >= 20,
        "sync-net needs payloads of at least 20 bytes"
    );
    let network = NetworkId::from_name("weft-sync-net-bench");
    let topic_id = TopicId::from_name("bench/sync");
    let start = Instant::now();
    let gossip_config = super::gossip::BenchConfig::default().config;
    // Loopback: a lost session is retried quickly (as in the demo and the runtime tests).
    let sync_config = Config {
        fallback_wait: Duration::from_millis(200),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_secs(1),
        ..Config::default()
    };
    let mut nodes = Vec::with_capacity(bench.nodes);
    for _ in 0..bench.nodes {
        let endpoint = Endpoint::builder()
            .network(network)
            .bind_addr("127.0.0.1:0".parse()?)
            .bind()
            .await?;
        let gossip = Gossip::builder()
            .config(gossip_config.clone())
            .event_capacity(4096)
            .spawn(&endpoint)
            .await?;
        // Room for every catch-up item's event, so the last node's count never lags.
        let sync = SyncManager::builder()
            .config(sync_config.clone())
            .event_capacity(bench.items + 8192)
            .spawn(&endpoint, &gossip)
            .await?;
        nodes.push(Node {
            endpoint,
            gossip,
            sync,
        });
    }
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.endpoint.id()).collect();
    let names = Names(ids.clone());
    let live_total = bench.warmup + bench.rounds;
    let (deliveries_tx, mut sync_deliveries) =
        mpsc::channel::<Delivery>(live_total * bench.nodes + 1024);
    let (notes_tx, mut notes) = mpsc::channel::<Note>(4096);

    // Every node but the last holds the same items.
    let items: Vec<Item> = (0..bench.items as u64)
        .map(|i| Item::new(1_000_000 + i, &payload(BULK, i, 0, bench.payload)))
        .collect();
    println!(
        "sync-net: {} nodes on 127.0.0.1; {} items of {} payload bytes at nodes 0..{}",
        bench.nodes,
        bench.items,
        bench.payload,
        bench.nodes - 2
    );
    let mut drivers = Vec::with_capacity(bench.nodes);
    let bootstrap = nodes[0].endpoint.addr();
    for (i, node) in nodes.iter().enumerate().take(bench.nodes - 1) {
        let mut store = MemoryStore::new();
        store.insert_many(&items)?;
        let boot = if i == 0 {
            vec![]
        } else {
            vec![bootstrap.clone()]
        };
        let topic = node.sync.subscribe(topic_id, store, boot).await?;
        drivers.push(Driver::spawn(
            i,
            topic,
            start,
            bench.payload,
            None,
            deliveries_tx.clone(),
            notes_tx.clone(),
        ));
    }
    let graph = settle_sessions(&drivers, &ids, bench.settle_quiet).await?;
    println!(
        "nodes 0..{}: sessions settled {:.0} ms after the first node started ({} sessions)",
        bench.nodes - 2,
        ms(start.elapsed()),
        edges(&graph)
    );
    while notes.try_recv().is_ok() {}

    // Catch-up: the last node joins empty.
    let last = bench.nodes - 1;
    let joined_at = Instant::now();
    let topic = nodes[last]
        .sync
        .subscribe(topic_id, MemoryStore::new(), vec![bootstrap.clone()])
        .await?;
    drivers.push(Driver::spawn(
        last,
        topic,
        start,
        bench.payload,
        Some(bench.items),
        deliveries_tx.clone(),
        notes_tx.clone(),
    ));
    drop((deliveries_tx, notes_tx));
    let mut catch_up = catch_up(&mut notes, last, joined_at).await?;
    let graph = settle_sessions(&drivers, &ids, bench.settle_quiet).await?;
    // Sessions of the last node that caught up while the sessions settled count as well.
    while let Ok(note) = notes.try_recv() {
        catch_up.note(note, last, joined_at);
    }
    println!(
        "{}",
        catch_up.render(&names, bench.items, bench.nodes, bench.payload)
    );
    println!(
        "all {} nodes: sessions settled again ({} sessions, degrees {:?})",
        bench.nodes,
        edges(&graph),
        graph.iter().map(BTreeSet::len).collect::<Vec<_>>()
    );
    // The process's CPU time while nothing is sent: timers, keep-alives, shuffles.
    let idle = Duration::from_secs(2);
    let before = process_cpu();
    tokio::time::sleep(idle).await;
    let idle_cpu = before
        .zip(process_cpu())
        .map(|(before, after)| after.saturating_sub(before));
    if let Some(cpu) = idle_cpu {
        println!(
            "idle CPU: {:.2} ms per {} ms interval\n",
            ms(cpu) * bench.interval.as_secs_f64() / idle.as_secs_f64(),
            bench.interval.as_millis()
        );
    }

    // Live mode: the sync topic.
    let senders = pick_senders(bench.seed, live_total, bench.nodes);
    let distances = distances(&graph);
    let sync_phase = LivePhase {
        bench: &bench,
        senders: &senders,
        distances: &distances,
    };
    let sync_warmup = sync_phase
        .run(0, bench.warmup, &mut sync_deliveries, |node, seq| {
            drivers[node].insert(seq)
        })
        .await?;
    let sync_timed = sync_phase
        .run(
            bench.warmup as u64,
            bench.rounds,
            &mut sync_deliveries,
            |node, seq| drivers[node].insert(seq),
        )
        .await?;
    let mut failures = Vec::new();
    while let Ok(note) = notes.try_recv() {
        match note.what {
            NoteKind::Failed(peer, error) => failures.push(format!(
                "n{} ⇄ {}: {error}",
                note.node,
                peer.map_or_else(|| "-".to_owned(), |p| names.of(&p))
            )),
            NoteKind::Lagged(n) => failures.push(format!("n{}: lagged {n}", note.node)),
            _ => {}
        }
    }

    // The same nodes on a plain gossip topic.
    let (broadcast, mut gossip_deliveries) = GossipTopic::join(&nodes, start, live_total).await?;
    println!(
        "gossip topic: membership settled {:.0} ms after the first node started",
        ms(start.elapsed())
    );
    let gossip_warmup = sync_phase
        .run(0, bench.warmup, &mut gossip_deliveries, |node, seq| {
            broadcast.send(node, seq, start, bench.payload)
        })
        .await?;
    let gossip_bytes_before: u64 = nodes.iter().map(|n| n.gossip.bytes_sent()).sum();
    let gossip_timed = sync_phase
        .run(
            bench.warmup as u64,
            bench.rounds,
            &mut gossip_deliveries,
            |node, seq| broadcast.send(node, seq, start, bench.payload),
        )
        .await?;

    println!(
        "== live: {} items of {} payload bytes, one every {} ms at a random node (seed {:#x}), \
         after {} warm-up ones ==",
        bench.rounds,
        bench.payload,
        bench.interval.as_millis(),
        bench.seed,
        bench.warmup
    );
    let gossip_bytes: u64 =
        nodes.iter().map(|n| n.gossip.bytes_sent()).sum::<u64>() - gossip_bytes_before;
    println!("{}", compare(&sync_timed, &gossip_timed));
    println!("{}", by_hops(&sync_timed, &gossip_timed));
    let degrees: usize = graph.iter().map(BTreeSet::len).sum();
    println!(
        "messages per item: weft-sync floods every new item to every session but the one it \
         came from: Σdegree − (N−1) = {} Live frames for {} deliveries; weft-gossip wrote {:.0} \
         bytes per broadcast (all nodes, all gossip topics)",
        degrees.saturating_sub(bench.nodes - 1),
        bench.nodes - 1,
        gossip_bytes as f64 / bench.rounds.max(1) as f64
    );
    println!(
        "warm-up: sync {}, gossip {}",
        sync_warmup.summary(),
        gossip_warmup.summary()
    );
    println!(
        "reference, measured earlier on this machine and not in this run: iroh-gossip, \
         20 nodes, defaults, after a warm-up: p99 6.7-91 ms"
    );
    for (name, phase) in [("sync", &sync_timed), ("gossip", &gossip_timed)] {
        if !phase.missing.is_empty() {
            let shown: Vec<String> = phase
                .missing
                .iter()
                .take(20)
                .map(|(seq, node)| format!("#{seq}→n{node}"))
                .collect();
            println!(
                "{name}: {} deliveries missing: {}{}",
                phase.missing.len(),
                shown.join(" "),
                if phase.missing.len() > 20 { " …" } else { "" }
            );
        }
    }
    if !failures.is_empty() {
        println!("sync events in the live phase: {}", failures.join("; "));
    }

    drop(drivers);
    drop(broadcast);
    for node in &nodes {
        node.sync.shutdown().await;
        node.endpoint.shutdown().await;
    }
    Ok(())
}

/// Sessions in a session graph (each pair once).
fn edges(graph: &[BTreeSet<usize>]) -> usize {
    graph.iter().map(BTreeSet::len).sum::<usize>() / 2
}

/// One node's layers.
#[derive(Debug)]
struct Node {
    endpoint: Endpoint,
    gossip: Gossip,
    sync: SyncManager,
}

/// Peer ids to node numbers, for printing.
#[derive(Debug)]
struct Names(Vec<PeerId>);

impl Names {
    fn of(&self, peer: &PeerId) -> String {
        self.0
            .iter()
            .position(|id| id == peer)
            .map_or_else(|| peer.fmt_short(), |i| format!("n{i}"))
    }
}

/// A payload: a 4-byte tag, a sequence number, a timestamp (ns since the run started), zeros.
fn payload(tag: &[u8; 4], seq: u64, sent_ns: u64, size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size.max(20)];
    bytes[..4].copy_from_slice(tag);
    bytes[4..12].copy_from_slice(&seq.to_be_bytes());
    bytes[12..20].copy_from_slice(&sent_ns.to_be_bytes());
    bytes
}

/// The sequence number and send time of a `LIVE` payload.
fn parse_live(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() < 20 || &bytes[..4] != LIVE {
        return None;
    }
    let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    Some((word(4), word(12)))
}

fn since_start_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Which node inserts each live item (the same list for sync and gossip): splitmix64.
fn pick_senders(seed: u64, count: usize, nodes: usize) -> Vec<usize> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            usize::try_from(z % nodes as u64).unwrap_or(0)
        })
        .collect()
}
