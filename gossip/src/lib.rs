//! weft-gossip: HyParView membership and Plumtree broadcast per topic.
//!
//! - [`proto`]: the protocol as a sans-IO state machine ([`proto::State`]), generic over the peer
//!   identity, driven by `handle(InEvent, now)` and emitting [`proto::OutEvent`]s.
//! - [`sim`]: a deterministic discrete-event simulator over the proto, with scenario files.
//! - With the default feature `net`: `Gossip`, one actor per instance on weft-transport
//!   (protocol `gossip/1`): `Gossip::builder().config(..).spawn(&endpoint)`, then
//!   `subscribe(topic, bootstrap)` for a `TopicSender` and `TopicEvents` (any number of
//!   subscribers per topic), and `shutdown()` to leave every topic. The loopback benchmark
//!   is `cargo xtask bench gossip`.
//!
//! Wire format and state machines: `docs/protocols/gossip.md`.

#[cfg(feature = "net")]
mod net;
pub mod proto;

#[cfg(feature = "net")]
pub use net::{
    Builder, DEFAULT_SHUTDOWN_GRACE, Error, GOSSIP, Gossip, SpawnError, Topic, TopicEvents,
    TopicSender,
};

pub use proto::sim;
pub use proto::{
    BroadcastError, Command, Config, Content, Event, HyparviewConfig, InEvent, Message, MessageId,
    OutEvent, PeerIdentity, PlumtreeConfig, Scope, State, Timer, TopicId, TopicMessage,
};

/// The gossip protocol name and version (ALPN `weft/<network>/gossip/1`).
pub const PROTOCOL_NAME: &str = "gossip";
/// The gossip protocol version.
pub const PROTOCOL_VERSION: u32 = 1;
