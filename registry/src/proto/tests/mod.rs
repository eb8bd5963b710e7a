//! Protocol tests: a tiny in-memory harness that delivers messages instantly, plus the bad-input
//! cases of the issue, one test each.

mod bad_input;
mod censorship;
mod lifecycle;
mod lookup;
mod network;
mod routing;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use weft_transport::{PeerAddr, PeerId, SecretKey};

use super::{
    Config, Event, InboundId, Input, Node, OpId, Output, Request, RequestId, SignedRecord, Time,
    Timer,
};

pub(super) const START: Time = Time(1_700_000_000_000);

/// Both clocks at virtual time `t` (the harness never steps the wall clock).
pub(super) fn both(t: Time) -> super::Now {
    super::Now {
        mono: mono(t),
        wall: t,
    }
}

/// The monotonic reading at virtual time `t`.
pub(super) fn mono(t: Time) -> std::time::Duration {
    std::time::Duration::from_millis(t.as_millis())
}

pub(crate) fn key(seed: u32) -> SecretKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&seed.to_le_bytes());
    bytes[31] = 0x5a;
    SecretKey::from_bytes(&bytes)
}

/// How a peer misbehaves in the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// Never answers (its requests time out).
    Silent,
    /// Answers with bytes that do not decode (the runtime reports a failure at once).
    Garbage,
    /// Loses every other request sent to it (the first, the third...).
    Flaky,
    /// Not a node but an attacker's identity: answers every request at once, acknowledges
    /// every store, returns no provider, and names only the other censors as closer nodes.
    Censor,
}

/// Where a timer sits in [`Net`]'s queue: its time, sequence number and kind.
type TimerEntry = (Time, u64, TimerKey);

/// Nodes that talk instantly; time moves only when timers are due and nothing else is.
pub(super) struct Net {
    pub(super) nodes: BTreeMap<PeerId, Node>,
    pub(super) faults: BTreeMap<PeerId, Fault>,
    pub(super) now: Time,
    queue: VecDeque<(PeerId, Input)>,
    timers: BTreeSet<(Time, u64, PeerId, TimerKey)>,
    timer_seq: u64,
    /// Where each request's timeout sits in `timers`, to drop it once answered.
    /// The time-out and stall timers of each request, to cancel when it is answered.
    request_timers: BTreeMap<(PeerId, RequestId), Vec<TimerEntry>>,
    pub(super) events: Vec<(PeerId, Event)>,
    /// When each lookup ended, by node and operation.
    pub(super) done_at: BTreeMap<(PeerId, OpId), Time>,
    next_inbound: u64,
    /// Outgoing request id -> (sender, receiver), to route replies back.
    pending: BTreeMap<(PeerId, RequestId), ()>,
    inbound: BTreeMap<(PeerId, InboundId), (PeerId, RequestId)>,
    pub(super) requests_sent: u64,
    flaky_counts: BTreeMap<PeerId, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Tick,
    Request(u64),
    Stall(u64),
}

impl TimerKey {
    /// A request's own timer: fired as soon as nothing else is due (see [`Net::run`]).
    fn of_request(self) -> bool {
        matches!(self, TimerKey::Request(_) | TimerKey::Stall(_))
    }

    fn timer(self) -> Timer {
        match self {
            TimerKey::Tick => Timer::Tick,
            TimerKey::Request(r) => Timer::Request(RequestId(r)),
            TimerKey::Stall(r) => Timer::Stall(RequestId(r)),
        }
    }
}

impl Net {
    pub(super) fn new() -> Self {
        Self {
            nodes: BTreeMap::new(),
            faults: BTreeMap::new(),
            now: START,
            queue: VecDeque::new(),
            timers: BTreeSet::new(),
            timer_seq: 0,
            request_timers: BTreeMap::new(),
            events: Vec::new(),
            done_at: BTreeMap::new(),
            next_inbound: 0,
            pending: BTreeMap::new(),
            inbound: BTreeMap::new(),
            requests_sent: 0,
            flaky_counts: BTreeMap::new(),
        }
    }

