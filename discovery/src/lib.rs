//! weft-discovery: how weft nodes find each other without a central server.
//!
//! Every node signs a versioned [`PeerEntry`] (addresses, tags, metadata) and announces it on a
//! gossip topic; every node keeps a bounded [`Catalog`] of verified entries, purges the ones
//! that stop being refreshed, syncs catalogs with new neighbours by exchanging digests so that
//! only the difference travels, announces a signed [`Departure`] when it leaves, and pings
//! peers to measure round-trip times.
//!
//! The protocol is a sans-IO state machine, [`Node`]: feed it [`Input`]s with the current time,
//! carry out the [`Output`]s. [`sim`] drives thousands of them in virtual time. The wire
//! format and rules are specified in `docs/protocols/discovery.md`.

mod proto;
pub mod sim;

pub use proto::{
    Announcement, Catalog, Command, Config, DepartReason, Departure, DepartureOutcome, DigestItem,
    EntryError, Event, Input, Limits, LocalInfo, Message, MessageError, Node, Output,
    PING_PROTOCOL, PROTOCOL_VERSION, PeerEntry, Record, SYNC_PROTOCOL, Source, Stats, SyncMessage,
    Time, Timer, UpsertOutcome, Version, Violation, topic_bytes,
};
