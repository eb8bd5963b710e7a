//! The simulated network: nodes, a virtual-time event queue, a latency model, and the
//! bookkeeping of lookups and withdrawals the report is made from.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weft_transport::{PeerAddr, PeerId, SecretKey};

use crate::proto::{
    Ack, Config, DhtId, Event, InboundId, Input, LookupStats, Node, Now, OpId, Output, Request,
    RequestId, Response, Stored, Time, Timer,
};

/// Virtual time starts at a realistic wall-clock value, as records carry wall-clock times.
pub(super) const EPOCH: Time = Time(1_700_000_000_000);

/// Something scheduled by the scenario.
#[derive(Debug, Clone)]
pub(super) enum Action {
    /// Node joins: learns a few earlier nodes (and so bootstraps).
    Join(usize),
    /// Node registers a name.
    Register { node: usize, name: String },
    /// Starts lookup number `track`.
    Lookup(usize),
    /// Starts withdrawal number `track`.
    Withdraw(usize),
}

#[derive(Debug)]
enum SimEvent {
    Deliver { to: usize, input: Input },
    Timer { node: usize, timer: Timer },
    Action(Action),
}

/// One lookup the scenario runs, and what came of it.
#[derive(Debug, Clone)]
pub(super) struct LookupTrack {
    pub(super) node: usize,
    pub(super) name: String,
    pub(super) start: Time,
    pub(super) started: bool,
    pub(super) providers: BTreeSet<PeerId>,
    /// When the first provider was reported.
    pub(super) first_result: Option<Time>,
    /// When the lookup ended, with its figures.
    pub(super) done: Option<(Time, LookupStats)>,
}

impl LookupTrack {
    /// A lookup of `name` from `node`, not started yet.
    pub(super) fn new(node: usize, name: String) -> Self {
        Self {
            node,
            name,
            start: EPOCH,
            started: false,
            providers: BTreeSet::new(),
            first_result: None,
            done: None,
        }
    }
}

/// One withdrawal the scenario runs.
#[derive(Debug, Clone)]
pub(super) struct WithdrawTrack {
    pub(super) node: usize,
    pub(super) name: String,
    pub(super) start: Time,
    pub(super) done: Option<Time>,
}

/// The simulated network.
#[derive(Debug)]
pub(super) struct World {
    pub(super) now: Time,
    pub(super) nodes: Vec<Option<Node>>,
    pub(super) ids: Vec<PeerId>,
    pub(super) rng: ChaCha8Rng,
    queue: BTreeMap<(Time, u64), SimEvent>,
    seq: u64,
    latency: (u64, u64),
    bootstrap_peers: usize,
    inbound: BTreeMap<(usize, InboundId), (usize, RequestId)>,
    index: BTreeMap<PeerId, usize>,
    next_inbound: u64,
    /// Requests sent over the whole run.
    pub(super) messages: u64,
    pub(super) lookups: Vec<LookupTrack>,
    pub(super) withdrawals: Vec<WithdrawTrack>,
    lookup_ops: BTreeMap<(usize, OpId), usize>,
    withdraw_ops: BTreeMap<(usize, OpId), usize>,
    /// Registrations acknowledged by at least one holder.
    pub(super) published: usize,
    /// Ground attacker identities, by the group (attacked name) they belong to.
    censors: BTreeMap<PeerId, usize>,
    /// Each group's identities, which its members name as closer nodes.
    censor_groups: Vec<Vec<PeerAddr>>,
    /// The bucket size, which bounds the closer nodes a censor names.
    k: usize,
}

impl World {
    /// `count` nodes, not yet joined.
    pub(super) fn new(
        count: usize,
        seed: u64,
        config: &Config,
        latency: (u64, u64),
        bootstrap_peers: usize,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut nodes = Vec::with_capacity(count);
        let mut ids = Vec::with_capacity(count);
        let mut index = BTreeMap::new();
        for i in 0..count {
            let mut secret = [0u8; 32];
            rng.fill(&mut secret);
            let key = SecretKey::from_bytes(&secret);
            let id = key.peer_id();
            let node_rng = ChaCha8Rng::seed_from_u64(rng.random());
            nodes.push(Some(Node::new(
                key,
                PeerAddr::new(id),
                config.clone(),
                node_rng,
                clocks(EPOCH),
            )));
            ids.push(id);
            index.insert(id, i);
        }
        let mut world = Self {
            now: EPOCH,
            nodes,
            ids,
            rng,
            queue: BTreeMap::new(),
            seq: 0,
            latency: (latency.0, latency.1.max(latency.0)),
            bootstrap_peers,
            inbound: BTreeMap::new(),
            index,
            next_inbound: 0,
            messages: 0,
            lookups: Vec::new(),
            withdrawals: Vec::new(),
            lookup_ops: BTreeMap::new(),
            withdraw_ops: BTreeMap::new(),
            published: 0,
            censors: BTreeMap::new(),
            censor_groups: Vec::new(),
            k: config.k,
        };
        for i in 0..count {
            world.flush(i);
        }
        world
    }

