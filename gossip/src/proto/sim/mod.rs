//! A deterministic discrete-event simulator over the proto.
//!
//! N nodes run [`State`](crate::proto::State) on one topic over a simulated network (per-link
//! latency uniform in a range, fixed per link; crashes; partitions), in virtual time, from a
//! seed. Each round one node, a random node, or every node broadcasts, and the round reports the
//! Plumtree paper's metrics:
//! - **missed**: live nodes other than the sender that did not deliver (summed over messages);
//! - **RMR**: payload messages / receivers − 1 (receivers exclude the sender; 0 is a perfect tree);
//! - **LDH**: the highest hop count of a delivery, the sender's direct neighbours at hop 0;
//! - **round duration** in virtual time, and the **control messages** sent during the round.
//!
//! ```no_run
//! use weft_gossip::sim::{ScenarioFile, run_scenarios};
//!
//! let report = run_scenarios(&ScenarioFile::default_file());
//! println!("{report}");
//! ```

#![allow(
    clippy::cast_possible_truncation,
    reason = "node indices fit u32 (checked in Network::new); counts and fractions are small"
)]

mod inspect;
mod network;
mod report;
mod scenario;

use std::time::Instant;

use rand::Rng;

pub use inspect::{InspectedRound, Inspection, OverlayShape};
pub use report::{Report, RunSummary, ScenarioReport, Stat};
pub use scenario::{Anchor, Defaults, Failure, Partition, Scenario, ScenarioFile, SenderMode};

use self::{network::Network, network::RoundMetrics, scenario::Resolved};

/// Why a round is excused from the "missed == 0" goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Normal operation: nothing may be missed.
    Normal,
    /// The first round after nodes failed: losses allowed.
    FirstAfterFailure,
    /// The network is split: the other half cannot be reached.
    Partitioned,
}

/// Runs every scenario of a file, once per seed.
pub fn run_scenarios(file: &ScenarioFile) -> Report {
    let scenarios = file
        .scenario
        .iter()
        .map(|s| run_scenario(&s.resolve(&file.defaults)))
        .collect();
    Report { scenarios }
}

/// Runs one scenario (defaults from `defaults`), once per seed.
pub fn run_one(scenario: &Scenario, defaults: &Defaults) -> ScenarioReport {
    run_scenario(&scenario.resolve(defaults))
}

/// Runs a scenario's first seed and reports the overlay's shape and every round in detail.
pub fn inspect(scenario: &Scenario, defaults: &Defaults) -> Inspection {
    let s = scenario.resolve(defaults);
    let seed = s.seeds.first().copied().unwrap_or(0);
    let mut inspection = Inspection {
        name: s.name.clone(),
        seed,
        before: OverlayShape::default(),
        rounds: Vec::new(),
        after: OverlayShape::default(),
    };
    simulate(&s, seed, Some(&mut inspection));
    inspection
}

fn run_scenario(s: &Resolved) -> ScenarioReport {
    let started = Instant::now();
    let runs = s
        .seeds
        .iter()
        .map(|&seed| simulate(s, seed, None))
        .collect();
    ScenarioReport::new(s, runs, started.elapsed())
}

/// Runs one seed of a scenario; with `inspection`, also records the overlay and every round.
fn simulate(s: &Resolved, seed: u64, mut inspection: Option<&mut Inspection>) -> RunSummary {
    let mut net = Network::new(s.nodes, &s.config, seed, s.latency_ms, s.detect_ms);
    let n = u32::try_from(net.len()).expect("node count fits u32");
    let interval = s.join_interval_ms * 1000;
    net.schedule_join(0, Vec::new(), 0);
    for node in 1..n {
        let set = (s.bootstrap as u32).min(node);
        let contact = net.rng.random_range(0..set);
        net.schedule_join(node, vec![contact], u64::from(node) * interval);
    }
    net.run_until(u64::from(n) * interval + s.warmup_ms * 1000);

    if let Some(inspection) = inspection.as_deref_mut() {
        inspection.before = net.shape();
        net.count_kinds = true;
    }
    let one_sender = net.rng.random_range(0..n);
    let mut rounds = Vec::new();
    for round in 0..s.rounds {
        let mut phase = Phase::Normal;
        if let Some(failure) = s.failure {
            if failure.before_round == round {
                let victims = pick_victims(&mut net, failure.fraction, one_sender);
                net.fail(&victims);
            }
            if failure.before_round == round {
                phase = Phase::FirstAfterFailure;
            }
        }
        if let Some(partition) = s.partition {
            if partition.before_round == round {
                net.partition();
            }
            if partition.heal_before_round == round {
                net.heal();
                let until = net.now() + partition.heal_wait_ms * 1000;
                net.run_until(until);
            }
            if (partition.before_round..partition.heal_before_round).contains(&round) {
                phase = Phase::Partitioned;
            }
        }
        let live = net.live_nodes();
        let senders = match s.sender {
            SenderMode::One => vec![one_sender],
            SenderMode::Random => vec![live[net.rng.random_range(0..live.len())]],
            SenderMode::All => live,
        };
        let metrics = net.round(&senders, s.content_size, s.settle_ms, s.round_timeout_ms);
        if let Some(inspection) = inspection.as_deref_mut() {
            let kinds = std::mem::take(&mut net.kinds);
            inspection.rounds.push(InspectedRound::new(&metrics, kinds));
        }
        rounds.push((phase, metrics));
    }
    if let Some(inspection) = inspection {
        inspection.after = net.shape();
    }
    RunSummary::from_rounds(&rounds)
}

