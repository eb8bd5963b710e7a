//! `cargo xtask ci`: everything CI checks, in the order a failure is cheapest to find.

use std::process::Command;

use anyhow::{Context, Result};

/// Crates whose `proto` half must build without tokio and iroh.
const SANS_IO_CRATES: &[&str] = &[
    "weft-transport",
    "weft-gossip",
    "weft-discovery",
    "weft-registry",
    "weft-sync",
];

/// Dependencies that must not appear in a crate built with default features off.
const FORBIDDEN_IN_PROTO: &[&str] = &["tokio", "iroh", "noq", "noq-proto"];

/// What a sans-IO `proto` module must never call: clocks and OS randomness. Time and seeds are
/// passed in, so tests and simulators replay exactly.
const FORBIDDEN_IN_PROTO_SOURCE: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "OsRng",
    "rand::rng()",
    "from_entropy",
    "from_os_rng",
    "getrandom",
];

/// Options for the CI run.
#[derive(Debug, Clone, Default)]
pub(crate) struct CiArgs {
    /// Skip `cargo test --workspace` (when the caller ran it already).
    pub(crate) no_tests: bool,
}

pub(crate) async fn run(args: &CiArgs) -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    if !args.no_tests {
        cargo(&["test", "--workspace"])?;
    }
    check_proto_sources()?;
    for krate in SANS_IO_CRATES {
        // Lints and tests of the proto half alone prove it stands without the runtime.
        cargo(&[
            "clippy",
            "-p",
            krate,
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])?;
        check_no_runtime_deps(krate)?;
    }
    let doc = Command::new(cargo_bin())
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()
        .context("running cargo doc")?;
    anyhow::ensure!(doc.success(), "cargo doc failed");
    println!("\n== demo smoke run ==");
    crate::demo::run(&crate::demo::DemoArgs {
        nodes: 3,
        ..crate::demo::DemoArgs::default()
    })
    .await?;
    println!("\nci: all checks passed");
    Ok(())
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo(args: &[&str]) -> Result<()> {
    println!("\n$ cargo {}", args.join(" "));
    let status = Command::new(cargo_bin())
        .args(args)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    anyhow::ensure!(status.success(), "cargo {} failed", args.join(" "));
    Ok(())
}

/// Fails when the crate's normal dependency tree, default features off, has tokio or iroh.
fn check_no_runtime_deps(krate: &str) -> Result<()> {
    let output = Command::new(cargo_bin())
        .args([
            "tree",
            "-p",
            krate,
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .context("running cargo tree")?;
    anyhow::ensure!(output.status.success(), "cargo tree -p {krate} failed");
    let tree = String::from_utf8_lossy(&output.stdout);
    let offenders: Vec<&str> = tree
        .lines()
        .filter(|line| {
            let name = line.split_whitespace().next().unwrap_or("");
            FORBIDDEN_IN_PROTO.contains(&name)
        })
        .collect();
    anyhow::ensure!(
        offenders.is_empty(),
        "{krate} without default features depends on {offenders:?}: its proto half must stay free of the runtime"
    );
    println!("{krate}: proto half is free of {FORBIDDEN_IN_PROTO:?}");
    Ok(())
}

/// Fails when a file under a crate's `src/proto/` (simulators excepted: they time themselves)
/// reads a clock or OS randomness.
fn check_proto_sources() -> Result<()> {
    let mut offenders = Vec::new();
    for krate in ["transport", "gossip", "discovery", "registry", "sync"] {
        let proto = std::path::Path::new(krate).join("src/proto");
        scan(&proto, &mut offenders)?;
    }
    anyhow::ensure!(
        offenders.is_empty(),
        "proto code reads a clock or OS randomness (pass time and seeds in):\n{}",
        offenders.join("\n")
    );
    println!("proto sources read no clock and no OS randomness");
    Ok(())
}

fn scan(dir: &std::path::Path, offenders: &mut Vec<String>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.file_name().is_some_and(|name| name == "sim") {
            continue;
        }
        if path.is_dir() {
            scan(&path, offenders)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path)?;
            for (number, line) in text.lines().enumerate() {
                if let Some(call) = FORBIDDEN_IN_PROTO_SOURCE.iter().find(|c| line.contains(*c)) {
                    offenders.push(format!("{}:{}: {call}", path.display(), number + 1));
                }
            }
        }
    }
    Ok(())
}
