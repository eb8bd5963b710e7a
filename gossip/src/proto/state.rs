//! Many topics behind one entry point: `handle(InEvent, now) -> outputs`.

use std::{collections::BTreeMap, time::Duration};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{
    config::Config,
    topic::{Event, Topic, TopicMessage, TopicOut, TopicTimer},
    types::{Content, MessageId, PeerIdentity, Scope, TopicId},
};

/// A message on the wire: a topic message in its topic envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<PI> {
    /// The topic.
    pub topic: TopicId,
    /// The topic's message.
    pub message: TopicMessage<PI>,
}

/// Inputs of the protocol.
#[derive(Debug)]
#[non_exhaustive]
pub enum InEvent<PI> {
    /// A message arrived from a peer.
    RecvMessage(PI, Message<PI>),
    /// The application asks something of a topic.
    Command(TopicId, Command<PI>),
    /// A timer scheduled by [`OutEvent::ScheduleTimer`] expired.
    TimerExpired(Timer<PI>),
    /// The connection to a peer closed, failed, or could not be opened.
    PeerDisconnected(PI),
}

/// Application commands (broadcasts go through [`State::broadcast`], which can refuse them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<PI> {
    /// Joins the topic (creating it) through these peers; with none, waits to be joined.
    Join(Vec<PI>),
    /// Leaves the topic: active peers are told we are gone.
    Quit,
}

/// Outputs of the protocol, for the runtime to carry out.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutEvent<PI> {
    /// Send a message to a peer (connecting if needed).
    SendMessage(PI, Message<PI>),
    /// Tell the application something about a topic.
    EmitEvent(TopicId, Event<PI>),
    /// Feed `InEvent::TimerExpired(timer)` back after this delay.
    ScheduleTimer(Duration, Timer<PI>),
    /// No topic needs this peer any more: the connection may close (after queued sends).
    DisconnectPeer(PI),
}

/// An opaque timer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timer<PI> {
    topic: TopicId,
    timer: TopicTimer<PI>,
}

/// Why a broadcast was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The content does not fit in [`Config::max_message_size`] with its envelope.
    #[error("broadcast of {size} bytes exceeds the maximum content size of {max} bytes")]
    TooLarge {
        /// The content size.
        size: usize,
        /// The largest content allowed.
        max: usize,
    },
    /// The topic was not joined.
    #[error("topic not joined")]
    NotJoined,
}

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// [`Config::max_topics`] topics are joined already.
    #[error("too many topics (at most {0})")]
    TooManyTopics(usize),
}

/// The gossip protocol state of one node: all its topics.
#[derive(Debug)]
pub struct State<PI> {
    me: PI,
    config: Config,
    topics: BTreeMap<TopicId, Topic<PI>>,
    rng: ChaCha8Rng,
    nonce: u64,
    outbox: Vec<OutEvent<PI>>,
    scratch: Vec<TopicOut<PI>>,
}

