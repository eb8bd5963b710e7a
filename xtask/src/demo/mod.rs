//! `cargo xtask demo`: a small weft network on 127.0.0.1, shown layer by layer.
//!
//! Every node is a `weft_node::Node` (all layers on one endpoint, wired by the node); the parts
//! below show what each layer does on them, and the last part shuts one node down gracefully
//! and shows the others seeing it go. Every node serves its status page while the demo runs
//! (the addresses are printed first); `--serve` keeps them up afterwards, until Ctrl-C.

mod discovery;
mod gossip;
mod pages;
mod registry;
mod shutdown;
mod sync;
mod transport;

use std::time::Duration;

use anyhow::Result;
use weft_node::{Config, Node};
use weft_transport::Endpoint;

use crate::{probe::ProbeServer, table::Table};

/// Demo settings, from the command line.
#[derive(Debug, Clone)]
pub(crate) struct DemoArgs {
    /// How many nodes to start.
    pub(crate) nodes: usize,
    /// Keep the nodes (and their status pages) up after the demo, until Ctrl-C.
    pub(crate) serve: bool,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            nodes: 5,
            serve: false,
        }
    }
}

pub(crate) async fn run(args: &DemoArgs) -> Result<()> {
    anyhow::ensure!(args.nodes >= 2, "the demo needs at least 2 nodes");
    println!("weft demo: {} nodes on 127.0.0.1\n", args.nodes);
    let config = demo_config();
    let started = std::time::Instant::now();
    let mut nodes: Vec<Node> = Vec::with_capacity(args.nodes);
    for i in 0..args.nodes {
        let mut builder = Node::builder().ephemeral().config(config.clone());
        if i > 0 {
            // Every node but the first starts from the first one's ticket, as a user would.
            builder = builder.bootstrap([nodes[0].ticket().into()]);
        }
        let node = builder.spawn().await?;
        node.endpoint().register(crate::probe::PROBE, ProbeServer)?;
        nodes.push(node);
    }

    let mut ids = Table::new(["node", "peer id", "ticket"]).left_aligned();
    for (i, node) in nodes.iter().enumerate() {
        ids.row([
            format!("n{i}"),
            node.id().fmt_short(),
            node.ticket().to_string(),
        ]);
    }
    println!("== weft-node: identities ==\n{}", ids.render());
    let pages = pages::start(&nodes).await?;
    pages::print(&pages);

    let endpoints: Vec<Endpoint> = nodes.iter().map(|node| node.endpoint().clone()).collect();
    transport::run(&endpoints).await?;
    discovery::run(&nodes, started).await?;
    gossip::run(&nodes).await?;
    registry::run(&nodes).await?;
    sync::run(&nodes).await?;
    shutdown::run(&nodes).await?;
    if args.serve {
        // The last node has left (the shutdown part); the others serve on.
        pages::serve(&pages, nodes.len() - 1).await?;
    }
    pages::stop(pages).await;
    for node in &nodes {
        node.shutdown().await;
    }
    println!("all {} nodes shut down cleanly", nodes.len());
    Ok(())
}

/// The node defaults, tuned for loopback so the demo finishes in seconds: grafts after a few
/// milliseconds (round trips are well under one), announcements every 2 s instead of the
/// internet's 30 s, lost sync sessions retried at once.
fn demo_config() -> Config {
    let mut config = Config::default();
    config.node.network = "weft-demo".into();
    config.gossip.broadcast = weft_gossip::PlumtreeConfig::for_link_rtt(Duration::from_millis(2));
    config.discovery = weft_discovery::Config {
        announce_interval: Duration::from_secs(2),
        purge_after: Duration::from_secs(8),
        ..weft_discovery::Config::for_tests()
    };
    config.sync.fallback_wait = Duration::from_millis(200);
    config.sync.retry_base = Duration::from_millis(50);
    config
}