fn pick_victims(net: &mut Network, fraction: f64, keep: u32) -> Vec<u32> {
    let mut candidates: Vec<u32> = net
        .live_nodes()
        .into_iter()
        .filter(|&n| n != keep && net.is_alive(n))
        .collect();
    let count = ((net.len() as f64) * fraction).round() as usize;
    let count = count.min(candidates.len());
    for i in 0..count {
        let j = net.rng.random_range(i..candidates.len());
        candidates.swap(i, j);
    }
    candidates.truncate(count);
    candidates
}

impl RunSummary {
    fn from_rounds(rounds: &[(Phase, RoundMetrics)]) -> Self {
        let count = rounds.len().max(1) as f64;
        let mean = |f: &dyn Fn(&RoundMetrics) -> f64| {
            rounds.iter().map(|(_, m)| f(m)).sum::<f64>() / count
        };
        let missed_excused = rounds
            .iter()
            .filter(|(p, _)| *p != Phase::Normal)
            .map(|(_, m)| m.missed)
            .sum();
        let missed = rounds
            .iter()
            .filter(|(p, _)| *p == Phase::Normal)
            .map(|(_, m)| m.missed)
            .sum();
        Self {
            rmr: mean(&|m| m.rmr),
            ldh: mean(&|m| f64::from(m.ldh)),
            ldh_max: rounds.iter().map(|(_, m)| m.ldh).max().unwrap_or(0),
            missed,
            missed_excused,
            round_ms: mean(&|m| m.duration_ms),
            control: mean(&|m| m.control as f64),
            membership: mean(&|m| m.membership as f64),
            per_round_missed: rounds.iter().map(|(_, m)| m.missed).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(sender: SenderMode) -> Scenario {
        Scenario {
            name: "t".into(),
            nodes: 30,
            sender: Some(sender),
            seeds: Some(vec![1, 2]),
            rounds: Some(5),
            ..Scenario::default()
        }
    }

    #[test]
    fn deterministic_from_seed() {
        let defaults = Defaults::default();
        let a = run_one(&small(SenderMode::Random), &defaults);
        let b = run_one(&small(SenderMode::Random), &defaults);
        assert_eq!(a.runs, b.runs);
    }

    #[test]
    fn small_swarm_delivers_everything() {
        let defaults = Defaults::default();
        for mode in [SenderMode::One, SenderMode::Random, SenderMode::All] {
            let report = run_one(&small(mode), &defaults);
            assert!(
                report.runs.iter().all(|r| r.missed == 0),
                "{mode:?}: {report:?}"
            );
        }
    }

    #[test]
    fn inspection_matches_the_run_and_sees_a_whole_overlay() {
        let scenario = small(SenderMode::Random);
        let defaults = Defaults::default();
        let inspection = inspect(&scenario, &defaults);
        let report = run_one(&scenario, &defaults);
        // The first seed's run, round by round: the same figures as the summary's.
        let ldh: Vec<f64> = inspection.rounds.iter().map(|r| f64::from(r.ldh)).collect();
        assert_eq!(ldh.len(), 5);
        let mean = ldh.iter().sum::<f64>() / 5.0;
        assert!((mean - report.runs[0].ldh).abs() < 1e-9, "{inspection}");
        assert!(inspection.rounds.iter().all(|r| r.messages["gossip"] > 0));
        for shape in [&inspection.before, &inspection.after] {
            assert_eq!(shape.reachable, 30, "{inspection}");
            assert_eq!(shape.asymmetric, 0, "{inspection}");
            assert_eq!(shape.active_sizes.iter().sum::<usize>(), 30);
            assert!(shape.eccentricities.iter().all(|e| (1..30).contains(e)));
        }
        assert!(inspection.to_string().contains("overlay after warm-up"));
    }

    #[test]
    fn default_file_parses() {
        let file = ScenarioFile::default_file();
        assert!(file.scenario.len() >= 10);
    }
}
