//! Runs a discovery scenario file and prints the report:
//! `cargo run --release -p weft-discovery --no-default-features --example sim -- [FILE.toml]`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use weft_discovery::sim::{ScenarioFile, run_scenarios};

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/sim/default.toml").into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let file = ScenarioFile::from_toml(&text).unwrap_or_else(|err| panic!("{path}: {err}"));
    let report = run_scenarios(&file);
    println!("{report}");
    if !report.goals_met() {
        eprintln!("some goals were missed");
        std::process::exit(1);
    }
}
