//! The simulated world: nodes, links, a virtual-time event queue and the network model.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use rand::{Rng, SeedableRng, seq::IteratorRandom};
use rand_chacha::ChaCha8Rng;
use weft_transport::{NetworkId, PeerId, SecretKey};

use super::scenario::Scenario;
use crate::proto::{
    Announcement, Command, Config, DepartReason, Event, Input, LocalInfo, Message, Node, Now,
    Output, SharedEntry, SyncMessage, Time, Timer, UpsertOutcome, time_millis,
};

/// Receivers of a broadcast whose catalogs are looked up together before the deliveries.
const WARM_AHEAD: usize = 8;

/// Virtual time zero: a plausible wall clock, so versions and timestamps look real.
pub(super) const EPOCH: Time = Time::from_millis(1_700_000_000_000);

/// Things the scenario makes happen.
#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
    Join(usize),
    Crash(usize),
    Depart(usize),
    Change(usize),
    Partition,
    Heal,
}

#[derive(Debug)]
enum Scheduled {
    Deliver {
        to: usize,
        input: Input,
    },
    /// One announcement arriving at several nodes at the same time, in this order: one queue
    /// entry instead of one per receiver (a 10,000-node broadcast would otherwise put 10,000
    /// entries in the queue).
    Broadcast {
        to: Vec<u32>,
        announcement: Announcement,
    },
    Timer {
        node: usize,
        timer: Timer,
    },
    Neighbour {
        node: usize,
        peer: PeerId,
        up: bool,
    },
    Action(Action),
}

/// One simulated node.
#[derive(Debug, Default)]
pub(super) struct SimNode {
    pub(super) node: Option<Node>,
    pub(super) alive: bool,
    pub(super) side: u8,
    pub(super) neighbours: BTreeSet<usize>,
    pub(super) announce_bytes: u64,
    pub(super) sync_bytes: u64,
}

/// Byte and session counters, reset at each phase.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    pub(super) announce_bytes: u64,
    pub(super) sync_bytes: u64,
    /// What full-snapshot sync (each side sends its whole catalog) would have sent for the
    /// sync sessions started in the phase.
    pub(super) full_snapshot_bytes: u64,
    pub(super) sessions: u64,
}

#[derive(Debug)]
pub(super) struct World {
    pub(super) now: Time,
    pub(super) rng: ChaCha8Rng,
    pub(super) nodes: Vec<SimNode>,
    pub(super) ids: BTreeMap<PeerId, usize>,
    keys: Vec<SecretKey>,
    queue: BTreeMap<(Time, u64), Scheduled>,
    seq: u64,
    latency: (u64, u64),
    config: Config,
    network: NetworkId,
    active_view: usize,
    seed: u64,
    cut: Vec<(usize, usize)>,
    pub(super) counters: Counters,
    /// Peers whose removal from catalogs is being timed: removals seen and the last one's time.
    pub(super) tracked: BTreeMap<PeerId, (usize, Time)>,
    /// Nodes below this index are honest; the flood's strangers are added after them.
    pub(super) honest: usize,
    /// What the flood did to honest catalogs.
    pub(super) flood: FloodCounters,
}

/// Admissions to honest catalogs during the flood phase.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FloodCounters {
    /// Times an honest node evicted an honest peer.
    pub(super) honest_evicted: u64,
    /// Times an honest node admitted a stranger.
    pub(super) strangers_admitted: u64,
    /// Times an honest node evicted a stranger.
    pub(super) strangers_evicted: u64,
    /// Times an honest node refused an entry for want of room.
    pub(super) refused_full: u64,
}

