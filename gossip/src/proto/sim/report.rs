//! Simulation results: per-seed summaries, mean/min/max over seeds, a printable table, and
//! the headline figures that `cargo xtask sim` keeps as baselines.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

use super::scenario::{Anchor, Resolved, SenderMode};

/// One run (one seed) of a scenario, averaged over its rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Mean RMR over rounds.
    pub rmr: f64,
    /// Mean LDH over rounds.
    pub ldh: f64,
    /// Highest LDH of any round.
    pub ldh_max: u16,
    /// Missed deliveries in rounds where nothing may be missed (the goal is 0).
    pub missed: u64,
    /// Missed deliveries in excused rounds (during a partition, first round after failures).
    pub missed_excused: u64,
    /// Mean round duration, virtual milliseconds.
    pub round_ms: f64,
    /// Mean Plumtree control messages per round.
    pub control: f64,
    /// Mean membership messages per round.
    pub membership: f64,
    /// Missed deliveries of every round, in order.
    pub per_round_missed: Vec<u64>,
}

/// Mean, min and max of one figure over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

impl Stat {
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let values: Vec<f64> = values.collect();
        if values.is_empty() {
            return Self {
                mean: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self { mean, min, max }
    }
}

/// Results of one scenario over all its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// Node count.
    pub nodes: usize,
    /// Who broadcast.
    pub sender: SenderMode,
    /// Rounds per run.
    pub rounds: usize,
    /// One summary per seed.
    pub runs: Vec<RunSummary>,
    /// RMR over seeds.
    pub rmr: Stat,
    /// LDH over seeds.
    pub ldh: Stat,
    /// Missed (non-excused) over seeds.
    pub missed: Stat,
    /// Missed in excused rounds over seeds.
    pub missed_excused: Stat,
    /// Round duration over seeds.
    pub round_ms: Stat,
    /// Control messages per round over seeds.
    pub control: Stat,
    /// Reference figures.
    pub anchor: Option<Anchor>,
    /// Wall time of all seeds.
    pub wall: Duration,
}

impl ScenarioReport {
    pub(crate) fn new(s: &Resolved, runs: Vec<RunSummary>, wall: Duration) -> Self {
        Self {
            name: s.name.clone(),
            nodes: s.nodes,
            sender: s.sender,
            rounds: s.rounds,
            rmr: Stat::of(runs.iter().map(|r| r.rmr)),
            ldh: Stat::of(runs.iter().map(|r| r.ldh)),
            missed: Stat::of(runs.iter().map(|r| r.missed as f64)),
            missed_excused: Stat::of(runs.iter().map(|r| r.missed_excused as f64)),
            round_ms: Stat::of(runs.iter().map(|r| r.round_ms)),
            control: Stat::of(runs.iter().map(|r| r.control)),
            anchor: s.anchor,
            wall,
            runs,
        }
    }
}

/// Results of a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One entry per scenario, in file order.
    pub scenarios: Vec<ScenarioReport>,
}

impl Report {
    /// The headline figures of every scenario — `(scenario, [(figure, value)])`: mean RMR,
    /// LDH, missed deliveries and round duration over seeds — which `cargo xtask sim gossip
    /// --save-baseline` keeps and `--baseline` compares later runs with.
    pub fn figures(&self) -> Vec<(String, Vec<(&'static str, f64)>)> {
        self.scenarios
            .iter()
            .map(|s| {
                let figures = vec![
                    ("rmr", s.rmr.mean),
                    ("ldh", s.ldh.mean),
                    ("missed", s.missed.mean),
                    ("round_ms", s.round_ms.mean),
                ];
                (s.name.clone(), figures)
            })
            .collect()
    }
}

/// Missed deliveries: the mean over seeds, with the worst seed when it differs.
fn missed(s: &Stat) -> String {
    if s.max == s.mean {
        format!("{}", s.mean)
    } else {
        format!("{:.2} (max {})", s.mean, s.max)
    }
}

fn stat(s: &Stat, precision: usize) -> String {
    format!(
        "{:.p$} [{:.p$}–{:.p$}]",
        s.mean,
        s.min,
        s.max,
        p = precision
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| scenario | RMR mean [min–max] | LDH mean [min–max] | missed | missed (excused) | round ms | control/round | anchor RMR | anchor LDH | anchor round ms | wall s |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|---|")?;
        for s in &self.scenarios {
            let (arm, aldh, around) = match s.anchor {
                Some(a) => (
                    format!("{:.2}", a.rmr),
                    format!("{:.1}", a.ldh),
                    format!("{:.0}", a.round_ms),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {} | {} | {} | {:.1} |",
                s.name,
                stat(&s.rmr, 2),
                stat(&s.ldh, 1),
                missed(&s.missed),
                missed(&s.missed_excused),
                s.round_ms.mean,
                s.control.mean,
                arm,
                aldh,
                around,
                s.wall.as_secs_f64(),
            )?;
        }
        Ok(())
    }
}
