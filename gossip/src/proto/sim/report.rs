//! Simulation results: per-seed summaries, mean/min/max over seeds, a printable table, and
//! baselines to compare later runs with.

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
    /// The figures to save and compare later runs with.
    pub fn baseline(&self) -> Baseline {
        Baseline {
            scenario: self
                .scenarios
                .iter()
                .map(|s| BaselineRow {
                    name: s.name.clone(),
                    rmr: s.rmr.mean,
                    ldh: s.ldh.mean,
                    missed: s.missed.mean,
                    round_ms: s.round_ms.mean,
                })
                .collect(),
        }
    }

    /// Compares with a saved baseline (scenarios matched by name).
    pub fn compare(&self, baseline: &Baseline) -> Comparison {
        let rows = self
            .scenarios
            .iter()
            .filter_map(|s| {
                let base = baseline.scenario.iter().find(|b| b.name == s.name)?;
                Some((
                    s.name.clone(),
                    base.clone(),
                    BaselineRow {
                        name: s.name.clone(),
                        rmr: s.rmr.mean,
                        ldh: s.ldh.mean,
                        missed: s.missed.mean,
                        round_ms: s.round_ms.mean,
                    },
                ))
            })
            .collect();
        Comparison { rows }
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

/// Saved figures of a run, written as TOML.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Baseline {
    /// One row per scenario.
    pub scenario: Vec<BaselineRow>,
}

impl Baseline {
    /// Parses a saved baseline.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Writes the baseline as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Mean figures of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRow {
    /// Scenario name.
    pub name: String,
    /// Mean RMR.
    pub rmr: f64,
    /// Mean LDH.
    pub ldh: f64,
    /// Mean missed.
    pub missed: f64,
    /// Mean round duration, ms.
    pub round_ms: f64,
}

/// A run beside a baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// (name, baseline, now).
    pub rows: Vec<(String, BaselineRow, BaselineRow)>,
}

impl Comparison {
    /// Whether any scenario got worse: more missed, or RMR/LDH up by more than 5%.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|(_, base, now)| {
            now.missed > base.missed
                || now.rmr > base.rmr * 1.05 + 0.005
                || now.ldh > base.ldh * 1.05 + 0.05
        })
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| scenario | RMR base → now | LDH base → now | missed base → now | round ms base → now |"
        )?;
        writeln!(f, "|---|---|---|---|---|")?;
        for (name, base, now) in &self.rows {
            writeln!(
                f,
                "| {name} | {:.2} → {:.2} | {:.1} → {:.1} | {:.0} → {:.0} | {:.0} → {:.0} |",
                base.rmr,
                now.rmr,
                base.ldh,
                now.ldh,
                base.missed,
                now.missed,
                base.round_ms,
                now.round_ms
            )?;
        }
        Ok(())
    }
}