impl<PI: PeerIdentity> State<PI> {
    /// A node with identity `me`. `seed` seeds all its randomness (use fresh OS randomness in
    /// production, a fixed value in tests and simulations).
    pub fn new(me: PI, config: Config, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nonce = rng.next_u64();
        Self {
            me,
            config,
            topics: BTreeMap::new(),
            rng,
            nonce,
            outbox: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Our identity.
    pub fn me(&self) -> PI {
        self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether a topic is joined.
    pub fn has_topic(&self, topic: &TopicId) -> bool {
        self.topics.contains_key(topic)
    }

    /// The active peers of a topic.
    pub fn neighbors(&self, topic: &TopicId) -> Vec<PI> {
        self.topics
            .get(topic)
            .map(|t| t.neighbors().copied().collect())
            .unwrap_or_default()
    }

    /// The passive peers of a topic.
    pub fn passive_peers(&self, topic: &TopicId) -> Vec<PI> {
        self.topics
            .get(topic)
            .map(|t| t.passive().copied().collect())
            .unwrap_or_default()
    }

    /// The eager (tree) and lazy peers of a topic.
    pub fn tree_links(&self, topic: &TopicId) -> (Vec<PI>, Vec<PI>) {
        self.topics
            .get(topic)
            .map(|t| (t.eager().copied().collect(), t.lazy().copied().collect()))
            .unwrap_or_default()
    }

    /// Processes one input; returns the outputs it caused.
    pub fn handle(
        &mut self,
        event: InEvent<PI>,
        now: Duration,
    ) -> std::vec::Drain<'_, OutEvent<PI>> {
        match event {
            InEvent::RecvMessage(from, Message { topic, message }) => {
                // Messages for topics we did not join are ignored: joining is the application's
                // decision, and a stranger must not make us allocate state.
                if let Some(state) = self.topics.get_mut(&topic) {
                    state.on_message(from, message, &mut self.rng, now, &mut self.scratch);
                    self.flush(topic);
                }
            }
            InEvent::Command(topic, Command::Join(peers)) => {
                if self.join(topic, &peers, now).is_err() {
                    // Refused joins are reported by `State::join`; through `handle` they only
                    // leave no trace, like a join of a full node would.
                }
            }
            InEvent::Command(topic, Command::Quit) => self.quit(topic),
            InEvent::TimerExpired(Timer { topic, timer }) => {
                if let Some(state) = self.topics.get_mut(&topic) {
                    state.on_timer(timer, &mut self.rng, now, &mut self.scratch);
                    self.flush(topic);
                }
            }
            InEvent::PeerDisconnected(peer) => {
                let topics: Vec<TopicId> = self.topics.keys().copied().collect();
                for topic in topics {
                    if let Some(state) = self.topics.get_mut(&topic) {
                        state.on_peer_disconnected(peer, &mut self.rng, now, &mut self.scratch);
                        self.flush(topic);
                    }
                }
            }
        }
        self.outbox.drain(..)
    }

    /// Joins a topic through `peers` (or adds bootstrap peers to a joined topic). Outputs are
    /// queued for the next [`State::handle`] or taken with [`State::drain`].
    pub fn join(&mut self, topic: TopicId, peers: &[PI], now: Duration) -> Result<(), JoinError> {
        if !self.topics.contains_key(&topic) && self.topics.len() >= self.config.max_topics {
            return Err(JoinError::TooManyTopics(self.config.max_topics));
        }
        let state = self
            .topics
            .entry(topic)
            .or_insert_with(|| Topic::new(self.me, &self.config, self.rng.next_u64()));
        state.join(peers, &mut self.rng, now, &mut self.scratch);
        self.flush(topic);
        Ok(())
    }

    /// Broadcasts `content` on a topic. Refuses content that would not fit
    /// [`Config::max_message_size`] on the wire. Outputs are taken with [`State::drain`] (or come
    /// with the next `handle`).
    pub fn broadcast(
        &mut self,
        topic: TopicId,
        content: Content,
        scope: Scope,
        now: Duration,
    ) -> Result<MessageId, BroadcastError> {
        let max = self.config.max_content_size();
        if content.len() > max {
            return Err(BroadcastError::TooLarge {
                size: content.len(),
                max,
            });
        }
        let Some(state) = self.topics.get_mut(&topic) else {
            return Err(BroadcastError::NotJoined);
        };
        // A counter plus random starting point: unique per node, and a restarted node does not
        // reuse the ids of its previous life.
        self.nonce = self.nonce.wrapping_add(1);
        let id = MessageId::new(&self.me.id_bytes(), self.nonce, content.as_bytes());
        state.broadcast(id, content, scope, now, &mut self.scratch);
        self.flush(topic);
        Ok(id)
    }

    /// Takes the queued outputs.
    pub fn drain(&mut self) -> std::vec::Drain<'_, OutEvent<PI>> {
        self.outbox.drain(..)
    }

    fn quit(&mut self, topic: TopicId) {
        let Some(state) = self.topics.remove(&topic) else {
            return;
        };
        for &peer in state.neighbors() {
            let message =
                TopicMessage::Membership(super::hyparview::Message::Disconnect { alive: false });
            self.outbox
                .push(OutEvent::SendMessage(peer, Message { topic, message }));
            self.disconnect_if_unused(peer);
        }
    }

    fn flush(&mut self, topic: TopicId) {
        let mut scratch = std::mem::take(&mut self.scratch);
        for out in scratch.drain(..) {
            match out {
                TopicOut::Send(to, message) => self
                    .outbox
                    .push(OutEvent::SendMessage(to, Message { topic, message })),
                TopicOut::Timer(delay, timer) => self
                    .outbox
                    .push(OutEvent::ScheduleTimer(delay, Timer { topic, timer })),
                TopicOut::Emit(event) => self.outbox.push(OutEvent::EmitEvent(topic, event)),
                TopicOut::Disconnect(peer) => self.disconnect_if_unused(peer),
            }
        }
        self.scratch = scratch;
    }

    fn disconnect_if_unused(&mut self, peer: PI) {
        if !self.topics.values().any(|t| t.is_neighbor(&peer)) {
            self.outbox.push(OutEvent::DisconnectPeer(peer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Event;

    fn topic() -> TopicId {
        TopicId::from_name("test")
    }

    /// Delivers every message between the given states until nothing moves (timers ignored).
    fn exchange(
        states: &mut [State<u32>],
        mut queue: Vec<(u32, OutEvent<u32>)>,
    ) -> Vec<(u32, TopicId, Event<u32>)> {
        let mut events = Vec::new();
        while !queue.is_empty() {
            let mut next = Vec::new();
            for (from, out) in queue.drain(..) {
                match out {
                    OutEvent::SendMessage(to, message) => {
                        let state = &mut states[to as usize];
                        next.extend(
                            state
                                .handle(InEvent::RecvMessage(from, message), Duration::ZERO)
                                .map(|o| (to, o)),
                        );
                    }
                    OutEvent::EmitEvent(topic, event) => events.push((from, topic, event)),
                    _ => {}
                }
            }
            queue = next;
        }
        events
    }

    #[test]
    fn two_nodes_join_and_broadcast() {
        // Eager new links, so the broadcast travels without timers (which `exchange` skips).
        let mut config = Config::default();
        config.broadcast.eager_new_links = true;
        let mut states: Vec<State<u32>> = (0..2)
            .map(|i| State::new(i, config.clone(), u64::from(i)))
            .collect();
        states[0].join(topic(), &[], Duration::ZERO).unwrap();
        states[1].join(topic(), &[0], Duration::ZERO).unwrap();
        let queue: Vec<_> = states[1].drain().map(|o| (1, o)).collect();
        let events = exchange(&mut states, queue);
        assert!(events.contains(&(0, topic(), Event::NeighborUp(1))));
        assert!(events.contains(&(1, topic(), Event::Joined)));
        assert_eq!(states[0].neighbors(&topic()), vec![1]);

        let id = states[0]
            .broadcast(
                topic(),
                Content::from(&[1, 2]),
                Scope::Swarm,
                Duration::ZERO,
            )
            .unwrap();
        let id2 = states[0]
            .broadcast(
                topic(),
                Content::from(&[1, 2]),
                Scope::Swarm,
                Duration::ZERO,
            )
            .unwrap();
        assert_ne!(id, id2, "equal content, two messages");
        let queue: Vec<_> = states[0].drain().map(|o| (0, o)).collect();
        let events = exchange(&mut states, queue);
        let received: Vec<_> = events
            .iter()
            .filter_map(|(at, _, e)| match e {
                Event::Received {
                    id,
                    delivered_from,
                    hops,
                    ..
                } => Some((*at, *id, *delivered_from, *hops)),
                _ => None,
            })
            .collect();
        assert_eq!(received, vec![(1, id, 0, 0), (1, id2, 0, 0)]);
    }

    #[test]
    fn oversized_and_unjoined_broadcasts_are_refused() {
        let mut state = State::new(0u32, Config::default(), 0);
        let too_big = Content::from(vec![0; 64 * 1024]);
        assert!(matches!(
            state.broadcast(topic(), too_big, Scope::Swarm, Duration::ZERO),
            Err(BroadcastError::TooLarge { .. })
        ));
        assert_eq!(
            state.broadcast(topic(), Content::from(&[1]), Scope::Swarm, Duration::ZERO),
            Err(BroadcastError::NotJoined)
        );
    }

    #[test]
    fn unknown_topics_are_ignored_and_quit_says_goodbye() {
        let mut states: Vec<State<u32>> = (0..2)
            .map(|i| State::new(i, Config::default(), 0))
            .collect();
        states[0].join(topic(), &[], Duration::ZERO).unwrap();
        states[1].join(topic(), &[0], Duration::ZERO).unwrap();
        let queue: Vec<_> = states[1].drain().map(|o| (1, o)).collect();
        exchange(&mut states, queue);
        let other = TopicId::from_name("other");
        let stray = Message {
            topic: other,
            message: TopicMessage::Membership(super::super::hyparview::Message::Join),
        };
        assert_eq!(
            states[0]
                .handle(InEvent::RecvMessage(1, stray), Duration::ZERO)
                .count(),
            0
        );
        assert!(!states[0].has_topic(&other));

        let outs: Vec<_> = states[1]
            .handle(InEvent::Command(topic(), Command::Quit), Duration::ZERO)
            .collect();
        assert!(
            outs.iter()
                .any(|o| matches!(o, OutEvent::DisconnectPeer(0)))
        );
        let queue: Vec<_> = outs.into_iter().map(|o| (1, o)).collect();
        let events = exchange(&mut states, queue);
        assert!(events.contains(&(0, topic(), Event::NeighborDown(1))));
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::proto::plumtree;

    fn hex_of(message: &Message<u32>) -> String {
        hex::encode(weft_transport::cbor_encode(message).unwrap())
    }

    #[test]
    fn wire_form_is_pinned() {
        // docs/protocols/gossip.md shows this encoding; change both together.
        let message = Message {
            topic: TopicId([0xaa; 32]),
            message: TopicMessage::Broadcast(plumtree::Message::Prune),
        };
        let expected = format!(
            "a265746f7069635820{}676d657373616765a16942726f616463617374655072756e65",
            "aa".repeat(32)
        );
        assert_eq!(hex_of(&message), expected);
        let back: Message<u32> =
            weft_transport::cbor_decode(&weft_transport::cbor_encode(&message).unwrap()).unwrap();
        assert_eq!(back, message);
    }
}
