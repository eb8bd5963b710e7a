//! The simulated network: nodes running [`State`], a virtual-time event queue, a latency model,
//! crashes and partitions.

#![allow(
    clippy::cast_possible_truncation,
    reason = "node indices fit u32 (checked in Network::new); counts and fractions are small"
)]

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    time::Duration,
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weft_transport::{Now, WallTime};

use crate::proto::{
    Config, Content, Event, Input, Message, MessageId, Output, Scope, State, Timer, TopicId,
    TopicMessage, plumtree,
};

/// Virtual time in microseconds.
type Micros = u64;

#[derive(Debug)]
enum Kind {
    Deliver {
        from: u32,
        to: u32,
        message: Message<u32>,
    },
    Timer {
        node: u32,
        timer: Timer<u32>,
    },
    Disconnected {
        node: u32,
        peer: u32,
    },
    Join {
        node: u32,
        peers: Vec<u32>,
    },
}

/// The event queue: a heap of small `(time, sequence, slot)` keys over a slab of events, so
/// heap moves stay cheap whatever the event size. The sequence keeps ties in insertion order
/// (and messages on one link in order: latency is fixed per link).
#[derive(Debug, Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Micros, u64, u32)>>,
    slab: Vec<Option<Kind>>,
    free: Vec<u32>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, at: Micros, kind: Kind) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(kind);
                slot
            }
            None => {
                self.slab.push(Some(kind));
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((at, self.seq, slot)));
    }

    /// The next event if it is due by `until`.
    fn pop_due(&mut self, until: Micros) -> Option<(Micros, Kind)> {
        let Reverse((at, _, slot)) = *self.heap.peek()?;
        if at > until {
            return None;
        }
        self.heap.pop();
        self.free.push(slot);
        self.slab[slot as usize].take().map(|kind| (at, kind))
    }
}

/// What happened to one broadcast.
#[derive(Debug, Clone, Copy)]
struct MsgStats {
    start: Micros,
    payload: u64,
    receivers: u64,
    max_hops: u16,
    last: Micros,
}

/// Metrics of one round, as the Plumtree paper defines them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RoundMetrics {
    /// Live nodes (other than the sender) that did not deliver, summed over the round's
    /// messages.
    pub(crate) missed: u64,
    /// payload messages / receivers − 1 (receivers exclude the sender).
    pub(crate) rmr: f64,
    /// Highest hop count of a delivery (the sender's neighbours are at 0).
    pub(crate) ldh: u16,
    /// From the broadcast to the last delivery, virtual milliseconds.
    pub(crate) duration_ms: f64,
    /// Plumtree control messages (IHAVE, GRAFT, PRUNE) sent during the round.
    pub(crate) control: u64,
    /// Membership messages sent during the round.
    pub(crate) membership: u64,
}

/// A simulated network of gossip nodes on one topic.
#[derive(Debug)]
pub(crate) struct Network {
    nodes: Vec<State<u32>>,
    alive: Vec<bool>,
    side: Vec<bool>,
    partitioned: bool,
    queue: Queue,
    now: Micros,
    pub(crate) rng: ChaCha8Rng,
    link_seed: u64,
    latency: [Micros; 2],
    detect: Micros,
    topic: TopicId,
    msgs: HashMap<MessageId, MsgStats>,
    control: u64,
    membership: u64,
    round_deliveries: u64,
    /// Messages sent per kind, for diagnostics.
    pub(crate) kinds: std::collections::BTreeMap<&'static str, u64>,
    /// Whether to fill `kinds` (off: it costs a map update per message).
    pub(crate) count_kinds: bool,
}

