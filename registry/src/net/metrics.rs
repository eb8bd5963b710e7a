//! What a running [`Registry`](super::Registry) counts about itself, for an operator.
//!
//! An `iroh-metrics` group owned by one `Registry` (no global registry: many nodes in one
//! process stay apart), handed out by [`Registry::metrics`](super::Registry::metrics). Counted
//! by the actor from the proto's events and the requests it runs.

use iroh_metrics::{Counter, Gauge, Histogram, MetricsGroup};

use crate::proto::LookupStats;

/// The registry's counters.
#[derive(Debug, MetricsGroup)]
#[metrics(name = "registry", default)]
#[non_exhaustive]
pub struct Metrics {
    /// Provider records held for other nodes now.
    pub records_held: Gauge,
    /// Peers in the routing table now.
    pub routing_table_peers: Gauge,
    /// Names this node provides now.
    pub names_provided: Gauge,
    /// Lookups started (cache hits included).
    pub lookups: Counter,
    /// Lookups answered from the lookup cache, without a request.
    pub lookup_cache_hits: Counter,
    /// Lookups that found at least one provider.
    pub lookups_found: Counter,
    /// Requests sent by lookups, registrations and refreshes.
    pub requests_sent: Counter,
    /// Requests that failed or timed out.
    pub requests_failed: Counter,
    /// Requests served for other nodes.
    pub requests_served: Counter,
    /// Registrations published (first publishes and republishes).
    pub publishes: Counter,
    /// Republishes of our registrations (the refresh before their records expire).
    pub republishes: Counter,
    /// Withdrawals completed.
    pub withdrawals: Counter,
    /// Depth (hops) of finished network lookups.
    #[default(Histogram::new(HOP_BUCKETS.to_vec()))]
    pub lookup_hops: Histogram,
}

/// Hop buckets: Kademlia lookups over a million nodes stay within a handful of hops.
const HOP_BUCKETS: [f64; 8] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0];

impl Metrics {
    /// Counts a finished lookup; `cached` when it was answered without a request.
    pub(super) fn lookup_done(&self, stats: &LookupStats, cached: bool) {
        if cached {
            self.lookup_cache_hits.inc();
        } else {
            self.lookup_hops.observe(f64::from(stats.depth));
        }
    }

    /// Counts a publish (first or republish).
    pub(super) fn published(&self, republished: bool) {
        self.publishes.inc();
        if republished {
            self.republishes.inc();
        }
    }
}
