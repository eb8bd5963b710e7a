//! Runs a discovery scenario file and prints the report, and optionally compares it with a
//! saved baseline or saves one:
//! `cargo run --release -p weft-discovery --no-default-features --example sim -- [FILE.toml]
//! [--baseline BASELINE.toml | --save-baseline BASELINE.toml]`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use weft_discovery::sim::{Baseline, ScenarioFile, run_scenarios};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/sim/default.toml").into());
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let file = ScenarioFile::from_toml(&text).unwrap_or_else(|err| panic!("{path}: {err}"));
    let report = run_scenarios(&file);
    println!("{report}");
    let mut failed = !report.goals_met();
    if let Some(save) = flag("--save-baseline") {
        std::fs::write(&save, report.baseline().to_toml())
            .unwrap_or_else(|err| panic!("{save}: {err}"));
        println!("baseline saved to {save}");
    }
    if let Some(base) = flag("--baseline") {
        let text = std::fs::read_to_string(&base).unwrap_or_else(|err| panic!("{base}: {err}"));
        let baseline = Baseline::from_toml(&text).unwrap_or_else(|err| panic!("{base}: {err}"));
        let comparison = report.compare(&baseline);
        println!("{comparison}");
        failed |= comparison.regressed();
    }
    if failed {
        eprintln!("some goals were missed, or figures regressed");
        std::process::exit(1);
    }
}