    pub(super) fn is_alive(&self, node: usize) -> bool {
        self.nodes[node].is_some()
    }

    /// Removes a node: it answers nothing from now on.
    pub(super) fn remove(&mut self, node: usize) {
        self.nodes[node] = None;
    }

    pub(super) fn schedule(&mut self, at: Time, action: Action) {
        self.push(at, SimEvent::Action(action));
    }

    fn push(&mut self, at: Time, event: SimEvent) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn latency(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(self.latency.0..=self.latency.1))
    }

    /// Runs every event due up to `until`, then sets the clock there.
    pub(super) fn run_until(&mut self, until: Time) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = at;
            match event {
                SimEvent::Deliver { to, input } => self.input(to, input),
                SimEvent::Timer { node, timer } => self.input(node, Input::Timer(timer)),
                SimEvent::Action(action) => self.act(action),
            }
        }
        self.now = self.now.max(until);
    }

    fn input(&mut self, node: usize, input: Input) {
        let now = clocks(self.now);
        let Some(state) = self.nodes[node].as_mut() else {
            return;
        };
        state.handle(input, now);
        let outputs = state.drain();
        self.route(node, outputs);
    }

    fn flush(&mut self, node: usize) {
        let Some(state) = self.nodes[node].as_mut() else {
            return;
        };
        let outputs = state.drain();
        self.route(node, outputs);
    }

    fn act(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Join(node) => {
                if !self.is_alive(node) || node == 0 {
                    return;
                }
                let peers: Vec<PeerAddr> = (0..self.bootstrap_peers)
                    .map(|_| PeerAddr::new(self.ids[self.rng.random_range(0..node)]))
                    .collect();
                // An empty table is short of k peers: the node bootstraps by itself.
                self.input(node, Input::AddPeers(peers));
            }
            Action::Register { node, name } => {
                if let Some(state) = self.nodes[node].as_mut() {
                    let _ = state.register(&name, b"sim".to_vec(), clocks(now));
                }
                self.flush(node);
            }
            Action::Lookup(track) => {
                let (node, name) = (self.lookups[track].node, self.lookups[track].name.clone());
                let Some(state) = self.nodes[node].as_mut() else {
                    return;
                };
                if let Ok(op) = state.lookup(&name, clocks(now)) {
                    self.lookup_ops.insert((node, op), track);
                    self.lookups[track].started = true;
                    self.lookups[track].start = now;
                }
                self.flush(node);
            }
            Action::Withdraw(track) => {
                let (node, name) = (
                    self.withdrawals[track].node,
                    self.withdrawals[track].name.clone(),
                );
                let Some(state) = self.nodes[node].as_mut() else {
                    return;
                };
                if let Ok(op) = state.withdraw(&name, clocks(now)) {
                    self.withdraw_ops.insert((node, op), track);
                    self.withdrawals[track].start = now;
                }
                self.flush(node);
            }
        }
    }

    fn route(&mut self, from: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { id, to, request } => {
                    self.messages += 1;
                    if let Some(&group) = self.censors.get(&to.id) {
                        self.censor_answers(from, id, to.id, group, &request);
                        continue;
                    }
                    let Some(&target) = self.index.get(&to.id) else {
                        continue;
                    };
                    if !self.is_alive(target) {
                        continue; // Lost: the sender's timeout fires.
                    }
                    self.next_inbound += 1;
                    let inbound = InboundId(self.next_inbound);
                    self.inbound.insert((target, inbound), (from, id));
                    let at = self.now + self.latency();
                    let input = Input::Request {
                        from: PeerAddr::new(self.ids[from]),
                        id: inbound,
                        request,
                    };
                    self.push(at, SimEvent::Deliver { to: target, input });
                }
                Output::Reply { id, response, .. } => {
                    let Some((asker, request)) = self.inbound.remove(&(from, id)) else {
                        continue;
                    };
                    let at = self.now + self.latency();
                    let input = Input::Response {
                        id: request,
                        from: self.ids[from],
                        response,
                    };
                    self.push(at, SimEvent::Deliver { to: asker, input });
                }
                Output::SetTimer { at, timer } => {
                    // Virtual time: both clocks are the same number of milliseconds.
                    let at = Time(u64::try_from(at.as_millis()).unwrap_or(u64::MAX));
                    self.push(at, SimEvent::Timer { node: from, timer });
                }
                Output::Event(event) => self.on_event(from, event),
            }
        }
    }

    fn on_event(&mut self, node: usize, event: Event) {
        match event {
            Event::Providers { op, records } => {
                if let Some(&track) = self.lookup_ops.get(&(node, op)) {
                    let now = self.now;
                    let track = &mut self.lookups[track];
                    track
                        .providers
                        .extend(records.iter().map(|r| r.payload().provider));
                    track.first_result.get_or_insert(now);
                }
            }
            Event::LookupDone { op, stats } => {
                if let Some(track) = self.lookup_ops.remove(&(node, op)) {
                    self.lookups[track].done = Some((self.now, stats));
                }
            }
            Event::Withdrawn { op, .. } => {
                if let Some(track) = self.withdraw_ops.remove(&(node, op)) {
                    self.withdrawals[track].done = Some(self.now);
                }
            }
            Event::Published { holders, .. } if holders > 0 => self.published += 1,
            _ => {}
        }
    }

    /// Grinds `count` identities sharing `bits` leading bits with `key` (random 32-byte strings
    /// that hash there and are valid keys: an attacker needs the secret keys too, which costs it
    /// about as many tries), then tells every live node about them.
    pub(super) fn add_censors(&mut self, key: &DhtId, count: usize, bits: usize) {
        let group = self.censor_groups.len();
        let mut members = Vec::with_capacity(count);
        while members.len() < count {
            let mut bytes = [0u8; 32];
            self.rng.fill(&mut bytes);
            let position = DhtId(*blake3::hash(&bytes).as_bytes());
            if position.distance(key).leading_zeros() < bits {
                continue;
            }
            if let Ok(peer) = PeerId::from_bytes(&bytes) {
                self.censors.insert(peer, group);
                members.push(PeerAddr::new(peer));
            }
        }
        self.censor_groups.push(members.clone());
        for node in 0..self.nodes.len() {
            self.input(node, Input::AddPeers(members.clone()));
        }
    }

    /// A censor's answer, after a round trip: no record, every store acknowledged, only the
    /// other members of its group as closer nodes.
    fn censor_answers(
        &mut self,
        asker: usize,
        id: RequestId,
        censor: PeerId,
        group: usize,
        request: &Request,
    ) {
        let closer: Vec<PeerAddr> = self.censor_groups[group]
            .iter()
            .filter(|addr| addr.id != censor)
            .take(self.k)
            .cloned()
            .collect();
        let response = censor_answer(request, closer);
        let at = self.now + self.latency() + self.latency();
        let input = Input::Response {
            id,
            from: censor,
            response,
        };
        self.push(at, SimEvent::Deliver { to: asker, input });
    }

    /// Average routing-table size over live nodes.
    pub(super) fn mean_table_size(&self) -> f64 {
        let (sum, count) = self
            .nodes
            .iter()
            .flatten()
            .fold((0usize, 0usize), |(s, c), n| (s + n.table().len(), c + 1));
        if count == 0 {
            0.0
        } else {
            sum as f64 / count as f64
        }
    }
}

/// What an identity ground to censor a name answers to `request`: `Pong`, its accomplices
/// (`closer`) as the only closer nodes, no provider, every store acknowledged as new. The
/// simulator's attackers answer this; tests use it for theirs.
pub fn censor_answer(request: &Request, closer: Vec<PeerAddr>) -> Response {
    match request {
        Request::FindNode { .. } => Response::Nodes { closer },
        Request::GetProviders { .. } => Response::Providers {
            providers: Vec::new(),
            closer,
        },
        Request::AddProvider { .. } | Request::RemoveProvider { .. } => {
            Response::Ack(Ack::Stored(Stored::New))
        }
        Request::Ping => Response::Pong,
    }
}

/// Both clocks of a node at virtual time `t`: the simulation has no clock steps, so the
/// monotonic clock reads the same milliseconds as the wall clock.
fn clocks(t: Time) -> Now {
    Now {
        mono: std::time::Duration::from_millis(t.as_millis()),
        wall: t,
    }
}
