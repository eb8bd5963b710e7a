//! The gossip protocol as a sans-IO state machine.
//!
//! - `hyparview`: per-topic membership (active and passive views, random-walk joins, shuffles).
//! - `plumtree`: per-topic broadcast (eager tree, lazy IHAVE, graft/prune, tree optimisation).
//! - `topic`: the two glued together for one topic.
//! - `state`: many topics behind one `handle(InEvent, now) -> outputs` entry point.
//!
//! Nothing here reads a clock or does IO: time comes in as a [`Duration`](std::time::Duration)
//! since an arbitrary epoch, randomness from a seeded ChaCha RNG, and every effect comes out as an
//! [`OutEvent`].

pub(crate) mod config;
pub(crate) mod dedup;
pub(crate) mod hyparview;
pub(crate) mod plumtree;
pub mod sim;
pub(crate) mod state;
pub(crate) mod topic;
pub(crate) mod types;
pub(crate) mod view;

pub use config::{Config, HyparviewConfig, PlumtreeConfig};
pub use hyparview::Message as MembershipMessage;
pub use plumtree::{Gossip, IHave, Message as BroadcastMessage};
pub use state::{BroadcastError, Command, InEvent, Message, OutEvent, State, Timer};
pub use topic::{Event, TopicMessage};
pub use types::{Content, MessageId, PeerIdentity, Scope, TopicId};
