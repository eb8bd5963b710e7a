//! Registry lookups on real QUIC: `NODES` registry nodes on 127.0.0.1 (default 50).
//!
//! Each node learns the first node and its predecessor (as discovery would tell it) and
//! bootstraps; 5 names get 3 providers each; after one warm-up lookup per node (connections set
//! up), every node looks a name up `rounds` times, bypassing the cache. Prints the time to the
//! first provider and to the end of the lookup. Goal: lookup p50 <= 10 ms.

use std::time::{Duration, Instant};

use anyhow::Result;
use weft_registry::Registry;
use weft_transport::{Endpoint, NetworkId, PeerAddr};

use crate::{stats::percentile, table::Table};

const NAMES: usize = 5;
const PROVIDERS_PER_NAME: usize = 3;

pub(crate) async fn run(count: usize, rounds: usize) -> Result<()> {
    anyhow::ensure!(count >= 8, "the registry benchmark needs at least 8 nodes");
    let network = NetworkId::from_name("weft-registry-bench");
    let mut nodes: Vec<(Endpoint, Registry)> = Vec::with_capacity(count);
    for _ in 0..count {
        let endpoint = Endpoint::builder()
            .network(network)
            .bind_addr("127.0.0.1:0".parse()?)
            .bind()
            .await?;
        let registry = Registry::builder().spawn(&endpoint).await?;
        nodes.push((endpoint, registry));
    }
    let addrs: Vec<PeerAddr> = nodes.iter().map(|(endpoint, _)| endpoint.addr()).collect();
    for i in 1..count {
        let peers = [addrs[0].clone(), addrs[i - 1].clone()];
        nodes[i].1.add_peers(peers).await?;
    }

    let names: Vec<String> = (0..NAMES).map(|i| format!("bench-{i}")).collect();
    let mut registrations = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for p in 0..PROVIDERS_PER_NAME {
            let provider = &nodes[(i * 7 + p * 13) % count].1;
            registrations.push(provider.register(name.clone(), vec![]).await?);
        }
    }
    // Warm-up: every node sets up its connections.
    for (_, registry) in &nodes {
        registry.lookup_all_refresh(&names[0]).await?;
    }

    let mut first: Vec<Duration> = Vec::new();
    let mut done: Vec<Duration> = Vec::new();
    let mut complete = 0usize;
    for round in 0..rounds {
        for (i, (_, registry)) in nodes.iter().enumerate() {
            let name = &names[(i + round) % names.len()];
            let started = Instant::now();
            let mut stream = registry.lookup_refresh(name).await?;
            let mut found = 0;
            while stream.next().await.is_some() {
                if found == 0 {
                    first.push(started.elapsed());
                }
                found += 1;
            }
            done.push(started.elapsed());
            if found == PROVIDERS_PER_NAME {
                complete += 1;
            }
        }
    }
    let total = done.len();
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let mut table = Table::new(["measure", "p50", "p95", "max"]);
    for (label, samples) in [("first provider", &mut first), ("lookup done", &mut done)] {
        table.row([
            label.to_string(),
            ms(percentile(samples, 50.0)),
            ms(percentile(samples, 95.0)),
            ms(percentile(samples, 100.0)),
        ]);
    }
    println!(
        "registry benchmark: {count} nodes on 127.0.0.1, {total} lookups bypassing the cache, \
         {complete} found all {PROVIDERS_PER_NAME} providers\n"
    );
    println!("{}", table.render());
    println!("goal: lookup done p50 <= 10 ms");
    drop(registrations);
    for (endpoint, _) in &nodes {
        endpoint.shutdown().await;
    }
    Ok(())
}
