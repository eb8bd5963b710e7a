//! weft-registry: signed provider records under human-readable names, stored on the `k` nodes
//! closest to `blake3(name)` in a Kademlia DHT.
//!
//! - The protocol is a sans-IO state machine, [`proto::Node`]: a [`RoutingTable`] of k-buckets,
//!   the iterative [`Lookup`], signed [`ProviderRecord`]s and [`Removal`]s verified on decode, a
//!   bounded [`Store`] and a lookup cache. Feed it [`Input`]s and commands with the current
//!   [`Now`] (monotonic time for timers and schedules, wall [`Time`] for signed records only),
//!   carry out the [`Output`]s.
//! - With the default feature `net`, `Registry` runs a node as an actor on a weft-transport
//!   endpoint (protocol `PROTOCOL`, `registry/1`): `add_peers`, `register`
//!   returning a `Registration` that withdraws on drop, streaming `lookup`, `lookup_all`, an
//!   event stream (`events`), and `shutdown`, which withdraws every registration still live.
//! - [`sim`] drives thousands of nodes in virtual time and reports hops, messages, success rates
//!   and how long a withdrawn record is still returned.
//!
//! ```no_run
//! # async fn demo(endpoint: weft_transport::Endpoint, peers: Vec<weft_transport::PeerAddr>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use weft_registry::{Config, Event, Registry};
//!
//! let registry = Registry::builder().config(Config::default()).spawn(&endpoint).await?;
//! let mut events = registry.events();
//! registry.add_peers(peers).await?;
//! let registration = registry.register("chat/eu", b"v2".to_vec()).await?;
//! for provider in registry.lookup_all("chat/eu").await? {
//!     println!("{} provides chat/eu", provider.provider);
//! }
//! registration.withdraw().await?; // or drop it
//! while let Some(event) = events.try_recv() {
//!     if let Event::Withdrawn { name, holders } = event {
//!         println!("{name} withdrawn from {holders} holders");
//!     }
//! }
//! endpoint.shutdown().await; // withdraws whatever is still registered, then stops
//! # Ok(()) }
//! ```
//!
//! The registry learns peers only through [`Input::AddPeers`]: whoever owns it (the node, fed by
//! discovery) pushes addresses in. It depends on `weft-transport` alone. The wire format and
//! rules are specified in `docs/protocols/registry.md`.

#[cfg(feature = "net")]
mod net;
pub mod proto;
pub mod sim;

#[cfg(feature = "net")]
pub use net::{
    Builder, DEFAULT_SHUTDOWN_GRACE, Error, Event, LookupStream, Metrics, PROTOCOL, Registration,
    Registry, SpawnError,
};

pub use proto::{
    Ack, CommandError, Config, ConfigError, DhtId, Distance, InboundId, Input, Insert, Lookup,
    LookupStats, MAX_MESSAGE_SIZE, Node, Now, OpId, Output, ProviderRecord, RecordError,
    RecordLimits, Refusal, Removal, Request, RequestId, Response, RoutingTable, SignedRecord,
    SignedRemoval, Store, StoreConfig, Stored, Time, Timer,
};
