//! What a running registry tells its users ([`crate::Registry::events`]).

use weft_transport::LayerEvent;

/// What happened to this node's registrations, as a [`crate::Registry::events`] stream reports
/// it. Lookups report their providers on their own streams, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A registration was published, or republished, to the closest nodes.
    Published {
        /// The name.
        name: String,
        /// Nodes that acknowledged storing the record. Zero means no node holds it now (no
        /// peer known yet, or every one refused or failed): the record is published again
        /// after the next bootstrap and at every republish, for as long as it is registered.
        holders: usize,
        /// Whether this was a scheduled republish (or one after a wall-clock step), rather
        /// than a [`crate::Registry::register`] call.
        republished: bool,
    },
    /// A registration was withdrawn: the signed removal reached the closest nodes and every
    /// node known to hold the record (a [`crate::Registration`] withdrawn or dropped, or the
    /// registry shutting down).
    Withdrawn {
        /// The name.
        name: String,
        /// Nodes that acknowledged the removal.
        holders: usize,
    },
    /// The routing table was short of `k` peers and a bootstrap (a lookup of this node's own
    /// id, then bucket refreshes) has ended.
    Bootstrapped {
        /// Peers in the routing table.
        peers: usize,
    },
    /// This subscriber's queue was full: `n` events were dropped before the next one.
    Lagged(u64),
}

impl LayerEvent for Event {
    fn lagged(missed: u64) -> Self {
        Event::Lagged(missed)
    }
}
