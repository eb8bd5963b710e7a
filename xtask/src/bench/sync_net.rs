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

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::timeout,
};
use weft_gossip::{Event as GossipEvent, Gossip, TopicId, TopicSender};
use weft_sync::{
    Item, SyncManager, SyncTopic,
    proto::{CatchUpStats, Config, Event, Role, SessionInfo},
    store::{MemoryStore, Store},
};
use weft_transport::{Endpoint, NetworkId, PeerId};

use crate::table::Table;

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
            .spawn(&endpoint)?;
        // Room for every catch-up item's event, so the last node's count never lags.
        let sync = SyncManager::builder()
            .config(sync_config.clone())
            .event_capacity(bench.items + 8192)
            .spawn(&endpoint, &gossip)?;
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

/// Hops between every two nodes of a session graph (breadth-first; `u16::MAX`: unreachable).
fn distances(graph: &[BTreeSet<usize>]) -> Vec<Vec<u16>> {
    (0..graph.len())
        .map(|from| {
            let mut hops = vec![u16::MAX; graph.len()];
            hops[from] = 0;
            let mut queue = std::collections::VecDeque::from([from]);
            while let Some(node) = queue.pop_front() {
                for &next in &graph[node] {
                    if hops[next] == u16::MAX {
                        hops[next] = hops[node] + 1;
                        queue.push_back(next);
                    }
                }
            }
            hops
        })
        .collect()
}

/// Latency percentiles by hops, sync (shortest path in the session graph: a flood's first copy
/// takes no fewer) beside gossip (the hops its message reports).
fn by_hops(sync: &PhaseReport, gossip: &PhaseReport) -> String {
    let mut table = Table::new([
        "hops",
        "sync deliveries",
        "sync p50 ms",
        "sync p90 ms",
        "gossip deliveries",
        "gossip p50 ms",
        "gossip p90 ms",
    ]);
    let hops: BTreeSet<u16> = sync
        .by_hops
        .keys()
        .chain(gossip.by_hops.keys())
        .copied()
        .collect();
    let cells = |p: &PhaseReport, hop: u16| match p.by_hops.get(&hop) {
        Some(samples) => {
            let mut samples = samples.clone();
            let p50 = ms(crate::stats::percentile(&mut samples, 50.0));
            let p90 = ms(crate::stats::percentile(&mut samples, 90.0));
            [
                samples.len().to_string(),
                format!("{p50:.2}"),
                format!("{p90:.2}"),
            ]
        }
        None => ["0".to_owned(), String::new(), String::new()],
    };
    for hop in hops {
        let [a, b, c] = cells(sync, hop);
        let [d, e, f] = cells(gossip, hop);
        table.row([hop.to_string(), a, b, c, d, e, f]);
    }
    table.render()
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

/// Something a node's sync topic told, for the catch-up report and the failure list.
#[derive(Debug)]
struct Note {
    node: usize,
    at: Instant,
    what: NoteKind,
}

#[derive(Debug)]
enum NoteKind {
    Started(PeerId, Role),
    CaughtUp(PeerId, CatchUpStats),
    /// A session (with a peer) or an insert failed.
    Failed(Option<PeerId>, String),
    Lagged(u64),
    /// The node holds the items it was told to expect.
    Complete,
}

/// Requests to a node's driver task.
#[derive(Debug)]
enum Command {
    Insert(u64),
    Sessions(oneshot::Sender<Vec<SessionInfo<PeerId>>>),
}

/// The task that owns a node's `SyncTopic`: inserts on request, and turns its events into
/// deliveries (latencies measured as they arrive) and notes.
#[derive(Debug)]
struct Driver {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Driver {
    fn spawn(
        node: usize,
        mut topic: SyncTopic,
        start: Instant,
        size: usize,
        expect: Option<usize>,
        deliveries: mpsc::Sender<Delivery>,
        notes: mpsc::Sender<Note>,
    ) -> Self {
        let (commands, mut rx) = mpsc::channel::<Command>(64);
        let task = tokio::spawn(async move {
            let note = |what| {
                let _ = notes.try_send(Note {
                    node,
                    at: Instant::now(),
                    what,
                });
            };
            // Items (or lagged events) seen, towards `expect`.
            let mut seen = 0usize;
            let mut complete = expect.is_none();
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        Some(Command::Insert(seq)) => {
                            let sent = since_start_ns(start);
                            let item = Item::new(sent, &payload(LIVE, seq, sent, size));
                            if let Err(err) = topic.insert_item(item).await {
                                note(NoteKind::Failed(None, format!("insert: {err}")));
                            }
                        }
                        Some(Command::Sessions(reply)) => {
                            let _ = reply.send(topic.sessions().await.unwrap_or_default());
                        }
                        None => return,
                    },
                    event = topic.recv() => {
                        let Some(event) = event else { return };
                        match event {
                            Event::ItemReceived { item, .. } => {
                                if let Some((seq, sent)) = parse_live(item.payload()) {
                                    let latency = start
                                        .elapsed()
                                        .saturating_sub(Duration::from_nanos(sent));
                                    let _ = deliveries.try_send((node, seq, latency, None));
                                }
                                seen += 1;
                            }
                            Event::SessionStarted { peer, role } => {
                                note(NoteKind::Started(peer, role));
                            }
                            Event::CaughtUp { peer, stats } => {
                                note(NoteKind::CaughtUp(peer, stats));
                            }
                            Event::SessionFailed { peer, error } => {
                                note(NoteKind::Failed(Some(peer), error.to_string()));
                            }
                            Event::Lagged(n) => {
                                seen += usize::try_from(n).unwrap_or(usize::MAX);
                                note(NoteKind::Lagged(n));
                            }
                            _ => {}
                        }
                        if !complete
                            && expect.is_some_and(|want| seen >= want)
                            && topic
                                .item_count()
                                .await
                                .is_ok_and(|count| expect.is_some_and(|want| count >= want))
                        {
                            complete = true;
                            note(NoteKind::Complete);
                        }
                    }
                }
            }
        });
        Self { commands, task }
    }

    fn insert(&self, seq: u64) -> Result<()> {
        self.commands
            .try_send(Command::Insert(seq))
            .context("a sync driver is busy or stopped")
    }

    async fn sessions(&self) -> Result<Vec<SessionInfo<PeerId>>> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Sessions(reply))
            .await
            .context("a sync driver stopped")?;
        rx.await.context("a sync driver stopped")
    }
}

