//! The gossip benchmark on real QUIC over loopback (for `cargo xtask bench gossip`): N nodes on
//! 127.0.0.1, every node joining through the first, one sender broadcasting `count` messages
//! of `size` bytes every `interval`. Reports the deliveries, the latency percentiles (send to
//! delivery, measured in-process) and the gossip bytes written per delivered message.

use std::{
    fmt,
    time::{Duration, Instant},
};

use tokio::{sync::mpsc, time::timeout};
use weft_transport::{Endpoint, NetworkId, PeerAddr};

use weft_gossip::{Config, Event, Gossip, TopicId};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct BenchConfig {
    /// Nodes (the first one sends).
    pub(crate) nodes: usize,
    /// Broadcasts.
    pub(crate) count: usize,
    /// Bytes per broadcast (at least 16: a sequence number and a timestamp).
    pub(crate) size: usize,
    /// Time between two broadcasts.
    pub(crate) interval: Duration,
    /// The protocol config (by default: the defaults with graft waits for loopback RTTs).
    pub(crate) config: Config,
}

impl Default for BenchConfig {
    fn default() -> Self {
        let mut config = Config::default();
        // Loopback round trips are well under a millisecond.
        config.broadcast.graft_timeout_1 = Duration::from_millis(2);
        config.broadcast.graft_timeout_2 = Duration::from_millis(3);
        config.broadcast.graft_timeout_max = Duration::from_millis(20);
        Self {
            nodes: 20,
            count: 1000,
            size: 256,
            interval: Duration::from_millis(2),
            config,
        }
    }
}

/// What came out.
#[derive(Debug, Clone)]
pub(crate) struct BenchReport {
    /// The run's parameters.
    pub(crate) nodes: usize,
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
    /// Deliveries per node (the sender, node 0, gets none).
    pub(crate) per_node: Vec<usize>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "| nodes | sent | delivered | p50 ms | p90 ms | p99 ms | max ms | bytes/delivery |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|")?;
        writeln!(
            f,
            "| {} | {} | {}/{} ({:.2}%) | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            self.nodes,
            self.sent,
            self.delivered,
            self.expected,
            100.0 * self.delivered as f64 / self.expected.max(1) as f64,
            ms(self.latency[0]),
            ms(self.latency[1]),
            ms(self.latency[2]),
            ms(self.latency[3]),
            self.bytes_per_delivery,
        )
    }
}

/// Runs the benchmark (needs a multi-threaded tokio runtime).
pub(crate) async fn run(bench: BenchConfig) -> Result<BenchReport, BenchError> {
    let network = NetworkId::from_name("weft-gossip-bench");
    let topic_id = TopicId::from_name("bench");
    let start = Instant::now();
    let (tx, mut rx) = mpsc::channel::<(usize, Duration)>(bench.count * bench.nodes.max(1));
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
            .event_capacity(bench.count * 2 + 64)
            .spawn(&endpoint)
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
        let tx = tx.clone();
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
                        Event::Received { content, .. } if content.len() >= 16 => {
                            let bytes = content.as_bytes();
                            let sent = Duration::from_nanos(u64::from_be_bytes(
                                bytes[8..16].try_into().unwrap_or([0; 8]),
                            ));
                            let _ = tx.try_send((node, start.elapsed().saturating_sub(sent)));
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
    // Let the views settle a little before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bytes_before: u64 = nodes.iter().map(|(_, g)| g.bytes_sent()).sum();
    let sender = senders[0].clone();
    let mut ticker = tokio::time::interval(bench.interval);
    for seq in 0..bench.count as u64 {
        ticker.tick().await;
        let mut content = vec![0u8; bench.size.max(16)];
        content[..8].copy_from_slice(&seq.to_be_bytes());
        let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        content[8..16].copy_from_slice(&now.to_be_bytes());
        sender
            .broadcast(content)
            .await
            .map_err(|e| BenchError(e.to_string()))?;
    }
    let expected = bench.count * (bench.nodes - 1);
    let mut latencies = Vec::with_capacity(expected);
    let mut per_node = vec![0usize; bench.nodes];
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, rx.recv()).await {
            Ok(Some((node, latency))) => {
                latencies.push(latency);
                per_node[node] += 1;
            }
            _ => break,
        }
    }
    let bytes_after: u64 = nodes.iter().map(|(_, g)| g.bytes_sent()).sum();
    latencies.sort();
    let pick = |q: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        // Nearest rank: the q-quantile of n sorted values is at index ceil(q·n) − 1.
        let n = latencies.len();
        let rank = (1..=n).find(|r| *r as f64 >= q * n as f64).unwrap_or(n);
        latencies[rank.saturating_sub(1)]
    };
    let report = BenchReport {
        nodes: bench.nodes,
        sent: bench.count,
        expected,
        delivered: latencies.len(),
        latency: [pick(0.5), pick(0.9), pick(0.99), pick(1.0)],
        bytes_per_delivery: (bytes_after - bytes_before) as f64 / latencies.len().max(1) as f64,
        per_node,
    };
    for (endpoint, _) in &nodes {
        endpoint.shutdown().await;
    }
    Ok(report)
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