    /// `n` nodes with the given config, each told about the one before, all bootstrapped.
    pub(super) fn with_nodes(n: u32, config: &Config) -> (Self, Vec<PeerId>) {
        let mut net = Self::new();
        let ids: Vec<PeerId> = (0..n).map(|i| net.add_node(i, config.clone())).collect();
        for (i, id) in ids.iter().enumerate().skip(1) {
            // Chain them so the network is connected, then join.
            // Short of k peers, the node bootstraps by itself.
            net.input(*id, Input::AddPeers(vec![PeerAddr::new(ids[i - 1])]));
            net.run();
        }
        (net, ids)
    }

    pub(super) fn add_node(&mut self, seed: u32, config: Config) -> PeerId {
        let key = key(seed);
        let id = key.peer_id();
        let rng = ChaCha8Rng::seed_from_u64(u64::from(seed));
        let node = Node::new(key, PeerAddr::new(id), config, rng, both(self.now));
        self.nodes.insert(id, node);
        self.flush(id);
        id
    }

    pub(super) fn node(&mut self, id: PeerId) -> &mut Node {
        self.nodes.get_mut(&id).expect("known node")
    }

    /// Feeds an input to a node and routes its outputs.
    pub(super) fn input(&mut self, id: PeerId, input: Input) {
        let now = self.now;
        self.node(id).handle(input, both(now));
        self.flush(id);
    }

    /// Routes the outputs a command left in the node.
    pub(super) fn flush(&mut self, id: PeerId) {
        let outputs = self.node(id).drain();
        self.route(id, outputs);
    }

