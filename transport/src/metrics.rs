//! What an [`Endpoint`](crate::Endpoint) counts about its connections, for an operator.
//!
//! An `iroh-metrics` group owned by one endpoint (no global registry: many endpoints in one
//! process stay apart), handed out by [`Endpoint::metrics`](crate::Endpoint::metrics). Inbound
//! admission counts what it admits, displaces and refuses; dials are counted where they are
//! made. Bytes are counted by each layer, per protocol (a layer's own group), not here.

use iroh_metrics::{Counter, Gauge, MetricsGroup};

/// The endpoint's counters.
#[derive(Debug, Default, MetricsGroup)]
#[metrics(name = "transport")]
#[non_exhaustive]
pub struct Metrics {
    /// Inbound connections admitted (after the handshake).
    pub inbound_admitted: Counter,
    /// Inbound connections holding a slot now.
    pub inbound_held: Gauge,
    /// Inbound connections closed to make room for a newcomer (quiet longest).
    pub inbound_displaced: Counter,
    /// Inbound connections refused (per-peer limit, or full of active connections).
    pub inbound_refused: Counter,
    /// Inbound connections closed because their peer connected again for the same protocol.
    pub inbound_superseded: Counter,
    /// Inbound connections refused before the handshake (too many handshakes at once).
    pub handshakes_refused: Counter,
    /// Outbound connections dialled.
    pub dials: Counter,
    /// Outbound dials that failed or timed out.
    pub dial_failures: Counter,
}
