//! `cargo xtask bench NAME`: benchmarks that print figures, never pass/fail on timing.

mod gossip;
pub(crate) mod idle;
mod node;
mod registry;
mod sync;
mod sync_net;
mod transport;

use std::time::Duration;

use anyhow::Result;

use crate::table::Table;

/// The benchmarks this build knows.
pub(crate) const NAMES: &[&str] = &[
    "transport",
    "gossip",
    "registry",
    "sync",
    "sync-net",
    "node",
    "idle",
];

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
            // Two runs per round, with the actors' metrics collected and without, in turns (so
            // neither always runs first); each prints its own report, as the runs vary with
            // machine load, and a last table puts the two side by side.
            let mut compared = Comparison::default();
            for round in 1..=rounds {
                let order = if round % 2 == 1 {
                    [true, false]
                } else {
                    [false, true]
                };
                for collect in order {
                    bench.collect_metrics = collect;
                    let label = if collect { "collected" } else { "off" };
                    println!("gossip benchmark, run {round} of {rounds}, metrics {label}");
                    let report = gossip::run(bench.clone()).await?;
                    println!("{report}\ndeliveries per node: {:?}\n", report.per_node);
                    compared.add(collect, &report.timed);
                }
            }
            println!("{}", compared.render());
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
        "idle" => {
            let args: Vec<String> = std::env::args().collect();
            idle::run(&idle::IdleArgs::parse(&args, nodes)?)
        }
        "node" => node::run(rounds_given(rounds)).await,
        other => anyhow::bail!("unknown benchmark {other:?}; known: {}", NAMES.join(", ")),
    }
}

/// The timed phases of the gossip benchmark with metrics collected and without.
#[derive(Debug, Default)]
struct Comparison {
    runs: Vec<Run>,
}

/// One run: metrics collected, p50, p99, CPU per broadcast.
type Run = (bool, Duration, Duration, Option<Duration>);

impl Comparison {
    fn add(&mut self, collected: bool, timed: &gossip::PhaseReport) {
        let [p50, _, p99, _] = timed.latency;
        self.runs
            .push((collected, p50, p99, timed.cpu_per_broadcast));
    }

    /// Medians of each column, metrics collected against off, and the difference in CPU.
    fn render(&self) -> String {
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
        let median = |collected: bool, column: fn(&Run) -> Option<Duration>| {
            let mut values: Vec<Duration> = self
                .runs
                .iter()
                .filter(|run| run.0 == collected)
                .filter_map(column)
                .collect();
            values.sort();
            values.get(values.len() / 2).copied()
        };
        let mut table = Table::new(["metrics", "runs", "p50 ms", "p99 ms", "CPU ms/broadcast"]);
        let mut cpu = [None, None];
        for (i, collected) in [true, false].into_iter().enumerate() {
            let runs = self.runs.iter().filter(|run| run.0 == collected).count();
            cpu[i] = median(collected, |run| run.3);
            table.row([
                if collected { "collected" } else { "off" }.to_string(),
                runs.to_string(),
                median(collected, |run| Some(run.1)).map_or("?".into(), ms),
                median(collected, |run| Some(run.2)).map_or("?".into(), ms),
                cpu[i].map_or("?".into(), ms),
            ]);
        }
        let cost = match cpu {
            [Some(on), Some(off)] if off > Duration::ZERO => format!(
                "metrics cost {:+.1}% CPU per broadcast (median of the timed phases)",
                (on.as_secs_f64() / off.as_secs_f64() - 1.0) * 100.0
            ),
            _ => "metrics cost: CPU time not available on this OS".to_string(),
        };
        format!(
            "== gossip: metrics collected vs off (timed phase, medians over runs) ==\n{}{cost}",
            table.render()
        )
    }
}

/// `rounds` when `--rounds` was given, else `None` (the benchmark's own default applies).
fn rounds_given(rounds: usize) -> Option<usize> {
    std::env::args()
        .any(|arg| arg == "--rounds")
        .then_some(rounds)
}
