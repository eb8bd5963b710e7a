//! The runtime: one actor per [`Discovery`] that owns the proto [`Node`](crate::Node) and
//! drives it over weft-transport and weft-gossip.
//!
//! - Announcements and departures ride the gossip topic `topic_bytes(network)`.
//! - Catalog sync and ping travel as one-way framed messages on their own protocols
//!   ([`PROTOCOL`](crate::PROTOCOL), [`PING_PROTOCOL`](crate::PING_PROTOCOL)): one
//!   unidirectional QUIC stream per message, on the connection the endpoint caches per (peer,
//!   protocol). The proto is a message-passing machine (offer, digest, exchange, entries; ping,
//!   pong), so the runtime only carries its messages and never pairs requests with responses.
//! - Every discovered or updated entry's addresses go to
//!   [`Endpoint::add_peer_addr`](weft_transport::Endpoint::add_peer_addr), so any layer can dial
//!   a peer by id alone.
//!
//! Bounds and policies when full:
//! - commands from handles: `command_capacity` (default 256), callers wait;
//! - inbound messages from connection readers: 1024, handed to the actor by the protocol
//!   handlers (their policy when full is stated in `wire.rs`);
//! - messages to one peer: [`SEND_QUEUE_CAPACITY`] per peer, at most [`MAX_WRITERS`] peers;
//!   a full queue drops the message (the proto's timeouts and retries recover), and the least
//!   recently used writer is closed to make room for a new one;
//! - broadcasts waiting for gossip: [`BROADCAST_QUEUE_CAPACITY`]; when full the announcement is
//!   dropped (the next announcement carries the same, current entry);
//! - catalog events: `event_capacity` (default 1024) per subscriber
//!   (`weft_transport::Subscribers`); the actor never waits for a subscriber: an event that
//!   finds its queue full is missed, and the next one that fits comes after [`Event::Lagged`];
//! - callers waiting for a ping or a sync: [`MAX_WAITERS`] in all; more fail with
//!   [`Error::Busy`].

mod actor;
mod event;
mod handle;
mod metrics;
mod snapshot;
mod timers;
mod wire;

pub use event::Event;
pub use handle::{Builder, Discovery, Error, SpawnError};
pub use metrics::Metrics;
pub use snapshot::CatalogSnapshot;

/// Messages queued to one peer before new ones are dropped.
pub const SEND_QUEUE_CAPACITY: usize = 64;

/// Peers with an open message writer; the least recently used is closed first.
pub const MAX_WRITERS: usize = 256;

/// Announcements waiting to be handed to gossip before new ones are dropped.
pub const BROADCAST_QUEUE_CAPACITY: usize = 64;

/// Callers waiting for a ping or sync result, in all.
pub const MAX_WAITERS: usize = 256;
