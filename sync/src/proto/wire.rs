//! The session frames on a `sync/1` stream: the topic handshake, then opaque protocol data.
//!
//! One bidirectional QUIC stream carries one session. The initiator's first frame is
//! [`Frame::Hello`]; the acceptor answers [`Frame::Accept`] or [`Frame::Refuse`] before any
//! protocol byte flows. After that both sides send [`Frame::Data`] (the session protocol's
//! messages) until one side finishes the stream or sends [`Frame::Abort`].

use serde::{Deserialize, Serialize};
use weft_gossip::TopicId;

/// One frame of a session stream (CBOR in a length-prefixed frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Frame {
    /// Initiator → acceptor, first: the topic to sync and the session protocol to run on it.
    Hello {
        /// The sync topic.
        topic: TopicId,
        /// The session protocol's name (e.g. `set-reconciliation/1`).
        protocol: String,
    },
    /// Acceptor → initiator: the session runs.
    Accept,
    /// Acceptor → initiator: the session does not run, and why. The stream ends after it.
    Refuse(Refusal),
    /// A session protocol message, opaque to the session layer.
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Either side: the session failed on this side, and why. The stream ends after it.
    Abort(String),
}

/// Why an acceptor refused a session. Sent in [`Frame::Refuse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The acceptor does not sync this topic.
    #[error("the peer does not sync this topic")]
    UnknownTopic,
    /// The acceptor runs another session protocol on this topic.
    #[error("the peer runs protocol {ours:?} on this topic")]
    UnsupportedProtocol {
        /// The acceptor's protocol for the topic.
        ours: String,
    },
    /// A session for this (peer, topic) already runs and wins the tie-break.
    #[error("a session with this peer on this topic already runs")]
    Duplicate,
    /// The acceptor is at its session limit for the topic or for this peer.
    #[error("the peer is at its session limit")]
    TooManySessions,
    /// This peer opened too many sessions recently.
    #[error("too many session attempts from this peer")]
    TooManyAttempts,
    /// The acceptor is shutting down.
    #[error("the peer is shutting down")]
    ShuttingDown,
}
