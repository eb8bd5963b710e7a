//! Saved figures of a run, to compare later runs with (`registry/sim/baseline.toml`).

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

/// The headline figures of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRow {
    /// Scenario name.
    pub name: String,
    /// Median hops to the first provider, without churn.
    pub hops_p50: f64,
    /// Share of lookups that found every provider, without churn.
    pub success: f64,
    /// The same with nodes removed.
    pub success_churn: f64,
    /// Mean requests per lookup, without churn.
    pub messages_mean: f64,
    /// Mean requests per lookup, with nodes removed.
    pub messages_mean_churn: f64,
    /// Median milliseconds to the first provider, without churn.
    pub first_result_ms_p50: f64,
    /// Median milliseconds for a withdrawal to complete.
    pub withdrawal_ms_p50: f64,
    /// Probes that returned a withdrawn record after its withdrawal completed.
    pub stale_after_completion: usize,
}

impl BaselineRow {
    fn of(s: &ScenarioReport) -> Self {
        let calm = s.phases.first();
        let churn = s.phases.get(1);
        Self {
            name: s.name.clone(),
            hops_p50: calm.map_or(0.0, |p| p.hops.p50),
            success: calm.map_or(1.0, |p| p.success),
            success_churn: churn.map_or(1.0, |p| p.success),
            messages_mean: calm.map_or(0.0, |p| p.messages_mean),
            messages_mean_churn: churn.map_or(0.0, |p| p.messages_mean),
            first_result_ms_p50: calm.map_or(0.0, |p| p.first_result_ms.p50),
            withdrawal_ms_p50: s.withdrawal.completion_ms.p50,
            stale_after_completion: s.withdrawal.stale_after_completion,
        }
    }

    /// Whether `self` is worse than `base` beyond noise: any lost success, a stale record that
    /// was not there, or a figure up by more than 10% (plus a small absolute margin).
    fn regressed_from(&self, base: &BaselineRow) -> bool {
        let worse = |now: f64, base: f64, margin: f64| now > base * 1.1 + margin;
        self.success < base.success
            || self.success_churn < base.success_churn
            || self.stale_after_completion > base.stale_after_completion
            || worse(self.hops_p50, base.hops_p50, 0.5)
            || worse(self.messages_mean, base.messages_mean, 1.0)
            || worse(self.messages_mean_churn, base.messages_mean_churn, 1.0)
            || worse(self.first_result_ms_p50, base.first_result_ms_p50, 10.0)
            || worse(self.withdrawal_ms_p50, base.withdrawal_ms_p50, 200.0)
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
            "| scenario | hops p50 | success | success churn | msgs/lookup | msgs churn | first result ms | withdrawal ms | stale after |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|")?;
        for (base, now) in &self.rows {
            writeln!(
                f,
                "| {} | {:.1} → {:.1} | {:.2}% → {:.2}% | {:.2}% → {:.2}% | {:.1} → {:.1} | {:.1} → {:.1} | {:.0} → {:.0} | {:.0} → {:.0} | {} → {} |",
                now.name,
                base.hops_p50,
                now.hops_p50,
                base.success * 100.0,
                now.success * 100.0,
                base.success_churn * 100.0,
                now.success_churn * 100.0,
                base.messages_mean,
                now.messages_mean,
                base.messages_mean_churn,
                now.messages_mean_churn,
                base.first_result_ms_p50,
                now.first_result_ms_p50,
                base.withdrawal_ms_p50,
                now.withdrawal_ms_p50,
                base.stale_after_completion,
                now.stale_after_completion,
            )?;
        }
        Ok(())
    }
}
