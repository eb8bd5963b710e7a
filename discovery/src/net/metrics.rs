//! What a running [`Discovery`](super::Discovery) counts about itself, for an operator.
//!
//! An `iroh-metrics` group owned by one `Discovery` (no global registry: many nodes in one
//! process stay apart), handed out by [`Discovery::metrics`](super::Discovery::metrics). The
//! proto keeps its own plain [`Stats`]; the actor copies them here after every step, and counts
//! what only it sees (bytes, pings, departures by reason).

use std::time::Duration;

use iroh_metrics::{Counter, Gauge, Histogram, MetricsGroup};

use crate::proto::{DepartReason, Stats};

/// Discovery's counters.
#[derive(Debug, MetricsGroup)]
#[metrics(name = "discovery", default)]
#[non_exhaustive]
pub struct Metrics {
    /// Peers in the catalog now.
    pub catalog_size: Gauge,
    /// Our own announcements broadcast.
    pub announcements: Counter,
    /// Entries accepted as new peers.
    pub upserts_new: Counter,
    /// Entries accepted as updates of known peers.
    pub upserts_updated: Counter,
    /// Entries accepted as refreshes (same content, newer timestamp).
    pub upserts_refreshed: Counter,
    /// Entries ignored as duplicates, replays or outdated.
    pub upserts_ignored: Counter,
    /// Entries refused as faulty or hostile.
    pub upserts_refused: Counter,
    /// Peers that announced their departure.
    pub departures: Counter,
    /// Peers purged for not being refreshed in time.
    pub purges: Counter,
    /// Peers evicted from a full catalog for a peer with better evidence of liveness.
    pub evictions: Counter,
    /// Catalog sync sessions started by us.
    pub syncs_started: Counter,
    /// Catalog sync sessions that ended normally (either side).
    pub syncs_finished: Counter,
    /// Catalog sync sessions abandoned.
    pub syncs_failed: Counter,
    /// Protocol violations seen.
    pub violations: Counter,
    /// Bytes of direct messages (catalog sync, ping) queued to peers, framing included.
    pub direct_bytes_sent: Counter,
    /// Direct messages (catalog sync, ping) queued to peers.
    pub direct_messages_sent: Counter,
    /// Bytes of announcements and departures handed to gossip.
    pub broadcast_bytes_sent: Counter,
    /// Announcements dropped because the broadcast queue was full.
    pub broadcasts_dropped: Counter,
    /// Pings answered.
    pub pongs: Counter,
    /// Pings that failed.
    pub ping_failures: Counter,
    /// Measured round trips, in milliseconds.
    #[default(Histogram::new(RTT_BUCKETS_MS.to_vec()))]
    pub ping_rtt_ms: Histogram,
}

/// Round-trip buckets in milliseconds: loopback to intercontinental.
const RTT_BUCKETS_MS: [f64; 12] = [
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
];

impl Metrics {
    /// Copies the proto's own counters (they only grow, so `set` keeps the counters monotonic).
    pub(super) fn copy_stats(&self, stats: &Stats, catalog_size: usize) {
        self.announcements.set(stats.announcements);
        self.upserts_new.set(stats.new);
        self.upserts_updated.set(stats.updated);
        self.upserts_refreshed.set(stats.refreshed);
        self.upserts_ignored.set(stats.ignored);
        self.upserts_refused.set(stats.refused);
        self.syncs_started.set(stats.syncs_started);
        self.syncs_finished.set(stats.syncs_finished);
        self.syncs_failed.set(stats.syncs_failed);
        self.violations.set(stats.violations);
        self.catalog_size
            .set(i64::try_from(catalog_size).unwrap_or(i64::MAX));
    }

    /// Counts a peer leaving the catalog.
    pub(super) fn departed(&self, reason: DepartReason) {
        match reason {
            DepartReason::Departed => self.departures.inc(),
            DepartReason::Purged => self.purges.inc(),
            DepartReason::Evicted => self.evictions.inc(),
        };
    }

    /// Counts an answered ping.
    pub(super) fn pong(&self, rtt: Duration) {
        self.pongs.inc();
        self.ping_rtt_ms.observe(rtt.as_secs_f64() * 1000.0);
    }
}
