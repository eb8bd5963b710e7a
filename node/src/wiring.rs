//! How the layers learn from each other while a node runs.
//!
//! - Discovery → endpoint: discovery itself records every verified peer's address on the
//!   endpoint, so any layer can dial a discovered peer by id.
//! - Discovery → registry: this module's task. The registry learns peers only through
//!   `add_peers` (it depends on the transport alone), so every peer discovered or updated is
//!   pushed into its routing table. Departures are not pushed: the registry has no removal
//!   input, and its own failure detection drops a peer that stops answering.
//! - Discovery → gossip and sync topics: the catalog is their bootstrap when the node
//!   subscribes ([`crate::Node::subscribe_gossip`], [`crate::Node::subscribe_sync`]); after
//!   that HyParView's own joins and shuffles spread new members.
//! - Registry → gossip and sync topics: [`crate::rendezvous_name`]; each subscribed topic
//!   registers there and joins through the other subscribers it finds (`rendezvous.rs`).
//! - Bootstrap peers (config, builder, warm state) go to all of them at spawn; peers found on
//!   the local network (`local_network.rs`, opt-in) go to all of them as they are found.

use tokio::task::JoinHandle;
use tracing::debug;
use weft_discovery::{Discovery, Event};
use weft_registry::Registry;
use weft_transport::PeerAddr;

/// Peers handed to the registry in one `add_peers` at most: what one loop turn drains from
/// the event queue, so a burst of discoveries costs a few commands, not one each.
const BATCH: usize = 64;

/// Feeds discovery's peers to the registry until either layer stops (or the node aborts the
/// task at shutdown). Bounded: discovery's event queue holds at most its `event_capacity`
/// events (older ones are dropped and reported as `Lagged`, answered with a catalog
/// snapshot), and `add_peers` waits on the registry's bounded command queue.
pub(crate) fn spawn(discovery: Discovery, registry: Registry) -> JoinHandle<()> {
    // Subscribed before the first snapshot, so no peer falls between the two.
    let mut events = discovery.events();
    tokio::spawn(async move {
        if !feed_catalog(&discovery, &registry).await {
            return;
        }
        while let Some(event) = events.recv().await {
            let mut batch = Vec::new();
            let mut lagged = false;
            let mut next = Some(event);
            while let Some(event) = next.take() {
                match event {
                    Event::PeerDiscovered(entry) | Event::PeerUpdated(entry) => {
                        batch.push(entry.addr());
                    }
                    Event::Lagged(_) => lagged = true,
                    _ => {}
                }
                if batch.len() < BATCH {
                    next = events.try_recv();
                }
            }
            if lagged && !feed_catalog(&discovery, &registry).await {
                return;
            }
            if !batch.is_empty() && !add(&registry, batch).await {
                return;
            }
        }
        debug!("discovery stopped; the registry feed ends");
    })
}

/// Adds every catalog peer; false once the registry or discovery has stopped.
async fn feed_catalog(discovery: &Discovery, registry: &Registry) -> bool {
    let Ok(catalog) = discovery.catalog().await else {
        return false;
    };
    let peers: Vec<PeerAddr> = catalog
        .peers
        .values()
        .map(|record| record.entry().addr())
        .collect();
    peers.is_empty() || add(registry, peers).await
}

async fn add(registry: &Registry, peers: Vec<PeerAddr>) -> bool {
    registry.add_peers(peers).await.is_ok()
}
