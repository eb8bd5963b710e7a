//! The topic sync manager: which sessions run, with whom, and what happens to their output.
//!
//! One session per (peer, topic): when a gossip neighbour of a topic comes up, the side with
//! the lower peer id opens the session at once and the higher one waits `fallback_wait` before
//! opening one itself. If both sessions meet anyway (both dialled at the same moment, or a
//! retry crossed an open), the one opened by the lower id wins on both sides: the loser is
//! closed or refused as `Duplicate`. A failed session is retried with exponential backoff
//! while the peer is still a neighbour; a neighbour going down ends its session.
//!
//! Driving: inputs through [`Manager::handle`] and the command methods, outputs drained with
//! [`Manager::drain`] after each call (gossip's shape: `now` is a [`Now`] of which only the
//! monotonic part is read, timers are relative delays).

mod handshake;
mod session;
mod types;

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weft_gossip::{PeerIdentity, TopicId};
use weft_transport::Now;

use self::session::{Phase, Session};
pub use self::types::{EndReason, Event, Input, Output, SessionError, SessionId, Timer};
use super::{
    Config, Item,
    items::TopicItems,
    protocol::{Context, Origin, ProtocolError, ProtocolFactory, Role, SyncProtocol},
    wire::{Frame, Refusal},
};
use crate::store::StoreError;

/// Why a topic could not be subscribed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// At `max_topics`.
    #[error("already syncing the maximum of {0} topics")]
    TooManyTopics(usize),
    /// The topic is synced already.
    #[error("topic {0} is synced already")]
    AlreadySubscribed(TopicId),
}

/// Why a local insert failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The topic is not synced.
    #[error("topic {0} is not synced")]
    UnknownTopic(TopicId),
    /// The timestamp is `u64::MAX`, reserved by Negentropy: the item could never be
    /// reconciled.
    #[error("the timestamp u64::MAX is reserved")]
    ReservedTimestamp,
    /// The item is larger than `max_item_size`.
    #[error("item of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The store failed; nothing was inserted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session as [`Manager::sessions`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo<PI> {
    /// The session.
    pub id: SessionId,
    /// The peer.
    pub peer: PI,
    /// Our role.
    pub role: Role,
    /// Caught up and in live mode.
    pub live: bool,
}

struct TopicState<PI> {
    items: TopicItems,
    protocol: Arc<dyn ProtocolFactory>,
    neighbors: BTreeSet<PI>,
    /// Consecutive failed sessions per neighbour (backoff exponent); reset on catch-up.
    failures: BTreeMap<PI, u32>,
}

/// Inbound session attempts of one peer in the current window.
#[derive(Debug, Clone, Copy)]
struct Attempts {
    window_start: Duration,
    count: u32,
}

/// The sans-IO topic sync manager. See the module docs.
pub struct Manager<PI> {
    me: PI,
    config: Config,
    rng: ChaCha8Rng,
    topics: BTreeMap<TopicId, TopicState<PI>>,
    sessions: BTreeMap<SessionId, Session<PI>>,
    by_pair: BTreeMap<(PI, TopicId), SessionId>,
    attempts: BTreeMap<(PI, TopicId), Attempts>,
    next_session: u64,
    shutting_down: bool,
    outputs: VecDeque<Output<PI>>,
}

