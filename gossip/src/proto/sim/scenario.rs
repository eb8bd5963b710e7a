//! Scenario files: what to simulate, loadable from TOML.
//!
//! ```toml
//! [defaults]
//! seeds = [0, 1]
//! rounds = 10
//!
//! [[scenario]]
//! name = "one sender, 100"
//! nodes = 100
//! sender = "one"
//! anchor = { rmr = 0.09, ldh = 5.0, round_ms = 163 }
//! ```
//!
//! A scenario field left out takes the value from `[defaults]`, and a default left out takes
//! the built-in value. A scenario's `config` table replaces the default protocol config as a
//! whole (fields it leaves out take the protocol defaults).

use serde::{Deserialize, Serialize};

use crate::proto::Config;

/// A file of scenarios.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScenarioFile {
    /// Values for fields a scenario leaves out.
    pub defaults: Defaults,
    /// The scenarios, run in order.
    pub scenario: Vec<Scenario>,
}

impl ScenarioFile {
    /// Parses a TOML scenario file.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The default scenario file shipped with the crate (`gossip/sim/default.toml`).
    pub fn default_file() -> Self {
        Self::from_toml(include_str!("../../../sim/default.toml"))
            .expect("the shipped scenario file parses")
    }
}

/// Scenario defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Seeds; every scenario runs once per seed and the report gives mean, min and max.
    pub seeds: Vec<u64>,
    /// Broadcast rounds per run.
    pub rounds: usize,
    /// Per-link latency range in milliseconds, `[min, max]`, uniform, fixed per link.
    pub latency_ms: [u64; 2],
    /// Time between two nodes joining, in milliseconds.
    pub join_interval_ms: u64,
    /// Time after the last join before the first round, in milliseconds.
    pub warmup_ms: u64,
    /// A round ends this long after its last delivery (to count late duplicates), in ms.
    pub settle_ms: u64,
    /// A round that has not delivered everywhere ends after this long, in ms.
    pub round_timeout_ms: u64,
    /// How long until the neighbours of a failed node notice (connection loss), in ms.
    pub detect_ms: u64,
    /// Payload size of every broadcast, in bytes.
    pub content_size: usize,
    /// The protocol config.
    pub config: Config,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            seeds: vec![0, 1, 212312388123, 123],
            rounds: 30,
            latency_ms: [10, 50],
            join_interval_ms: 1,
            warmup_ms: 180_000,
            settle_ms: 200,
            round_timeout_ms: 10_000,
            detect_ms: 200,
            content_size: 32,
            config: Config::default(),
        }
    }
}

/// Who broadcasts in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SenderMode {
    /// The same node every round.
    One,
    /// A node drawn at random every round.
    Random,
    /// Every live node, at once.
    All,
}

/// Nodes failing (crashing) before a round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// The round before which they fail (0-based).
    pub before_round: usize,
    /// The fraction of nodes that fail (the one-sender node never does).
    pub fraction: f64,
}

/// A partition into two halves, healed later.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// The round before which the network splits.
    pub before_round: usize,
    /// The round before which it heals.
    pub heal_before_round: usize,
    /// Virtual time between the heal and the next round, in ms (the goal: two shuffle
    /// periods).
    pub heal_wait_ms: u64,
}

/// Reference figures to print beside ours (e.g. iroh-gossip's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// Relative message redundancy.
    pub rmr: f64,
    /// Last delivery hop.
    pub ldh: f64,
    /// Round duration in virtual milliseconds.
    pub round_ms: f64,
}

/// One simulated situation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in the report.
    pub name: String,
    /// Node count.
    pub nodes: usize,
    /// Nodes join through a random one of the first `bootstrap` nodes (1: all through node 0).
    pub bootstrap: Option<usize>,
    /// Who broadcasts.
    pub sender: Option<SenderMode>,
    /// Overrides `defaults.seeds`.
    pub seeds: Option<Vec<u64>>,
    /// Overrides `defaults.rounds`.
    pub rounds: Option<usize>,
    /// Overrides `defaults.latency_ms`.
    pub latency_ms: Option<[u64; 2]>,
    /// Overrides `defaults.warmup_ms`.
    pub warmup_ms: Option<u64>,
    /// Overrides `defaults.config`.
    pub config: Option<Config>,
    /// Nodes failing.
    pub failure: Option<Failure>,
    /// A partition.
    pub partition: Option<Partition>,
    /// Figures to compare with.
    pub anchor: Option<Anchor>,
}

/// A scenario with every default applied.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) name: String,
    pub(crate) nodes: usize,
    pub(crate) bootstrap: usize,
    pub(crate) sender: SenderMode,
    pub(crate) seeds: Vec<u64>,
    pub(crate) rounds: usize,
    pub(crate) latency_ms: [u64; 2],
    pub(crate) join_interval_ms: u64,
    pub(crate) warmup_ms: u64,
    pub(crate) settle_ms: u64,
    pub(crate) round_timeout_ms: u64,
    pub(crate) detect_ms: u64,
    pub(crate) content_size: usize,
    pub(crate) config: Config,
    pub(crate) failure: Option<Failure>,
    pub(crate) partition: Option<Partition>,
    pub(crate) anchor: Option<Anchor>,
}

impl Scenario {
    pub(crate) fn resolve(&self, defaults: &Defaults) -> Resolved {
        Resolved {
            name: self.name.clone(),
            nodes: self.nodes.max(2),
            bootstrap: self.bootstrap.unwrap_or(1).max(1),
            sender: self.sender.unwrap_or(SenderMode::One),
            seeds: self.seeds.clone().unwrap_or_else(|| defaults.seeds.clone()),
            rounds: self.rounds.unwrap_or(defaults.rounds),
            latency_ms: self.latency_ms.unwrap_or(defaults.latency_ms),
            join_interval_ms: defaults.join_interval_ms,
            warmup_ms: self.warmup_ms.unwrap_or(defaults.warmup_ms),
            settle_ms: defaults.settle_ms,
            round_timeout_ms: defaults.round_timeout_ms,
            detect_ms: defaults.detect_ms,
            content_size: defaults.content_size,
            config: self
                .config
                .clone()
                .unwrap_or_else(|| defaults.config.clone()),
            failure: self.failure,
            partition: self.partition,
            anchor: self.anchor,
        }
    }
}
