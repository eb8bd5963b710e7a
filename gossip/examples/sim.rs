//! Runs gossip simulator scenarios (the lead wires the same API into `cargo xtask sim gossip`).
//!
//! `cargo run --release -p weft-gossip --no-default-features --example sim -- [FILE.toml]
//! [--only SUBSTRING] [--save BASELINE.toml] [--baseline BASELINE.toml]`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use weft_gossip::sim::{Baseline, ScenarioFile, run_scenarios};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut file, mut only, mut save, mut baseline) = (None, None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => only = args.next(),
            "--save" => save = args.next(),
            "--baseline" => baseline = args.next(),
            _ => file = Some(arg),
        }
    }
    let mut scenarios = match file {
        Some(path) => ScenarioFile::from_toml(&std::fs::read_to_string(path)?)?,
        None => ScenarioFile::default_file(),
    };
    if let Some(only) = only {
        scenarios.scenario.retain(|s| s.name.contains(&only));
    }
    let report = run_scenarios(&scenarios);
    println!("{report}");
    if std::env::var_os("SIM_VERBOSE").is_some() {
        for scenario in &report.scenarios {
            for run in &scenario.runs {
                println!(
                    "{}: missed per round {:?}",
                    scenario.name, run.per_round_missed
                );
            }
        }
    }
    if let Some(path) = baseline {
        let base = Baseline::from_toml(&std::fs::read_to_string(path)?)?;
        let comparison = report.compare(&base);
        println!("{comparison}");
        if comparison.regressed() {
            eprintln!("regression against the baseline");
            std::process::exit(1);
        }
    }
    if let Some(path) = save {
        std::fs::write(path, report.baseline().to_toml())?;
    }
    Ok(())
}
