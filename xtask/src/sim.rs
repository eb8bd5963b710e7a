//! `cargo xtask sim LAYER [FILE.toml]`: runs a layer's simulator over its proto state machine.
//!
//! Every layer ships a default scenario file at `<layer>/sim/default.toml`. Reports are the
//! same for the same file and seeds. Every layer can save its figures as a baseline
//! and compare a later run with it; discovery and registry check their goals and fail when one
//! is missed, and sync fails when a run does not converge.

mod sync;

use std::{path::PathBuf, time::Instant};

use anyhow::{Context, Result, bail};

use crate::baseline::{self, Figures, Tolerance};

/// The layers with a simulator.
pub(crate) const LAYERS: &[&str] = &["gossip", "discovery", "registry", "sync"];

/// Simulator options, from the command line.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimArgs {
    /// Which layer's simulator.
    pub(crate) layer: String,
    /// The scenario file (default: `<layer>/sim/default.toml`).
    pub(crate) file: Option<PathBuf>,
    /// Run only scenarios whose name contains this.
    pub(crate) only: Option<String>,
    /// Compare with this saved baseline (gossip).
    pub(crate) baseline: Option<PathBuf>,
    /// Save the figures as a baseline here (gossip).
    pub(crate) save_baseline: Option<PathBuf>,
    /// Instead of the report, inspect each scenario's first seed round by round (gossip).
    pub(crate) inspect: bool,
}

pub(crate) fn run(args: &SimArgs) -> Result<()> {
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}/sim/default.toml", args.layer)));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading scenario file {}", path.display()))?;
    let started = Instant::now();
    if args.inspect && args.layer != "gossip" {
        bail!("--inspect is for the gossip simulator");
    }
    let outcome = match args.layer.as_str() {
        "gossip" if args.inspect => inspect_gossip(args, &text),
        "gossip" => gossip(args, &text),
        "discovery" => discovery(args, &text),
        "registry" => registry(args, &text),
        "sync" => sync(args, &text),
        other => bail!("no simulator for {other:?}; layers: {}", LAYERS.join(", ")),
    };
    println!(
        "({} scenarios from {}, {:.1} s wall)",
        args.layer,
        path.display(),
        started.elapsed().as_secs_f64()
    );
    outcome
}

fn keep(name: &str, only: Option<&String>) -> bool {
    only.is_none_or(|only| name.contains(only.as_str()))
}

/// What xtask needs of a layer's simulator report.
trait SimReport: std::fmt::Display {
    /// Whether every goal the report checks held, for layers whose reports check goals.
    fn goals_met(&self) -> Option<bool> {
        None
    }
    /// The headline figures per scenario, kept as baselines.
    fn figures(&self) -> Figures;
    /// How far a figure may move from its baseline.
    fn tolerance(figure: &str) -> Tolerance;
}

/// Prints the report, saves or compares a baseline, and fails on a missed goal or regression.
fn finish<R: SimReport>(layer: &str, report: &R, args: &SimArgs) -> Result<()> {
    println!("{report}");
    if let Some(path) = &args.save_baseline {
        std::fs::write(path, baseline::to_toml(&report.figures())?)?;
        println!("baseline saved to {}", path.display());
    }
    if let Some(path) = &args.baseline {
        let saved = std::fs::read_to_string(path)
            .with_context(|| format!("reading baseline {}", path.display()))?;
        let comparison = baseline::compare(&saved, &report.figures(), R::tolerance)?;
        println!("{}", comparison.table);
        anyhow::ensure!(
            !comparison.regressed,
            "{layer} regressed against {}",
            path.display()
        );
    }
    if report.goals_met() == Some(false) {
        bail!("{layer} missed a goal");
    }
    Ok(())
}

/// Slack for figures that wander a little from run to run of different code.
const fn slack(relative: f64, absolute: f64) -> Tolerance {
    Tolerance::Slack { relative, absolute }
}

impl SimReport for weft_gossip::sim::Report {
    fn figures(&self) -> Figures {
        weft_gossip::sim::Report::figures(self)
    }
    fn tolerance(figure: &str) -> Tolerance {
        match figure {
            "missed" => Tolerance::NoIncrease,
            "rmr" => slack(0.05, 0.005),
            "ldh" => slack(0.05, 0.05),
            _ => Tolerance::Shown,
        }
    }
}

