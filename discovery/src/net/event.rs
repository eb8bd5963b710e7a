//! What a running discovery tells its users ([`crate::Discovery::events`]).

use weft_transport::{LayerEvent, PeerId};

use crate::proto::{DepartReason, PeerEntry};

/// What a [`crate::Discovery`] subscriber hears about the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer we did not know entered the catalog.
    PeerDiscovered(PeerEntry),
    /// A known peer's entry changed (addresses, tags, metadata, or a restart).
    PeerUpdated(PeerEntry),
    /// A peer left the catalog.
    PeerDeparted {
        /// The peer.
        peer: PeerId,
        /// Why: it announced its departure, it was purged, or it was evicted.
        reason: DepartReason,
    },
    /// This subscriber's queue was full: it missed this many events before the next one; take
    /// a fresh [`crate::Discovery::catalog`] snapshot to catch up.
    Lagged(u64),
}

impl LayerEvent for Event {
    fn lagged(missed: u64) -> Self {
        Event::Lagged(missed)
    }
}
