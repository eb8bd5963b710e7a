//! A network of [`Manager`]s in virtual time: sessions as ordered streams with a fixed latency
//! per link, timers, and counters. The simulator and the proto tests both drive it.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap},
    sync::Arc,
    time::Duration,
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weft_gossip::TopicId;
use weft_transport::{Now, WallTime};

use crate::{
    proto::{
        Config, Event, Frame, Input, Item, Manager, Output, ProtocolFactory, SessionId,
        SetReconciliationFactory, Timer, TopicItems,
    },
    store::MemoryStore,
};

/// Transport framing around a session frame (length prefix, CBOR enum tag and byte string
/// header), counted into the bytes a frame costs.
const FRAME_OVERHEAD: usize = 8;

/// A node index.
pub type NodeId = u32;

#[derive(Debug)]
enum Delivery {
    /// `from` opened `session` to `to`.
    Open {
        from: NodeId,
        session: SessionId,
        to: NodeId,
    },
    /// A frame `from` sent on its end `session`.
    Frame {
        from: NodeId,
        session: SessionId,
        frame: Frame,
    },
    /// `from` finished its end `session`.
    Finish {
        from: NodeId,
        session: SessionId,
    },
    Timer {
        node: NodeId,
        timer: Timer<NodeId>,
    },
}

/// What the world counted.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Bytes each node sent (session frames with framing).
    pub bytes_sent: Vec<u64>,
    /// Frames sent in all.
    pub frames: u64,
    /// `ItemReceived` events.
    pub items_received: u64,
    /// `CaughtUp` events and their round trips summed.
    pub caught_up: u64,
    /// Reconciliation round trips summed over `CaughtUp` events.
    pub round_trips: u64,
    /// `SessionFailed` events.
    pub failed: u64,
}

/// Sync managers on a simulated network.
pub struct World {
    nodes: Vec<Manager<NodeId>>,
    /// Events each node emitted, in order (cleared by [`World::take_events`]).
    events: Vec<Vec<(TopicId, Event<NodeId>)>>,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    pending: BTreeMap<usize, Delivery>,
    seq: u64,
    now: Duration,
    /// The other end of each open session end.
    peers: BTreeMap<(NodeId, SessionId), (NodeId, SessionId)>,
    /// Ends whose `Open` is in flight, with the peer they lead to.
    opening: BTreeMap<(NodeId, SessionId), NodeId>,
    latency: BTreeMap<(NodeId, NodeId), Duration>,
    latency_range: (Duration, Duration),
    down: Vec<bool>,
    rng: ChaCha8Rng,
    /// What the world counted so far.
    pub counters: Counters,
    /// Whether events are kept for [`World::take_events`] (counted either way); off for large
    /// simulations.
    pub record_events: bool,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("nodes", &self.nodes.len())
            .field("now", &self.now)
            .finish()
    }
}

