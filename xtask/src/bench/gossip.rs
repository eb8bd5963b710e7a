//! The gossip benchmark on real QUIC over loopback (for `cargo xtask bench gossip`): N nodes on
//! 127.0.0.1, every node joining through the first, one sender broadcasting `count` messages
//! of `size` bytes every `interval`. Reports the deliveries, the latency percentiles (send to
//! delivery, measured in-process) and the gossip bytes written per delivered message.
//!
//! Method: after every node joined, the run waits until the membership has settled (the active
//! views are symmetric and no NeighborUp/Down came for `settle_quiet`), then sends `warmup`
//! broadcasts at the same pace and waits for them, while the broadcast tree forms. The warm-up
//! figures are printed on their own line, the timed figures are those of the `count`
//! broadcasts after it, and a third line (`both`) counts every broadcast from the first
//! warm-up one on. The process CPU time per broadcast is printed too: it moves far less with
//! the machine's load than the latency tail does.

use std::{
    fmt,
    time::{Duration, Instant},
};

use tokio::{sync::mpsc, time::timeout};
use weft_transport::{Endpoint, NetworkId, PeerAddr};

use weft_gossip::{Config, Event, Gossip, TopicId, TopicSender};

use crate::stats::process_cpu;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct BenchConfig {
    /// Nodes (the first one sends).
    pub(crate) nodes: usize,
    /// Timed broadcasts.
    pub(crate) count: usize,
    /// Broadcasts before the timed ones, while the broadcast tree forms (reported apart).
    pub(crate) warmup: usize,
    /// Bytes per broadcast (at least 16: a sequence number and a timestamp).
    pub(crate) size: usize,
    /// Time between two broadcasts.
    pub(crate) interval: Duration,
    /// The membership counts as settled after this long without NeighborUp/Down.
    pub(crate) settle_quiet: Duration,
    /// The protocol config (by default: the defaults with graft waits for loopback RTTs).
    pub(crate) config: Config,
    /// Whether the gossip actors count into their metrics (off: the bytes column reads 0).
    pub(crate) collect_metrics: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        let mut config = Config::default();
        // Loopback round trips are well under a millisecond: every graft wait is scaled down
        // from the defaults (meant for 10–50 ms links). The rest are the defaults. The adaptive
        // first wait is capped at 6 ms and spread by half of it at most: with a 20 ms cap and
        // the default full spread, a message that really was missing waited up to 40 ms plus
        // the IHAVE delay (runs at load ~4.5 kept showing a maximum of 45-48 ms); with this cap
        // the maxima of such runs were 15-20 ms.
        config.broadcast.graft_timeout_1 = Duration::from_millis(2);
        config.broadcast.graft_timeout_2 = Duration::from_millis(3);
        config.broadcast.graft_timeout_max = Duration::from_millis(6);
        config.broadcast.graft_jitter = 0.5;
        config.broadcast.graft_timeout_no_tree = Duration::from_millis(2);
        // New links start eager (the paper's way): on loopback one flooded round costs little,
        // and the tree then forms by prunes without lazy-path waits (warm-up p99 about 6 ms
        // instead of about 21 ms on a quiet machine). The simulator's default (lazy start,
        // trees built by grafts) gives shallower trees on slow links.
        config.broadcast.eager_new_links = true;
        Self {
            nodes: 20,
            count: 1000,
            warmup: 50,
            size: 256,
            interval: Duration::from_millis(2),
            settle_quiet: Duration::from_millis(250),
            config,
            collect_metrics: true,
        }
    }
}

/// Figures of one phase (warm-up or timed).
#[derive(Debug, Clone, Default)]
pub(crate) struct PhaseReport {
    /// Broadcasts sent.
    pub(crate) sent: usize,
    /// Deliveries expected (`sent × (nodes − 1)`).
    pub(crate) expected: usize,
    /// Distinct deliveries seen.
    pub(crate) delivered: usize,
    /// Latency percentiles: p50, p90, p99, max.
    pub(crate) latency: [Duration; 4],
    /// Gossip bytes written by all nodes per delivered message.
    pub(crate) bytes_per_delivery: f64,
    /// CPU time of the whole process (all 20 nodes) per broadcast, where the OS tells it.
    pub(crate) cpu_per_broadcast: Option<Duration>,
    /// Deliveries per node (the sender, node 0, gets none).
    pub(crate) per_node: Vec<usize>,
    /// Every delivery's latency, sorted.
    pub(crate) samples: Vec<Duration>,
}

