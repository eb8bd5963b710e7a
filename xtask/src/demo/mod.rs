//! `cargo xtask demo`: a small weft network on 127.0.0.1, shown layer by layer.

mod discovery;
mod gossip;
mod registry;
mod sync;
mod transport;

use anyhow::Result;
use weft_transport::{Endpoint, NetworkId};

use crate::{probe::ProbeServer, table::Table};

/// Demo settings, from the command line.
#[derive(Debug, Clone)]
pub(crate) struct DemoArgs {
    /// How many nodes to start.
    pub(crate) nodes: usize,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self { nodes: 5 }
    }
}

pub(crate) async fn run(args: &DemoArgs) -> Result<()> {
    anyhow::ensure!(args.nodes >= 2, "the demo needs at least 2 nodes");
    println!("weft demo: {} nodes on 127.0.0.1\n", args.nodes);
    let network = NetworkId::from_name("weft-demo");
    let mut nodes = Vec::with_capacity(args.nodes);
    for _ in 0..args.nodes {
        let endpoint = Endpoint::builder()
            .network(network)
            .bind_addr("127.0.0.1:0".parse()?)
            .bind()
            .await?;
        endpoint.register(crate::probe::PROBE, ProbeServer)?;
        nodes.push(endpoint);
    }

    let mut ids = Table::new(["node", "peer id", "ticket"]).left_aligned();
    for (i, node) in nodes.iter().enumerate() {
        ids.row([
            format!("n{i}"),
            node.id().fmt_short(),
            node.addr().to_ticket(),
        ]);
    }
    println!("== transport: identities ==\n{}", ids.render());

    transport::run(&nodes).await?;
    // Loopback round trips are well under a millisecond: graft after a few ms, not after
    // the internet-scale defaults.
    let config = weft_gossip::Config {
        broadcast: weft_gossip::PlumtreeConfig::for_link_rtt(std::time::Duration::from_millis(2)),
        ..weft_gossip::Config::default()
    };
    let mut gossips = Vec::with_capacity(nodes.len());
    for node in &nodes {
        gossips.push(
            weft_gossip::Gossip::builder()
                .config(config.clone())
                .spawn(node)
                .await?,
        );
    }
    gossip::run(&nodes, &gossips).await?;
    discovery::run(&nodes, &gossips).await?;
    registry::run(&nodes).await?;
    sync::run(&nodes, &gossips).await?;

    for node in &nodes {
        node.shutdown().await;
    }
    println!("all {} nodes shut down cleanly", nodes.len());
    Ok(())
}
