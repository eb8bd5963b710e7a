//! The local admin API: how the `weft` command, a metrics scraper and the status page talk to
//! a running node.
//!
//! HTTP/1.1 and JSON on a loopback address only, behind a bearer token. At start the
//! [`Server`] writes a fresh random token to `<data_dir>/admin.token` (mode 0600) and its
//! address to `<data_dir>/admin.addr`; a [`Client`] reads both, so only a user who can read the
//! data directory can control the node. Both files go away on a clean shutdown; after a crash
//! the stale address answers "connection refused", which the client reports as
//! [`ClientError::NoRunningNode`].
//!
//! The node implements [`Api`]; the server authenticates, bounds (body size, connections,
//! header and body read time, answer time), routes and encodes. Requests and answers are the
//! serde types below, shared by both ends.

mod api;
mod body;
mod client;
mod files;
mod overview;
mod page;
mod routes;
mod server;
mod types;

pub use api::{Api, ApiError, ErrorKind, Subscription};
pub use client::{Client, ClientError, EventStream};
pub use files::{ADDR_FILE, TOKEN_FILE};
pub use overview::{
    GossipTopicView, HeldName, Overview, RecentEvent, RegistryOverview, SyncTopicOverview,
    TopologyEdge, TopologyGraph, TopologyNode,
};
pub use server::{Server, ServerConfig, StartError};
pub use types::{
    Call, CallFailure, CallReply, GossipEvent, GossipPublish, LayerStatus, Payload, Peer, Peers,
    Provided, Provider, Providers, Published, RegistryFind, RegistryProvide, ShuttingDown, Status,
    SyncAdd, SyncAdded, SyncItem, SyncItems, SyncList, SyncSession, SyncStatus, TopicRequest,
};