impl PhaseReport {
    /// The two phases as one: every broadcast from the first warm-up one on.
    fn merged(&self, later: &PhaseReport) -> PhaseReport {
        let mut samples = [self.samples.as_slice(), later.samples.as_slice()].concat();
        samples.sort();
        let weighted = |a: f64, b: f64, wa: usize, wb: usize| {
            (a * wa as f64 + b * wb as f64) / (wa + wb).max(1) as f64
        };
        PhaseReport {
            sent: self.sent + later.sent,
            expected: self.expected + later.expected,
            delivered: self.delivered + later.delivered,
            latency: percentiles(&samples),
            bytes_per_delivery: weighted(
                self.bytes_per_delivery,
                later.bytes_per_delivery,
                self.delivered,
                later.delivered,
            ),
            cpu_per_broadcast: self
                .cpu_per_broadcast
                .zip(later.cpu_per_broadcast)
                .map(|(a, b)| {
                    let secs = weighted(a.as_secs_f64(), b.as_secs_f64(), self.sent, later.sent);
                    Duration::from_secs_f64(secs)
                }),
            per_node: Vec::new(),
            samples,
        }
    }
}

/// p50, p90, p99 and max of the latencies.
fn percentiles(samples: &[Duration]) -> [Duration; 4] {
    let mut samples = samples.to_vec();
    [50.0, 90.0, 99.0, 100.0].map(|p| crate::stats::percentile(&mut samples, p))
}

/// What came out.
#[derive(Debug, Clone)]
pub(crate) struct BenchReport {
    /// Nodes in the run.
    pub(crate) nodes: usize,
    /// Time from the first node's start until the membership was settled.
    pub(crate) settled_after: Duration,
    /// The warm-up broadcasts (the tree forming).
    pub(crate) warmup: PhaseReport,
    /// The timed broadcasts.
    pub(crate) timed: PhaseReport,
    /// Deliveries per node in the timed phase (the sender, node 0, gets none).
    pub(crate) per_node: Vec<usize>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "| phase | nodes | sent | delivered | p50 ms | p90 ms | p99 ms | max ms | bytes/delivery | CPU ms/broadcast |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|")?;
        let both = self.warmup.merged(&self.timed);
        for (name, phase) in [
            ("warm-up", &self.warmup),
            ("timed", &self.timed),
            ("both", &both),
        ] {
            writeln!(
                f,
                "| {name} | {} | {} | {}/{} ({:.2}%) | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} |",
                self.nodes,
                phase.sent,
                phase.delivered,
                phase.expected,
                100.0 * phase.delivered as f64 / phase.expected.max(1) as f64,
                ms(phase.latency[0]),
                ms(phase.latency[1]),
                ms(phase.latency[2]),
                ms(phase.latency[3]),
                phase.bytes_per_delivery,
                phase
                    .cpu_per_broadcast
                    .map_or_else(|| "?".to_string(), |cpu| format!("{:.2}", ms(cpu))),
            )?;
        }
        write!(
            f,
            "membership settled {:.0} ms after the first node started",
            ms(self.settled_after)
        )
    }
}

/// One delivery: the receiving node, the broadcast's sequence number, its latency.
type Delivery = (usize, u64, Duration);

/// Runs the benchmark (needs a multi-threaded tokio runtime).
pub(crate) async fn run(bench: BenchConfig) -> Result<BenchReport, BenchError> {
    let network = NetworkId::from_name("weft-gossip-bench");
    let topic_id = TopicId::from_name("bench");
    let start = Instant::now();
    let total = bench.count + bench.warmup;
    let (tx, mut rx) = mpsc::channel::<Delivery>(total * bench.nodes.max(1));
    // Membership changes (NeighborUp/Down) of any node; a full channel is as good as a signal.
    let (changes_tx, mut changes) = mpsc::channel::<()>(64);
    let mut nodes = Vec::new();
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for node in 0..bench.nodes {
        let endpoint = Endpoint::builder()
            .network(network)
            .bind_addr(
                "127.0.0.1:0"
                    .parse()
                    .map_err(|e| BenchError(format!("{e}")))?,
            )
            .bind()
            .await
            .map_err(|e| BenchError(e.to_string()))?;
        let gossip = Gossip::builder()
            .config(bench.config.clone())
            .collect_metrics(bench.collect_metrics)
            .event_capacity(total * 2 + 64)
            .spawn(&endpoint)
            .await
            .map_err(|e| BenchError(e.to_string()))?;
        let bootstrap: Vec<PeerAddr> = nodes
            .first()
            .map(|(e, _): &(Endpoint, Gossip)| e.addr())
            .into_iter()
            .collect();
        let topic = gossip
            .subscribe(topic_id, bootstrap)
            .await
            .map_err(|e| BenchError(e.to_string()))?;
        let (sender, mut events) = topic.split();
        senders.push(sender);
        let (tx, changes_tx) = (tx.clone(), changes_tx.clone());
        let (joined_tx, joined_rx) = tokio::sync::oneshot::channel();
        tasks.push((
            tokio::spawn(async move {
                let mut joined = Some(joined_tx);
                while let Some(event) = events.recv().await {
                    match event {
                        Event::Joined => {
                            if let Some(j) = joined.take() {
                                let _ = j.send(());
                            }
                        }
                        Event::NeighborUp(_) | Event::NeighborDown(_) => {
                            let _ = changes_tx.try_send(());
                        }
                        Event::Received { content, .. } if content.len() >= 16 => {
                            let bytes = content.as_bytes();
                            let word = |at: usize| {
                                u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]))
                            };
                            let latency = start
                                .elapsed()
                                .saturating_sub(Duration::from_nanos(word(8)));
                            let _ = tx.try_send((node, word(0), latency));
                        }
                        _ => {}
                    }
                }
            }),
            joined_rx,
        ));
        nodes.push((endpoint, gossip));
    }
    drop(tx);
    for (i, (_, joined)) in tasks.iter_mut().enumerate().skip(1) {
        timeout(Duration::from_secs(10), joined)
            .await
            .map_err(|_| BenchError(format!("node {i} did not join")))?
            .ok();
    }
    // Settled: symmetric views, then no membership change for `settle_quiet` (at most 10 s).
    let settle_deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settle_deadline {
        if timeout(bench.settle_quiet, changes.recv()).await.is_ok() {
            continue;
        }
        if symmetric(&nodes, &senders).await {
            break;
        }
    }
    let settled_after = start.elapsed();
    let sender = &senders[0];
    let phase = Phase {
        bench: &bench,
        nodes: &nodes,
        sender,
        start,
    };
    let warmup = phase.run(0, bench.warmup, &mut rx).await?;
    let timed = phase.run(bench.warmup as u64, bench.count, &mut rx).await?;
    for (endpoint, _) in &nodes {
        endpoint.shutdown().await;
    }
    Ok(BenchReport {
        nodes: bench.nodes,
        settled_after,
        per_node: timed.per_node.clone(),
        warmup,
        timed,
    })
}

