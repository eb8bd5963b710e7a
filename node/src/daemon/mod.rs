//! The node behind the admin API: what `weft run` serves to the other `weft` commands.
//!
//! - `api`: [`NodeApi`], the [`crate::admin::Api`] of a running [`crate::Node`].
//! - `overview`, `recent`: what the status page shows, and the log of recent events.
//! - `gossip`, `registry`, `sync`: what the commands start and the node keeps until it shuts
//!   down, each in a bounded map.
//! - `saved`: those maps' names in `joined.toml`, rewritten when they change and restored by
//!   the next `weft run`.

mod api;
mod gossip;
mod overview;
mod recent;
mod registry;
mod saved;
mod sync;

pub use api::NodeApi;
pub use gossip::{MAX_GOSSIP_SUBSCRIBERS, MAX_GOSSIP_TOPICS};
pub use recent::MAX_RECENT_EVENTS;
pub use registry::MAX_PROVIDED_NAMES;
pub use saved::JOINED_FILE;
pub use sync::{MAX_LIST_ITEMS, MAX_SYNC_TOPICS};