impl<PI: PeerIdentity> std::fmt::Debug for Manager<PI> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("me", &self.me)
            .field("topics", &self.topics.len())
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl<PI: PeerIdentity> Manager<PI> {
    /// A manager for the node `me`; `seed` drives the retry jitter.
    pub fn new(me: PI, config: Config, seed: u64) -> Self {
        Self {
            me,
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            topics: BTreeMap::new(),
            sessions: BTreeMap::new(),
            by_pair: BTreeMap::new(),
            attempts: BTreeMap::new(),
            next_session: 0,
            shutting_down: false,
            outputs: VecDeque::new(),
        }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Starts syncing `topic` with these items and this session protocol.
    pub fn subscribe(
        &mut self,
        topic: TopicId,
        items: TopicItems,
        protocol: Arc<dyn ProtocolFactory>,
    ) -> Result<(), SubscribeError> {
        if self.topics.contains_key(&topic) {
            return Err(SubscribeError::AlreadySubscribed(topic));
        }
        if self.topics.len() >= self.config.max_topics {
            return Err(SubscribeError::TooManyTopics(self.config.max_topics));
        }
        let state = TopicState {
            items,
            protocol,
            neighbors: BTreeSet::new(),
            failures: BTreeMap::new(),
        };
        self.topics.insert(topic, state);
        Ok(())
    }

    /// Stops syncing `topic`: its sessions end (streams finished) and its items are returned.
    pub fn unsubscribe(&mut self, topic: TopicId) -> Option<TopicItems> {
        for id in self.topic_sessions(topic) {
            self.end(id, EndReason::Unsubscribed);
        }
        self.topics.remove(&topic).map(|state| state.items)
    }

    /// Ends every session and refuses new ones: the first step of a graceful shutdown.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.end(id, EndReason::Shutdown);
        }
    }

    /// Inserts a local item into `topic`; a new one goes to every running session at once.
    /// Returns whether it was new.
    pub fn insert(&mut self, topic: TopicId, item: Item) -> Result<bool, InsertError> {
        if item.timestamp() == u64::MAX {
            return Err(InsertError::ReservedTimestamp);
        }
        if item.len() > self.config.max_item_size {
            return Err(InsertError::TooLarge {
                size: item.len(),
                max: self.config.max_item_size,
            });
        }
        let state = self
            .topics
            .get_mut(&topic)
            .ok_or(InsertError::UnknownTopic(topic))?;
        if !state.items.insert(&item)? {
            return Ok(false);
        }
        self.forward(topic, &[item], Origin::Local, None);
        Ok(true)
    }

    /// A peer opened a stream: a new inbound session waiting for its `Hello`. Refused at once
    /// when `max_pending_handshakes` streams wait already.
    pub fn accept(&mut self, peer: PI, now: Now) -> SessionId {
        let id = self.new_session_id();
        self.sessions
            .insert(id, Session::new(peer, None, Role::Acceptor, now.mono));
        let pending = self
            .sessions
            .values()
            .filter(|s| s.phase == Phase::AwaitHello)
            .count();
        if self.shutting_down {
            self.refuse(id, Refusal::ShuttingDown);
        } else if pending > self.config.max_pending_handshakes {
            self.refuse(id, Refusal::TooManySessions);
        } else {
            self.arm_silence(id);
        }
        id
    }

    /// Feeds an input.
    pub fn handle(&mut self, input: Input<PI>, now: Now) {
        let now = now.mono;
        match input {
            Input::NeighborUp { topic, peer } => self.on_neighbor_up(topic, peer, now),
            Input::NeighborDown { topic, peer } => self.on_neighbor_down(topic, peer),
            Input::Frame { session, frame } => self.on_frame(session, frame, now),
            Input::Neighbors { topic, peers } => self.on_neighbors(topic, peers, now),
            Input::Closed { session, error } => self.on_closed(session, error),
            Input::TimerExpired(timer) => self.on_timer(timer, now),
        }
    }

    /// The outputs of the calls so far, in order. Drain after every call.
    pub fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, Output<PI>> {
        self.outputs.drain(..)
    }

    /// The synced topics.
    pub fn topics(&self) -> impl Iterator<Item = TopicId> + '_ {
        self.topics.keys().copied()
    }

    /// A topic's items.
    pub fn items(&self, topic: TopicId) -> Option<&TopicItems> {
        self.topics.get(&topic).map(|state| &state.items)
    }

    /// A topic's sessions past the handshake or in it.
    pub fn sessions(&self, topic: TopicId) -> Vec<SessionInfo<PI>> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.topic == Some(topic))
            .map(|(id, s)| SessionInfo {
                id: *id,
                peer: s.peer,
                role: s.role,
                live: s.phase == Phase::Live,
            })
            .collect()
    }

    /// Opens a session with `peer` on `topic` now (if none runs): what a neighbour-up does on
    /// the lower id's side, available to tests and to applications that sync with a peer that
    /// is not a neighbour.
    pub fn connect(&mut self, topic: TopicId, peer: PI, now: Now) {
        self.open(topic, peer, now.mono);
    }

    fn new_session_id(&mut self) -> SessionId {
        self.next_session += 1;
        SessionId(self.next_session)
    }

    fn out(&mut self, event: Output<PI>) {
        self.outputs.push_back(event);
    }

    fn emit(&mut self, topic: TopicId, event: Event<PI>) {
        self.out(Output::Emit { topic, event });
    }

    fn send(&mut self, id: SessionId, frame: Frame) {
        self.out(Output::Send { session: id, frame });
    }

    fn arm_silence(&mut self, id: SessionId) {
        let after = self.config.session_timeout;
        self.out(Output::ScheduleTimer(after, Timer::Silence(id)));
    }

    fn topic_sessions(&self, topic: TopicId) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.topic == Some(topic))
            .map(|(id, _)| *id)
            .collect()
    }

    fn peer_session_count(&self, peer: PI) -> usize {
        self.by_pair
            .range((peer, TopicId([0; 32]))..=(peer, TopicId([0xff; 32])))
            .count()
    }

    /// Whether one more session on `topic` with `peer` fits the limits.
    fn has_room(&self, topic: TopicId, peer: PI) -> bool {
        self.topic_sessions(topic).len() < self.config.max_sessions_per_topic
            && self.peer_session_count(peer) < self.config.max_sessions_per_peer
    }

    fn open(&mut self, topic: TopicId, peer: PI, now: Duration) {
        if self.shutting_down || peer == self.me || self.by_pair.contains_key(&(peer, topic)) {
            return;
        }
        if !self.has_room(topic, peer) {
            // Try again later: a session may end meanwhile.
            return self.schedule_retry(topic, peer);
        }
        let Some(state) = self.topics.get(&topic) else {
            return;
        };
        let protocol = state.protocol.name().to_owned();
        let id = self.new_session_id();
        self.sessions
            .insert(id, Session::new(peer, Some(topic), Role::Initiator, now));
        self.by_pair.insert((peer, topic), id);
        self.out(Output::Open { session: id, peer });
        self.send(id, Frame::Hello { topic, protocol });
        self.arm_silence(id);
    }

    fn on_neighbor_up(&mut self, topic: TopicId, peer: PI, now: Duration) {
        let Some(state) = self.topics.get_mut(&topic) else {
            return;
        };
        state.neighbors.insert(peer);
        if self.me < peer {
            self.open(topic, peer, now);
        } else {
            let wait = self.config.fallback_wait;
            self.out(Output::ScheduleTimer(wait, Timer::Fallback { topic, peer }));
        }
    }

    fn on_neighbor_down(&mut self, topic: TopicId, peer: PI) {
        let Some(state) = self.topics.get_mut(&topic) else {
            return;
        };
        state.neighbors.remove(&peer);
        state.failures.remove(&peer);
        if let Some(id) = self.by_pair.get(&(peer, topic)).copied() {
            self.end(id, EndReason::NeighborDown);
        }
    }

    /// The overlay's whole neighbour set (after its events were lost): start and end sessions
    /// as if each change had been an event.
    fn on_neighbors(&mut self, topic: TopicId, peers: Vec<PI>, now: Duration) {
        let Some(state) = self.topics.get(&topic) else {
            return;
        };
        let now_set: BTreeSet<PI> = peers.into_iter().collect();
        let gone: Vec<PI> = state.neighbors.difference(&now_set).copied().collect();
        let new: Vec<PI> = now_set.difference(&state.neighbors).copied().collect();
        for peer in gone {
            self.on_neighbor_down(topic, peer);
        }
        for peer in new {
            self.on_neighbor_up(topic, peer, now);
        }
    }

    fn on_timer(&mut self, timer: Timer<PI>, now: Duration) {
        match timer {
            Timer::Fallback { topic, peer } | Timer::Retry { topic, peer } => {
                let is_neighbor = self
                    .topics
                    .get(&topic)
                    .is_some_and(|state| state.neighbors.contains(&peer));
                if is_neighbor {
                    self.open(topic, peer, now);
                }
            }
            Timer::Silence(id) => {
                let timeout = self.config.session_timeout;
                let Some(session) = self.sessions.get(&id) else {
                    return;
                };
                if !session.watches_silence() {
                    return;
                }
                let quiet = now.saturating_sub(session.last_heard);
                if quiet >= timeout {
                    self.fail(id, SessionError::Timeout(timeout));
                } else {
                    self.out(Output::ScheduleTimer(timeout - quiet, Timer::Silence(id)));
                }
            }
        }
    }

    fn on_closed(&mut self, id: SessionId, error: Option<String>) {
        match error {
            None => self.end(id, EndReason::PeerClosed),
            Some(error) => self.fail(id, SessionError::Stream(error)),
        }
    }

    fn on_frame(&mut self, id: SessionId, frame: Frame, now: Duration) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.last_heard = now;
        let phase = session.phase;
        match (phase, frame) {
            (Phase::AwaitHello, Frame::Hello { topic, protocol }) => {
                self.on_hello(id, topic, &protocol, now)
            }
            (Phase::AwaitAccept, Frame::Accept) => self.start(id),
            (Phase::AwaitAccept, Frame::Refuse(refusal)) => self.on_refused(id, refusal),
            (_, Frame::Abort(reason)) => self.fail(id, SessionError::PeerAborted(reason)),
            (Phase::CatchingUp | Phase::Live, Frame::Data(bytes)) => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.bytes_in += bytes.len() as u64;
                }
                self.run(id, |protocol, cx| protocol.receive(&bytes, cx));
            }
            (phase, frame) => {
                let what = format!("{frame:?}");
                let what: String = what.chars().take(40).collect();
                self.fail(
                    id,
                    SessionError::Handshake(format!("unexpected {what} in {phase:?}")),
                );
            }
        }
    }

    /// The handshake is over: the protocol starts.
    fn start(&mut self, id: SessionId) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(state) = session.topic.and_then(|t| self.topics.get(&t)) else {
            return;
        };
        session.protocol = Some(state.protocol.new_session(session.role));
        session.phase = Phase::CatchingUp;
        let (peer, role, topic) = (session.peer, session.role, session.topic);
        if let Some(topic) = topic {
            self.emit(topic, Event::SessionStarted { peer, role });
        }
        self.run(id, |protocol, cx| protocol.start(cx));
    }

    /// Runs one protocol call on a session and acts on what it did.
    fn run(
        &mut self,
        id: SessionId,
        call: impl FnOnce(&mut dyn SyncProtocol, &mut Context<'_>) -> Result<(), ProtocolError>,
    ) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let (Some(topic), Some(mut protocol)) = (session.topic, session.protocol.take()) else {
            return;
        };
        let Some(state) = self.topics.get_mut(&topic) else {
            return;
        };
        let (mut sent, mut received, mut caught_up) = (Vec::new(), Vec::new(), false);
        let mut released = false;
        let result = {
            let mut cx = Context::new(
                session.role,
                id,
                &mut state.items,
                &mut sent,
                &mut received,
                &mut caught_up,
                &mut released,
            );
            call(protocol.as_mut(), &mut cx)
        };
        let stats = protocol.stats();
        session.protocol = Some(protocol);
        let peer = session.peer;
        for message in sent {
            session.bytes_out += message.len() as u64;
            self.outputs.push_back(Output::Send {
                session: id,
                frame: Frame::Data(message),
            });
        }
        if let Err(err) = result {
            self.send(id, Frame::Abort(err.to_string()));
            return self.fail(id, SessionError::Protocol(err.to_string()));
        }
        for (item, _) in &received {
            let item = item.clone();
            self.emit(topic, Event::ItemReceived { item, from: peer });
        }
        for origin in [Origin::Live, Origin::CatchUp] {
            let items: Vec<Item> = received
                .iter()
                .filter(|(_, o)| *o == origin)
                .map(|(item, _)| item.clone())
                .collect();
            if !items.is_empty() {
                self.forward(topic, &items, origin, Some(id));
            }
        }
        if caught_up {
            self.caught_up(id, topic, stats);
        }
        if released {
            // Items this session gave up are for the topic's other sessions to fetch.
            for other in self.running_sessions(topic, Some(id)) {
                self.run(other, resume);
            }
        }
    }

    fn caught_up(&mut self, id: SessionId, topic: TopicId, mut stats: super::CatchUpStats) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.phase != Phase::CatchingUp {
            return;
        }
        session.phase = Phase::Live;
        stats.bytes_received = session.bytes_in;
        stats.bytes_sent = session.bytes_out;
        let peer = session.peer;
        if let Some(state) = self.topics.get_mut(&topic) {
            state.failures.remove(&peer);
        }
        self.emit(topic, Event::CaughtUp { peer, stats });
    }

    /// Sends items new to this node to the topic's running sessions but `except`.
    fn forward(
        &mut self,
        topic: TopicId,
        items: &[Item],
        origin: Origin,
        except: Option<SessionId>,
    ) {
        for id in self.running_sessions(topic, except) {
            self.run(id, |protocol, cx| protocol.forward(items, origin, cx));
        }
    }

    fn running_sessions(&self, topic: TopicId, except: Option<SessionId>) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(id, s)| Some(**id) != except && s.topic == Some(topic) && s.is_running())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Forgets a session and finishes its stream. What it was fetching, the topic's other
    /// sessions fetch instead.
    fn remove(&mut self, id: SessionId) -> Option<Session<PI>> {
        let session = self.sessions.remove(&id)?;
        self.out(Output::Close { session: id });
        let Some(topic) = session.topic else {
            return Some(session);
        };
        if self.by_pair.get(&(session.peer, topic)) == Some(&id) {
            self.by_pair.remove(&(session.peer, topic));
        }
        let released = self
            .topics
            .get_mut(&topic)
            .map_or(0, |state| state.items.release_session(id));
        if released > 0 {
            for other in self.running_sessions(topic, None) {
                self.run(other, resume);
            }
        }
        Some(session)
    }

    /// Ends a session without failure.
    fn end(&mut self, id: SessionId, reason: EndReason) {
        let Some(session) = self.remove(id) else {
            return;
        };
        if let (Some(topic), true) = (session.topic, session.is_running()) {
            let peer = session.peer;
            self.emit(topic, Event::SessionEnded { peer, reason });
        }
    }

    /// Fails a session and schedules its retry.
    fn fail(&mut self, id: SessionId, error: SessionError) {
        let Some(session) = self.remove(id) else {
            return;
        };
        let Some(topic) = session.topic else {
            return;
        };
        let peer = session.peer;
        self.emit(topic, Event::SessionFailed { peer, error });
        self.schedule_retry(topic, peer);
    }

    fn schedule_retry(&mut self, topic: TopicId, peer: PI) {
        let Some(state) = self.topics.get_mut(&topic) else {
            return;
        };
        if !state.neighbors.contains(&peer) {
            return;
        }
        let failures = state.failures.entry(peer).or_insert(0);
        *failures = failures.saturating_add(1);
        let exponent = (*failures - 1).min(20);
        // Jitter in [1, 1.5): two peers that failed together do not retry together.
        let jitter = 1.0 + self.rng.random::<f64>() * 0.5;
        let delay = self
            .config
            .retry_base
            .saturating_mul(1 << exponent)
            .mul_f64(jitter)
            .min(self.config.retry_max);
        self.out(Output::ScheduleTimer(delay, Timer::Retry { topic, peer }));
    }
}

/// [`SyncProtocol::resume`] as a plain function: one instance of `Manager::run` for every
/// place that resumes sessions, however they nest.
fn resume(protocol: &mut dyn SyncProtocol, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
    protocol.resume(cx)
}
