//! The sans-IO protocol: entries, catalog, sync and the node state machine.

mod catalog;
mod config;
mod entry;
mod io;
mod message;
mod node;
mod node_sync;
mod shared;
mod sync;
mod table;
mod time;

pub use catalog::{Catalog, DepartureOutcome, Record, Source, UpsertOutcome};
pub use config::{Config, Limits};
pub use entry::{Departure, ENTRY_VERSION, EntryError, PeerEntry, Version};
pub use io::{Command, DepartReason, Event, Input, Output, Timer, Violation};
pub use message::{Announcement, Message, MessageError, PING_PROTOCOL, PROTOCOL, topic_bytes};
pub use node::{LocalInfo, Node, Stats};
pub use shared::SharedEntry;
pub use sync::{DigestItem, SyncMessage};
pub(crate) use time::millis as time_millis;
pub use time::{Now, Time};

#[cfg(test)]
mod tests;
