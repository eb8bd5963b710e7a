//! What a running [`SyncManager`](super::SyncManager) counts about itself, for an operator.
//!
//! An `iroh-metrics` group owned by one manager (no global registry: many nodes in one process
//! stay apart), handed out by [`SyncManager::metrics`](super::SyncManager::metrics). Counted by
//! the actor from the manager's events and the frames it queues.

use iroh_metrics::{Counter, Gauge, MetricsGroup};

use crate::proto::Event;

/// Sync's counters.
#[derive(Debug, Default, MetricsGroup)]
#[metrics(name = "sync")]
#[non_exhaustive]
pub struct Metrics {
    /// Topics subscribed now.
    pub topics: Gauge,
    /// Sessions with an open stream now (handshakes included).
    pub sessions: Gauge,
    /// Sessions that passed the handshake.
    pub sessions_started: Counter,
    /// Sessions that ended without failing.
    pub sessions_ended: Counter,
    /// Sessions that failed (retried with backoff while the peer is a neighbour).
    pub sessions_failed: Counter,
    /// Reconciliations finished (a session caught up and went live).
    pub reconciliations: Counter,
    /// Reconciliation round trips, summed.
    pub round_trips: Counter,
    /// Items new to this node, however they came (catching up or live).
    pub items_received: Counter,
    /// Items received while catching up; the rest of `items_received` came live.
    pub catch_up_items_received: Counter,
    /// Items sent while catching up.
    pub catch_up_items_sent: Counter,
    /// Protocol bytes received while catching up.
    pub catch_up_bytes_received: Counter,
    /// Protocol bytes sent while catching up.
    pub catch_up_bytes_sent: Counter,
    /// Frames queued to peers, all kinds.
    pub frames_sent: Counter,
    /// Bytes of frames queued to peers, framing included.
    pub bytes_sent: Counter,
}

impl Metrics {
    /// Counts what an event tells.
    pub(super) fn event<PI>(&self, event: &Event<PI>) {
        match event {
            Event::SessionStarted { .. } => {
                self.sessions_started.inc();
            }
            Event::CaughtUp { stats, .. } => {
                self.reconciliations.inc();
                self.round_trips.inc_by(u64::from(stats.round_trips));
                self.catch_up_items_received.inc_by(stats.items_received);
                self.catch_up_items_sent.inc_by(stats.items_sent);
                self.catch_up_bytes_received.inc_by(stats.bytes_received);
                self.catch_up_bytes_sent.inc_by(stats.bytes_sent);
            }
            Event::ItemReceived { .. } => {
                self.items_received.inc();
            }
            Event::SessionEnded { .. } => {
                self.sessions_ended.inc();
            }
            Event::SessionFailed { .. } => {
                self.sessions_failed.inc();
            }
            _ => {}
        }
    }
}
