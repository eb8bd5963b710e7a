//! What goes into and comes out of the [`Manager`](super::Manager).

use std::time::Duration;

use weft_gossip::TopicId;

use crate::proto::{
    Item,
    protocol::{CatchUpStats, Role},
    wire::{Frame, Refusal},
};

/// Names one session (one stream) for the runtime. Never reused by a manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

/// Why a session ended without failing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The peer is no longer a gossip neighbour of the topic.
    NeighborDown,
    /// We stopped syncing the topic.
    Unsubscribed,
    /// The peer finished the stream (it left the topic or shut down).
    PeerClosed,
    /// Another session with the peer on the topic won the tie-break.
    Duplicate,
    /// We are shutting down.
    Shutdown,
}

/// What a topic tells its user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<PI> {
    /// A session with a peer passed the handshake.
    SessionStarted {
        /// The peer.
        peer: PI,
        /// Our role.
        role: Role,
    },
    /// Reconciliation and transfer with a peer finished: from now on the session is live
    /// (new items flow as they are inserted).
    CaughtUp {
        /// The peer.
        peer: PI,
        /// What catching up moved (items and bytes each way, round trips).
        stats: CatchUpStats,
    },
    /// An item new to this node arrived; each item is delivered once.
    ItemReceived {
        /// The item.
        item: Item,
        /// The session peer that sent it.
        from: PI,
    },
    /// A session ended without failing.
    SessionEnded {
        /// The peer.
        peer: PI,
        /// Why.
        reason: EndReason,
    },
    /// A session failed; it is retried with backoff while the peer is a neighbour.
    SessionFailed {
        /// The peer.
        peer: PI,
        /// Why.
        error: SessionError,
    },
    /// The receiver fell behind and this many events were dropped (emitted by runtimes).
    Lagged(u64),
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The acceptor refused the session.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The peer broke the protocol or sent a bad item (the message says how).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer aborted the session.
    #[error("the peer aborted: {0}")]
    PeerAborted(String),
    /// Nothing arrived within the session timeout during handshake or catch-up.
    #[error("the peer stopped answering for {0:?}")]
    Timeout(Duration),
    /// The stream or connection failed.
    #[error("stream failed: {0}")]
    Stream(String),
    /// The peer broke the handshake (a frame out of order).
    #[error("handshake: {0}")]
    Handshake(String),
}

/// Timers the runtime arms and feeds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer<PI> {
    /// The higher id of a new neighbour pair opens the session itself if the lower one has not.
    Fallback {
        /// The topic.
        topic: TopicId,
        /// The neighbour.
        peer: PI,
    },
    /// Retry a failed session.
    Retry {
        /// The topic.
        topic: TopicId,
        /// The neighbour.
        peer: PI,
    },
    /// Check that a session in handshake or catch-up still hears from its peer.
    Silence(SessionId),
}

/// An input.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input<PI> {
    /// A gossip neighbour of the topic's overlay came up.
    NeighborUp {
        /// The sync topic.
        topic: TopicId,
        /// The neighbour.
        peer: PI,
    },
    /// A gossip neighbour of the topic's overlay went away.
    NeighborDown {
        /// The sync topic.
        topic: TopicId,
        /// The neighbour.
        peer: PI,
    },
    /// The overlay's whole neighbour set, for a runtime that lost neighbour events (its
    /// queue overflowed): the manager applies the difference.
    Neighbors {
        /// The sync topic.
        topic: TopicId,
        /// Every current neighbour.
        peers: Vec<PI>,
    },
    /// A frame arrived on a session's stream.
    Frame {
        /// The session.
        session: SessionId,
        /// The frame.
        frame: Frame,
    },
    /// A session's stream ended: `None` when the peer finished it, else why it failed
    /// (including a failed open).
    Closed {
        /// The session.
        session: SessionId,
        /// The failure, if any.
        error: Option<String>,
    },
    /// A timer fired.
    TimerExpired(Timer<PI>),
}

/// An output: something for the runtime to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output<PI> {
    /// Open a stream to `peer` and bind it to `session`; later `Send`s for it go there.
    Open {
        /// The new session.
        session: SessionId,
        /// Whom to open it to.
        peer: PI,
    },
    /// Send a frame on a session's stream.
    Send {
        /// The session.
        session: SessionId,
        /// The frame.
        frame: Frame,
    },
    /// Finish a session's stream after the frames queued on it; the manager forgot it.
    Close {
        /// The session.
        session: SessionId,
    },
    /// Tell a topic's subscribers.
    Emit {
        /// The topic.
        topic: TopicId,
        /// The event.
        event: Event<PI>,
    },
    /// Feed `Timer` back after this delay.
    ScheduleTimer(Duration, Timer<PI>),
}
