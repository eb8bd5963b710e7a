//! weft-registry: signed provider records under human-readable names, stored on the `k` nodes
//! closest to `blake3(name)` in a Kademlia DHT.
//!
//! - The protocol is a sans-IO state machine, [`Node`]: a [`RoutingTable`] of k-buckets, the
//!   iterative [`Lookup`], signed [`ProviderRecord`]s and [`Removal`]s verified on decode, and a
//!   bounded [`Store`]. Feed it [`Input`]s and commands with the current [`Now`] (monotonic time
//!   for timers and schedules, wall [`Time`] for signed records only), carry out the
//!   [`Output`]s.
//! - With the default feature `net`, `Registry` runs a node as an actor on a weft-transport
//!   endpoint (protocol `registry/1`): `add_peers`, `register` returning a `Registration`
//!   that withdraws on drop, streaming `lookup`, `lookup_all`, and a local cache.
//! - [`sim`] drives thousands of nodes in virtual time and reports hops, messages, success rates
//!   and how long a withdrawn record is still returned.
//!
//! The registry learns peers only through [`Input::AddPeers`]: whoever owns it (the node, fed by
//! discovery) pushes addresses in. It depends on `weft-transport` alone. The wire format and
//! rules are specified in `docs/protocols/registry.md`.

#[cfg(feature = "net")]
pub mod net;
mod proto;
pub mod sim;

#[cfg(feature = "net")]
pub use net::{LookupStream, Registration, Registry};

pub use proto::{
    Ack, CommandError, Config, DhtId, Distance, Event, InboundId, Input, Insert, Lookup,
    LookupStats, MAX_MESSAGE_SIZE, Node, Now, OpId, Output, ProviderRecord, RecordError,
    RecordLimits, Refusal, Removal, Request, RequestId, Response, RoutingTable, SignedRecord,
    SignedRemoval, Store, StoreConfig, Stored, Time, Timer,
};
