//! The registry protocol as a deterministic state machine, with no IO.
//!
//! [`Node`] owns a [`RoutingTable`], a [`Store`] and the operations in progress; it is driven by
//! [`Input`]s and commands, and answers with [`Output`]s. Time comes in as [`Now`]: monotonic
//! time for timers, ages and schedules, wall [`Time`] for signed records only. Randomness
//! from an injected seeded RNG. The simulator ([`crate::sim`]) drives thousands of nodes in virtual time.

mod cache;
mod config;
mod crowding;
mod id;
mod io;
mod lookup;
mod node;
mod ops;
mod record;
mod routing;
mod rtt;
mod shutdown;
mod store;
mod wire;

pub use config::{Config, ConfigError, RecordLimits, StoreConfig};
pub use crowding::{MAX_EXCESS_FACTOR, estimate_size, excess};
pub use id::{DhtId, Distance, Now, Time};
pub use io::{CommandError, Event, InboundId, Input, OpId, Output, RequestId, Timer};
pub use lookup::{Lookup, LookupStats};
pub use node::Node;
pub use record::{ProviderRecord, RecordError, Removal, SignedRecord, SignedRemoval};
pub use routing::{Insert, RoutingTable};
pub use store::{Refusal, Store, Stored};
pub use wire::{Ack, MAX_MESSAGE_SIZE, Request, Response};

#[cfg(test)]
mod tests;
