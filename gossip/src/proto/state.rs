//! Many topics behind one entry point: `handle(Input, now)`, then `drain()` the outputs.

use std::{collections::BTreeMap, time::Duration};

use weft_transport::Now;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{
    config::Config,
    plumtree,
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

// Here rather than in `config`, so that the config module stays a leaf: the sizes come from
// encoding a wire message.
impl Config {
    /// Bytes the envelope of a broadcast adds around its content, framing included, as an upper
    /// bound (the largest hop count, the longest CBOR length header).
    pub fn envelope_overhead() -> usize {
        let empty = Message::<u64> {
            topic: TopicId([0xff; 32]),
            message: TopicMessage::Broadcast(plumtree::Message::Gossip(plumtree::Push {
                id: MessageId([0xff; 32]),
                content: Content::from(Vec::new()),
                hops: u16::MAX,
                scope: Scope::Neighbors,
            })),
        };
        let encoded = weft_transport::cbor_encode(&empty).map_or(0, |bytes| bytes.len());
        // An empty byte string has a 1-byte CBOR header; a long one has up to 9. The runtime
        // wraps a broadcast as `[message, []]` (2 bytes); 8 more are allowed for that wrapper.
        weft_transport::frame_overhead() + encoded + 8 + 8
    }

    /// The largest content a broadcast may carry under [`Config::max_message_size`].
    pub fn max_content_size(&self) -> usize {
        self.max_message_size
            .saturating_sub(Self::envelope_overhead())
    }
}

/// Inputs of the protocol.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<PI> {
    /// A message arrived from a peer.
    RecvMessage(PI, Message<PI>),
    /// The application asks something of a topic.
    Command(TopicId, Command<PI>),
    /// A timer scheduled by [`Output::ScheduleTimer`] expired.
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
pub enum Output<PI> {
    /// Send a message to a peer (connecting if needed).
    SendMessage(PI, Message<PI>),
    /// Tell the application something about a topic.
    EmitEvent(TopicId, Event<PI>),
    /// Feed `Input::TimerExpired(timer)` back after this delay.
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

impl<PI> Timer<PI> {
    /// Whether this is one of a topic's periodic timers (re-armed each time it fires: shuffle,
    /// rejoin, refill, IHAVE dispatch), as opposed to a one-shot timer of a missing message or
    /// a neighbour request. A topic has at most four periodic timers pending, so a runtime's
    /// bounded timer queue can always admit them.
    pub fn is_periodic(&self) -> bool {
        use super::{hyparview::Timer as M, plumtree::Timer as B};
        match &self.timer {
            TopicTimer::Membership(M::Shuffle | M::Rejoin | M::Refill)
            | TopicTimer::Broadcast(B::DispatchIHave) => true,
            TopicTimer::Membership(M::NeighborRequest(_)) | TopicTimer::Broadcast(B::Graft(_)) => {
                false
            }
        }
    }
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
    outbox: Vec<Output<PI>>,
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

    /// Processes one input; its outputs are queued for [`State::drain`].
    pub fn handle(&mut self, input: Input<PI>, now: Now) {
        let mono = now.mono;
        match input {
            Input::RecvMessage(from, Message { topic, message }) => {
                // Messages for topics we did not join are ignored: joining is the application's
                // decision, and a stranger must not make us allocate state.
                if let Some(state) = self.topics.get_mut(&topic) {
                    state.on_message(from, message, &mut self.rng, mono, &mut self.scratch);
                    self.flush(topic);
                }
            }
            Input::Command(topic, Command::Join(peers)) => {
                if self.join(topic, &peers, now).is_err() {
                    // Refused joins are reported by `State::join`; through `handle` they only
                    // leave no trace, like a join of a full node would.
                }
            }
            Input::Command(topic, Command::Quit) => self.quit(topic),
            Input::TimerExpired(Timer { topic, timer }) => {
                if let Some(state) = self.topics.get_mut(&topic) {
                    state.on_timer(timer, &mut self.rng, mono, &mut self.scratch);
                    self.flush(topic);
                }
            }
            Input::PeerDisconnected(peer) => {
                let topics: Vec<TopicId> = self.topics.keys().copied().collect();
                for topic in topics {
                    if let Some(state) = self.topics.get_mut(&topic) {
                        state.on_peer_disconnected(peer, &mut self.rng, mono, &mut self.scratch);
                        self.flush(topic);
                    }
                }
            }
        }
    }

    /// Joins a topic through `peers` (or adds bootstrap peers to a joined topic). Outputs are
    /// taken with [`State::drain`].
    pub fn join(&mut self, topic: TopicId, peers: &[PI], now: Now) -> Result<(), JoinError> {
        if !self.topics.contains_key(&topic) && self.topics.len() >= self.config.max_topics {
            return Err(JoinError::TooManyTopics(self.config.max_topics));
        }
        let state = self
            .topics
            .entry(topic)
            .or_insert_with(|| Topic::new(self.me, &self.config, self.rng.next_u64()));
        state.join(peers, &mut self.rng, now.mono, &mut self.scratch);
        self.flush(topic);
        Ok(())
    }

    /// Broadcasts `content` on a topic. Refuses content that would not fit
    /// [`Config::max_message_size`] on the wire. Outputs are taken with [`State::drain`].
    pub fn broadcast(
        &mut self,
        topic: TopicId,
        content: Content,
        scope: Scope,
        now: Now,
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
        state.broadcast(id, content, scope, now.mono, &mut self.scratch);
        self.flush(topic);
        Ok(id)
    }

    /// Takes the queued outputs (call after every input or command).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Output<PI>> {
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
                .push(Output::SendMessage(peer, Message { topic, message }));
            self.disconnect_if_unused(peer);
        }
    }

    fn flush(&mut self, topic: TopicId) {
        let mut scratch = std::mem::take(&mut self.scratch);
        for out in scratch.drain(..) {
            match out {
                TopicOut::Send(to, message) => self
                    .outbox
                    .push(Output::SendMessage(to, Message { topic, message })),
                TopicOut::Timer(delay, timer) => self
                    .outbox
                    .push(Output::ScheduleTimer(delay, Timer { topic, timer })),
                TopicOut::Emit(event) => self.outbox.push(Output::EmitEvent(topic, event)),
                TopicOut::Disconnect(peer) => self.disconnect_if_unused(peer),
            }
        }
        self.scratch = scratch;
    }

    fn disconnect_if_unused(&mut self, peer: PI) {
        if !self.topics.values().any(|t| t.is_neighbor(&peer)) {
            self.outbox.push(Output::DisconnectPeer(peer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Event;

    const T0: Now = Now::virtual_millis(0);

    fn topic() -> TopicId {
        TopicId::from_name("test")
    }

    /// Delivers every message between the given states until nothing moves (timers ignored).
    fn exchange(
        states: &mut [State<u32>],
        mut queue: Vec<(u32, Output<u32>)>,
    ) -> Vec<(u32, TopicId, Event<u32>)> {
        let mut events = Vec::new();
        while !queue.is_empty() {
            let mut next = Vec::new();
            for (from, out) in queue.drain(..) {
                match out {
                    Output::SendMessage(to, message) => {
                        let state = &mut states[to as usize];
                        state.handle(Input::RecvMessage(from, message), T0);
                        next.extend(state.drain().map(|o| (to, o)));
                    }
                    Output::EmitEvent(topic, event) => events.push((from, topic, event)),
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
        states[0].join(topic(), &[], T0).unwrap();
        states[1].join(topic(), &[0], T0).unwrap();
        let queue: Vec<_> = states[1].drain().map(|o| (1, o)).collect();
        let events = exchange(&mut states, queue);
        assert!(events.contains(&(0, topic(), Event::NeighborUp(1))));
        assert!(events.contains(&(1, topic(), Event::Joined)));
        assert_eq!(states[0].neighbors(&topic()), vec![1]);

        let id = states[0]
            .broadcast(topic(), Content::from(&[1, 2]), Scope::Swarm, T0)
            .unwrap();
        let id2 = states[0]
            .broadcast(topic(), Content::from(&[1, 2]), Scope::Swarm, T0)
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
            state.broadcast(topic(), too_big, Scope::Swarm, T0),
            Err(BroadcastError::TooLarge { .. })
        ));
        assert_eq!(
            state.broadcast(topic(), Content::from(&[1]), Scope::Swarm, T0),
            Err(BroadcastError::NotJoined)
        );
    }

    #[test]
    fn unknown_topics_are_ignored_and_quit_says_goodbye() {
        let mut states: Vec<State<u32>> = (0..2)
            .map(|i| State::new(i, Config::default(), 0))
            .collect();
        states[0].join(topic(), &[], T0).unwrap();
        states[1].join(topic(), &[0], T0).unwrap();
        let queue: Vec<_> = states[1].drain().map(|o| (1, o)).collect();
        exchange(&mut states, queue);
        let other = TopicId::from_name("other");
        let stray = Message {
            topic: other,
            message: TopicMessage::Membership(super::super::hyparview::Message::Join),
        };
        states[0].handle(Input::RecvMessage(1, stray), T0);
        assert_eq!(states[0].drain().count(), 0);
        assert!(!states[0].has_topic(&other));

        states[1].handle(Input::Command(topic(), Command::Quit), T0);
        let outs: Vec<_> = states[1].drain().collect();
        assert!(outs.iter().any(|o| matches!(o, Output::DisconnectPeer(0))));
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

    #[test]
    fn max_content_counts_the_envelope() {
        let config = Config::default();
        let max = config.max_content_size();
        assert!(
            max < 64 * 1024 && max > 64 * 1024 - 200,
            "{}",
            Config::envelope_overhead()
        );
        // A message with the largest allowed content fits the configured size on the wire.
        let message = Message::<u64> {
            topic: TopicId([7; 32]),
            message: TopicMessage::Broadcast(plumtree::Message::Gossip(plumtree::Push {
                id: MessageId([1; 32]),
                content: Content::from(vec![0u8; max]),
                hops: 300,
                scope: Scope::Swarm,
            })),
        };
        let frame = weft_transport::encode_frame(&message, usize::MAX).unwrap();
        assert!(
            frame.len() <= config.max_message_size,
            "{} > {}",
            frame.len(),
            config.max_message_size
        );
    }
}
