//! weft-sync: keeps a topic's set of items the same on every peer that syncs it.
//!
//! - [`proto`]: the protocol as sans-IO state machines: items and their ids, the aggregate
//!   [`Index`](proto::Index) of (timestamp, id) keys with O(log n) range fingerprints, the
//!   Negentropy v1 [`Reconciler`](proto::Reconciler), the pluggable session protocol
//!   ([`proto::SyncProtocol`]), and the topic sync manager that decides which sessions run.
//! - [`store`]: where a topic's items live: the [`Store`](store::Store) trait, an in-memory
//!   store and, with the feature `redb`, a persistent one.
//! - With the default feature `net`: one actor per instance on weft-transport (protocol
//!   `sync/1`, [`PROTOCOL`]) that runs a session with each gossip neighbour of every synced topic.
//!
//! Wire format and state machines: `docs/protocols/sync.md`.
//!
//! ```no_run
//! # #[cfg(feature = "net")]
//! # async fn example(
//! #     endpoint: weft_transport::Endpoint,
//! #     peer: weft_transport::PeerAddr,
//! # ) -> anyhow::Result<()> {
//! use weft_gossip::Gossip;
//! use weft_sync::{SyncManager, TopicId, proto::Event, store::MemoryStore};
//!
//! let gossip = Gossip::builder().spawn(&endpoint).await?;
//! let sync = SyncManager::builder().spawn(&endpoint, &gossip).await?;
//! let mut notes = sync
//!     .subscribe(TopicId::from_name("notes"), MemoryStore::new(), vec![peer])
//!     .await?;
//! notes.insert(1_700_000_000, b"hello").await?; // reaches every live session at once
//! while let Some(event) = notes.recv().await {
//!     if let Event::ItemReceived { item, from } = event {
//!         println!("{} from {from}: {:?}", item.id(), item.payload());
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod proto;
pub mod sim;
pub mod store;

pub use proto::{Item, ItemError, ItemId, ItemKey};

#[cfg(feature = "net")]
mod net;

#[cfg(feature = "net")]
pub use net::{Builder, Error, Metrics, SpawnError, SyncManager, SyncTopic, overlay_topic};

pub use weft_gossip::TopicId;

/// The sync protocol: name `sync`, version 1 (ALPN `weft/<network>/sync/1`).
pub const PROTOCOL: weft_transport::Protocol = weft_transport::Protocol::new("sync", 1);
