//! Runs registry simulator scenarios and prints the report.
//!
//! `cargo run --release -p weft-registry --no-default-features --example sim -- [FILE.toml]`
//! (default: `registry/sim/default.toml`). `cargo xtask sim registry` does the same.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use weft_registry::sim::{Baseline, ScenarioFile, run_scenarios};

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with("--"))
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/sim/default.toml").to_owned());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("cannot read {path}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let file = match ScenarioFile::from_toml(&text) {
        Ok(file) => file,
        Err(err) => {
            eprintln!("{path}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let report = run_scenarios(&file);
    println!("{report}");
    println!("(ran in {:.1} s)", started.elapsed().as_secs_f64());
    // `--baseline FILE` compares with a saved run; `--save-baseline FILE` saves this one.
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(path) = flag("--save-baseline")
        && let Err(err) = std::fs::write(path, report.baseline().to_toml())
    {
        eprintln!("cannot write {path}: {err}");
        return ExitCode::FAILURE;
    }
    if let Some(path) = flag("--baseline") {
        let base = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Baseline::from_toml(&t).map_err(|e| e.to_string()));
        match base {
            Ok(base) => {
                let comparison = report.compare(&base);
                println!("{comparison}");
                if comparison.regressed() {
                    eprintln!("regressed against {path}");
                    return ExitCode::FAILURE;
                }
            }
            Err(err) => {
                eprintln!("{path}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    if report.goals_met() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
