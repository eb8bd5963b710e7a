//! `cargo xtask fuzz`: builds and runs the cargo-fuzz targets in `fuzz/` (their own workspace,
//! built with nightly into `fuzz/target`), one at a time, and prints executions and crashes per
//! target. Fails when a target crashes.
//!
//! Each run reads the committed seeds (`fuzz/seeds/<target>/`) and grows a working corpus in
//! `fuzz/corpus/<target>/` (not committed); a crashing input lands in `fuzz/artifacts/<target>/`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail, ensure};

use crate::table::Table;

/// Executions per target in a smoke run, and the time cap that bounds a slow target.
const SMOKE_RUNS: u64 = 20_000;
const SMOKE_SECONDS: u64 = 10;

/// Options of `cargo xtask fuzz`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FuzzArgs {
    /// A short run of every target (what CI runs).
    pub(crate) smoke: bool,
    /// Only this target.
    pub(crate) target: Option<String>,
    /// Executions per target.
    pub(crate) runs: Option<u64>,
    /// Seconds per target.
    pub(crate) time: Option<u64>,
    /// Only list the targets.
    pub(crate) list: bool,
    /// Regenerate the seed inputs (`fuzz/seeds/`) instead of fuzzing.
    pub(crate) seeds: bool,
    /// libFuzzer's sanitizer (`none` by default: weft forbids unsafe code, and without one the
    /// fuzzers run several times faster).
    pub(crate) sanitizer: Option<String>,
}

/// What one target's run did.
#[derive(Debug, Default)]
struct Outcome {
    executions: u64,
    per_second: u64,
    seconds: f64,
    crashed: bool,
    artifact: Option<String>,
}

pub(crate) fn run(args: &FuzzArgs) -> Result<()> {
    let dir = Path::new("fuzz")
        .canonicalize()
        .context("fuzz/ is missing")?;
    let all = targets(&dir)?;
    if args.list {
        for target in &all {
            println!("{target}");
        }
        return Ok(());
    }
    if args.seeds {
        return seeds(&dir);
    }
    let chosen: Vec<String> = match &args.target {
        Some(name) => {
            ensure!(
                all.contains(name),
                "no fuzz target {name:?}; targets: {}",
                all.join(", ")
            );
            vec![name.clone()]
        }
        None => all,
    };
    let (runs, seconds) = match (args.runs, args.time, args.smoke) {
        (Some(runs), time, _) => (Some(runs), time),
        (None, Some(time), _) => (None, Some(time)),
        (None, None, true) => (Some(SMOKE_RUNS), Some(SMOKE_SECONDS)),
        (None, None, false) => bail!("say how long: --smoke, --runs N or --time SECONDS"),
    };
    let sanitizer = args.sanitizer.as_deref().unwrap_or("none");

    let started = Instant::now();
    println!("== building {} fuzz targets (nightly) ==", chosen.len());
    let mut build = fuzz_command(&dir);
    build.args(["build", "--sanitizer", sanitizer]);
    if let [only] = chosen.as_slice() {
        build.arg(only);
    }
    let status = build
        .status()
        .context("running cargo +nightly fuzz build")?;
    ensure!(status.success(), "building the fuzz targets failed");
    let build_seconds = started.elapsed().as_secs_f64();

    let mut table = Table::new(["target", "executions", "exec/s", "seconds", "crashes"]);
    let mut crashed = Vec::new();
    for target in &chosen {
        println!("== fuzzing {target} ==");
        let outcome = run_target(&dir, target, sanitizer, runs, seconds)?;
        table.row([
            target.clone(),
            outcome.executions.to_string(),
            outcome.per_second.to_string(),
            format!("{:.1}", outcome.seconds),
            u8::from(outcome.crashed).to_string(),
        ]);
        if outcome.crashed {
            crashed.push(format!(
                "{target}: {}",
                outcome
                    .artifact
                    .as_deref()
                    .unwrap_or("(no artifact written)")
            ));
        }
    }
    println!("\n{}", table.render());
    println!(
        "build {build_seconds:.0} s, total {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !crashed.is_empty() {
        bail!(
            "{} fuzz target(s) crashed; reproduce with `cargo +nightly fuzz run TARGET FILE`:\n  {}",
            crashed.len(),
            crashed.join("\n  ")
        );
    }
    Ok(())
}

