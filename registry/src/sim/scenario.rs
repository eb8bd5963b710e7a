//! Scenario files: what a simulation run does, loadable from TOML.

use serde::{Deserialize, Serialize};

use crate::proto::Config;

/// A file of scenarios, as in `registry/sim/default.toml`:
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

/// One simulated network and what happens in it.
///
/// Phases: nodes join one after another (each told about a few earlier nodes, then
/// bootstrapping); providers register names; `lookups` lookups run from random nodes; a fraction
/// of nodes is removed at once and the lookups run again; providers withdraw and lookups probe
/// how long the withdrawn record is still returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Shown in the report.
    pub name: String,
    /// Seed of every random choice: the same seed gives the same report.
    pub seed: u64,
    /// Nodes in the network.
    pub nodes: usize,
    /// Earlier nodes each joining node is told about.
    pub bootstrap_peers: usize,
    /// Time between two joins, in milliseconds.
    pub join_interval_ms: u64,
    /// Names registered.
    pub names: usize,
    /// Providers registering each name.
    pub providers_per_name: usize,
    /// Lookups per lookup phase.
    pub lookups: usize,
    /// Time between two lookup starts, in milliseconds (lookups overlap).
    pub lookup_interval_ms: u64,
    /// Share of nodes removed before the second lookup phase (0.2 = 20%).
    pub removed_fraction: f64,
    /// Withdrawals in the withdrawal phase.
    pub withdrawals: usize,
    /// Lookups of a withdrawn name started per withdrawal, one every `probe_interval_ms` from
    /// the moment the withdrawal starts.
    pub probes_per_withdrawal: usize,
    /// Time between two probe lookups, in milliseconds.
    pub probe_interval_ms: u64,
    /// Smallest one-way latency, in milliseconds.
    pub latency_min_ms: u64,
    /// Largest one-way latency, in milliseconds (uniform in between).
    pub latency_max_ms: u64,
    /// Attacker identities ground next to the key of each attacked name (0: no attack). They
    /// answer every request at once, acknowledge every store, return no record and name only
    /// each other as closer nodes; every honest node learns them, as it would from discovery.
    /// Then `providers_per_name` random nodes register each attacked name, and a last lookup
    /// phase looks the attacked names up from random nodes.
    pub ground_identities: usize,
    /// Names attacked: fresh names (`attacked-0`, ...), registered once the attackers are in
    /// place.
    pub ground_names: usize,
    /// Leading bits the ground identities share with the key; 0 picks `log2(nodes) + 5`
    /// (ahead of every honest node by a wide margin, about `32 × nodes` tries per identity).
    pub ground_bits: usize,
    /// The nodes' protocol settings.
    pub config: Config,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "default".into(),
            seed: 1,
            nodes: 1_000,
            bootstrap_peers: 3,
            join_interval_ms: 10,
            names: 20,
            providers_per_name: 3,
            lookups: 500,
            lookup_interval_ms: 20,
            removed_fraction: 0.2,
            withdrawals: 10,
            probes_per_withdrawal: 20,
            probe_interval_ms: 50,
            latency_min_ms: 5,
            latency_max_ms: 50,
            ground_identities: 0,
            ground_names: 1,
            ground_bits: 0,
            config: Config {
                request_timeout_ms: 1_000,
                ..Config::default()
            },
        }
    }
}
