//! Scenario files: what a simulation run does, loadable from TOML.

use serde::{Deserialize, Serialize};

use crate::proto::Config;

/// A file of scenarios, as in `discovery/sim/default.toml`:
///
/// ```toml
/// [[scenario]]
/// name = "1k"
/// nodes = 1000
/// seed = 1
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The scenarios, run in order.
    #[serde(default, rename = "scenario")]
    pub scenarios: Vec<Scenario>,
}

impl ScenarioFile {
    /// Parses a scenario file.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

/// One simulated network and what happens in it, in four phases and an optional fifth:
///
/// 1. **join**: `nodes` nodes join one after another, `join_interval_ms` apart, each knowing
///    only the first node (the bootstrap). Measured: time until every catalog is complete.
/// 2. **crash**: `crashes` random nodes stop at once, silently. Measured: time until the last
///    live node purged the last of them.
/// 3. **depart**: `departures` random nodes leave gracefully. Measured: time until the last
///    live node dropped the last of them.
/// 4. **partition**: the live nodes split into two halves for `partition_ms`; meanwhile
///    `changed_fraction` of them change their metadata; then the halves heal. Measured: bytes
///    of delta sync after the heal, beside the bytes full-snapshot sync would have sent for the
///    same sessions, and time until every catalog is current again.
/// 5. **flood** (when `flood > 0`): once every live honest peer is live again after the heal
///    (`stale_after` and two announce periods later), `flood` throwaway identities join one after another,
///    `join_interval_ms` apart, each a real node that links to `active_view` nodes (so its
///    entry reaches them directly) and announces to all. Measured: how many times a live honest
///    peer was evicted from an honest catalog (the goal is never), and whether every honest
///    catalog still holds every live honest peer `max_phase_intervals` announce intervals on.
///    Meaningful with a `config.max_entries` below the flood, so that catalogs fill.
///
/// Network model: a direct message arrives after a latency drawn uniformly in
/// `[latency_min_ms, latency_max_ms]`. The gossip topic is modelled simply: a broadcast reaches
/// every live node on the sender's side of a partition after one such latency (no gossip tree,
/// no loss, no relaying cost). Each node has `active_view` gossip neighbours, chosen like a
/// HyParView join (the bootstrap and random others; a full node drops a random neighbour), and
/// neighbour-up events start syncs as they would in a real node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Shown in the report.
    pub name: String,
    /// Seed of every random choice: the same seed gives the same report.
    pub seed: u64,
    /// Nodes in the network (up to 10,000).
    pub nodes: usize,
    /// Time between two joins, in milliseconds.
    pub join_interval_ms: u64,
    /// Gossip neighbours per node.
    pub active_view: usize,
    /// Nodes crashed in the crash phase.
    pub crashes: usize,
    /// Nodes departing in the departure phase.
    pub departures: usize,
    /// How long the partition lasts, in milliseconds. Shorter than `purge_after` means the
    /// halves still hold each other's entries at the heal.
    pub partition_ms: u64,
    /// Share of live nodes that change their metadata during the partition (0.02 = 2%).
    pub changed_fraction: f64,
    /// Smallest one-way latency, in milliseconds.
    pub latency_min_ms: u64,
    /// Largest one-way latency, in milliseconds (uniform in between).
    pub latency_max_ms: u64,
    /// How often completeness is checked, in virtual milliseconds (the resolution of the
    /// convergence times).
    pub check_interval_ms: u64,
    /// Throwaway identities in the flood phase (0: no flood phase).
    pub flood: usize,
    /// The longest a phase may take to converge, in announce intervals, before it is reported
    /// as not converged.
    pub max_phase_intervals: u64,
    /// The nodes' protocol settings.
    pub config: Config,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "default".into(),
            seed: 1,
            nodes: 1_000,
            join_interval_ms: 10,
            active_view: 5,
            crashes: 10,
            departures: 10,
            partition_ms: 45_000,
            changed_fraction: 0.02,
            latency_min_ms: 10,
            latency_max_ms: 100,
            check_interval_ms: 100,
            max_phase_intervals: 10,
            flood: 0,
            config: Config::default(),
        }
    }
}
