//! The discovery part of the demo: every node announces a signed entry on the network's gossip
//! topic, catalogs fill up from one bootstrap node, the first node pings the others, and the
//! last node leaves with a signed departure that the others see.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use weft_discovery::{Config, DepartReason, Discovery, Event};
use weft_gossip::Gossip;
use weft_transport::Endpoint;

use crate::table::Table;

/// How long the demo waits for any one catalog change before it calls the run failed.
const PATIENCE: Duration = Duration::from_secs(20);

pub(super) async fn run(nodes: &[Endpoint], gossips: &[Gossip]) -> Result<()> {
    // Internet defaults announce every 30 s; the demo wants to finish in seconds.
    let config = Config {
        announce_interval: Duration::from_secs(2),
        purge_after: Duration::from_secs(8),
        ..Config::for_tests()
    };
    let started = Instant::now();
    let mut discoveries = Vec::with_capacity(nodes.len());
    for (i, (node, gossip)) in nodes.iter().zip(gossips).enumerate() {
        let bootstrap = if i == 0 {
            vec![]
        } else {
            vec![nodes[0].addr()]
        };
        let discovery = Discovery::builder()
            .config(config.clone())
            .bootstrap(bootstrap)
            .tags(["demo".to_string(), format!("n{i}")])
            .metadata([("role".to_string(), role(i).to_string())])
            .spawn(node, gossip)
            .await?;
        discoveries.push(discovery);
    }

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
        "== discovery: catalogs from one bootstrap node ==\n{}",
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

    let last = nodes.len() - 1;
    let leaving = nodes[last].id();
    let mut events = discoveries[0].events();
    let left_at = Instant::now();
    discoveries[last].shutdown().await;
    loop {
        let Ok(event) = tokio::time::timeout(PATIENCE, events.recv()).await else {
            bail!("n0 did not see n{last} leave within {PATIENCE:?}");
        };
        match event {
            Some(Event::PeerDeparted { peer, reason }) if peer == leaving => {
                let how = match reason {
                    DepartReason::Departed => "its signed departure",
                    _ => "a purge (the departure did not arrive)",
                };
                println!(
                    "n{last} left; n0 removed it after {:.0} ms, through {how}\n",
                    left_at.elapsed().as_secs_f64() * 1e3
                );
                break;
            }
            Some(_) => {}
            None => bail!("n0's discovery stopped"),
        }
    }
    for discovery in &discoveries[..last] {
        discovery.shutdown().await;
    }
    Ok(())
}

fn role(i: usize) -> &'static str {
    if i == 0 { "bootstrap" } else { "member" }
}
