//! `cargo xtask sim sync`: the scenario file, one run per scenario and seed, and the tables.
//!
//! `weft_sync::sim` runs one scenario with one seed; the file format and the seeds are
//! tooling, so they live here. A file lists its seeds once and its scenarios as
//! `weft_sync::sim::Scenario` tables:
//!
//! ```toml
//! seeds = [1, 2]
//!
//! [[scenario]]
//! name = "20 nodes, 90% of 1,000"
//! nodes = 20
//! ```

use std::{fmt, time::Duration};

use anyhow::{Context, Result};
use serde::Deserialize;
use weft_sync::sim::{Report, Scenario, run_scenario};

use crate::{baseline::Figures, table::Table};

/// A sync scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    /// Every scenario runs once per seed.
    #[serde(default = "default_seeds")]
    pub(crate) seeds: Vec<u64>,
    /// The scenarios, in file order; unset fields take `Scenario::default()`'s values.
    #[serde(default)]
    pub(crate) scenario: Vec<Scenario>,
}

fn default_seeds() -> Vec<u64> {
    vec![1]
}

impl ScenarioFile {
    pub(crate) fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).context("reading the sync scenario file")
    }
}

/// Every scenario's reports, one per seed.
#[derive(Debug)]
pub(crate) struct Reports(Vec<(String, Vec<Report>)>);

/// Runs every scenario of `file` with every seed, one after another (deterministic, and the
/// machine's cores are shared).
pub(crate) fn run_scenarios(file: &ScenarioFile) -> Reports {
    Reports(
        file.scenario
            .iter()
            .map(|scenario| {
                let reports = file
                    .seeds
                    .iter()
                    .map(|&seed| run_scenario(scenario, seed))
                    .collect();
                (scenario.name.clone(), reports)
            })
            .collect(),
    )
}

impl Reports {
    /// Whether every run of every scenario converged.
    pub(crate) fn all_converged(&self) -> bool {
        self.0
            .iter()
            .all(|(_, reports)| reports.iter().all(|r| r.converged))
    }

    /// Per scenario, the means over its seeds; a time is `inf` if any seed did not converge.
    pub(crate) fn figures(&self) -> Figures {
        self.0
            .iter()
            .map(|(name, reports)| {
                let converged = mean(reports, |r| if r.converged { 1.0 } else { 0.0 });
                let converge_ms = if converged < 1.0 {
                    f64::INFINITY
                } else {
                    mean(reports, |r| ms(r.converge_time))
                };
                let figures = vec![
                    ("converged", converged),
                    ("converge_ms", converge_ms),
                    ("kb_per_node", mean(reports, |r| r.bytes_per_node / 1e3)),
                    (
                        "bytes_per_missing_byte",
                        mean(reports, |r| r.overhead_ratio),
                    ),
                    ("round_trips", mean(reports, |r| r.round_trips)),
                    (
                        "failed_sessions",
                        mean(reports, |r| r.failed_sessions as f64),
                    ),
                    (
                        "live_delivered",
                        mean(reports, |r| {
                            f64::from(r.live_delivered) / f64::from(r.live_items.max(1))
                        }),
                    ),
                    ("live_p50_ms", mean(reports, |r| ms(r.live_p50))),
                    ("live_max_ms", mean(reports, |r| ms(r.live_max))),
                ];
                (name.clone(), figures)
            })
            .collect()
    }
}

impl fmt::Display for Reports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, reports)) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let mut table = Table::new([
                "seed",
                "converged",
                "converge ms",
                "KB/node",
                "bytes/missing",
                "round trips",
                "failed",
                "live",
                "live p50 ms",
                "live max ms",
            ]);
            for r in reports {
                table.row([
                    r.seed.to_string(),
                    if r.converged { "yes" } else { "NO" }.to_string(),
                    format!("{:.0}", ms(r.converge_time)),
                    format!("{:.1}", r.bytes_per_node / 1e3),
                    format!("{:.2}", r.overhead_ratio),
                    format!("{:.1}", r.round_trips),
                    r.failed_sessions.to_string(),
                    format!("{}/{}", r.live_delivered, r.live_items),
                    format!("{:.0}", ms(r.live_p50)),
                    format!("{:.0}", ms(r.live_max)),
                ]);
            }
            write!(f, "{name}\n{}", table.render())?;
        }
        Ok(())
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn mean(reports: &[Report], figure: impl Fn(&Report) -> f64) -> f64 {
    reports.iter().map(figure).sum::<f64>() / reports.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_parse() {
        for path in ["../sync/sim/default.toml", "../sync/sim/1k.toml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
            let text = std::fs::read_to_string(&path).unwrap();
            let file = ScenarioFile::from_toml(&text).unwrap();
            assert!(
                !file.scenario.is_empty() && !file.seeds.is_empty(),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn a_tiny_scenario_converges_and_reports_its_figures() {
        let file = ScenarioFile::from_toml(
            "seeds = [3]\n[[scenario]]\nname = \"tiny\"\nnodes = 4\nitems = 50\nlive_items = 1\n",
        )
        .unwrap();
        let reports = run_scenarios(&file);
        assert!(reports.all_converged(), "{reports}");
        let figures = reports.figures();
        assert_eq!(figures[0].0, "tiny");
        assert!(figures[0].1.contains(&("converged", 1.0)));
        assert!(reports.to_string().contains("tiny"));
    }
}
