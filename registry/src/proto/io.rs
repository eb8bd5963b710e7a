//! What goes into and comes out of a registry [`crate::proto::Node`].

use serde::{Deserialize, Serialize};
use weft_transport::{PeerAddr, PeerId, SignatureError};

use std::time::Duration;

use super::{
    lookup::LookupStats,
    record::{RecordError, SignedRecord},
    wire::{Request, Response},
};

/// Names an outgoing request, so its response or failure can be fed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// Names an incoming request (chosen by the runtime), so the reply finds its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InboundId(pub u64);

/// Names an operation started by a command: a lookup, a publish, a withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub u64);

/// An event from the network or a timer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// Peers learned from elsewhere (discovery, configuration): offered to the routing table.
    AddPeers(Vec<PeerAddr>),
    /// A peer sent a request; answer it with the [`Output::Reply`] carrying the same `id`.
    Request {
        /// The sender (as authenticated by the transport) and how to reach it.
        from: PeerAddr,
        /// The runtime's name for this request.
        id: InboundId,
        /// The request.
        request: Request,
    },
    /// The answer to an [`Output::Send`].
    Response {
        /// The request answered.
        id: RequestId,
        /// Who answered (as authenticated by the transport).
        from: PeerId,
        /// The answer.
        response: Response,
    },
    /// An [`Output::Send`] failed: no connection, a broken stream, or an answer that did not
    /// decode (garbage, a forged record). The peer is treated as unresponsive.
    Failed {
        /// The request that failed.
        id: RequestId,
    },
    /// A timer set by [`Output::SetTimer`] fired.
    Timer(Timer),
}

/// A timer the runtime arms and feeds back as [`Input::Timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// The request may have timed out (ignored when it was answered meanwhile).
    Request(RequestId),
    /// A lookup's request may have stalled: unanswered for the stall time (ignored when it was
    /// answered meanwhile).
    Stall(RequestId),
    /// Periodic maintenance: expiry sweep, republish, bucket refresh.
    Tick,
}

/// What the node asks its runtime to do, or tells its user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// Send `request` to `to`; feed back [`Input::Response`] or [`Input::Failed`].
    Send {
        /// Names the request.
        id: RequestId,
        /// The peer to ask.
        to: PeerAddr,
        /// The request.
        request: Request,
    },
    /// Answer the incoming request `id` from `to`.
    Reply {
        /// The incoming request answered.
        id: InboundId,
        /// Its sender.
        to: PeerId,
        /// The answer.
        response: Response,
    },
    /// Feed `timer` back at `at`, on the monotonic clock.
    SetTimer {
        /// When: monotonic time, as in [`Now::mono`](crate::Now).
        at: Duration,
        /// Which.
        timer: Timer,
    },
    /// Something the user may want to know.
    Event(Event),
}

/// What a node reports to its user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A lookup found providers it had not reported yet (deduplicated by provider; a newer
    /// record of a reported provider is reported again).
    Providers {
        /// The lookup.
        op: OpId,
        /// The new records, verified and live.
        records: Vec<SignedRecord>,
    },
    /// A lookup is over.
    LookupDone {
        /// The lookup.
        op: OpId,
        /// Its figures.
        stats: LookupStats,
    },
    /// A registration (or its republish) reached the closest nodes.
    Published {
        /// The publish operation.
        op: OpId,
        /// The name.
        name: String,
        /// Nodes that acknowledged storing it.
        holders: usize,
    },
    /// A withdrawal reached the closest nodes and every node known to hold the record.
    Withdrawn {
        /// The withdrawal operation.
        op: OpId,
        /// The name.
        name: String,
        /// Nodes that acknowledged the removal.
        holders: usize,
    },
    /// The self-lookup and bucket refreshes started by [`crate::proto::Node::bootstrap`] ended.
    Bootstrapped {
        /// Peers in the routing table.
        peers: usize,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The record would be invalid (name too long, metadata too large...).
    #[error("invalid record: {0}")]
    Invalid(#[from] RecordError),
    /// Too many lookups are running; try again later.
    #[error("too many lookups running")]
    Busy,
    /// The name is not registered by this node.
    #[error("{0:?} is not registered here")]
    NotRegistered(String),
    /// This node already has its maximum number of registrations.
    #[error("too many registrations")]
    TooManyRegistrations,
    /// The record could not be signed.
    #[error("could not sign: {0}")]
    Sign(SignatureError),
    /// The node is shutting down ([`crate::proto::Node::shutdown`]): it starts nothing new.
    #[error("the node is shutting down")]
    ShuttingDown,
}
