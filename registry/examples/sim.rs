//! Runs registry simulator scenarios and prints the report.
//!
//! `cargo run --release -p weft-registry --no-default-features --example sim -- [FILE.toml]`
//! (default: `registry/sim/default.toml`). `cargo xtask sim registry` does the same.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use weft_registry::sim::{ScenarioFile, run_scenarios};

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/sim/default.toml").to_owned());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("cannot read {path}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let file: ScenarioFile = match toml::from_str(&text) {
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
    if report.goals_met() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
