//! A deterministic simulator over the sync proto: many [`Manager`](crate::proto::Manager)s on
//! a simulated network, in virtual time, from a seed.
//!
//! A scenario gives every node a random share of one topic's items and links each node to a
//! few random others (what a gossip overlay's active view would give), then runs until every
//! node holds every item. It reports the time that took, the bytes each node sent, and the
//! ratio of all bytes sent to the bytes of the items that were missing (1.0 would be a perfect
//! transfer with free reconciliation). Then it inserts live items at random nodes and reports
//! how long each took to reach every node.
//!
//! ```no_run
//! use weft_sync::sim::{Scenario, run_scenario};
//!
//! let report = run_scenario(&Scenario::default(), 0);
//! println!("{report}");
//! ```

#![allow(
    clippy::cast_possible_truncation,
    reason = "node and item counts fit u32; byte counts and times fit f64 well enough to report"
)]

mod world;

use std::{collections::BTreeSet, fmt, time::Duration};

use rand::{Rng, SeedableRng, seq::index::sample};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use weft_gossip::TopicId;

pub use self::world::{Counters, NodeId, World};
use crate::proto::{Config, Item};

/// One simulated scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// A name for the report.
    pub name: String,
    /// Nodes.
    pub nodes: u32,
    /// Distinct items in the topic.
    pub items: u32,
    /// The share of the items each node starts with (drawn independently per node).
    pub hold: f64,
    /// Links each node adds to random others (the overlay's degree is about twice this).
    pub links_per_node: u32,
    /// Payload bytes per item.
    pub item_size: usize,
    /// Link latency, uniform in [min, max) milliseconds, fixed per link.
    pub latency_ms: (u64, u64),
    /// Live items inserted after convergence, each at a random node.
    pub live_items: u32,
    /// Give up after this much virtual time.
    pub limit_ms: u64,
    /// The sync config.
    pub config: Config,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "100 nodes, 90% of 1,000".into(),
            nodes: 100,
            items: 1_000,
            hold: 0.9,
            links_per_node: 3,
            item_size: 100,
            latency_ms: (10, 50),
            live_items: 20,
            limit_ms: 120_000,
            config: Config::default(),
        }
    }
}

/// What one run of a scenario measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// Whether every node came to hold every item.
    pub converged: bool,
    /// Virtual time until then.
    pub converge_time: Duration,
    /// Mean bytes sent per node until then.
    pub bytes_per_node: f64,
    /// Bytes sent in all / bytes of the items that were missing.
    pub overhead_ratio: f64,
    /// Mean reconciliation round trips per session.
    pub round_trips: f64,
    /// Failed sessions.
    pub failed_sessions: u64,
    /// Live items that reached every node.
    pub live_delivered: u32,
    /// Live items inserted.
    pub live_items: u32,
    /// Time for a live item to reach the last node: median and worst.
    pub live_p50: Duration,
    /// Worst live latency.
    pub live_max: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (seed {}): converged {} in {:.0} ms; {:.0} KB sent per node; bytes / missing bytes {:.2}; {:.1} round trips per session; {} failed sessions; live {}/{} p50 {:.0} ms max {:.0} ms",
            self.name,
            self.seed,
            self.converged,
            self.converge_time.as_secs_f64() * 1e3,
            self.bytes_per_node / 1e3,
            self.overhead_ratio,
            self.round_trips,
            self.failed_sessions,
            self.live_delivered,
            self.live_items,
            self.live_p50.as_secs_f64() * 1e3,
            self.live_max.as_secs_f64() * 1e3,
        )
    }
}

/// The topic every scenario syncs.
pub fn topic() -> TopicId {
    TopicId::from_name("weft/sync/sim")
}

