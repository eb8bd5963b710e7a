//! weft-node: every weft layer behind one builder, a config file and a data directory.
//!
//! A [`Node`] runs `weft-transport`, `weft-gossip`, `weft-discovery`, `weft-registry` and
//! `weft-sync` on one endpoint and wires them to each other: discovery's catalog feeds the
//! registry's routing table and bootstraps the gossip and sync topics the node joins, the
//! bootstrap peers reach every layer, and a peer discovered is dialable by every layer. The
//! `weft` command runs one as a daemon. Nothing but `xtask` depends on this crate.
//!
//! - [`Config`]: the TOML file (`[node]`, `[bootstrap]`, `[admin]`, `[layers]` to leave layers
//!   out, one section per layer, `[calls]`, and `[[service]]` programs served by name),
//!   `WEFT_*` overrides, [`Config::to_toml`] and the commented [`Config::template`].
//! - Topic rendezvous: a topic subscribed through the node registers in the registry under
//!   [`rendezvous_name`] and joins through the other subscribers found there (`[rendezvous]`).
//! - Topology queries: [`Node::topology`] crawls a gossip topic's overlay breadth first, each
//!   peer telling its neighbours on the topic (`topology/1`, `[topology]`); the status page
//!   draws the graph.
//! - Local-network discovery (opt-in, `[bootstrap] local_network`): multicast beacons on the
//!   link let nodes of one network find each other with no ticket ([`LOCAL_NETWORK_GROUP`]).
//! - The data directory: the secret key (mode 0600, written by write-then-rename, read
//!   strictly), an exclusive lock, the sync store, and a warm-restart state file:
//!
//!   ```text
//!   <data dir>/            created with mode 0700
//!     secret.key           the node's identity: 64 hex characters and a newline, mode 0600
//!     node.lock            locked (OS file lock) while a node runs; holds its pid
//!     sync.redb            the sync store: every synced topic's items
//!     state.toml           warm-restart state (recently seen peers), rewritten at shutdown
//!   ```
//! - [`admin`]: the local admin API (HTTP/JSON on loopback behind a token) that the `weft`
//!   command talks to.
//! - [`service`]: service calls with failover: [`Node::serve`] answers calls for a name,
//!   [`Node::call`] tries its providers nearest first.
//! - [`Node::builder`] (per-layer configs, layers left out, your own protocols with
//!   [`Builder::protocol`]) → [`Builder::spawn`] → [`Node`]; [`Node::shutdown`] ends every
//!   layer in order within the grace period.
//!
//! ```no_run
//! use weft_node::{Config, Node};
//! use weft_transport::Ticket;
//!
//! # async fn example(ticket: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_toml_str("[node]\nnetwork = \"my-app\"")?;
//! let node = Node::builder()
//!     .data_dir("/var/lib/my-app")
//!     .config(config)
//!     .bootstrap([ticket.parse::<Ticket>()?.into()])
//!     .spawn()
//!     .await?;
//! println!("{} is up, ticket {}", node.id(), node.ticket());
//!
//! let chat = node.subscribe_gossip(weft_gossip::TopicId::from_name("chat")).await?;
//! chat.sender().broadcast("hello").await?;
//! let _provider = node.registry().ok_or("no registry")?.register("echo", vec![]).await?;
//! node.shutdown().await; // withdraws, departs, leaves, closes; the next start keeps the id
//! # Ok(()) }
//! ```

pub mod admin;
mod atomic_file;
mod beacon;
mod builder;
mod config;
mod daemon;
mod data_dir;
mod duration;
mod key_file;
mod layers;
mod local_network;
mod metrics;
mod node;
mod protocols;
mod rendezvous;
pub mod service;
mod state;
mod template;
pub mod topology;
mod wiring;

pub use beacon::{MAX_ADDRS as MAX_BEACON_ADDRS, MAX_BEACON};
pub use builder::{Builder, SpawnError};
pub use config::{
    AdminConfig, BootstrapConfig, Config, ConfigError, DEFAULT_BIND, DEFAULT_SHUTDOWN_GRACE,
    ENV_VARS, NodeConfig, parse_peer,
};
pub use daemon::{
    JOINED_FILE, MAX_GOSSIP_SUBSCRIBERS, MAX_GOSSIP_TOPICS, MAX_LIST_ITEMS, MAX_PROVIDED_NAMES,
    MAX_RECENT_EVENTS, MAX_SYNC_TOPICS, NodeApi,
};
pub use data_dir::{DataDirError, KEY_FILE, LOCK_FILE, STATE_FILE, SYNC_STORE_FILE, init_data_dir};
pub use layers::LayersConfig;
pub use local_network::{
    BEACON_INTERVAL, LOCAL_NETWORK_GROUP, MAX_NEW_PER_INTERVAL, MAX_REMEMBERED,
};
pub use metrics::METRICS_PREFIX;
pub use node::{Error, MAX_TOPIC_BOOTSTRAP, Node};
pub use rendezvous::{RENDEZVOUS_PREFIX, RendezvousConfig, TopicKind, rendezvous_name};
pub use service::{
    CallError, CallOptions, CallReply, CallsConfig, ServeError, ServeOptions, Service,
    ServiceConfig,
};
pub use topology::{Topology, TopologyConfig, TopologyError};
