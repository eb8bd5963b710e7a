//! The gossip protocol as a sans-IO state machine.
//!
//! - `hyparview`: per-topic membership (active and passive views, random-walk joins, shuffles).
//! - `plumtree`: per-topic broadcast (eager tree, lazy IHAVE, graft/prune, tree optimisation).
//! - `topic`: the two glued together for one topic.
//! - `addresses`: which peers' addresses travel with a message, and how many are kept.
//! - `state`: many topics behind one `handle(Input, now)` entry point; outputs are taken with
//!   `drain()` after every call.
//!
//! Nothing here reads a clock or does IO: time comes in as a [`Now`](weft_transport::Now) with
//! every call (gossip uses only its monotonic part), randomness from a seeded ChaCha RNG, and
//! every effect comes out as an [`Output`].

pub(crate) mod addresses;
pub(crate) mod config;
pub(crate) mod dedup;
pub(crate) mod hyparview;
pub(crate) mod plumtree;
pub mod sim;
pub(crate) mod state;
pub(crate) mod topic;
pub(crate) mod types;
pub(crate) mod view;

pub use addresses::{AddressBook, named_peers};
pub use config::{Config, HyparviewConfig, PlumtreeConfig};
pub use hyparview::Message as MembershipMessage;
pub use plumtree::{IHave, Message as BroadcastMessage, Push};
pub use state::{BroadcastError, Command, Input, JoinError, Message, Output, State, Timer};
pub use topic::{Event, TopicMessage};
pub use types::{Content, MessageId, PeerIdentity, Scope, TopicId};
