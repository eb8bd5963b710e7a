//! The registry part of the demo: two nodes register a name, every node looks it up.

use std::time::Instant;

use anyhow::{Context, Result};
use weft_node::Node;
use weft_registry::Registry;

use crate::table::Table;

/// The name the demo registers.
const NAME: &str = "demo/echo-service";

pub(super) async fn run(nodes: &[Node]) -> Result<()> {
    // No peer is added by hand: each node's discovery catalog feeds its registry.
    let registries: Vec<&Registry> = nodes
        .iter()
        .map(|node| node.registry().context("the demo's nodes run the registry"))
        .collect::<Result<_>>()?;
    let providers = nodes.len().min(2);
    let mut registrations = Vec::with_capacity(providers);
    for (i, registry) in registries.iter().take(providers).enumerate() {
        let registration = registry
            .register(NAME, format!("served by n{i}").into_bytes())
            .await
            .with_context(|| format!("n{i} registering {NAME}"))?;
        registrations.push(registration);
    }
    let mut table = Table::new(["node", "providers found", "lookup", "metadata"]);
    for (i, registry) in registries.iter().enumerate() {
        let started = Instant::now();
        let found = registry.lookup_all_refresh(NAME).await?;
        let took = started.elapsed();
        let mut metadata: Vec<String> = found
            .iter()
            .map(|record| String::from_utf8_lossy(&record.metadata).into_owned())
            .collect();
        metadata.sort();
        table.row([
            format!("n{i}"),
            found.len().to_string(),
            format!("{:.1} ms", took.as_secs_f64() * 1e3),
            metadata.join(", "),
        ]);
    }
    println!(
        "== registry: {providers} providers of {NAME:?}, looked up from every node ==\n{}",
        table.render()
    );
    let mut withdrawn = 0;
    for registration in registrations {
        withdrawn += registration.withdraw().await?;
    }
    let after = registries[nodes.len() - 1].lookup_all_refresh(NAME).await?;
    println!(
        "withdrawn: {withdrawn} holders acknowledged; a lookup after the withdrawal finds {} providers\n",
        after.len()
    );
    Ok(())
}