/// Waits until every driver's sessions are live, at least one each, symmetric, and the same
/// for `quiet`. Returns each node's session peers.
async fn settle_sessions(
    drivers: &[Driver],
    ids: &[PeerId],
    quiet: Duration,
) -> Result<Vec<BTreeSet<usize>>> {
    let deadline = Instant::now() + PATIENCE;
    let mut last: Option<(Vec<BTreeSet<usize>>, Instant)> = None;
    loop {
        let mut peers = Vec::with_capacity(drivers.len());
        let mut all_live = true;
        for driver in drivers {
            let sessions = driver.sessions().await?;
            all_live &= !sessions.is_empty() && sessions.iter().all(|s| s.live);
            peers.push(
                sessions
                    .iter()
                    .filter_map(|s| ids.iter().position(|id| *id == s.peer))
                    .collect::<BTreeSet<usize>>(),
            );
        }
        let symmetric = peers.iter().enumerate().all(|(i, set)| {
            set.iter()
                .all(|j| peers.get(*j).is_some_and(|o| o.contains(&i)))
        });
        if all_live && symmetric {
            match &last {
                Some((before, since)) if *before == peers => {
                    if since.elapsed() >= quiet {
                        return Ok(peers);
                    }
                }
                _ => last = Some((peers, Instant::now())),
            }
        } else {
            last = None;
        }
        if Instant::now() > deadline {
            bail!("sync sessions did not settle within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session of the catching-up node: our role, and its stats with when it caught up (after
/// the join) once it has.
type SessionReport = (Option<Role>, Option<(CatchUpStats, Duration)>);

/// What the last node's catch-up showed.
#[derive(Debug, Default)]
struct CatchUp {
    first_session: Option<Duration>,
    complete: Option<Duration>,
    sessions: BTreeMap<PeerId, SessionReport>,
    failures: Vec<(Option<PeerId>, String)>,
    lagged: u64,
}

impl CatchUp {
    fn note(&mut self, note: Note, last: usize, joined_at: Instant) {
        if note.node != last {
            return;
        }
        let after = note.at.saturating_duration_since(joined_at);
        match note.what {
            NoteKind::Started(peer, role) => {
                self.first_session.get_or_insert(after);
                self.sessions.entry(peer).or_default().0 = Some(role);
            }
            NoteKind::CaughtUp(peer, stats) => {
                self.sessions.entry(peer).or_default().1 = Some((stats, after));
            }
            NoteKind::Failed(peer, error) => self.failures.push((peer, error)),
            NoteKind::Lagged(n) => self.lagged += n,
            NoteKind::Complete => self.complete = Some(after),
        }
    }

    fn render(&self, names: &Names, items: usize, nodes: usize, size: usize) -> String {
        let mut table = Table::new([
            "session",
            "role",
            "items in",
            "items out",
            "bytes in",
            "bytes out",
            "round trips",
            "caught up after",
        ]);
        let mut sum = CatchUpStats::default();
        for (peer, (role, done)) in &self.sessions {
            let role = role.map_or("?", |r| match r {
                Role::Initiator => "initiator",
                Role::Acceptor => "acceptor",
            });
            let name = format!("n{} ⇄ {}", nodes - 1, names.of(peer));
            match done {
                Some((stats, after)) => {
                    sum.items_received += stats.items_received;
                    sum.items_sent += stats.items_sent;
                    sum.bytes_received += stats.bytes_received;
                    sum.bytes_sent += stats.bytes_sent;
                    sum.round_trips += stats.round_trips;
                    table.row(stats_row(
                        &name,
                        role,
                        stats,
                        &format!("{:.1} ms", ms(*after)),
                    ));
                }
                None => table.row([name, role.to_owned(), "not caught up".to_owned()]),
            }
        }
        table.row(stats_row("sum", "", &sum, ""));
        let item_bytes = (items * (size + 8)) as f64;
        let mut out = format!(
            "== catch-up: n{} joins empty, nodes 0..{} hold {items} items ==\n{}",
            nodes - 1,
            nodes - 2,
            table.render()
        );
        let fmt = |d: Option<Duration>| {
            d.map_or_else(|| "never".to_owned(), |d| format!("{:.1} ms", ms(d)))
        };
        out.push_str(&format!(
            "first session after {}; all {items} items held after {}{}\n\
             bytes in: {:.2}× the items' bytes ({} B each); bytes out: {:.2}×\n",
            fmt(self.first_session),
            fmt(self.complete),
            self.complete.map_or_else(String::new, |d| format!(
                " ({:.0} items/s)",
                items as f64 / d.as_secs_f64()
            )),
            sum.bytes_received as f64 / item_bytes,
            size + 8,
            sum.bytes_sent as f64 / item_bytes,
        ));
        if self.lagged > 0 {
            out.push_str(&format!("events lagged: {}\n", self.lagged));
        }
        for (peer, error) in &self.failures {
            let peer = peer.map_or_else(|| "-".to_owned(), |p| names.of(&p));
            out.push_str(&format!(
                "session n{} ⇄ {peer} failed: {error}\n",
                nodes - 1
            ));
        }
        out
    }
}

fn stats_row(name: &str, role: &str, stats: &CatchUpStats, after: &str) -> [String; 8] {
    [
        name.to_owned(),
        role.to_owned(),
        stats.items_received.to_string(),
        stats.items_sent.to_string(),
        stats.bytes_received.to_string(),
        stats.bytes_sent.to_string(),
        stats.round_trips.to_string(),
        after.to_owned(),
    ]
}

/// Reads notes until the last node holds every item (sessions that catch up later are noted
/// while the sessions settle afterwards).
async fn catch_up(
    notes: &mut mpsc::Receiver<Note>,
    last: usize,
    joined_at: Instant,
) -> Result<CatchUp> {
    let mut report = CatchUp::default();
    let waited = timeout(PATIENCE, async {
        while let Some(note) = notes.recv().await {
            report.note(note, last, joined_at);
            if report.complete.is_some() {
                return true;
            }
        }
        false
    })
    .await;
    match waited {
        Ok(true) => Ok(report),
        Ok(false) => bail!("the sync drivers stopped during the catch-up"),
        Err(_) => bail!(
            "n{last} did not catch up within {PATIENCE:?} (holds all: {}, sessions: {:?})",
            report.complete.is_some(),
            report
                .sessions
                .values()
                .map(|(_, d)| d.is_some())
                .collect::<Vec<_>>()
        ),
    }
}

/// The gossip topic the live figures are compared with.
#[derive(Debug)]
struct GossipTopic {
    senders: Vec<TopicSender>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for GossipTopic {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl GossipTopic {
    /// Every node subscribes (through the first); returns once the membership settled the way
    /// the gossip benchmark waits for it.
    async fn join(
        nodes: &[Node],
        start: Instant,
        total: usize,
    ) -> Result<(Self, mpsc::Receiver<Delivery>)> {
        let topic_id = TopicId::from_name("bench/broadcast");
        let (tx, rx) = mpsc::channel::<Delivery>(total * nodes.len() + 1024);
        let (changes_tx, mut changes) = mpsc::channel::<()>(64);
        let mut senders = Vec::with_capacity(nodes.len());
        let mut tasks = Vec::with_capacity(nodes.len());
        let mut joined = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let bootstrap = if i == 0 {
                vec![]
            } else {
                vec![nodes[0].endpoint.addr()]
            };
            let (sender, mut events) = node.gossip.subscribe(topic_id, bootstrap).await?.split();
            senders.push(sender);
            let (tx, changes_tx) = (tx.clone(), changes_tx.clone());
            let (joined_tx, joined_rx) = oneshot::channel();
            joined.push(joined_rx);
            tasks.push(tokio::spawn(async move {
                let mut joined = Some(joined_tx);
                while let Some(event) = events.recv().await {
                    match event {
                        GossipEvent::Joined => {
                            if let Some(j) = joined.take() {
                                let _ = j.send(());
                            }
                        }
                        GossipEvent::NeighborUp(_) | GossipEvent::NeighborDown(_) => {
                            let _ = changes_tx.try_send(());
                        }
                        GossipEvent::Received { content, hops, .. } => {
                            if let Some((seq, sent)) = parse_live(content.as_bytes()) {
                                let latency =
                                    start.elapsed().saturating_sub(Duration::from_nanos(sent));
                                // `hops` counts from the originator's neighbours at 0.
                                let _ = tx.try_send((i, seq, latency, Some(hops + 1)));
                            }
                        }
                        _ => {}
                    }
                }
            }));
        }
        for (i, joined) in joined.into_iter().enumerate().skip(1) {
            timeout(Duration::from_secs(10), joined)
                .await
                .with_context(|| format!("n{i} did not join the gossip topic"))?
                .ok();
        }
        let topic = Self { senders, tasks };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if timeout(Duration::from_millis(250), changes.recv())
                .await
                .is_ok()
            {
                continue;
            }
            if topic.symmetric(nodes).await {
                break;
            }
        }
        Ok((topic, rx))
    }

    async fn symmetric(&self, nodes: &[Node]) -> bool {
        let mut views = Vec::with_capacity(self.senders.len());
        for sender in &self.senders {
            match sender.neighbors().await {
                Ok(view) => views.push(view),
                Err(_) => return false,
            }
        }
        let ids: Vec<PeerId> = nodes.iter().map(|n| n.endpoint.id()).collect();
        views.iter().zip(&ids).all(|(view, me)| {
            view.iter().all(|peer| {
                ids.iter()
                    .position(|id| id == peer)
                    .is_some_and(|j| views[j].contains(me))
            })
        })
    }

    /// Broadcasts live message `seq` from `node` (on a task, so the pacing holds).
    fn send(&self, node: usize, seq: u64, start: Instant, size: usize) -> Result<()> {
        let sender = self.senders[node].clone();
        tokio::spawn(async move {
            let content = payload(LIVE, seq, since_start_ns(start), size);
            let _ = sender.broadcast(content).await;
        });
        Ok(())
    }
}

/// One paced run of live items (sync inserts or broadcasts).
#[derive(Debug)]
struct LivePhase<'a> {
    bench: &'a SyncNetConfig,
    /// The sending node of each sequence number.
    senders: &'a [usize],
    /// Hops between two nodes in the sync session graph, for deliveries that do not tell.
    distances: &'a [Vec<u16>],
}

/// What a live phase showed.
#[derive(Debug, Default)]
struct PhaseReport {
    sent: usize,
    expected: usize,
    /// Sorted latencies of the deliveries seen.
    samples: Vec<Duration>,
    /// Per item: the latency of its first and of its last delivery seen.
    first: Vec<Duration>,
    last: Vec<Duration>,
    /// Latencies by the hops a delivery took.
    by_hops: BTreeMap<u16, Vec<Duration>>,
    /// (sequence number, node) of each delivery not seen.
    missing: Vec<(u64, usize)>,
    cpu_per_item: Option<Duration>,
}

impl PhaseReport {
    fn percentile(&self, p: f64) -> Duration {
        let mut samples = self.samples.clone();
        crate::stats::percentile(&mut samples, p)
    }

    fn summary(&self) -> String {
        format!(
            "{}/{} delivered, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.samples.len(),
            self.expected,
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(100.0)),
        )
    }
}

impl LivePhase<'_> {
    /// Sends `count` items numbered from `first` through `send(node, seq)`, one every
    /// interval, and waits (at most `DELIVERY_WAIT` after the last) until each reached every
    /// other node. Deliveries of other phases are ignored.
    async fn run(
        &self,
        first: u64,
        count: usize,
        rx: &mut mpsc::Receiver<Delivery>,
        send: impl Fn(usize, u64) -> Result<()>,
    ) -> Result<PhaseReport> {
        let nodes = self.bench.nodes;
        let cpu_before = process_cpu();
        let mut ticker = tokio::time::interval(self.bench.interval);
        let range = first..first + count as u64;
        for seq in range.clone() {
            ticker.tick().await;
            let node = self.senders[usize::try_from(seq)?];
            send(node, seq)?;
        }
        let expected = count * (nodes - 1);
        let mut seen = BTreeSet::new();
        let mut samples = Vec::with_capacity(expected);
        let mut spread: BTreeMap<u64, (Duration, Duration)> = BTreeMap::new();
        let mut by_hops: BTreeMap<u16, Vec<Duration>> = BTreeMap::new();
        let deadline = Instant::now() + DELIVERY_WAIT;
        while samples.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, rx.recv()).await {
                Ok(Some((node, seq, latency, hops))) => {
                    if range.contains(&seq) && seen.insert((seq, node)) {
                        samples.push(latency);
                        let hops = hops.unwrap_or_else(|| {
                            let sender = self.senders[usize::try_from(seq).unwrap_or(0)];
                            self.distances[sender][node]
                        });
                        by_hops.entry(hops).or_default().push(latency);
                        let entry = spread.entry(seq).or_insert((latency, latency));
                        entry.0 = entry.0.min(latency);
                        entry.1 = entry.1.max(latency);
                    }
                }
                _ => break,
            }
        }
        let cpu_per_item = match (cpu_before, process_cpu()) {
            (Some(before), Some(after)) => {
                Some(after.saturating_sub(before) / u32::try_from(count.max(1)).unwrap_or(1))
            }
            _ => None,
        };
        let mut missing = Vec::new();
        for seq in range {
            let sender = self.senders[usize::try_from(seq)?];
            for node in (0..nodes).filter(|n| *n != sender) {
                if !seen.contains(&(seq, node)) {
                    missing.push((seq, node));
                }
            }
        }
        samples.sort();
        Ok(PhaseReport {
            sent: count,
            expected,
            samples,
            first: spread.values().map(|(first, _)| *first).collect(),
            last: spread.values().map(|(_, last)| *last).collect(),
            by_hops,
            missing,
            cpu_per_item,
        })
    }
}

