//! `cargo xtask bench NAME`: benchmarks that print figures, never pass/fail on timing.

mod registry;
mod transport;

use anyhow::Result;

/// The benchmarks this build knows.
pub(crate) const NAMES: &[&str] = &["transport", "registry"];

/// Runs the benchmark called `name` for `rounds` rounds, on `nodes` nodes where it has a choice.
pub(crate) async fn run(name: &str, rounds: usize, nodes: Option<usize>) -> Result<()> {
    match name {
        "transport" => transport::run(rounds).await,
        "registry" => registry::run(nodes.unwrap_or(50), rounds).await,
        other => anyhow::bail!("unknown benchmark {other:?}; known: {}", NAMES.join(", ")),
    }
}
