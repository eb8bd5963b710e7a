//! weft-gossip: HyParView membership and Plumtree broadcast per topic.
//!
//! - [`proto`]: the protocol as a sans-IO state machine ([`proto::State`]), generic over the peer
//!   identity, driven by `handle(Input, now)` (time as a [`weft_transport::Now`]), its
//!   [`proto::Output`]s taken with `drain()`.
//! - [`sim`]: a deterministic discrete-event simulator over the proto, with scenario files.
//! - With the default feature `net`: `Gossip`, one actor per instance on weft-transport
//!   ([`PROTOCOL`], `gossip/1`): `Gossip::builder().config(..).spawn(&endpoint).await`, then
//!   `subscribe(topic, bootstrap)` for a `TopicSender` and `TopicEvents` (any number of
//!   subscribers per topic), `observe(topic)` for a `TopicObserver` that watches a joined topic
//!   without keeping it, and `shutdown()` to leave every topic. The loopback benchmark
//!   is `cargo xtask bench gossip`.
//!
//! Wire format and state machines: `docs/protocols/gossip.md`.

#[cfg(feature = "net")]
mod net;
pub mod proto;

#[cfg(feature = "net")]
pub use net::{
    Builder, DEFAULT_SHUTDOWN_GRACE, Error, Gossip, MAX_OBSERVERS, Metrics, SpawnError, Topic,
    TopicEvents, TopicObserver, TopicSender, TopicViews,
};

pub use proto::sim;
pub use proto::{
    BroadcastError, Command, Config, Content, Event, HyparviewConfig, Input, JoinError, Message,
    MessageId, Output, PeerIdentity, PlumtreeConfig, Scope, State, Timer, TopicId, TopicMessage,
};

/// The gossip protocol: name `gossip`, version 1 (ALPN `weft/<network>/gossip/1`).
pub const PROTOCOL: weft_transport::Protocol = weft_transport::Protocol::new("gossip", 1);
