//! One session as the manager sees it: its peer, topic, phase and protocol.

use std::{fmt, time::Duration};

use weft_gossip::TopicId;

use crate::proto::protocol::{Role, SyncProtocol};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Inbound: waiting for the initiator's `Hello`.
    AwaitHello,
    /// Outbound: `Hello` sent, waiting for `Accept` or `Refuse`.
    AwaitAccept,
    /// The protocol runs and is catching up.
    CatchingUp,
    /// Caught up: new items flow as they are inserted.
    Live,
}

pub(super) struct Session<PI> {
    pub(super) peer: PI,
    /// `None` for an inbound session before its `Hello`.
    pub(super) topic: Option<TopicId>,
    pub(super) role: Role,
    pub(super) phase: Phase,
    pub(super) protocol: Option<Box<dyn SyncProtocol>>,
    /// When a frame last arrived (or the session was created).
    pub(super) last_heard: Duration,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
}

impl<PI> Session<PI> {
    pub(super) fn new(peer: PI, topic: Option<TopicId>, role: Role, now: Duration) -> Self {
        let phase = match role {
            Role::Initiator => Phase::AwaitAccept,
            Role::Acceptor => Phase::AwaitHello,
        };
        Self {
            peer,
            topic,
            role,
            phase,
            protocol: None,
            last_heard: now,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Running the protocol (catching up or live).
    pub(super) fn is_running(&self) -> bool {
        matches!(self.phase, Phase::CatchingUp | Phase::Live)
    }

    /// Whether silence fails this session: in handshake and catch-up, not in live mode (where
    /// quiet is normal and the connection's keep-alive notices a dead peer).
    pub(super) fn watches_silence(&self) -> bool {
        self.phase != Phase::Live
    }
}

impl<PI: fmt::Debug> fmt::Debug for Session<PI> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("topic", &self.topic)
            .field("role", &self.role)
            .field("phase", &self.phase)
            .finish()
    }
}
