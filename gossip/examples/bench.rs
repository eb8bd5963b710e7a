//! The gossip benchmark on loopback QUIC (the lead wires the same API into
//! `cargo xtask bench gossip`): `cargo run --release -p weft-gossip --example bench`.
#![allow(clippy::print_stdout)]

use weft_gossip::bench::{BenchConfig, run};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let report = run(BenchConfig::default()).await?;
    println!("{report}");
    println!("per node: {:?}", report.per_node);
    Ok(())
}
