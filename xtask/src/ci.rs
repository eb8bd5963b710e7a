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
    crate::demo::run(&crate::demo::DemoArgs { nodes: 3 }).await?;
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