/// Whether every active-view entry is listed at both ends (a join leaves half-made links for a
/// moment).
async fn symmetric(nodes: &[(Endpoint, Gossip)], senders: &[TopicSender]) -> bool {
    let mut views = Vec::new();
    for sender in senders {
        match sender.neighbors().await {
            Ok(view) => views.push(view),
            Err(_) => return false,
        }
    }
    let ids: Vec<_> = nodes.iter().map(|(e, _)| e.id()).collect();
    views.iter().zip(&ids).all(|(view, me)| {
        view.iter().all(|peer| {
            ids.iter()
                .position(|id| id == peer)
                .is_some_and(|j| views[j].contains(me))
        })
    })
}

/// Sends one run of broadcasts and collects their deliveries.
struct Phase<'a> {
    bench: &'a BenchConfig,
    nodes: &'a [(Endpoint, Gossip)],
    sender: &'a TopicSender,
    start: Instant,
}

impl Phase<'_> {
    /// Broadcasts `count` messages numbered from `first` and waits (at most 10 s after the
    /// last) until each reached every other node. Deliveries of other phases are ignored.
    async fn run(
        &self,
        first: u64,
        count: usize,
        rx: &mut mpsc::Receiver<Delivery>,
    ) -> Result<PhaseReport, BenchError> {
        let bench = self.bench;
        let bytes_before: u64 = self.nodes.iter().map(|(_, g)| g.bytes_sent()).sum();
        let cpu_before = process_cpu();
        let mut ticker = tokio::time::interval(bench.interval);
        let range = first..first + count as u64;
        for seq in range.clone() {
            ticker.tick().await;
            let mut content = vec![0u8; bench.size.max(16)];
            content[..8].copy_from_slice(&seq.to_be_bytes());
            let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            content[8..16].copy_from_slice(&now.to_be_bytes());
            self.sender
                .broadcast(content)
                .await
                .map_err(|e| BenchError(e.to_string()))?;
        }
        let expected = count * (bench.nodes - 1);
        let mut latencies = Vec::with_capacity(expected);
        let mut per_node = vec![0usize; bench.nodes];
        let deadline = Instant::now() + Duration::from_secs(10);
        while latencies.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, rx.recv()).await {
                Ok(Some((node, seq, latency))) => {
                    if range.contains(&seq) {
                        latencies.push(latency);
                        per_node[node] += 1;
                    }
                }
                _ => break,
            }
        }
        let bytes_after: u64 = self.nodes.iter().map(|(_, g)| g.bytes_sent()).sum();
        let cpu_per_broadcast = match (cpu_before, process_cpu()) {
            (Some(before), Some(after)) => {
                Some(after.saturating_sub(before) / u32::try_from(count.max(1)).unwrap_or(1))
            }
            _ => None,
        };
        latencies.sort();
        Ok(PhaseReport {
            sent: count,
            expected,
            delivered: latencies.len(),
            latency: percentiles(&latencies),
            bytes_per_delivery: (bytes_after - bytes_before) as f64 / latencies.len().max(1) as f64,
            cpu_per_broadcast,
            per_node,
            samples: latencies,
        })
    }
}

/// Why the benchmark could not run.
#[derive(Debug)]
pub(crate) struct BenchError(String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gossip benchmark: {}", self.0)
    }
}

impl std::error::Error for BenchError {}
