//! `cargo xtask bench NAME`: benchmarks that print figures, never pass/fail on timing.

mod gossip;
mod registry;
mod sync;
mod sync_net;
mod transport;

use anyhow::Result;

/// The benchmarks this build knows.
pub(crate) const NAMES: &[&str] = &["transport", "gossip", "registry", "sync", "sync-net"];

/// Runs the benchmark called `name` for `rounds` rounds, on `nodes` nodes where it has a choice.
pub(crate) async fn run(name: &str, rounds: usize, nodes: Option<usize>) -> Result<()> {
    match name {
        "transport" => transport::run(rounds).await,
        "registry" => registry::run(nodes.unwrap_or(50), rounds).await,
        "sync" => sync::run(rounds),
        "gossip" => {
            let mut bench = gossip::BenchConfig::default();
            if let Some(nodes) = nodes {
                bench.nodes = nodes;
            }
            // One run per round; each prints its own report, as the runs vary with machine load.
            for round in 1..=rounds {
                println!("gossip benchmark, run {round} of {rounds}");
                let report = gossip::run(bench.clone()).await?;
                println!("{report}\ndeliveries per node: {:?}\n", report.per_node);
            }
            Ok(())
        }
        "sync-net" => {
            let mut bench = sync_net::SyncNetConfig::default();
            if let Some(nodes) = nodes {
                bench.nodes = nodes;
            }
            // `rounds` is the number of timed live items here; the command line's default
            // (5, meant for runs of the other benchmarks) does not apply.
            if std::env::args().any(|arg| arg == "--rounds") {
                bench.rounds = rounds;
            }
            sync_net::run(bench).await
        }
        other => anyhow::bail!("unknown benchmark {other:?}; known: {}", NAMES.join(", ")),
    }
}
