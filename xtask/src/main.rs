//! weft's automation, run as `cargo xtask COMMAND` (always a release build):
//!
//! - `demo [--nodes N] [--serve]`: the main job, a small network on 127.0.0.1 shown layer by
//!   layer, with every node's status page (kept up with `--serve`).
//! - `bench NAME [--rounds N] [--nodes N]`: a benchmark; names: `transport`, `gossip`, `registry`,
//!   `sync`, `sync-net`, `node`, `idle`.
//! - `sim LAYER [FILE.toml] [--only NAME] [--baseline FILE] [--save-baseline FILE] [--inspect]`:
//!   a simulator.
//! - `ci [--no-tests]`: what CI runs.
//! - `fuzz [--smoke] [--target NAME] [--runs N | --time SECONDS]`: the fuzz targets.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod baseline;
mod bench;
mod ci;
mod demo;
mod fuzz;
mod probe;
mod sim;
mod stats;
mod table;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo [--nodes N] [--serve]  start N nodes (default 5) on 127.0.0.1 and show every layer at work;
                              --serve keeps them and their status pages up until Ctrl-C
  bench NAME [--rounds N]     run a benchmark: transport, gossip, registry, sync, sync-net,
                              node, idle
      [--nodes N]             nodes, for benchmarks that start a network
      [--idle S] [--settle S] idle: the measured window and the wait before it (seconds)
      [--only ROW[,ROW]]      idle: only these rows (endpoint, gossip, discovery, node,
                              iroh-gossip)
  sim LAYER [FILE.toml]       run a simulator: gossip, discovery, registry, sync
      [--only NAME]           only scenarios whose name contains NAME
      [--baseline FILE]       compare with a saved baseline, fail on regression
      [--save-baseline FILE]  save this run's figures as a baseline
      [--inspect]             gossip: each scenario's first seed round by round, with the
                              overlay's shape and the messages by kind
  ci [--no-tests]             run every CI check
  fuzz [--smoke] [--target NAME] [--runs N | --time SECONDS] [--sanitizer S] [--list] [--seeds]
                              run the cargo-fuzz targets in fuzz/ (nightly), one at a time";

#[tokio::main]
async fn main() -> Result<()> {
    // Run from the workspace root whatever the caller's directory.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives inside the workspace")?;
    std::env::set_current_dir(root)?;

    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "demo" => {
            let mut demo = demo::DemoArgs::default();
            if let Some(nodes) = flag_value(&rest, "--nodes")? {
                demo.nodes = nodes;
            }
            demo.serve = rest.iter().any(|arg| arg == "--serve");
            demo::run(&demo).await
        }
        "bench" => {
            let Some(name) = rest.first().filter(|name| !name.starts_with("--")) else {
                bail!("bench needs a name: {}\n\n{USAGE}", bench::NAMES.join(", "));
            };
            let rounds = flag_value(&rest, "--rounds")?.unwrap_or(5);
            bench::run(name, rounds, flag_value(&rest, "--nodes")?).await
        }
        // A row of `bench idle`, in its own process (hidden: xtask runs it itself).
        bench::idle::ROW_COMMAND => bench::idle::row(&rest).await,
        "sim" => {
            let Some(layer) = rest.first().filter(|layer| !layer.starts_with("--")) else {
                bail!("sim needs a layer: {}\n\n{USAGE}", sim::LAYERS.join(", "));
            };
            let file = rest
                .get(1)
                .filter(|arg| !arg.starts_with("--"))
                .map(Into::into);
            sim::run(&sim::SimArgs {
                layer: layer.clone(),
                file,
                only: flag_text(&rest, "--only")?,
                baseline: flag_text(&rest, "--baseline")?.map(Into::into),
                save_baseline: flag_text(&rest, "--save-baseline")?.map(Into::into),
                inspect: rest.iter().any(|arg| arg == "--inspect"),
            })
        }
        "ci" => {
            let ci = ci::CiArgs {
                no_tests: rest.iter().any(|arg| arg == "--no-tests"),
            };
            ci::run(&ci).await
        }
        "fuzz" => fuzz::run(&fuzz::FuzzArgs {
            smoke: rest.iter().any(|arg| arg == "--smoke"),
            target: flag_text(&rest, "--target")?,
            runs: flag_value(&rest, "--runs")?.map(|n| n as u64),
            time: flag_value(&rest, "--time")?.map(|n| n as u64),
            list: rest.iter().any(|arg| arg == "--list"),
            seeds: rest.iter().any(|arg| arg == "--seeds"),
            sanitizer: flag_text(&rest, "--sanitizer")?,
        }),
        "" | "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// The number after `flag`, if the flag is present.
fn flag_value(args: &[String], flag: &str) -> Result<Option<usize>> {
    let Some(value) = flag_text(args, flag)? else {
        return Ok(None);
    };
    Ok(Some(value.parse().with_context(|| {
        format!("{flag} needs a number, got {value:?}")
    })?))
}

/// The word after `flag`, if the flag is present.
fn flag_text(args: &[String], flag: &str) -> Result<Option<String>> {
    let Some(at) = args.iter().position(|arg| arg == flag) else {
        return Ok(None);
    };
    let value = args
        .get(at + 1)
        .with_context(|| format!("{flag} needs a value"))?;
    Ok(Some(value.clone()))
}
