//! Saved simulator figures, and a later run compared with them.
//!
//! Each layer's simulator report lists its headline figures per scenario
//! (`Report::figures()`: scenario name, then `(figure, value)` pairs); keeping them as a
//! baseline file and judging a later run is tooling, so it lives here, once for every layer.
//! A figure that never converged is `inf` (TOML writes it so).
//!
//! The file has one table per scenario:
//!
//! ```toml
//! [[scenario]]
//! name = "one sender, 20"
//! rmr = 0.01
//! ldh = 2.0
//! ```

use std::{collections::BTreeMap, fmt::Write as _};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// A layer's figures: per scenario, `(figure, value)` in report order.
pub(crate) type Figures = Vec<(String, Vec<(&'static str, f64)>)>;

/// How far a figure may move from its baseline before the run counts as worse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tolerance {
    /// Must not go down at all (success rates).
    NoDecrease,
    /// Must not go up at all (missed deliveries, stale records).
    NoIncrease,
    /// May go up by at most `relative × baseline + absolute` (costs, hops, times).
    Slack {
        /// Share of the baseline value.
        relative: f64,
        /// Absolute allowance, for figures near zero.
        absolute: f64,
    },
    /// Shown, never judged (figures that move with unrelated tuning).
    Shown,
}

impl Tolerance {
    fn is_worse(self, base: f64, now: f64) -> bool {
        match self {
            Self::NoDecrease => now < base,
            Self::NoIncrease => now > base,
            Self::Slack { relative, absolute } => now > base + base.abs() * relative + absolute,
            Self::Shown => false,
        }
    }
}

/// One scenario as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    name: String,
    #[serde(flatten)]
    figures: BTreeMap<String, f64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    scenario: Vec<Row>,
}

/// The figures as a baseline file.
pub(crate) fn to_toml(figures: &Figures) -> Result<String> {
    let file = File {
        scenario: figures
            .iter()
            .map(|(name, values)| Row {
                name: name.clone(),
                figures: values.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
            })
            .collect(),
    };
    toml::to_string(&file).context("writing the baseline")
}

/// A run beside its baseline: a table, and whether any judged figure got worse.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    /// Markdown table, `base → now` per figure, `WORSE` where a figure is out of tolerance.
    pub(crate) table: String,
    /// Whether any scenario got worse.
    pub(crate) regressed: bool,
}

/// Compares a run with a saved baseline; scenarios are matched by name, figures the baseline
/// lacks are shown as new.
pub(crate) fn compare(
    saved: &str,
    now: &Figures,
    tolerance: impl Fn(&str) -> Tolerance,
) -> Result<Comparison> {
    let saved: File = toml::from_str(saved).context("reading the baseline")?;
    let mut table =
        String::from("| scenario | figures, baseline → now | verdict |\n|---|---|---|\n");
    let mut regressed = false;
    for (name, figures) in now {
        let Some(base) = saved.scenario.iter().find(|row| row.name == *name) else {
            continue;
        };
        let mut cells = Vec::new();
        let mut worse = Vec::new();
        for (figure, value) in figures {
            match base.figures.get(*figure) {
                Some(&was) => {
                    cells.push(format!("{figure} {} → {}", show(was), show(*value)));
                    if tolerance(figure).is_worse(was, *value) {
                        worse.push(*figure);
                    }
                }
                None => cells.push(format!("{figure} (new) {}", show(*value))),
            }
        }
        let verdict = if worse.is_empty() {
            "ok".to_string()
        } else {
            regressed = true;
            format!("WORSE: {}", worse.join(", "))
        };
        let _ = writeln!(table, "| {name} | {} | {verdict} |", cells.join("; "));
    }
    Ok(Comparison { table, regressed })
}

/// A figure with as many decimals as it needs.
fn show(value: f64) -> String {
    if value.is_infinite() {
        "never".into()
    } else if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rmr: f64, success: f64, converged: f64) -> Figures {
        vec![(
            "a".into(),
            vec![
                ("rmr", rmr),
                ("success", success),
                ("converged_s", converged),
            ],
        )]
    }

    fn tolerance(figure: &str) -> Tolerance {
        match figure {
            "success" => Tolerance::NoDecrease,
            _ => Tolerance::Slack {
                relative: 0.1,
                absolute: 0.01,
            },
        }
    }

    #[test]
    fn a_run_matches_its_own_baseline_and_round_trips() {
        let run = figures(0.5, 1.0, 90.0);
        let saved = to_toml(&run).unwrap();
        assert!(
            saved.contains("name = \"a\"") && saved.contains("rmr = 0.5"),
            "{saved}"
        );
        let comparison = compare(&saved, &run, tolerance).unwrap();
        assert!(!comparison.regressed, "{}", comparison.table);
        assert!(comparison.table.contains("| a | "));
    }

    #[test]
    fn worse_figures_are_named() {
        let saved = to_toml(&figures(0.5, 1.0, 90.0)).unwrap();
        let within = compare(&saved, &figures(0.55, 1.0, 90.0), tolerance).unwrap();
        assert!(!within.regressed, "{}", within.table);
        let worse = compare(&saved, &figures(0.6, 0.99, 90.0), tolerance).unwrap();
        assert!(worse.regressed);
        assert!(
            worse.table.contains("WORSE: rmr, success"),
            "{}",
            worse.table
        );
    }

    #[test]
    fn never_converging_is_worse_and_survives_the_file() {
        let saved = to_toml(&figures(0.5, 1.0, f64::INFINITY)).unwrap();
        let same = compare(&saved, &figures(0.5, 1.0, f64::INFINITY), tolerance).unwrap();
        assert!(!same.regressed, "{}", same.table);
        let saved = to_toml(&figures(0.5, 1.0, 90.0)).unwrap();
        let worse = compare(&saved, &figures(0.5, 1.0, f64::INFINITY), tolerance).unwrap();
        assert!(
            worse.regressed && worse.table.contains("never"),
            "{}",
            worse.table
        );
    }
}