/// The targets: the `[[bin]]` entries of `fuzz/Cargo.toml`.
fn targets(dir: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    let manifest: toml::Table = toml::from_str(&text).context("parsing fuzz/Cargo.toml")?;
    let bins = manifest
        .get("bin")
        .and_then(toml::Value::as_array)
        .context("fuzz/Cargo.toml has no [[bin]] targets")?;
    Ok(bins
        .iter()
        .filter_map(|bin| bin.get("name")?.as_str().map(String::from))
        .collect())
}

/// `cargo +nightly fuzz` in `fuzz/`'s parent, whatever toolchain runs the xtask.
fn fuzz_command(dir: &Path) -> Command {
    let mut command = Command::new("rustup");
    command
        .args(["run", "nightly", "cargo", "fuzz"])
        .current_dir(dir.parent().unwrap_or(dir))
        // The xtask's own toolchain and target dir must not leak into the nightly build.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("CARGO_TARGET_DIR");
    command
}

fn run_target(
    dir: &Path,
    target: &str,
    sanitizer: &str,
    runs: Option<u64>,
    seconds: Option<u64>,
) -> Result<Outcome> {
    let corpus = dir.join("corpus").join(target);
    let seeds = dir.join("seeds").join(target);
    std::fs::create_dir_all(&corpus)?;
    let mut command = fuzz_command(dir);
    command.args(["run", "--sanitizer", sanitizer, target]);
    command.arg(&corpus);
    if seeds.is_dir() {
        command.arg(&seeds);
    }
    command.args(["--", "-print_final_stats=1", "-timeout=10"]);
    if let Some(runs) = runs {
        command.arg(format!("-runs={runs}"));
    }
    if let Some(seconds) = seconds {
        command.arg(format!("-max_total_time={seconds}"));
    }
    // libFuzzer reports on stderr; keep its last lines for the table and show progress.
    let started = Instant::now();
    let output = command
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running fuzz target {target}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr);
    let mut outcome = parse(&log);
    outcome.seconds = seconds;
    outcome.crashed = !output.status.success();
    if outcome.crashed {
        // The whole report: the panic message and the failing input.
        eprintln!("{log}");
    } else if let Some(last) = log.lines().rev().find(|line| line.starts_with("Done ")) {
        println!("{last}");
    }
    Ok(outcome)
}

/// Executions and rate from libFuzzer's final stats, or from its last status line when it
/// stopped on a crash.
fn parse(log: &str) -> Outcome {
    let mut outcome = Outcome::default();
    for line in log.lines() {
        if let Some(n) = stat(line, "stat::number_of_executed_units:") {
            outcome.executions = n;
        } else if let Some(n) = stat(line, "stat::average_exec_per_sec:") {
            outcome.per_second = n;
        } else if let Some(rest) = line.strip_prefix('#')
            && let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok())
        {
            outcome.executions = outcome.executions.max(n);
        } else if let Some(path) = line.split("Test unit written to ").nth(1) {
            outcome.artifact = Some(path.trim().to_string());
        }
    }
    outcome
}

fn stat(line: &str, name: &str) -> Option<u64> {
    line.strip_prefix(name)?.trim().parse().ok()
}

/// Regenerates `fuzz/seeds/` from code (`fuzz/examples/seeds.rs`, a plain stable build).
fn seeds(dir: &Path) -> Result<()> {
    let manifest: PathBuf = dir.join("Cargo.toml");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "--manifest-path"])
        .arg(&manifest)
        .args(["--example", "seeds"])
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("running the seed generator")?;
    ensure!(status.success(), "generating the seeds failed");
    Ok(())
}