impl Network {
    pub(crate) fn new(
        nodes: usize,
        config: &Config,
        seed: u64,
        latency_ms: [u64; 2],
        detect_ms: u64,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let link_seed = rng.random();
        let nodes: Vec<State<u32>> = (0..nodes)
            .map(|i| {
                State::new(
                    u32::try_from(i).expect("node count fits u32"),
                    config.clone(),
                    rng.random(),
                )
            })
            .collect();
        let count = nodes.len();
        let [min, max] = latency_ms;
        Self {
            nodes,
            alive: vec![true; count],
            side: vec![false; count],
            partitioned: false,
            queue: Queue::default(),
            now: 0,
            rng,
            link_seed,
            latency: [min.min(max) * 1000, max.max(min) * 1000],
            detect: detect_ms * 1000,
            topic: TopicId::from_name("sim"),
            msgs: HashMap::new(),
            control: 0,
            membership: 0,
            round_deliveries: 0,
            kinds: Default::default(),
            count_kinds: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn now(&self) -> Micros {
        self.now
    }

    /// The active peers of `node`.
    pub(crate) fn neighbors_of(&self, node: u32) -> Vec<u32> {
        self.nodes[node as usize].neighbors(&self.topic)
    }

    /// How many eager (tree) links `node` has.
    pub(crate) fn eager_links_of(&self, node: u32) -> usize {
        self.nodes[node as usize].tree_links(&self.topic).0.len()
    }

    pub(crate) fn is_alive(&self, node: u32) -> bool {
        self.alive[node as usize]
    }

    pub(crate) fn live_nodes(&self) -> Vec<u32> {
        (0..self.nodes.len())
            .filter(|&i| self.alive[i])
            .map(|i| i as u32)
            .collect()
    }

    /// Schedules `node` to join through `peers` at virtual time `at`.
    pub(crate) fn schedule_join(&mut self, node: u32, peers: Vec<u32>, at: Micros) {
        self.push(at, Kind::Join { node, peers });
    }

    /// Fixed per-link latency, uniform in the configured range.
    fn latency(&self, a: u32, b: u32) -> Micros {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let mut x = self.link_seed ^ (u64::from(lo) << 32 | u64::from(hi));
        // splitmix64: a good spread from consecutive inputs.
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let [min, max] = self.latency;
        min + x % (max - min + 1)
    }

    fn cut(&self, a: u32, b: u32) -> bool {
        !self.alive[b as usize]
            || (self.partitioned && self.side[a as usize] != self.side[b as usize])
    }

    fn push(&mut self, at: Micros, kind: Kind) {
        self.queue.push(at, kind);
    }

    /// Runs events up to and including time `until`, then sets the clock to it.
    pub(crate) fn run_until(&mut self, until: Micros) {
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs one event if one is due by `until`.
    fn step(&mut self, until: Micros) -> bool {
        let Some((at, kind)) = self.queue.pop_due(until) else {
            return false;
        };
        self.now = at;
        let now = virtual_now(at);
        let (node, input) = match kind {
            Kind::Deliver { from, to, message } => {
                if self.cut(from, to) {
                    return true;
                }
                (to, Input::RecvMessage(from, message))
            }
            Kind::Timer { node, timer } => (node, Input::TimerExpired(timer)),
            Kind::Disconnected { node, peer } => (node, Input::PeerDisconnected(peer)),
            Kind::Join { node, peers } => {
                if self.alive[node as usize] {
                    let topic = self.topic;
                    let state = &mut self.nodes[node as usize];
                    let _ = state.join(topic, &peers, now);
                    let outs: Vec<_> = state.drain().collect();
                    self.apply(node, outs);
                }
                return true;
            }
        };
        if !self.alive[node as usize] {
            return true;
        }
        let state = &mut self.nodes[node as usize];
        state.handle(input, now);
        let outs: Vec<_> = state.drain().collect();
        self.apply(node, outs);
        true
    }

    fn apply(&mut self, node: u32, outs: Vec<Output<u32>>) {
        for out in outs {
            match out {
                Output::SendMessage(to, message) => {
                    if self.count_kinds {
                        *self.kinds.entry(kind_name(&message.message)).or_default() += 1;
                    }
                    match &message.message {
                        TopicMessage::Broadcast(plumtree::Message::Gossip(gossip)) => {
                            if let Some(stats) = self.msgs.get_mut(&gossip.id) {
                                stats.payload += 1;
                            }
                        }
                        TopicMessage::Broadcast(_) => self.control += 1,
                        _ => self.membership += 1,
                    }
                    let latency = self.latency(node, to);
                    if self.cut(node, to) {
                        // The connection attempt fails (or the open one breaks).
                        self.push(
                            self.now + 2 * latency,
                            Kind::Disconnected { node, peer: to },
                        );
                    } else {
                        self.push(
                            self.now + latency,
                            Kind::Deliver {
                                from: node,
                                to,
                                message,
                            },
                        );
                    }
                }
                Output::EmitEvent(_, Event::Received { id, hops, .. }) => {
                    if let Some(stats) = self.msgs.get_mut(&id) {
                        stats.receivers += 1;
                        stats.max_hops = stats.max_hops.max(hops);
                        stats.last = self.now;
                        self.round_deliveries += 1;
                    }
                }
                Output::ScheduleTimer(delay, timer) => {
                    let at = self.now + u64::try_from(delay.as_micros()).unwrap_or(u64::MAX / 2);
                    self.push(at, Kind::Timer { node, timer });
                }
                _ => {}
            }
        }
    }

    /// Crashes nodes; their live neighbours notice after the detection delay.
    pub(crate) fn fail(&mut self, victims: &[u32]) {
        for &v in victims {
            self.alive[v as usize] = false;
        }
        self.notify_broken_links();
    }

    /// Splits the live nodes into two random halves.
    pub(crate) fn partition(&mut self) {
        let mut nodes = self.live_nodes();
        for i in 0..nodes.len() {
            let j = self.rng.random_range(i..nodes.len());
            nodes.swap(i, j);
        }
        let half = nodes.len() / 2;
        for (i, node) in nodes.into_iter().enumerate() {
            self.side[node as usize] = i < half;
        }
        self.partitioned = true;
        self.notify_broken_links();
    }

    pub(crate) fn heal(&mut self) {
        self.partitioned = false;
    }

    fn notify_broken_links(&mut self) {
        let at = self.now + self.detect;
        for node in self.live_nodes() {
            for peer in self.nodes[node as usize].neighbors(&self.topic) {
                if self.cut(node, peer) {
                    self.push(at, Kind::Disconnected { node, peer });
                }
            }
        }
    }

    /// Runs one round: `senders` broadcast at once; ends `settle` after every live node
    /// delivered everything, or at `timeout`.
    pub(crate) fn round(
        &mut self,
        senders: &[u32],
        content_size: usize,
        settle_ms: u64,
        timeout_ms: u64,
    ) -> RoundMetrics {
        let start = self.now;
        let (control, membership) = (self.control, self.membership);
        self.round_deliveries = 0;
        let live = self.alive.iter().filter(|a| **a).count() as u64;
        let mut ids = Vec::new();
        for &sender in senders {
            let mut bytes = vec![0u8; content_size];
            self.rng.fill(&mut bytes[..]);
            let topic = self.topic;
            let state = &mut self.nodes[sender as usize];
            let Ok(id) = state.broadcast(
                topic,
                Content::from(bytes),
                Scope::Swarm,
                virtual_now(start),
            ) else {
                continue;
            };
            self.msgs.insert(
                id,
                MsgStats {
                    start,
                    payload: 0,
                    receivers: 0,
                    max_hops: 0,
                    last: start,
                },
            );
            ids.push(id);
            let outs: Vec<_> = self.nodes[sender as usize].drain().collect();
            self.apply(sender, outs);
        }
        let expected = ids.len() as u64 * live.saturating_sub(1);
        let mut deadline = start + timeout_ms * 1000;
        let mut done = false;
        while self.step(deadline) {
            if !done && self.round_deliveries >= expected {
                done = true;
                deadline = deadline.min(self.now + settle_ms * 1000);
            }
        }
        self.now = self.now.max(deadline);

        let mut metrics = RoundMetrics {
            missed: 0,
            rmr: 0.0,
            ldh: 0,
            duration_ms: 0.0,
            control: 0,
            membership: 0,
        };
        let (mut payload, mut receivers) = (0u64, 0u64);
        for id in &ids {
            if let Some(stats) = self.msgs.remove(id) {
                payload += stats.payload;
                receivers += stats.receivers;
                metrics.missed += live.saturating_sub(1).saturating_sub(stats.receivers);
                metrics.ldh = metrics.ldh.max(stats.max_hops);
                let duration = (stats.last - stats.start) as f64 / 1000.0;
                metrics.duration_ms = metrics.duration_ms.max(duration);
            }
        }
        if receivers > 0 {
            metrics.rmr = payload as f64 / receivers as f64 - 1.0;
        }
        metrics.control = self.control - control;
        metrics.membership = self.membership - membership;
        metrics
    }
}

fn kind_name(message: &TopicMessage<u32>) -> &'static str {
    use crate::proto::hyparview::Message as H;
    match message {
        TopicMessage::Broadcast(plumtree::Message::Gossip(g)) if g.hops == 0 => "gossip/push",
        TopicMessage::Broadcast(plumtree::Message::Gossip(_)) => "gossip",
        TopicMessage::Broadcast(plumtree::Message::IHave(_)) => "ihave",
        TopicMessage::Broadcast(plumtree::Message::Graft { id: Some(_) }) => "graft",
        TopicMessage::Broadcast(plumtree::Message::Graft { id: None }) => "graft/opt",
        TopicMessage::Broadcast(plumtree::Message::Prune) => "prune",
        TopicMessage::Membership(H::Neighbor { .. }) => "neighbor",
        TopicMessage::Membership(H::Shuffle { .. }) => "shuffle",
        TopicMessage::Membership(_) => "membership",
    }
}

/// The proto's view of virtual time `at` (microseconds since the start of the simulation).
fn virtual_now(at: Micros) -> Now {
    Now {
        mono: Duration::from_micros(at),
        wall: WallTime::from_millis(at / 1000),
    }
}
