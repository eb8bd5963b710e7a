//! Saved figures of a run, to compare later runs with (`discovery/sim/baseline.toml`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::report::{Report, ScenarioReport};

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

/// The headline figures of one scenario. A phase that did not converge is recorded as a
/// negative value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRow {
    /// Scenario name.
    pub name: String,
    /// Announce intervals from the first join until every catalog was complete.
    pub join_rounds: f64,
    /// Sync bytes sent per node while joining.
    pub join_sync_bytes_per_node: f64,
    /// Seconds from the crash until the last crashed entry left the last catalog.
    pub crash_s: f64,
    /// Milliseconds from the departure until the last departed entry left the last catalog.
    pub depart_ms: f64,
    /// Delta sync bytes over full-snapshot bytes after the heal.
    pub heal_ratio: f64,
}

impl BaselineRow {
    fn of(s: &ScenarioReport) -> Self {
        let phase = |label: &str| s.phase(label);
        let converged = |label: &str| {
            phase(label)
                .and_then(|p| p.converged_ms)
                .map_or(-1.0, |v| v as f64)
        };
        Self {
            name: s.name.clone(),
            join_rounds: phase("join").and_then(|p| p.rounds).unwrap_or(-1.0),
            join_sync_bytes_per_node: phase("join").map_or(0.0, |p| p.sync_bytes_per_node.0),
            crash_s: converged("crash") / 1000.0,
            depart_ms: converged("depart"),
            heal_ratio: phase("heal").map_or(0.0, |p| p.delta_ratio()),
        }
    }

    /// Whether `self` is worse than `base` beyond noise: a phase that no longer converges,
    /// or a figure up by more than 10% (plus a small absolute margin).
    fn regressed_from(&self, base: &BaselineRow) -> bool {
        let worse = |now: f64, base: f64, margin: f64| {
            (base >= 0.0 && now < 0.0) || (now >= 0.0 && base >= 0.0 && now > base * 1.1 + margin)
        };
        worse(self.join_rounds, base.join_rounds, 0.05)
            || worse(
                self.join_sync_bytes_per_node,
                base.join_sync_bytes_per_node,
                1024.0,
            )
            || worse(self.crash_s, base.crash_s, 1.0)
            || worse(self.depart_ms, base.depart_ms, 10.0)
            || worse(self.heal_ratio, base.heal_ratio, 0.002)
    }
}

impl Report {
    /// The figures to save and compare later runs with.
    pub fn baseline(&self) -> Baseline {
        Baseline {
            scenario: self.scenarios.iter().map(BaselineRow::of).collect(),
        }
    }

    /// Compares with a saved baseline (scenarios matched by name).
    pub fn compare(&self, baseline: &Baseline) -> Comparison {
        let rows = self
            .scenarios
            .iter()
            .filter_map(|s| {
                let base = baseline.scenario.iter().find(|b| b.name == s.name)?;
                Some((base.clone(), BaselineRow::of(s)))
            })
            .collect();
        Comparison { rows }
    }
}

/// A run beside a baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// (baseline, now) per scenario found in both.
    pub rows: Vec<(BaselineRow, BaselineRow)>,
}

impl Comparison {
    /// Whether any scenario got worse (see the thresholds in the row comparison).
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|(base, now)| now.regressed_from(base))
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| scenario | join rounds | join sync B/node | crash s | depart ms | heal ratio | |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|")?;
        for (base, now) in &self.rows {
            writeln!(
                f,
                "| {} | {:.2} → {:.2} | {:.0} → {:.0} | {:.1} → {:.1} | {:.0} → {:.0} | {:.3} → {:.3} | {} |",
                now.name,
                base.join_rounds,
                now.join_rounds,
                base.join_sync_bytes_per_node,
                now.join_sync_bytes_per_node,
                base.crash_s,
                now.crash_s,
                base.depart_ms,
                now.depart_ms,
                base.heal_ratio,
                now.heal_ratio,
                if now.regressed_from(base) {
                    "WORSE"
                } else {
                    "ok"
                },
            )?;
        }
        Ok(())
    }
}