impl World {
    pub(super) fn new(scenario: &Scenario) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let n = scenario.nodes.max(1);
        let keys: Vec<SecretKey> = (0..n)
            .map(|_| SecretKey::from_bytes(&rng.random::<[u8; 32]>()))
            .collect();
        let ids = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.peer_id(), i))
            .collect();
        Self {
            now: EPOCH,
            rng,
            nodes: (0..n).map(|_| SimNode::default()).collect(),
            ids,
            keys,
            queue: BTreeMap::new(),
            seq: 0,
            latency: (
                scenario.latency_min_ms,
                scenario.latency_max_ms.max(scenario.latency_min_ms),
            ),
            config: scenario.config.clone(),
            network: NetworkId::from_name("weft-sim"),
            active_view: scenario.active_view.max(1),
            seed: scenario.seed,
            cut: Vec::new(),
            counters: Counters::default(),
            tracked: BTreeMap::new(),
            honest: n,
            flood: FloodCounters::default(),
        }
    }

    /// Adds a node that has not joined yet, with its own key; returns its index.
    pub(super) fn add_node(&mut self, key: SecretKey) -> usize {
        let i = self.nodes.len();
        self.ids.insert(key.peer_id(), i);
        self.keys.push(key);
        self.nodes.push(SimNode::default());
        i
    }

    pub(super) fn id(&self, i: usize) -> PeerId {
        self.keys[i].peer_id()
    }

    pub(super) fn is_live(&self, i: usize) -> bool {
        self.nodes[i].alive && self.nodes[i].node.is_some()
    }

    pub(super) fn live(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.is_live(i)).collect()
    }

    fn latency(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(self.latency.0..=self.latency.1))
    }

    fn push(&mut self, at: Time, event: Scheduled) {
        self.seq += 1;
        self.queue.insert((at.max(self.now), self.seq), event);
    }

    pub(super) fn schedule(&mut self, at: Time, action: Action) {
        self.push(at, Scheduled::Action(action));
    }

    /// Runs every event up to and including `until`, then sets the clock to `until`.
    pub(super) fn run_until(&mut self, until: Time) {
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if at > until {
                break;
            }
            let event = entry.remove();
            self.now = at;
            self.process(event);
        }
        self.now = until;
    }

    fn process(&mut self, event: Scheduled) {
        match event {
            Scheduled::Deliver { to, input } => self.input(to, input),
            Scheduled::Broadcast { to, announcement } => {
                let peer = match &announcement {
                    Announcement::Entry(entry) => Some(entry.payload().peer),
                    _ => None,
                };
                for chunk in to.chunks(WARM_AHEAD) {
                    // Look the peer up in the next few receivers' catalogs first: the lookups
                    // are independent, so their cache misses overlap, and the deliveries then
                    // find the slots in cache. (At 10,000 nodes the catalogs take 10 GB and
                    // a delivery otherwise waits for memory once per receiver, in turn.) A
                    // read-only lookup: it changes nothing the run reports.
                    if let Some(peer) = &peer {
                        for &to in chunk {
                            if let Some(node) = &self.nodes[to as usize].node {
                                std::hint::black_box(node.catalog().contains(peer));
                            }
                        }
                    }
                    for &to in chunk {
                        self.input(to as usize, Input::Announcement(announcement.clone()));
                    }
                }
            }
            Scheduled::Timer { node, timer } => self.input(node, Input::Timer(timer)),
            Scheduled::Neighbour { node, peer, up } => {
                let input = if up {
                    Input::NeighborUp(peer)
                } else {
                    Input::NeighborDown(peer)
                };
                self.input(node, input);
            }
            Scheduled::Action(action) => self.act(action),
        }
    }

    fn input(&mut self, i: usize, input: Input) {
        if !self.is_live(i) {
            return;
        }
        let now = clocks(self.now);
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        node.handle(input, now);
        let outputs = node.drain();
        self.outputs(i, outputs);
    }

    fn outputs(&mut self, i: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Broadcast(announcement) => self.broadcast(i, &announcement),
                Output::Send { to, message } => self.send(i, to, message),
                Output::ArmTimer { at, timer } => {
                    // Virtual time: both clocks are the same number of milliseconds.
                    let at = Time::from_millis(time_millis(at));
                    self.push(at, Scheduled::Timer { node: i, timer })
                }
                Output::Event(event) => {
                    if i < self.honest {
                        self.count_admission(&event);
                    }
                    if let Event::PeerDeparted { peer, .. } = event {
                        let now = self.now;
                        if let Some((count, last)) = self.tracked.get_mut(&peer) {
                            *count += 1;
                            *last = now;
                        }
                    }
                }
            }
        }
    }

    /// Counts what an honest node's event says about admission to its catalog.
    fn count_admission(&mut self, event: &Event) {
        let honest = |w: &Self, peer: &PeerId| w.ids.get(peer).is_some_and(|&j| j < w.honest);
        match event {
            Event::PeerDiscovered(entry) if !honest(self, &entry.payload().peer) => {
                self.flood.strangers_admitted += 1;
            }
            Event::PeerDeparted {
                peer,
                reason: DepartReason::Evicted,
            } => {
                if honest(self, peer) {
                    self.flood.honest_evicted += 1;
                } else {
                    self.flood.strangers_evicted += 1;
                }
            }
            Event::EntryRefused {
                outcome: UpsertOutcome::Full,
                ..
            } => self.flood.refused_full += 1,
            _ => {}
        }
    }

    /// The gossip model: every live node on the sender's side gets the announcement after one
    /// latency.
    ///
    /// Receivers that draw the same latency share one queue entry. The order of events is the
    /// same as with one entry per receiver: the receivers of one broadcast take consecutive
    /// sequence numbers, so no other event sorts between two of them at the same time, and a
    /// batch keyed by its first receiver's number runs where that receiver would have.
    fn broadcast(&mut self, from: usize, announcement: &Announcement) {
        let size = announcement.encode().len() as u64;
        self.nodes[from].announce_bytes += size;
        self.counters.announce_bytes += size;
        let side = self.nodes[from].side;
        let (min, max) = self.latency;
        // Per latency in [min, max]: the first receiver's sequence number and the receivers.
        let mut batches: Vec<(u64, Vec<u32>)> = Vec::new();
        batches.resize_with(
            usize::try_from(max - min + 1).unwrap_or(1),
            Default::default,
        );
        for to in 0..self.nodes.len() {
            if to != from && self.is_live(to) && self.nodes[to].side == side {
                let latency = self.rng.random_range(min..=max);
                self.seq += 1;
                let batch = &mut batches[usize::try_from(latency - min).unwrap_or(0)];
                if batch.1.is_empty() {
                    batch.0 = self.seq;
                }
                batch.1.push(u32::try_from(to).unwrap_or(u32::MAX));
            }
        }
        for (latency, (seq, to)) in (min..).zip(batches) {
            if !to.is_empty() {
                let at = self.now + Duration::from_millis(latency);
                let announcement = announcement.clone();
                self.queue
                    .insert((at, seq), Scheduled::Broadcast { to, announcement });
            }
        }
    }

    fn send(&mut self, from: usize, to: PeerId, message: Message) {
        let Some(&to) = self.ids.get(&to) else {
            return;
        };
        let size = wire_len(&message) as u64;
        self.nodes[from].sync_bytes += size;
        self.counters.sync_bytes += size;
        if let Message::Sync(SyncMessage::Offer { .. }) = &message {
            self.counters.sessions += 1;
            self.counters.full_snapshot_bytes +=
                self.snapshot_bytes(from) + self.snapshot_bytes(to);
        }
        if self.is_live(to) && self.nodes[to].side == self.nodes[from].side {
            let at = self.now + self.latency();
            let input = Input::Message {
                from: self.id(from),
                message,
            };
            self.push(at, Scheduled::Deliver { to, input });
        }
    }

    /// What sending node `i`'s whole catalog would cost.
    fn snapshot_bytes(&self, i: usize) -> u64 {
        match (&self.nodes[i].node, self.is_live(i)) {
            (Some(node), true) => {
                let catalog = node.catalog();
                (catalog.wire_bytes() + catalog.local().to_bytes().len()) as u64
            }
            _ => 0,
        }
    }

    fn act(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Join(i) => self.join(i),
            Action::Crash(i) => {
                self.nodes[i].alive = false;
                for peer in std::mem::take(&mut self.nodes[i].neighbours) {
                    self.nodes[peer].neighbours.remove(&i);
                    let at = now + self.latency();
                    let id = self.id(i);
                    self.push(
                        at,
                        Scheduled::Neighbour {
                            node: peer,
                            peer: id,
                            up: false,
                        },
                    );
                }
            }
            Action::Depart(i) => {
                self.input(i, Input::Command(Command::Depart));
                self.act(Action::Crash(i));
            }
            Action::Change(i) => {
                let metadata =
                    BTreeMap::from([("changed".to_string(), now.as_millis().to_string())]);
                self.input(i, Input::Command(Command::SetMetadata(metadata)));
            }
            Action::Partition => self.partition(),
            Action::Heal => {
                for node in &mut self.nodes {
                    node.side = 0;
                }
                for (a, b) in std::mem::take(&mut self.cut) {
                    if self.is_live(a) && self.is_live(b) {
                        self.link(a, b);
                    }
                }
            }
        }
    }

    fn join(&mut self, i: usize) {
        let now = self.now;
        let addr = SocketAddr::from((
            Ipv4Addr::from(0x0a00_0000 + u32::try_from(i).unwrap_or(0)),
            4433,
        ));
        let info = LocalInfo {
            direct: BTreeSet::from([addr]),
            ..LocalInfo::default()
        };
        let Ok(mut node) = Node::new(
            self.keys[i].clone(),
            self.network,
            info,
            self.config.clone(),
            self.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            clocks(now),
        ) else {
            return;
        };
        node.start(clocks(now));
        let outputs = node.drain();
        self.nodes[i].node = Some(node);
        self.nodes[i].alive = true;
        self.outputs(i, outputs);
        // A HyParView-like join: the bootstrap, then random live nodes (the forward-join walk).
        let mut contacts = Vec::new();
        if i != 0 && self.is_live(0) {
            contacts.push(0);
        }
        // Random draws rather than a scan: joins stay O(view) at 10,000 nodes.
        for _ in 0..self.active_view * 4 {
            if contacts.len() >= self.active_view {
                break;
            }
            let j = self.rng.random_range(0..self.nodes.len());
            if j != i && self.is_live(j) && !contacts.contains(&j) {
                contacts.push(j);
            }
        }
        for contact in contacts {
            self.link(i, contact);
        }
    }

    /// Connects `a` and `b` as gossip neighbours; a node over its view size drops a random one.
    fn link(&mut self, a: usize, b: usize) {
        if a == b || !self.nodes[a].neighbours.insert(b) {
            return;
        }
        self.nodes[b].neighbours.insert(a);
        let at = self.now + self.latency();
        let (ida, idb) = (self.id(a), self.id(b));
        self.push(
            at,
            Scheduled::Neighbour {
                node: a,
                peer: idb,
                up: true,
            },
        );
        self.push(
            at,
            Scheduled::Neighbour {
                node: b,
                peer: ida,
                up: true,
            },
        );
        for (node, keep) in [(b, a), (a, b)] {
            if self.nodes[node].neighbours.len() > self.active_view {
                let dropped = self.nodes[node]
                    .neighbours
                    .iter()
                    .copied()
                    .filter(|&x| x != keep)
                    .choose(&mut self.rng);
                if let Some(dropped) = dropped {
                    self.unlink(node, dropped);
                }
            }
        }
    }

    fn unlink(&mut self, a: usize, b: usize) {
        if !self.nodes[a].neighbours.remove(&b) {
            return;
        }
        self.nodes[b].neighbours.remove(&a);
        let (ida, idb) = (self.id(a), self.id(b));
        let now = self.now;
        self.push(
            now,
            Scheduled::Neighbour {
                node: a,
                peer: idb,
                up: false,
            },
        );
        self.push(
            now,
            Scheduled::Neighbour {
                node: b,
                peer: ida,
                up: false,
            },
        );
    }

    fn partition(&mut self) {
        let live = self.live();
        let half: BTreeSet<usize> = live
            .iter()
            .copied()
            .choose_multiple(&mut self.rng, live.len() / 2)
            .into_iter()
            .collect();
        for &i in &live {
            self.nodes[i].side = u8::from(half.contains(&i));
        }
        let mut cut = Vec::new();
        for &a in &live {
            for &b in &self.nodes[a].neighbours {
                if a < b && self.nodes[a].side != self.nodes[b].side {
                    cut.push((a, b));
                }
            }
        }
        for &(a, b) in &cut {
            self.unlink(a, b);
        }
        self.cut = cut;
    }
}

