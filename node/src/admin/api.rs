//! What the admin server asks of a node: the [`Api`] trait, its error, and streamed answers.

use std::fmt;
use std::future::Future;

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::overview::{Overview, TopologyGraph};
use super::types::{
    Call, CallReply, GossipEvent, GossipPublish, Peers, Provided, Providers, Published,
    RegistryFind, RegistryProvide, ShuttingDown, Status, SyncAdd, SyncAdded, SyncItems, SyncList,
    SyncStatus, TopicRequest,
};

/// The operations the admin server exposes, implemented by the node.
///
/// One method per route (see the table in [`Server`](super::Server)); the server authenticates,
/// bounds and decodes the request before calling a method, and encodes what it returns. A
/// method's error goes back to the client as its [`ErrorKind`]'s status code and message, so
/// the message should say what to do in a line. Methods run concurrently (one task per
/// connection); a method that can block for long should bound itself, and the server also
/// bounds every answer but a subscription by
/// [`ServerConfig::request_timeout`](super::ServerConfig).
///
/// Implementations write plain `async fn` methods; `node/tests/admin_node/mod.rs` has a complete
/// in-memory one.
pub trait Api: Send + Sync + 'static {
    /// `GET /v1/status`: who the node is and what it runs.
    fn status(&self) -> impl Future<Output = Result<Status, ApiError>> + Send;

    /// `GET /v1/peers`: the peers the node knows, with round-trip times where measured.
    fn peers(&self) -> impl Future<Output = Result<Peers, ApiError>> + Send;

    /// `GET /v1/overview`: everything the status page shows but the graph, in one answer.
    fn overview(&self) -> impl Future<Output = Result<Overview, ApiError>> + Send;

    /// `GET /v1/topology?topic=...`: a gossip topic's overlay as a graph, as far as peers
    /// answer ([`crate::Node::topology`]); `NotFound` for a topic the node has not joined.
    fn topology(
        &self,
        request: TopicRequest,
    ) -> impl Future<Output = Result<TopologyGraph, ApiError>> + Send;

    /// `GET /metrics`: the node's counters as OpenMetrics text (Prometheus scrapes it), ending
    /// with `# EOF`.
    fn metrics(&self) -> impl Future<Output = Result<String, ApiError>> + Send;

    /// `POST /v1/gossip/publish`: broadcast on a topic (joining it if needed).
    fn gossip_publish(
        &self,
        request: GossipPublish,
    ) -> impl Future<Output = Result<Published, ApiError>> + Send;

    /// `POST /v1/gossip/subscribe`: the topic's events, streamed to the client as JSON lines
    /// until either side stops. The implementation feeds the [`Subscription`]'s channel and
    /// stops when its sender reports the channel closed; when the channel is full it should
    /// drop events and send [`GossipEvent::Lagged`] rather than wait on a slow reader.
    fn gossip_subscribe(
        &self,
        request: TopicRequest,
    ) -> impl Future<Output = Result<Subscription<GossipEvent>, ApiError>> + Send;

    /// `POST /v1/registry/provide`: register the node as a provider of a name, until shutdown.
    fn registry_provide(
        &self,
        request: RegistryProvide,
    ) -> impl Future<Output = Result<Provided, ApiError>> + Send;

    /// `POST /v1/registry/find`: a name's providers.
    fn registry_find(
        &self,
        request: RegistryFind,
    ) -> impl Future<Output = Result<Providers, ApiError>> + Send;

    /// `POST /v1/call`: call a service by name, failing over between its providers.
    fn call(&self, request: Call) -> impl Future<Output = Result<CallReply, ApiError>> + Send;

    /// `POST /v1/sync/add`: join a sync topic, and add an item when one is given.
    fn sync_add(
        &self,
        request: SyncAdd,
    ) -> impl Future<Output = Result<SyncAdded, ApiError>> + Send;

    /// `POST /v1/sync/list`: a page of a sync topic's items.
    fn sync_list(
        &self,
        request: SyncList,
    ) -> impl Future<Output = Result<SyncItems, ApiError>> + Send;

    /// `POST /v1/sync/status`: a sync topic's item count and sessions.
    fn sync_status(
        &self,
        request: TopicRequest,
    ) -> impl Future<Output = Result<SyncStatus, ApiError>> + Send;

    /// `POST /v1/shutdown`: start the node's graceful shutdown.
    ///
    /// The answer is sent when this returns, so it may wait for the layers to finish, but it
    /// must not wait for the admin server itself to stop: the server waits for this answer
    /// before it stops (up to its shutdown grace).
    fn shutdown(&self) -> impl Future<Output = Result<ShuttingDown, ApiError>> + Send;
}

/// A stream of events for one client, fed by the node through a bounded channel.
///
/// The server ends the stream when the client goes away (dropping the receiver, which closes
/// the node's sender) or when the server shuts down.
#[derive(Debug)]
pub struct Subscription<T> {
    pub(crate) receiver: mpsc::Receiver<T>,
}

impl<T> Subscription<T> {
    /// A subscription and the sender that feeds it, with room for `capacity` unread events.
    pub fn channel(capacity: usize) -> (mpsc::Sender<T>, Self) {
        let (sender, receiver) = mpsc::channel(capacity);
        (sender, Self { receiver })
    }
}

impl<T> From<mpsc::Receiver<T>> for Subscription<T> {
    fn from(receiver: mpsc::Receiver<T>) -> Self {
        Self { receiver }
    }
}

/// Why a request failed: a kind (which sets the HTTP status) and a one-line message.
///
/// The JSON body of every error answer is `{"error": {"kind": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong, in one line.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }

    /// The request is malformed or names something invalid (400).
    pub fn bad_request(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// What the request names does not exist (404).
    pub fn not_found(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The node cannot do it now: a layer left out, stopped or shutting down (503).
    pub fn unavailable(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// The operation did not finish in time (504).
    pub fn timeout(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// The node failed (500).
    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

/// The kinds of [`ApiError`], each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400: the request is malformed.
    BadRequest,
    /// 401: no token, or the wrong one.
    Unauthorized,
    /// 404: no such route, or the request names something that does not exist.
    NotFound,
    /// 405: the route exists with another method.
    MethodNotAllowed,
    /// 413: the request body is larger than the server accepts.
    PayloadTooLarge,
    /// 500: the node failed.
    Internal,
    /// 503: the node cannot do it now, or the server has no room for another connection.
    Unavailable,
    /// 504: the operation did not finish in time.
    Timeout,
    /// A kind this client does not know (a newer server).
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// The HTTP status an error of this kind is sent with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal | Self::Other => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

/// The JSON body of an error answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ApiError,
}
