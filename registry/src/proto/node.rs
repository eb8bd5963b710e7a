//! A registry node: routing table, store, own registrations and running operations, driven by
//! [`Node::handle`] and its commands.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use rand_chacha::ChaCha8Rng;
use weft_transport::{PeerAddr, PeerId, SecretKey, Signed, StepDetector};

use super::{
    cache::LookupCache,
    config::Config,
    id::{DhtId, Now, Time},
    io::{CommandError, InboundId, Input, OpId, Output, RequestId, Timer},
    lookup::Lookup,
    ops::{Op, OpKind, StoreRound},
    record::{ProviderRecord, Removal, SignedRecord, check_name_len},
    routing::{Insert, RoutingTable},
    rtt::RttEstimate,
    store::Store,
    wire::{Ack, Request, Response},
};

/// Requests in flight at once, beyond which liveness checks and hand-overs are skipped (lookups
/// are bounded by `max_lookups × alpha` and stores by `max_lookups × k` on their own).
const MAX_BACKGROUND_REQUESTS: usize = 512;

/// Why a request is in flight.
#[derive(Debug, Clone, Copy)]
pub(super) enum Purpose {
    /// A step of the lookup of this operation.
    Lookup(OpId),
    /// Storing a record or removal for this operation.
    Store(OpId),
    /// The liveness check of a full bucket's least recently seen peer.
    Probe,
    /// Handing a record over to a new closer node.
    Handover,
}

#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) to: PeerAddr,
    pub(super) purpose: Purpose,
    /// When it was sent (monotonic), for the round-trip estimate.
    sent_at: Duration,
}

/// One of this node's registrations.
#[derive(Debug, Clone)]
struct Own {
    record: SignedRecord,
    /// Nodes that acknowledged the last publish: a withdrawal goes to them as well.
    holders: Vec<PeerAddr>,
    /// Monotonic: when the next republish is due.
    republish_at: Duration,
}

/// The registry protocol of one node, with no IO.
///
/// Feed it [`Input`]s with [`Node::handle`], issue commands ([`Node::register`],
/// [`Node::withdraw`], [`Node::lookup`], [`Node::lookup_cached`], [`Node::bootstrap`],
/// [`Node::shutdown`]; each answers at once with an id or a refusal), and after each call take
/// the [`Output`]s queued inside with [`Node::drain`] and carry them out. The runtime and the
/// simulator drive it with the same calls.
#[derive(Debug)]
pub struct Node {
    pub(super) config: Config,
    key: SecretKey,
    pub(super) addr: PeerAddr,
    pub(super) table: RoutingTable,
    pub(super) store: Store,
    own: BTreeMap<String, Own>,
    pub(super) ops: BTreeMap<OpId, Op>,
    pub(super) requests: BTreeMap<RequestId, Pending>,
    pub(super) rng: ChaCha8Rng,
    next_request: u64,
    next_op: u64,
    pub(super) out: Vec<Output>,
    /// Notices wall-clock steps, after which every registration is republished at once.
    steps: StepDetector,
    /// What recent network lookups found, by name.
    pub(super) cache: LookupCache,
    /// Set by [`Node::shutdown`]: withdrawals run to their end, nothing new starts.
    pub(super) closing: bool,
    /// Round trips of answered requests, for the stall time of lookups.
    rtt: RttEstimate,
}

impl Node {
    /// A node with identity `key`, reachable at `addr` (its id must be `key`'s), starting at
    /// `now`. The first maintenance tick is among the outputs.
    pub fn new(key: SecretKey, addr: PeerAddr, config: Config, rng: ChaCha8Rng, now: Now) -> Self {
        let mut addr = addr;
        addr.id = key.peer_id();
        let table = RoutingTable::new(DhtId::of_peer(&addr.id), config.k, now.mono)
            .with_max_failures(config.max_failures);
        let store = Store::new(config.store.clone(), config.limits.clone());
        let cache = LookupCache::new(&config);
        let tick = now.mono + config.tick_interval();
        let mut steps = StepDetector::default();
        steps.observe(now, Duration::MAX);
        Self {
            config,
            key,
            addr,
            table,
            store,
            own: BTreeMap::new(),
            ops: BTreeMap::new(),
            requests: BTreeMap::new(),
            rng,
            next_request: 0,
            next_op: 0,
            steps,
            cache,
            closing: false,
            rtt: RttEstimate::default(),
            out: vec![Output::SetTimer {
                at: tick,
                timer: Timer::Tick,
            }],
        }
    }

