//! `cargo xtask bench NAME`: benchmarks that print figures, never pass/fail on timing.

mod transport;

use anyhow::Result;

/// The benchmarks this build knows.
pub(crate) const NAMES: &[&str] = &["transport"];

/// Runs the benchmark called `name`.
pub(crate) async fn run(name: &str, rounds: usize) -> Result<()> {
    match name {
        "transport" => transport::run(rounds).await,
        other => anyhow::bail!("unknown benchmark {other:?}; known: {}", NAMES.join(", ")),
    }
}