impl SimReport for weft_discovery::sim::Report {
    fn goals_met(&self) -> Option<bool> {
        Some(weft_discovery::sim::Report::goals_met(self))
    }
    fn figures(&self) -> Figures {
        weft_discovery::sim::Report::figures(self)
    }
    fn tolerance(figure: &str) -> Tolerance {
        match figure {
            "join_rounds" => slack(0.1, 0.05),
            "join_sync_bytes_per_node" => slack(0.1, 1024.0),
            "crash_s" => slack(0.1, 1.0),
            "depart_ms" => slack(0.1, 10.0),
            "heal_ratio" => slack(0.1, 0.002),
            "flood_honest_evicted" => Tolerance::NoIncrease,
            _ => Tolerance::Shown,
        }
    }
}

impl SimReport for weft_registry::sim::Report {
    fn goals_met(&self) -> Option<bool> {
        Some(weft_registry::sim::Report::goals_met(self))
    }
    fn figures(&self) -> Figures {
        weft_registry::sim::Report::figures(self)
    }
    fn tolerance(figure: &str) -> Tolerance {
        match figure {
            "success" | "success_churn" => Tolerance::NoDecrease,
            "stale_after_completion" => Tolerance::NoIncrease,
            "hops_p50" => slack(0.1, 0.5),
            "messages_mean" | "messages_mean_churn" => slack(0.1, 1.0),
            "first_result_ms_p50" => slack(0.1, 10.0),
            "withdrawal_ms_p50" => slack(0.1, 200.0),
            _ => Tolerance::Shown,
        }
    }
}

fn gossip(args: &SimArgs, text: &str) -> Result<()> {
    use weft_gossip::sim::{ScenarioFile, run_scenarios};
    let mut file = ScenarioFile::from_toml(text)?;
    file.scenario.retain(|s| keep(&s.name, args.only.as_ref()));
    finish("gossip", &run_scenarios(&file), args)
}

fn inspect_gossip(args: &SimArgs, text: &str) -> Result<()> {
    use weft_gossip::sim::{ScenarioFile, inspect};
    let file = ScenarioFile::from_toml(text)?;
    for scenario in file
        .scenario
        .iter()
        .filter(|s| keep(&s.name, args.only.as_ref()))
    {
        println!("{}", inspect(scenario, &file.defaults));
    }
    Ok(())
}

fn discovery(args: &SimArgs, text: &str) -> Result<()> {
    use weft_discovery::sim::{ScenarioFile, run_scenarios};
    let mut file = ScenarioFile::from_toml(text)?;
    file.scenarios.retain(|s| keep(&s.name, args.only.as_ref()));
    finish("discovery", &run_scenarios(&file), args)
}

fn registry(args: &SimArgs, text: &str) -> Result<()> {
    use weft_registry::sim::{ScenarioFile, run_scenarios};
    let mut file: ScenarioFile = toml::from_str(text)?;
    file.scenarios.retain(|s| keep(&s.name, args.only.as_ref()));
    finish("registry", &run_scenarios(&file), args)
}

impl SimReport for sync::Reports {
    fn goals_met(&self) -> Option<bool> {
        Some(self.all_converged())
    }
    fn figures(&self) -> Figures {
        sync::Reports::figures(self)
    }
    fn tolerance(figure: &str) -> Tolerance {
        match figure {
            "converged" | "live_delivered" => Tolerance::NoDecrease,
            "failed_sessions" => Tolerance::NoIncrease,
            "converge_ms" => slack(0.1, 50.0),
            "kb_per_node" => slack(0.05, 1.0),
            "bytes_per_missing_byte" => slack(0.05, 0.02),
            "round_trips" => slack(0.1, 0.2),
            "live_p50_ms" | "live_max_ms" => slack(0.2, 20.0),
            _ => Tolerance::Shown,
        }
    }
}

fn sync(args: &SimArgs, text: &str) -> Result<()> {
    let mut file = sync::ScenarioFile::from_toml(text)?;
    file.scenario.retain(|s| keep(&s.name, args.only.as_ref()));
    finish("sync", &sync::run_scenarios(&file), args)
}
