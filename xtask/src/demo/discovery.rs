//! The discovery part of the demo: every node's discovery announces a signed entry on the
//! network's gossip topic, catalogs fill up from the one bootstrap ticket, and the first node
//! pings the others.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use weft_discovery::Discovery;
use weft_node::Node;

use crate::table::Table;

/// How long the demo waits for any one catalog change before it calls the run failed.
const PATIENCE: Duration = Duration::from_secs(20);

/// `started`: when the first node began to spawn (catalog times count from there).
pub(super) async fn run(nodes: &[Node], started: Instant) -> Result<()> {
    let discoveries: Vec<&Discovery> = nodes
        .iter()
        .map(|node| node.discovery().context("the demo's nodes run discovery"))
        .collect::<Result<_>>()?;
    let mut table = Table::new(["node", "catalog", "complete after"]);
    for (i, discovery) in discoveries.iter().enumerate() {
        let mut changes = discovery.watch();
        loop {
            let size = discovery.catalog().await?.ids().len();
            if size == nodes.len() {
                table.row([
                    format!("n{i}"),
                    format!("{size}/{}", nodes.len()),
                    format!("{:.0} ms", started.elapsed().as_secs_f64() * 1e3),
                ]);
                break;
            }
            tokio::time::timeout(PATIENCE, changes.changed())
                .await
                .with_context(|| format!("n{i}'s catalog stopped growing at {size}"))??;
        }
    }
    println!(
        "== discovery: catalogs from one bootstrap ticket (times from the first spawn) ==\n{}",
        table.render()
    );
    println!(
        "n0's catalog (* = itself):\n{}",
        discoveries[0].catalog().await?
    );

    let mut pings = Table::new(["from", "to", "rtt"]);
    for (j, node) in nodes.iter().enumerate().skip(1) {
        let rtt = discoveries[0].ping(node.id()).await?;
        pings.row([
            "n0".to_string(),
            format!("n{j}"),
            format!("{:.2} ms", rtt.as_secs_f64() * 1e3),
        ]);
    }
    println!(
        "== discovery: ping (a freshly signed entry per answer) ==\n{}",
        pings.render()
    );
    Ok(())
}