/// Runs one scenario with one seed.
pub fn run_scenario(scenario: &Scenario, seed: u64) -> Report {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let latency = (
        Duration::from_millis(scenario.latency_ms.0),
        Duration::from_millis(scenario.latency_ms.1),
    );
    let mut world = World::new(scenario.nodes, &scenario.config, latency, rng.random());
    world.record_events = false;
    let all: Vec<Item> = (0..scenario.items)
        .map(|i| {
            let mut payload = vec![0u8; scenario.item_size];
            rng.fill(&mut payload[..]);
            Item::new(1_700_000_000 + u64::from(i), &payload)
        })
        .collect();
    let mut missing_bytes = 0u64;
    for node in 0..scenario.nodes {
        let held: Vec<Item> = all
            .iter()
            .filter(|_| rng.random_bool(scenario.hold.clamp(0.0, 1.0)))
            .cloned()
            .collect();
        missing_bytes += all
            .iter()
            .map(|i| i.len() as u64)
            .sum::<u64>()
            .saturating_sub(held.iter().map(|i| i.len() as u64).sum::<u64>());
        world.subscribe(node, topic(), &held);
    }
    for (a, b) in overlay(scenario.nodes, scenario.links_per_node, &mut rng) {
        world.link(topic(), a, b);
    }
    let limit = Duration::from_millis(scenario.limit_ms);
    let total = all.len();
    let converged = step_until(&mut world, limit, |w| {
        (0..scenario.nodes).all(|n| w.node(n).items(topic()).is_some_and(|i| i.len() == total))
    });
    let converge_time = world.now();
    let sent: u64 = world.counters.bytes_sent.iter().sum();
    let counters = world.counters.clone();
    let mut live = Vec::new();
    for i in 0..scenario.live_items {
        let node = rng.random_range(0..scenario.nodes);
        let item = Item::new(2_000_000_000 + u64::from(i), &[7; 32]);
        let start = world.now();
        world
            .node_mut(node)
            .insert(topic(), item)
            .expect("live insert");
        world.flush(node);
        let want = total + i as usize + 1;
        let deadline = start + Duration::from_secs(10);
        if step_until(&mut world, deadline, |w| {
            (0..scenario.nodes).all(|n| w.node(n).items(topic()).is_some_and(|i| i.len() >= want))
        }) {
            live.push(world.now() - start);
        }
    }
    live.sort();
    Report {
        name: scenario.name.clone(),
        seed,
        converged,
        converge_time,
        bytes_per_node: sent as f64 / f64::from(scenario.nodes.max(1)),
        overhead_ratio: sent as f64 / (missing_bytes.max(1)) as f64,
        round_trips: counters.round_trips as f64 / (counters.caught_up.max(1)) as f64,
        failed_sessions: world.counters.failed,
        live_delivered: live.len() as u32,
        live_items: scenario.live_items,
        live_p50: live.get(live.len() / 2).copied().unwrap_or_default(),
        live_max: live.last().copied().unwrap_or_default(),
    }
}

/// Runs `world` in 5 ms steps of virtual time until `done` or `limit`.
fn step_until(world: &mut World, limit: Duration, done: impl Fn(&World) -> bool) -> bool {
    let step = Duration::from_millis(5);
    loop {
        if done(world) {
            return true;
        }
        if world.now() >= limit {
            return false;
        }
        let next = world.now() + step;
        world.run_until(next);
    }
}

/// A connected random graph: a ring (so no node is alone) plus `links` random edges per node.
fn overlay(nodes: u32, links: u32, rng: &mut ChaCha8Rng) -> BTreeSet<(NodeId, NodeId)> {
    let mut edges = BTreeSet::new();
    if nodes < 2 {
        return edges;
    }
    for a in 0..nodes {
        let b = (a + 1) % nodes;
        edges.insert((a.min(b), a.max(b)));
        let extra = links.saturating_sub(1).min(nodes - 1) as usize;
        for b in sample(rng, nodes as usize, extra).into_iter() {
            let b = b as u32;
            if a != b {
                edges.insert((a.min(b), a.max(b)));
            }
        }
    }
    edges
}