impl World {
    /// `count` nodes with `config`; link latencies uniform in `latency` (fixed per link).
    pub fn new(count: u32, config: &Config, latency: (Duration, Duration), seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nodes = (0..count)
            .map(|i| Manager::new(i, config.clone(), rng.random()))
            .collect();
        Self {
            nodes,
            events: vec![Vec::new(); count as usize],
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            now: Duration::ZERO,
            peers: BTreeMap::new(),
            opening: BTreeMap::new(),
            latency: BTreeMap::new(),
            latency_range: latency,
            down: vec![false; count as usize],
            rng,
            counters: Counters {
                bytes_sent: vec![0; count as usize],
                ..Counters::default()
            },
            record_events: true,
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The current virtual time as the managers see it: both clocks at [`World::now`].
    pub fn clock(&self) -> Now {
        Now {
            mono: self.now,
            wall: WallTime::from_millis(u64::try_from(self.now.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// A node's manager.
    pub fn node(&self, node: NodeId) -> &Manager<NodeId> {
        &self.nodes[node as usize]
    }

    /// A node's manager, to call commands on; call [`World::flush`] after.
    pub fn node_mut(&mut self, node: NodeId) -> &mut Manager<NodeId> {
        &mut self.nodes[node as usize]
    }

    /// Subscribes `node` to `topic` with these items and the built-in protocol.
    pub fn subscribe(&mut self, node: NodeId, topic: TopicId, items: &[Item]) {
        let config = self.nodes[node as usize].config().clone();
        let protocol: Arc<dyn ProtocolFactory> =
            Arc::new(SetReconciliationFactory::new((&config).into()));
        self.subscribe_with(node, topic, items, protocol);
    }

    /// Subscribes `node` to `topic` with these items and a protocol of your own.
    pub fn subscribe_with(
        &mut self,
        node: NodeId,
        topic: TopicId,
        items: &[Item],
        protocol: Arc<dyn ProtocolFactory>,
    ) {
        let mut store = MemoryStore::with_max_items(u64::MAX);
        crate::store::Store::insert_many(&mut store, items).expect("memory store");
        let items = TopicItems::open(Box::new(store)).expect("memory store");
        self.nodes[node as usize]
            .subscribe(topic, items, protocol)
            .expect("subscribe");
    }

    /// Makes `a` and `b` gossip neighbours of `topic` (both ends hear `NeighborUp`).
    pub fn link(&mut self, topic: TopicId, a: NodeId, b: NodeId) {
        self.input(a, Input::NeighborUp { topic, peer: b });
        self.input(b, Input::NeighborUp { topic, peer: a });
    }

    /// Feeds an input to a node and routes its outputs.
    pub fn input(&mut self, node: NodeId, event: Input<NodeId>) {
        let now = self.clock();
        self.nodes[node as usize].handle(event, now);
        self.flush(node);
    }

    /// Routes a node's pending outputs (after a command call on [`World::node_mut`]).
    pub fn flush(&mut self, node: NodeId) {
        let outputs: Vec<_> = self.nodes[node as usize].drain().collect();
        for output in outputs {
            match output {
                Output::Open { session, peer } => {
                    self.opening.insert((node, session), peer);
                    self.deliver(
                        node,
                        Some(peer),
                        Delivery::Open {
                            from: node,
                            session,
                            to: peer,
                        },
                    );
                }
                Output::Send { session, frame } => {
                    let size = match &frame {
                        Frame::Data(data) => data.len(),
                        _ => 40,
                    } + FRAME_OVERHEAD;
                    self.counters.bytes_sent[node as usize] += size as u64;
                    self.counters.frames += 1;
                    let to = self.peer_of(node, session);
                    self.deliver(
                        node,
                        to,
                        Delivery::Frame {
                            from: node,
                            session,
                            frame,
                        },
                    );
                }
                Output::Close { session } => {
                    let to = self.peer_of(node, session);
                    self.deliver(
                        node,
                        to,
                        Delivery::Finish {
                            from: node,
                            session,
                        },
                    );
                }
                Output::Emit { topic, event } => self.count_event(node, topic, event),
                Output::ScheduleTimer(delay, timer) => {
                    self.schedule(self.now + delay, Delivery::Timer { node, timer });
                }
            }
        }
    }

    fn count_event(&mut self, node: NodeId, topic: TopicId, event: Event<NodeId>) {
        match &event {
            Event::ItemReceived { .. } => self.counters.items_received += 1,
            Event::CaughtUp { stats, .. } => {
                self.counters.caught_up += 1;
                self.counters.round_trips += u64::from(stats.round_trips);
            }
            Event::SessionFailed { .. } => self.counters.failed += 1,
            _ => {}
        }
        if self.record_events {
            self.events[node as usize].push((topic, event));
        }
    }

    /// Where a session end leads, linked or with its `Open` in flight.
    fn peer_of(&self, node: NodeId, session: SessionId) -> Option<NodeId> {
        self.peers
            .get(&(node, session))
            .map(|(peer, _)| *peer)
            .or_else(|| self.opening.get(&(node, session)).copied())
    }

    fn link_latency(&mut self, a: NodeId, b: NodeId) -> Duration {
        let key = (a.min(b), a.max(b));
        let (low, high) = self.latency_range;
        if let Some(latency) = self.latency.get(&key) {
            return *latency;
        }
        let latency = if high > low {
            self.rng.random_range(low..high)
        } else {
            low
        };
        self.latency.insert(key, latency);
        latency
    }

    fn deliver(&mut self, from: NodeId, to: Option<NodeId>, delivery: Delivery) {
        let Some(to) = to else {
            return;
        };
        let latency = self.link_latency(from, to);
        self.schedule(self.now + latency, delivery);
    }

    fn schedule(&mut self, at: Duration, delivery: Delivery) {
        self.seq += 1;
        let key = self.seq as usize;
        self.pending.insert(key, delivery);
        self.queue.push(Reverse((at, self.seq, key)));
    }

    /// Takes the events each node emitted so far.
    pub fn take_events(&mut self) -> Vec<Vec<(TopicId, Event<NodeId>)>> {
        let count = self.events.len();
        std::mem::replace(&mut self.events, vec![Vec::new(); count])
    }

    /// Crashes a node: it neither sends nor receives any more; its peers see their streams fail.
    pub fn crash(&mut self, node: NodeId) {
        self.down[node as usize] = true;
        let ends: Vec<_> = self
            .peers
            .iter()
            .filter(|((n, _), _)| *n == node)
            .map(|(_, (peer, session))| (*peer, *session))
            .collect();
        for (peer, session) in ends {
            let error = Some("connection lost".to_owned());
            self.input(peer, Input::Closed { session, error });
        }
    }

    /// Processes deliveries until the queue is empty or the time passes `until`.
    pub fn run_until(&mut self, until: Duration) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Some(Reverse((at, _, key))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            if let Some(delivery) = self.pending.remove(&key) {
                self.process(delivery);
            }
        }
        self.now = self.now.max(until);
    }

    /// Processes deliveries until `done` holds (checked after each) or `limit` passes.
    /// Returns whether `done` held.
    pub fn run_while(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) -> bool {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if done(self) {
                return true;
            }
            if *at > limit {
                return false;
            }
            let Some(Reverse((at, _, key))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            if let Some(delivery) = self.pending.remove(&key) {
                self.process(delivery);
            }
        }
        done(self)
    }

    fn process(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Open { from, session, to } => {
                self.opening.remove(&(from, session));
                if self.down[to as usize] {
                    let error = Some("peer unreachable".to_owned());
                    return self.input(from, Input::Closed { session, error });
                }
                let now = self.clock();
                let accepted = self.nodes[to as usize].accept(from, now);
                self.peers.insert((from, session), (to, accepted));
                self.peers.insert((to, accepted), (from, session));
                self.flush(to);
            }
            Delivery::Frame {
                from,
                session,
                frame,
            } => {
                let Some((to, end)) = self.peers.get(&(from, session)).copied() else {
                    return;
                };
                if self.down[to as usize] {
                    return;
                }
                self.input(
                    to,
                    Input::Frame {
                        session: end,
                        frame,
                    },
                );
            }
            Delivery::Finish { from, session } => {
                let Some((to, end)) = self.peers.remove(&(from, session)) else {
                    return;
                };
                self.peers.remove(&(to, end));
                if !self.down[to as usize] {
                    self.input(
                        to,
                        Input::Closed {
                            session: end,
                            error: None,
                        },
                    );
                }
            }
            Delivery::Timer { node, timer } => {
                if !self.down[node as usize] {
                    self.input(node, Input::TimerExpired(timer));
                }
            }
        }
    }
}
