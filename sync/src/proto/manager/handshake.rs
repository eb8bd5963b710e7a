//! The topic handshake on the acceptor's side: which `Hello` is accepted, and the tie-break
//! between two sessions of one (peer, topic).

use std::time::Duration;

use weft_gossip::{PeerIdentity, TopicId};

use super::{Attempts, EndReason, Manager, Output, Role, SessionError, SessionId};
use crate::proto::wire::{Frame, Refusal};

impl<PI: PeerIdentity> Manager<PI> {
    pub(super) fn on_hello(
        &mut self,
        id: SessionId,
        topic: TopicId,
        protocol: &str,
        now: Duration,
    ) {
        let Some(peer) = self.sessions.get(&id).map(|s| s.peer) else {
            return;
        };
        if !self.topics.contains_key(&topic) {
            return self.refuse(id, Refusal::UnknownTopic);
        }
        if !self.count_attempt(peer, topic, now) {
            return self.refuse(id, Refusal::TooManyAttempts);
        }
        let Some(state) = self.topics.get(&topic) else {
            return;
        };
        if state.protocol.name() != protocol {
            let ours = state.protocol.name().to_owned();
            return self.refuse(id, Refusal::UnsupportedProtocol { ours });
        }
        if let Some(existing) = self.by_pair.get(&(peer, topic)).copied() {
            let ours = self.sessions.get(&existing).map(|s| s.role) == Some(Role::Initiator);
            // The session opened by the lower id wins, on both sides. An inbound session
            // replacing an inbound one means the peer lost the old one (a restart).
            if ours && self.me < peer {
                return self.refuse(id, Refusal::Duplicate);
            }
            self.end(existing, EndReason::Duplicate);
        }
        if !self.has_room(topic, peer) {
            return self.refuse(id, Refusal::TooManySessions);
        }
        if let Some(session) = self.sessions.get_mut(&id) {
            session.topic = Some(topic);
        }
        self.by_pair.insert((peer, topic), id);
        self.send(id, Frame::Accept);
        self.start(id);
    }

    pub(super) fn on_refused(&mut self, id: SessionId, refusal: Refusal) {
        if refusal == Refusal::Duplicate {
            // The peer's own session with us wins; it will arrive (or has) as an inbound one.
            self.end(id, EndReason::Duplicate);
        } else {
            self.fail(id, SessionError::Refused(refusal));
        }
    }

    pub(super) fn refuse(&mut self, id: SessionId, refusal: Refusal) {
        self.send(id, Frame::Refuse(refusal));
        self.out(Output::Close { session: id });
        self.sessions.remove(&id);
    }

    pub(super) fn count_attempt(&mut self, peer: PI, topic: TopicId, now: Duration) -> bool {
        let window = self.config.attempt_window;
        let key = (peer, topic);
        if !self.attempts.contains_key(&key) && self.attempts.len() >= self.config.max_tracked_peers
        {
            // Forget the peer whose window started first: its count matters least now.
            if let Some(oldest) = self
                .attempts
                .iter()
                .min_by_key(|(_, a)| a.window_start)
                .map(|(p, _)| *p)
            {
                self.attempts.remove(&oldest);
            }
        }
        let entry = self.attempts.entry(key).or_insert(Attempts {
            window_start: now,
            count: 0,
        });
        if now.saturating_sub(entry.window_start) >= window {
            *entry = Attempts {
                window_start: now,
                count: 0,
            };
        }
        entry.count += 1;
        entry.count <= self.config.max_attempts_per_window
    }
}
