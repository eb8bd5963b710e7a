//! weft-discovery: how weft nodes find each other without a central server.
//!
//! Every node signs a versioned [`PeerEntry`] (addresses, tags, metadata) and announces it on a
//! gossip topic; every node keeps a bounded [`Catalog`] of verified entries, purges the ones
//! that stop being refreshed, syncs catalogs with new neighbours by exchanging digests so that
//! only the difference travels, announces a signed [`Departure`] when it leaves, and pings
//! peers to measure round-trip times.
//!
//! The protocol is a sans-IO state machine, [`Node`] (module [`proto`]): feed it [`Input`]s with
//! the current [`Now`] (monotonic time for timers, ages and round trips; wall [`Time`] for
//! signed entries only), take the [`Output`]s it queued with [`Node::drain`] and carry them out;
//! its own events are [`proto::Event`]. [`sim`] drives thousands of them in virtual time. With
//! the default feature `net`, `Discovery` runs a node on weft-transport and weft-gossip:
//! `Discovery::builder().config(config).bootstrap(peers).spawn(&endpoint, &gossip)`; its users
//! hear the catalog's `Event`s through `Discovery::events()`, a `weft_transport::Events`. The wire
//! format and rules are specified in `docs/protocols/discovery.md`.

#[cfg(feature = "net")]
mod net;
pub mod proto;
pub mod sim;

pub use proto::{
    Announcement, Catalog, Command, Config, DepartReason, Departure, DepartureOutcome, DigestItem,
    ENTRY_VERSION, EntryError, Input, Limits, LocalInfo, Message, MessageError, Node, Now, Output,
    PING_PROTOCOL, PROTOCOL, PeerEntry, Record, SharedEntry, Source, Stats, SyncMessage, Time,
    Timer, UpsertOutcome, Version, Violation, topic_bytes,
};

#[cfg(feature = "net")]
pub use net::{
    BROADCAST_QUEUE_CAPACITY, Builder, CatalogSnapshot, Discovery, Error, Event, MAX_WAITERS,
    MAX_WRITERS, Metrics, SEND_QUEUE_CAPACITY, SpawnError,
};