    pub(super) fn route(&mut self, from: PeerId, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { id, to, request } => {
                    self.requests_sent += 1;
                    if self.faults.get(&to.id) == Some(&Fault::Censor) {
                        self.censor_answers(from, id, to.id, &request);
                        continue;
                    }
                    let mut fault = self.faults.get(&to.id).copied();
                    if fault == Some(Fault::Flaky) {
                        let count = self.flaky_counts.entry(to.id).or_insert(0);
                        *count += 1;
                        fault = (*count % 2 == 1).then_some(Fault::Silent);
                    }
                    match (self.nodes.contains_key(&to.id), fault) {
                        (false, None | Some(Fault::Silent | Fault::Flaky | Fault::Censor))
                        | (true, Some(Fault::Silent | Fault::Censor)) => {}
                        (_, Some(Fault::Garbage)) => {
                            self.cancel_timer(from, id);
                            self.queue.push_back((from, Input::Failed { id }));
                        }
                        (true, None | Some(Fault::Flaky)) => {
                            self.next_inbound += 1;
                            let inbound = InboundId(self.next_inbound);
                            self.pending.insert((from, id), ());
                            self.inbound.insert((to.id, inbound), (from, id));
                            let input = Input::Request {
                                from: PeerAddr::new(from),
                                id: inbound,
                                request,
                            };
                            self.queue.push_back((to.id, input));
                        }
                    }
                }
                Output::Reply { id, response, .. } => {
                    if let Some((asker, request)) = self.inbound.remove(&(from, id)) {
                        self.pending.remove(&(asker, request));
                        self.cancel_timer(asker, request);
                        let input = Input::Response {
                            id: request,
                            from,
                            response,
                        };
                        self.queue.push_back((asker, input));
                    }
                }
                Output::SetTimer { at, timer } => {
                    let at = Time(u64::try_from(at.as_millis()).unwrap());
                    self.timer_seq += 1;
                    let key = match timer {
                        Timer::Tick => TimerKey::Tick,
                        Timer::Request(request) => TimerKey::Request(request.0),
                        Timer::Stall(request) => TimerKey::Stall(request.0),
                    };
                    if let TimerKey::Request(r) | TimerKey::Stall(r) = key {
                        self.request_timers
                            .entry((from, RequestId(r)))
                            .or_default()
                            .push((at, self.timer_seq, key));
                    }
                    self.timers.insert((at, self.timer_seq, from, key));
                }
                Output::Event(event) => {
                    if let Event::LookupDone { op, .. } = &event {
                        self.done_at.insert((from, *op), self.now);
                    }
                    self.events.push((from, event));
                }
            }
        }
    }

    /// A censor's answer to `request` from `asker`, queued as the real network would.
    fn censor_answers(&mut self, asker: PeerId, id: RequestId, censor: PeerId, request: &Request) {
        let censors: Vec<PeerAddr> = self
            .faults
            .iter()
            .filter(|(peer, fault)| **fault == Fault::Censor && **peer != censor)
            .map(|(peer, _)| PeerAddr::new(*peer))
            .collect();
        let response = crate::sim::censor_answer(request, censors);
        self.cancel_timer(asker, id);
        self.queue.push_back((
            asker,
            Input::Response {
                id,
                from: censor,
                response,
            },
        ));
    }

    fn cancel_timer(&mut self, node: PeerId, request: RequestId) {
        for (at, seq, key) in self
            .request_timers
            .remove(&(node, request))
            .unwrap_or_default()
        {
            self.timers.remove(&(at, seq, node, key));
        }
    }

    /// Delivers messages until none is left; fires request timers when nothing else is due.
    /// Ticks are left alone (see [`Net::advance`]).
    pub(super) fn run(&mut self) {
        loop {
            while let Some((to, input)) = self.queue.pop_front() {
                if self.nodes.contains_key(&to) {
                    self.input(to, input);
                }
            }
            let next = self
                .timers
                .iter()
                .find(|(_, _, _, key)| key.of_request())
                .copied();
            let Some(entry) = next else {
                return;
            };
            self.timers.remove(&entry);
            let (at, _, id, key) = entry;
            self.now = self.now.max(at);
            if self.nodes.contains_key(&id) {
                self.input(id, Input::Timer(key.timer()));
            }
        }
    }

    /// Moves time to `until`, firing every timer due (ticks included) and delivering messages.
    pub(super) fn advance(&mut self, until: Time) {
        loop {
            self.run();
            let Some(&entry) = self.timers.iter().next() else {
                break;
            };
            if entry.0 > until {
                break;
            }
            self.timers.remove(&entry);
            let (at, _, id, key) = entry;
            self.now = self.now.max(at);
            if !self.nodes.contains_key(&id) {
                continue;
            }
            self.input(id, Input::Timer(key.timer()));
        }
        self.now = self.now.max(until);
    }

    /// Looks `name` up from `from` and returns the providers found.
    pub(super) fn lookup(&mut self, from: PeerId, name: &str) -> BTreeSet<PeerId> {
        let now = self.now;
        let op = self.node(from).lookup(name, both(now)).unwrap();
        self.flush(from);
        self.run();
        self.found(from, op)
    }

    pub(super) fn found(&self, from: PeerId, op: OpId) -> BTreeSet<PeerId> {
        assert!(
            self.events
                .iter()
                .any(|(who, e)| *who == from
                    && matches!(e, Event::LookupDone { op: o, .. } if *o == op)),
            "lookup did not finish"
        );
        self.records(from, op)
            .iter()
            .map(|r| r.payload().provider)
            .collect()
    }

    pub(super) fn records(&self, from: PeerId, op: OpId) -> Vec<SignedRecord> {
        self.events
            .iter()
            .filter(|(who, _)| *who == from)
            .filter_map(|(_, e)| match e {
                Event::Providers { op: o, records } if *o == op => Some(records.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub(super) fn register(&mut self, who: PeerId, name: &str) {
        let now = self.now;
        self.node(who)
            .register(name, b"meta".to_vec(), both(now))
            .unwrap();
        self.flush(who);
        self.run();
    }

    pub(super) fn withdraw(&mut self, who: PeerId, name: &str) {
        let now = self.now;
        self.node(who).withdraw(name, both(now)).unwrap();
        self.flush(who);
        self.run();
    }

    pub(super) fn kill(&mut self, id: PeerId) {
        self.nodes.remove(&id);
    }
}