/// Bytes of `message` on the wire, without encoding the entries it carries: an entry inside a
/// message encodes as its own envelope, whose size [`SharedEntry`] knows. (Joining 10,000 nodes
/// moves about 20 GB of entries by sync; encoding them only to count them took minutes.)
fn wire_len(message: &Message) -> usize {
    let (light, entries) = match message {
        Message::Sync(SyncMessage::Digest {
            session,
            differing,
            items,
            entries,
        }) => (
            SyncMessage::Digest {
                session: *session,
                differing: differing.clone(),
                items: items.clone(),
                entries: Vec::new(),
            },
            entries,
        ),
        Message::Sync(SyncMessage::Exchange {
            session,
            entries,
            wants,
        }) => (
            SyncMessage::Exchange {
                session: *session,
                entries: Vec::new(),
                wants: wants.clone(),
            },
            entries,
        ),
        Message::Sync(SyncMessage::Entries { session, entries }) => (
            SyncMessage::Entries {
                session: *session,
                entries: Vec::new(),
            },
            entries,
        ),
        _ => return message.encode().len(),
    };
    let len = Message::Sync(light).encode().len() - cbor_head_len(0)
        + cbor_head_len(entries.len())
        + entries.iter().map(SharedEntry::wire_size).sum::<usize>();
    debug_assert_eq!(len, message.encode().len());
    len
}

/// Bytes of the CBOR head of an array of `n` items.
fn cbor_head_len(n: usize) -> usize {
    match n {
        0..24 => 1,
        24..256 => 2,
        256..65_536 => 3,
        _ if u32::try_from(n).is_ok() => 5,
        _ => 9,
    }
}

/// Both clocks of a node at virtual time `t`: the simulation has no clock steps, so the
/// monotonic clock reads the same milliseconds as the wall clock.
fn clocks(t: Time) -> Now {
    Now {
        mono: Duration::from_millis(t.as_millis()),
        wall: t,
    }
}