/// The sync and gossip live figures side by side.
fn compare(sync: &PhaseReport, gossip: &PhaseReport) -> String {
    let mut table = Table::new(["", "weft-sync live", "weft-gossip broadcast", "sync/gossip"]);
    let delivered = |p: &PhaseReport| {
        format!(
            "{}/{} ({:.2}%)",
            p.samples.len(),
            p.expected,
            100.0 * p.samples.len() as f64 / p.expected.max(1) as f64
        )
    };
    table.row([
        "items sent".to_owned(),
        sync.sent.to_string(),
        gossip.sent.to_string(),
        String::new(),
    ]);
    table.row([
        "delivered".to_owned(),
        delivered(sync),
        delivered(gossip),
        String::new(),
    ]);
    for (name, p) in [
        ("p50 ms", 50.0),
        ("p90 ms", 90.0),
        ("p99 ms", 99.0),
        ("max ms", 100.0),
    ] {
        let (a, b) = (ms(sync.percentile(p)), ms(gossip.percentile(p)));
        table.row([
            name.to_owned(),
            format!("{a:.2}"),
            format!("{b:.2}"),
            ratio(a, b),
        ]);
    }
    for (name, pick) in [
        ("first delivery p50 ms", 0usize),
        ("last delivery p50 ms", 1),
    ] {
        let median = |p: &PhaseReport| {
            let mut samples = if pick == 0 {
                p.first.clone()
            } else {
                p.last.clone()
            };
            ms(crate::stats::percentile(&mut samples, 50.0))
        };
        let (a, b) = (median(sync), median(gossip));
        table.row([
            name.to_owned(),
            format!("{a:.2}"),
            format!("{b:.2}"),
            ratio(a, b),
        ]);
    }
    let cpu = |p: &PhaseReport| p.cpu_per_item.map(ms);
    table.row([
        "CPU ms/item".to_owned(),
        cpu(sync).map_or_else(|| "?".to_owned(), |v| format!("{v:.2}")),
        cpu(gossip).map_or_else(|| "?".to_owned(), |v| format!("{v:.2}")),
        cpu(sync)
            .zip(cpu(gossip))
            .map_or_else(String::new, |(a, b)| ratio(a, b)),
    ]);
    table.render()
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "?".to_owned()
    }
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, in clock ticks
/// assumed to be 10 ms, the kernel's usual `USER_HZ`); `None` elsewhere. (The gossip
/// benchmark has the same helper.)
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
