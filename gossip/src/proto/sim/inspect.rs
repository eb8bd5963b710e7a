//! A close look at one run: the overlay's shape after warm-up and at the end, and every round
//! with the messages it took by kind. What `cargo xtask sim gossip --inspect` prints; for
//! tuning, when a scenario's means do not say why.

use std::{collections::BTreeMap, fmt};

use super::network::{Network, RoundMetrics};

/// How far apart nodes are over active links, and how links are spread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverlayShape {
    /// Live nodes.
    pub live: usize,
    /// Live nodes reachable from the first live node over active links.
    pub reachable: usize,
    /// Eccentricity (hops to the farthest reachable node) of up to 20 evenly spaced nodes.
    pub eccentricities: Vec<u32>,
    /// Mean hops between those nodes and the nodes they reach.
    pub mean_distance: f64,
    /// `active_sizes[k]`: live nodes with `k` active peers (the last bucket: that many or more).
    pub active_sizes: Vec<usize>,
    /// `eager_sizes[k]`: live nodes with `k` eager (tree) links.
    pub eager_sizes: Vec<usize>,
    /// Active links held on one side only.
    pub asymmetric: usize,
}

/// One round as inspected.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectedRound {
    /// Live nodes (other than a sender) that did not deliver, summed over the round's messages.
    pub missed: u64,
    /// Payload messages / receivers − 1.
    pub rmr: f64,
    /// Highest hop count of a delivery.
    pub ldh: u16,
    /// Broadcast to last delivery, virtual ms.
    pub duration_ms: f64,
    /// Messages sent during the round, by kind (`gossip`, `ihave`, `graft`, `prune`, ...).
    pub messages: BTreeMap<&'static str, u64>,
}

impl InspectedRound {
    pub(super) fn new(metrics: &RoundMetrics, messages: BTreeMap<&'static str, u64>) -> Self {
        Self {
            missed: metrics.missed,
            rmr: metrics.rmr,
            ldh: metrics.ldh,
            duration_ms: metrics.duration_ms,
            messages,
        }
    }
}

/// A scenario's first seed, inspected.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The scenario's name.
    pub name: String,
    /// The seed run.
    pub seed: u64,
    /// The overlay after warm-up, before the first round.
    pub before: OverlayShape,
    /// Every round.
    pub rounds: Vec<InspectedRound>,
    /// The overlay after the last round.
    pub after: OverlayShape,
}

/// Buckets of the link-count histograms.
const BUCKETS: usize = 12;
/// Nodes whose eccentricity is measured.
const SAMPLED: usize = 20;

impl Network {
    /// Measures the overlay's shape now.
    pub(super) fn shape(&self) -> OverlayShape {
        let live = self.live_nodes();
        let step = (live.len() / SAMPLED).max(1);
        let sampled: Vec<u32> = live.iter().step_by(step).take(SAMPLED).copied().collect();
        let (mut eccentricities, mut distance_sum, mut distance_count) = (Vec::new(), 0u64, 0u64);
        let mut reachable = 0;
        for (i, &from) in sampled.iter().enumerate() {
            let distances = self.distances(from);
            let reached: Vec<u32> = distances.into_iter().flatten().collect();
            if i == 0 {
                reachable = reached.len();
            }
            eccentricities.push(reached.iter().copied().max().unwrap_or(0));
            distance_sum += reached.iter().map(|d| u64::from(*d)).sum::<u64>();
            distance_count += reached.len().saturating_sub(1) as u64;
        }
        let mut active_sizes = vec![0; BUCKETS];
        let mut eager_sizes = vec![0; BUCKETS];
        let mut asymmetric = 0;
        for &node in &live {
            let neighbors = self.neighbors_of(node);
            active_sizes[neighbors.len().min(BUCKETS - 1)] += 1;
            eager_sizes[self.eager_links_of(node).min(BUCKETS - 1)] += 1;
            asymmetric += neighbors
                .iter()
                .filter(|p| !self.neighbors_of(**p).contains(&node))
                .count();
        }
        OverlayShape {
            live: live.len(),
            reachable,
            eccentricities,
            mean_distance: distance_sum as f64 / distance_count.max(1) as f64,
            active_sizes,
            eager_sizes,
            asymmetric,
        }
    }

    /// Hops from `from` to every node over live active links (`None`: unreachable or dead).
    fn distances(&self, from: u32) -> Vec<Option<u32>> {
        let mut distances = vec![None; self.len()];
        let mut queue = std::collections::VecDeque::from([from]);
        distances[from as usize] = Some(0);
        while let Some(node) = queue.pop_front() {
            let next = distances[node as usize].map(|d| d + 1);
            for peer in self.neighbors_of(node) {
                if self.is_alive(peer) && distances[peer as usize].is_none() {
                    distances[peer as usize] = next;
                    queue.push_back(peer);
                }
            }
        }
        distances
    }
}

impl fmt::Display for OverlayShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  live {}, reachable from the first {}, mean distance {:.2}, asymmetric links {}",
            self.live, self.reachable, self.mean_distance, self.asymmetric
        )?;
        writeln!(
            f,
            "  eccentricities of sampled nodes: {:?}",
            self.eccentricities
        )?;
        writeln!(
            f,
            "  nodes by active peers (0, 1, ...): {:?}",
            self.active_sizes
        )?;
        writeln!(
            f,
            "  nodes by eager links (0, 1, ...):  {:?}",
            self.eager_sizes
        )
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "## {} (seed {})", self.name, self.seed)?;
        writeln!(f, "overlay after warm-up:")?;
        write!(f, "{}", self.before)?;
        writeln!(f)?;
        writeln!(f, "| round | missed | RMR | LDH | ms | messages by kind |")?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        for (i, round) in self.rounds.iter().enumerate() {
            let kinds: Vec<String> = round
                .messages
                .iter()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect();
            writeln!(
                f,
                "| {i} | {} | {:.3} | {} | {:.0} | {} |",
                round.missed,
                round.rmr,
                round.ldh,
                round.duration_ms,
                kinds.join(", ")
            )?;
        }
        writeln!(f)?;
        writeln!(f, "overlay after the last round:")?;
        write!(f, "{}", self.after)
    }
}