    /// This node's id.
    pub fn peer_id(&self) -> PeerId {
        self.addr.id
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// The store of records held for others.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Operations running.
    pub fn running_ops(&self) -> usize {
        self.ops.len()
    }

    /// The names this node has registered.
    pub(super) fn registered_names(&self) -> Vec<String> {
        self.own.keys().cloned().collect()
    }

    /// Names this node has registered, with their current records.
    pub fn registrations(&self) -> impl Iterator<Item = &SignedRecord> {
        self.own.values().map(|own| &own.record)
    }

    /// Updates the addresses put in this node's records (from the next publish on).
    pub fn set_addr(&mut self, addr: PeerAddr) {
        self.addr.direct = addr.direct;
        self.addr.relay = addr.relay;
    }

    /// Takes the outputs queued by inputs and commands since the last drain, in order.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Processes one input at `now`; its outputs are queued for [`Node::drain`].
    pub fn handle(&mut self, input: Input, now: Now) {
        self.notice_clock_step(now);
        match input {
            Input::AddPeers(peers) => {
                // A table short of k peers cannot place records well: join the network
                // properly (a self-lookup, then bucket refreshes) once it has someone to ask.
                let short = self.table.len() < self.config.k;
                for peer in &peers {
                    self.offer(peer, now);
                }
                if short && !self.table.is_empty() && !self.closing {
                    // Busy: the refreshes of the coming ticks fill the table instead.
                    let _ = self.bootstrap(now);
                }
            }
            Input::Request { from, id, request } => self.on_request(&from, id, request, now),
            Input::Response { id, from, response } => self.on_response(id, from, response, now),
            Input::Failed { id } => self.on_failed(id, now),
            Input::Timer(Timer::Request(id)) => self.on_failed(id, now),
            Input::Timer(Timer::Stall(id)) => self.on_stalled(id, now),
            Input::Timer(Timer::Tick) => self.on_tick(now),
        }
    }

    /// Registers `name` with `metadata`: signs a record, keeps it locally and publishes it to the
    /// `k` nodes closest to `blake3(name)`, then republishes it every half TTL until withdrawn.
    /// Registering a name again replaces the record (new metadata, new `issued_at`).
    pub fn register(
        &mut self,
        name: &str,
        metadata: Vec<u8>,
        now: Now,
    ) -> Result<OpId, CommandError> {
        if self.closing {
            return Err(CommandError::ShuttingDown);
        }
        if !self.own.contains_key(name) && self.own.len() >= self.config.store.max_per_provider {
            return Err(CommandError::TooManyRegistrations);
        }
        if self.ops.len() >= self.config.max_lookups {
            return Err(CommandError::Busy);
        }
        let issued_at = match self.own.get(name) {
            // Keep issued_at strictly increasing while the clock does not step back further
            // than holders would accept; past that, stamp with the clock: holders replace a
            // copy they see as issued in the future with any valid one (see `Store`).
            Some(old) => {
                let next = now.wall.max(Time(old.record.payload().issued_at.0 + 1));
                if next.since(now.wall) < self.half_skew() {
                    next
                } else {
                    now.wall
                }
            }
            None => now.wall,
        };
        let record = ProviderRecord {
            key: DhtId::of_name(name),
            name: name.to_owned(),
            provider: self.addr.id,
            addresses: self.addr.direct.clone(),
            relay: self.addr.relay.clone(),
            metadata,
            issued_at,
            ttl_ms: self.config.record_ttl_ms,
        };
        record.validate(now.wall, &self.config.limits)?;
        let signed = Signed::sign(&self.key, record).map_err(CommandError::Sign)?;
        self.cache.remove(name);
        // Our own store holds it too, so lookups that reach us find it; refusal (a full store)
        // only means this copy is missing.
        let _ = self.store.put_record(signed.clone(), now.wall);
        let half_ttl = std::time::Duration::from_millis(self.config.record_ttl_ms / 2);
        let holders = self
            .own
            .get(name)
            .map(|o| o.holders.clone())
            .unwrap_or_default();
        self.own.insert(
            name.to_owned(),
            Own {
                record: signed.clone(),
                holders,
                republish_at: now.mono + half_ttl,
            },
        );
        Ok(self.start_op(
            OpKind::Publish { record: signed },
            DhtId::of_name(name),
            now,
        ))
    }

    /// Withdraws `name`: signs a removal and sends it to the `k` closest nodes and to every node
    /// that acknowledged the last publish. Holders delete the record and refuse older copies.
    pub fn withdraw(&mut self, name: &str, now: Now) -> Result<OpId, CommandError> {
        if !self.own.contains_key(name) {
            return Err(CommandError::NotRegistered(name.to_owned()));
        }
        if self.ops.len() >= self.config.max_lookups {
            return Err(CommandError::Busy);
        }
        self.start_withdrawal(name, now)
    }

    /// [`Node::withdraw`] without the bound on running operations (a shutdown withdraws
    /// everything).
    pub(super) fn start_withdrawal(&mut self, name: &str, now: Now) -> Result<OpId, CommandError> {
        self.cache.remove(name);
        let Some(own) = self.own.remove(name) else {
            return Err(CommandError::NotRegistered(name.to_owned()));
        };
        // A publish of this name still under way would only spread a record about to be
        // removed (holders would refuse it after the removal anyway).
        self.ops.retain(|_, op| {
            !matches!(&op.kind, OpKind::Publish { record } if record.payload().name == name)
        });
        let record = own.record.payload();
        // At or after the record it removes, unless the clock stepped back past it (see
        // `register`): then now, and no longer-lived than a removal may be.
        let issued_at = if record.issued_at.since(now.wall) < self.half_skew() {
            now.wall.max(record.issued_at)
        } else {
            now.wall
        };
        let max_span = Duration::from_millis(self.config.limits.max_ttl_ms);
        let removal = Removal {
            key: record.key,
            name: name.to_owned(),
            provider: self.addr.id,
            issued_at,
            until: record.expires_at().min(issued_at + max_span),
        };
        let signed = Signed::sign(&self.key, removal).map_err(CommandError::Sign)?;
        let _ = self.store.put_removal(signed.clone(), now.wall);
        // Known holders get the removal at once, in parallel with the lookup for the closest
        // nodes, which get it when the lookup ends: the record disappears from the nodes that
        // hold it within one round trip.
        let request = Request::RemoveProvider {
            removal: signed.clone(),
        };
        let op = self.insert_op(
            OpKind::Withdraw { removal: signed },
            DhtId::of_name(name),
            now,
        );
        self.send_stores(op, own.holders, &request, now);
        self.drive(op, now);
        Ok(op)
    }

    /// Looks `name` up: [`super::Event::Providers`] reports providers as answers arrive, then
    /// [`super::Event::LookupDone`]. An unknown name ends with no providers, not an error.
    pub fn lookup(&mut self, name: &str, now: Now) -> Result<OpId, CommandError> {
        check_name_len(name, &self.config.limits)?;
        if self.closing {
            return Err(CommandError::ShuttingDown);
        }
        if self.ops.len() >= self.config.max_lookups {
            return Err(CommandError::Busy);
        }
        let key = DhtId::of_name(name);
        // Records we hold ourselves count as found at hop 0.
        let local = self.store.providers(&key, now.wall);
        let kind = OpKind::Lookup {
            key,
            name: name.to_owned(),
            found: BTreeMap::new(),
        };
        let op = self.insert_op(kind, key, now);
        if !local.is_empty() {
            self.report_providers(op, local, 0, now);
        }
        self.drive(op, now);
        Ok(op)
    }

    /// Joins the network: a lookup of this node's own id, then a refresh of every bucket farther
    /// than the closest neighbour found. [`Input::AddPeers`] starts one by itself when the
    /// table was short of `k` peers; call this to rejoin after a long partition.
    pub fn bootstrap(&mut self, now: Now) -> Result<OpId, CommandError> {
        if self.closing {
            return Err(CommandError::ShuttingDown);
        }
        if self.ops.len() >= self.config.max_lookups {
            return Err(CommandError::Busy);
        }
        let target = self.table.local();
        Ok(self.start_op(OpKind::Bootstrap, target, now))
    }

    pub(super) fn new_op_id(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }

    /// Starts an operation whose lookup targets `target`.
    pub(super) fn start_op(&mut self, kind: OpKind, target: DhtId, now: Now) -> OpId {
        let id = self.insert_op(kind, target, now);
        self.drive(id, now);
        id
    }

    /// Adds an operation without sending anything yet.
    fn insert_op(&mut self, kind: OpKind, target: DhtId, now: Now) -> OpId {
        let id = self.new_op_id();
        self.table.touch(&target, now.mono);
        let seeds = self.table.closest(&target, self.config.k, None);
        let lookup = Lookup::with_paths(
            target,
            self.addr.id,
            seeds,
            self.config.k,
            self.config.alpha,
            self.config.max_candidates,
            self.config.disjoint_paths,
        );
        // Only where records are: a joining node's size estimate is still rough, and its own
        // and its buckets' lookups only fill the routing table.
        let for_records = !matches!(kind, OpKind::Refresh | OpKind::Bootstrap);
        let lookup = match self.network_size() {
            Some(size) if for_records => lookup.crowding_aware(size),
            _ => lookup,
        };
        self.ops.insert(
            id,
            Op {
                kind,
                lookup,
                looking: true,
                round: StoreRound::default(),
            },
        );
        id
    }

    /// Sends a request and arms its timeout, and a lookup's request its stall time too.
    pub(super) fn send(&mut self, to: PeerAddr, request: Request, purpose: Purpose, now: Now) {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        if matches!(purpose, Purpose::Lookup(_)) {
            let stall = self
                .rtt
                .stall_after(self.config.min_stall(), self.config.request_timeout());
            self.out.push(Output::SetTimer {
                at: now.mono + stall,
                timer: Timer::Stall(id),
            });
        }
        self.requests.insert(
            id,
            Pending {
                to: to.clone(),
                purpose,
                sent_at: now.mono,
            },
        );
        self.out.push(Output::SetTimer {
            at: now.mono + self.config.request_timeout(),
            timer: Timer::Request(id),
        });
        self.out.push(Output::Send { id, to, request });
    }

    /// Offers a peer to the routing table, checking liveness or handing records over as needed.
    fn offer(&mut self, addr: &PeerAddr, now: Now) {
        match self.table.insert(addr.clone(), now.mono) {
            Insert::Inserted => self.hand_over(addr, now),
            Insert::CheckLiveness(oldest) if self.requests.len() < MAX_BACKGROUND_REQUESTS => {
                self.send(oldest, Request::Ping, Purpose::Probe, now);
            }
            _ => {}
        }
    }

    fn on_request(&mut self, from: &PeerAddr, id: InboundId, request: Request, now: Now) {
        let to = from.id;
        self.offer(from, now);
        let response = match request {
            Request::Ping => Response::Pong,
            Request::FindNode { target } => Response::Nodes {
                closer: self.closer_to(&target, &to),
            },
            Request::GetProviders { key } => Response::Providers {
                providers: self.store.providers(&key, now.wall),
                closer: self.closer_to(&key, &to),
            },
            Request::AddProvider { record } => {
                Response::Ack(self.store.put_record(record, now.wall).into())
            }
            Request::RemoveProvider { removal } => {
                Response::Ack(self.store.put_removal(removal, now.wall).into())
            }
        };
        self.out.push(Output::Reply { id, to, response });
    }

    fn on_response(&mut self, id: RequestId, from: PeerId, response: Response, now: Now) {
        let Some(pending) = self.requests.get(&id) else {
            return; // Late: it already timed out or failed.
        };
        if pending.to.id != from {
            return; // Not the peer we asked: ignore, the real answer or the timeout will come.
        }
        let Some(pending) = self.requests.remove(&id) else {
            return;
        };
        self.table.seen(&from, now.mono);
        self.rtt.sample(now.mono.saturating_sub(pending.sent_at));
        self.offer(&pending.to, now);
        match pending.purpose {
            Purpose::Lookup(op) => self.on_lookup_response(op, &pending.to, response, now),
            Purpose::Store(op) => {
                // A refusal is an answer (retrying would be refused again); only a failure to
                // answer is retried.
                let answered = matches!(response, Response::Ack(_));
                let stored = matches!(response, Response::Ack(Ack::Stored(_)));
                self.on_store_answer(op, &pending.to, answered, stored, now);
            }
            Purpose::Probe | Purpose::Handover => {}
        }
    }

    fn on_failed(&mut self, id: RequestId, now: Now) {
        let Some(pending) = self.requests.remove(&id) else {
            return; // Answered already: this is its stale timeout.
        };
        let peer = pending.to.id;
        if let Some(newcomer) = self.table.failed(&peer, now.mono) {
            self.hand_over(&newcomer, now);
        }
        match pending.purpose {
            Purpose::Lookup(op) => {
                if let Some(state) = self.ops.get_mut(&op) {
                    state.lookup.on_failure(&peer);
                }
                self.drive(op, now);
            }
            Purpose::Store(op) => self.on_store_answer(op, &pending.to, false, false, now),
            Purpose::Probe | Purpose::Handover => {}
        }
    }

    /// A lookup's request went unanswered for the stall time: the lookup asks on without it
    /// (the request stays pending: a late answer is still taken, a time-out still counts).
    fn on_stalled(&mut self, id: RequestId, now: Now) {
        let Some(Pending {
            to,
            purpose: Purpose::Lookup(op),
            ..
        }) = self.requests.get(&id)
        else {
            return; // Answered or failed already.
        };
        let (peer, op) = (to.id, *op);
        if let Some(state) = self.ops.get_mut(&op)
            && state.lookup.on_stalled(&peer)
        {
            self.drive(op, now);
        }
    }

    fn on_tick(&mut self, now: Now) {
        self.out.push(Output::SetTimer {
            at: now.mono + self.config.tick_interval(),
            timer: Timer::Tick,
        });
        self.store.expire(now.wall);
        if self.closing {
            return;
        }
        self.republish_due(now);
        self.refresh(now);
    }

    /// Half the clock skew holders accept: a step of the wall clock bigger than this makes
    /// records signed before it look expired or issued in the future to holders whose clocks
    /// agree with the new one.
    fn half_skew(&self) -> Duration {
        Duration::from_millis(self.config.limits.max_clock_skew_ms / 2)
    }

    /// After a step of the wall clock (a jump between the two clocks of `now`), republishes
    /// every registration at once, signed by the new clock, rather than at its next half TTL:
    /// its holders may see the old copy as expired (a step ahead) or as issued in the future (a
    /// step back). Schedules never move: they run on monotonic time.
    fn notice_clock_step(&mut self, now: Now) {
        if self.steps.observe(now, self.half_skew()).is_some() {
            for own in self.own.values_mut() {
                own.republish_at = now.mono;
            }
            self.republish_due(now);
        }
    }

    /// Republishes the registrations whose time has come, as far as free operation slots allow
    /// (the others stay due for the next tick).
    fn republish_due(&mut self, now: Now) {
        let due: Vec<(String, Vec<u8>)> = self
            .own
            .iter()
            .filter(|(_, own)| own.republish_at <= now.mono)
            .map(|(name, own)| (name.clone(), own.record.payload().metadata.clone()))
            .collect();
        for (name, metadata) in due {
            if self.register(&name, metadata, now).is_err() {
                // Busy: try again at the next tick (there is half a TTL of margin).
                break;
            }
        }
    }

    /// Starts a lookup of a random id in every bucket idle for a refresh interval, as far as
    /// free lookup slots allow.
    pub(super) fn refresh(&mut self, now: Now) {
        let buckets = self
            .table
            .buckets_to_refresh(now.mono, self.config.refresh_interval());
        for index in buckets {
            if self.ops.len() >= self.config.max_lookups {
                break;
            }
            let target = self.table.local().random_in_bucket(index, &mut self.rng);
            self.start_op(OpKind::Refresh, target, now);
        }
    }

    /// When `peer` is new in the table, hands it the records it should now hold: those of keys
    /// for which it is among the `k` closest nodes we know, when we are among the
    /// `handover_holders` closest of the others (so a few holders do the hand-over, not all `k`,
    /// and not just one, whose view may be the one that missed the newcomer).
    fn hand_over(&mut self, peer: &PeerAddr, now: Now) {
        if self.store.is_empty() {
            return;
        }
        let k = self.config.k;
        let local = self.table.local();
        let mut budget = self.config.max_handover;
        let keys: Vec<DhtId> = self.store.keys().copied().collect();
        for key in keys {
            if budget == 0 || self.requests.len() >= MAX_BACKGROUND_REQUESTS {
                break;
            }
            let closest = self.table.closest(&key, k, None);
            if !closest.iter().any(|a| a.id == peer.id) {
                continue;
            }
            let mine = local.distance(&key);
            let closer_than_me = closest
                .iter()
                .filter(|a| a.id != peer.id)
                .filter(|a| DhtId::of_peer(&a.id).distance(&key) < mine)
                .count();
            if closer_than_me >= self.config.handover_holders.max(1) {
                continue;
            }
            let (records, removals) = self.store.entries_for(&key, now.wall);
            for record in records.into_iter().take(budget) {
                budget -= 1;
                self.send(
                    peer.clone(),
                    Request::AddProvider { record },
                    Purpose::Handover,
                    now,
                );
            }
            for removal in removals.into_iter().take(budget) {
                budget -= 1;
                let request = Request::RemoveProvider { removal };
                self.send(peer.clone(), request, Purpose::Handover, now);
            }
        }
    }

    /// Notes that `peer` acknowledged a publish of `name`. Holders add up over republishes (a
    /// node that left the closest set still holds a copy until it expires, and a withdrawal must
    /// reach it); beyond `4k` the oldest is forgotten, as its copy is the likeliest to be gone.
    pub(super) fn record_holder(&mut self, name: &str, peer: &PeerAddr) {
        let bound = 4 * self.config.k;
        if let Some(own) = self.own.get_mut(name)
            && !own.holders.iter().any(|h| h.id == peer.id)
        {
            if own.holders.len() >= bound {
                own.holders.remove(0);
            }
            own.holders.push(peer.clone());
        }
    }

    /// Publishes again every registration that no node acknowledged yet (it was made before
    /// this node knew any peer).
    pub(super) fn publish_unheld(&mut self, now: Now) {
        let unheld: Vec<(String, Vec<u8>)> = self
            .own
            .iter()
            .filter(|(_, own)| own.holders.is_empty())
            .map(|(name, own)| (name.clone(), own.record.payload().metadata.clone()))
            .collect();
        for (name, metadata) in unheld {
            if self.register(&name, metadata, now).is_err() {
                break; // Busy: the next republish will do it.
            }
        }
    }

    /// Peers known to the routing table (for tests and the simulator).
    pub fn known_peers(&self) -> BTreeSet<PeerId> {
        self.table.peers().map(|a| a.id).collect()
    }
}
