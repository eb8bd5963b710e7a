//! The shutdown part of the demo: the last node provides a name, then shuts down gracefully;
//! the first node sees its signed departure and finds the name withdrawn.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use weft_discovery::{DepartReason, Event};
use weft_node::Node;

/// How long the demo waits for the departure before it calls the run failed.
const PATIENCE: Duration = Duration::from_secs(20);

/// The name the leaving node provides.
const NAME: &str = "demo/leaving";

pub(super) async fn run(nodes: &[Node]) -> Result<()> {
    let (first, last) = (&nodes[0], &nodes[nodes.len() - 1]);
    let last_name = format!("n{}", nodes.len() - 1);
    let first_registry = first
        .registry()
        .context("the demo's nodes run the registry")?;
    let registration = last
        .registry()
        .context("the demo's nodes run the registry")?
        .register(NAME, Vec::new())
        .await?;
    let before = first_registry.lookup_all_refresh(NAME).await?.len();
    // Kept until the node's shutdown, which withdraws it (dropping it would withdraw now).
    let _kept = registration;

    let mut events = first
        .discovery()
        .context("the demo's nodes run discovery")?
        .events();
    let left_at = Instant::now();
    last.shutdown().await;
    let shut_down_in = left_at.elapsed();
    let leaving = last.id();
    let how = loop {
        let Ok(event) = tokio::time::timeout(PATIENCE, events.recv()).await else {
            bail!("n0 did not see {last_name} leave within {PATIENCE:?}");
        };
        match event {
            Some(Event::PeerDeparted { peer, reason }) if peer == leaving => {
                break match reason {
                    DepartReason::Departed => "its signed departure",
                    _ => "a purge (the departure did not arrive)",
                };
            }
            Some(_) => {}
            None => bail!("n0's discovery stopped"),
        }
    };
    let seen_after = left_at.elapsed();
    let after = first_registry.lookup_all_refresh(NAME).await?.len();
    println!(
        "== weft-node: graceful shutdown ==\n{last_name} shut down in {:.0} ms; n0 removed it after \
         {:.0} ms, through {how}; providers of {NAME:?} seen from n0: {before} before, {after} after\n",
        shut_down_in.as_secs_f64() * 1e3,
        seen_after.as_secs_f64() * 1e3,
    );
    Ok(())
}
