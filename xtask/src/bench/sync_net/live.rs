//! The paced live phases and their report: percentiles side by side, latencies by hops.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, Instant},
};

use anyhow::Result;
use tokio::{sync::mpsc, time::timeout};

use super::{DELIVERY_WAIT, Delivery, SyncNetConfig, ms};
use crate::table::Table;

/// Hops between every two nodes of a session graph (breadth-first; `u16::MAX`: unreachable).
pub(super) fn distances(graph: &[BTreeSet<usize>]) -> Vec<Vec<u16>> {
    (0..graph.len())
        .map(|from| {
            let mut hops = vec![u16::MAX; graph.len()];
            hops[from] = 0;
            let mut queue = VecDeque::from([from]);
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
pub(super) fn by_hops(sync: &PhaseReport, gossip: &PhaseReport) -> String {
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

/// One paced run of live items (sync inserts or broadcasts).
#[derive(Debug)]
pub(super) struct LivePhase<'a> {
    pub(super) bench: &'a SyncNetConfig,
    /// The sending node of each sequence number.
    pub(super) senders: &'a [usize],
    /// Hops between two nodes in the sync session graph, for deliveries that do not tell.
    pub(super) distances: &'a [Vec<u16>],
}

/// What a live phase showed.
#[derive(Debug, Default)]
pub(super) struct PhaseReport {
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
    pub(super) missing: Vec<(u64, usize)>,
    cpu_per_item: Option<Duration>,
}

impl PhaseReport {
    pub(super) fn percentile(&self, p: f64) -> Duration {
        let mut samples = self.samples.clone();
        crate::stats::percentile(&mut samples, p)
    }

    pub(super) fn summary(&self) -> String {
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
    pub(super) async fn run(
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
pub(super) fn compare(sync: &PhaseReport, gossip: &PhaseReport) -> String {
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

pub(super) fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "?".to_owned()
    }
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, in clock ticks
/// assumed to be 10 ms, the kernel's usual `USER_HZ`); `None` elsewhere. (The gossip
/// benchmark has the same helper.)
pub(super) fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
