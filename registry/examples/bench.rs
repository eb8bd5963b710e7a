//! Lookup latency on real QUIC: 50 registry nodes on 127.0.0.1.
//!
//! `cargo run --release -p weft-registry --example bench -- [NODES] [ROUNDS]`
//!
//! Each node learns the first node and its predecessor (as discovery would tell it) and
//! bootstraps; 5 names get 3 providers each; after one warm-up lookup per node (connections
//! set up), every node looks a random name up `ROUNDS` times, bypassing the cache. Prints the
//! time to the first provider and to the end of the lookup. Goal: lookup p50 <= 10 ms.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use weft_registry::{Config, Registry};
use weft_transport::{Endpoint, NetworkId, PeerAddr};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);

    let network = NetworkId::from_name("weft-registry-bench");
    let mut nodes: Vec<(Endpoint, Registry)> = Vec::new();
    for _ in 0..count {
        let endpoint = Endpoint::builder()
            .network(network)
            .bind_addr("127.0.0.1:0".parse().expect("address"))
            .bind()
            .await
            .expect("bind");
        let registry = Registry::builder(Config::default())
            .spawn(&endpoint)
            .expect("spawn");
        nodes.push((endpoint, registry));
    }
    let addrs: Vec<PeerAddr> = nodes.iter().map(|(e, _)| e.addr()).collect();
    for i in 1..count {
        let peers = [addrs[0].clone(), addrs[i - 1].clone()];
        nodes[i].1.add_peers(peers).await.expect("add peers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let names: Vec<String> = (0..5).map(|i| format!("bench-{i}")).collect();
    let mut registrations = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for p in 0..3 {
            let provider = &nodes[(i * 7 + p * 13) % count].1;
            registrations.push(
                provider
                    .register(name.clone(), vec![])
                    .await
                    .expect("register"),
            );
        }
    }
    // Warm-up: every node sets up its connections.
    for (_, registry) in &nodes {
        registry
            .lookup_all_refresh(&names[0])
            .await
            .expect("lookup");
    }

    let mut first = Vec::new();
    let mut done = Vec::new();
    let mut complete = 0usize;
    let mut total = 0usize;
    for round in 0..rounds {
        for (i, (_, registry)) in nodes.iter().enumerate() {
            let name = &names[(i + round) % names.len()];
            let started = Instant::now();
            let mut stream = registry.lookup_refresh(name).await.expect("lookup");
            let mut found = 0;
            while stream.next().await.is_some() {
                if found == 0 {
                    first.push(started.elapsed());
                }
                found += 1;
            }
            done.push(started.elapsed());
            total += 1;
            if found == 3 {
                complete += 1;
            }
        }
    }
    first.sort();
    done.sort();
    let pct = |v: &[Duration], p: usize| v.get((v.len().saturating_sub(1)) * p / 100).copied();
    println!(
        "registry bench: {count} nodes on 127.0.0.1, {total} lookups ({complete} found all 3 providers)"
    );
    println!(
        "  first provider: p50 {:?}  p95 {:?}",
        pct(&first, 50).unwrap_or_default(),
        pct(&first, 95).unwrap_or_default()
    );
    println!(
        "  lookup done:    p50 {:?}  p95 {:?}   (goal: p50 <= 10 ms)",
        pct(&done, 50).unwrap_or_default(),
        pct(&done, 95).unwrap_or_default()
    );
    drop(registrations);
    for (endpoint, _) in &nodes {
        endpoint.shutdown().await;
    }
}
