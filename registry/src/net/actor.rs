//! The actor: owns the [`Node`], runs one `select!` loop over commands, inbound requests,
//! request results and timers, and maps the node's outputs to transport calls.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, oneshot};
use weft_transport::{Clock, Endpoint, PeerAddr, PeerId, RequestError, TimerQueue, request};

use super::{Builder, Command, Error, PROTOCOL, handler::Inbound};
use crate::proto::{
    Event, InboundId, Input, MAX_MESSAGE_SIZE, Node, Now, OpId, Output, ProviderRecord, Request,
    RequestId, Response, SignedRecord, Timer,
};
use tracing::warn;

/// Providers buffered in a lookup stream. A consumer that falls further behind loses the
/// providers beyond it (the lookup does not wait for slow readers).
pub(super) const LOOKUP_STREAM_CAPACITY: usize = 256;

/// Results of outgoing requests waiting for the actor. Request tasks wait when it is full.
const RESULT_CAPACITY: usize = 1024;

/// Request time-outs pending at once, at most: the node arms one per request in flight, and
/// bounds those (lookups, stores, background checks). The tick is periodic and always admitted
/// on top, so maintenance and republishing never stop. A time-out that finds the queue full
/// fires at once: its request counts as failed early rather than waiting forever.
const MAX_TIMERS: usize = 16 * 1024;

/// The timer that drives maintenance and republishing: never refused by a full queue.
fn periodic(timer: &Timer) -> bool {
    matches!(timer, Timer::Tick)
}

/// An open lookup: where its providers go, and what it found (for the cache).
#[derive(Debug)]
struct Sink {
    name: String,
    results: mpsc::Sender<ProviderRecord>,
    reported: BTreeSet<PeerId>,
    found: BTreeMap<PeerId, SignedRecord>,
}

#[derive(Debug)]
struct CacheEntry {
    fetched: Instant,
    records: Vec<SignedRecord>,
}

type Reply = oneshot::Sender<Result<usize, Error>>;

/// The outcome of one outgoing request: its id, the peer asked, the answer if any.
type RequestResult = (RequestId, PeerId, Option<Response>);

#[derive(Debug)]
pub(super) struct Actor {
    node: Node,
    endpoint: Endpoint,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Receiver<Inbound>,
    results_tx: mpsc::Sender<RequestResult>,
    results: mpsc::Receiver<RequestResult>,
    /// Monotonic time for timers and schedules, wall time for signed records.
    clock: Clock,
    timers: TimerQueue<Timer>,
    /// Timers the full queue refused: fired at the next turn of the loop.
    overdue: Vec<Timer>,
    next_inbound: u64,
    replies: BTreeMap<InboundId, oneshot::Sender<Response>>,
    lookups: BTreeMap<OpId, Sink>,
    publishes: BTreeMap<OpId, Reply>,
    withdrawals: BTreeMap<OpId, Option<Reply>>,
    cache: BTreeMap<String, CacheEntry>,
    cache_ttl: Duration,
    max_cache_entries: usize,
    request_timeout: Duration,
    /// Bucket size: below this many peers, new peers trigger a bootstrap.
    k: usize,
}

impl Actor {
    pub(super) fn new(
        builder: Builder,
        endpoint: Endpoint,
        commands: mpsc::Receiver<Command>,
        inbound: mpsc::Receiver<Inbound>,
    ) -> Self {
        let (results_tx, results) = mpsc::channel(RESULT_CAPACITY);
        let key = endpoint_key(&endpoint);
        // Secret: peers must not predict our lookup and republish choices.
        let seed = endpoint.secret_seed("weft/registry/node");
        let request_timeout = builder.config.request_timeout();
        let k = builder.config.k;
        let clock = Clock::new(builder.wall_clock.clone());
        let node = Node::new(
            key,
            endpoint.addr(),
            builder.config,
            ChaCha8Rng::seed_from_u64(seed),
            clock.now(),
        );
        Self {
            node,
            endpoint,
            commands,
            inbound,
            results_tx,
            results,
            clock,
            timers: TimerQueue::new(MAX_TIMERS, periodic),
            overdue: Vec::new(),
            next_inbound: 0,
            replies: BTreeMap::new(),
            lookups: BTreeMap::new(),
            publishes: BTreeMap::new(),
            withdrawals: BTreeMap::new(),
            cache: BTreeMap::new(),
            cache_ttl: builder.cache_ttl,
            max_cache_entries: builder.max_cache_entries.max(1),
            request_timeout,
            k,
        }
    }

    pub(super) fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(mut self) {
        let outputs = self.node.take_outputs();
        self.route(outputs);
        loop {
            let next = if self.overdue.is_empty() {
                self.timers.next_deadline()
            } else {
                Some(Duration::ZERO)
            }
            .map(|at| tokio::time::Instant::from_std(self.clock.instant(at)));
            let sleep = async move {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                Some(inbound) = self.inbound.recv() => self.on_inbound(inbound),
                Some((id, from, response)) = self.results.recv() => {
                    let input = match response {
                        Some(response) => Input::Response { id, from, response },
                        None => Input::Failed { id },
                    };
                    self.handle(input);
                }
                () = sleep => self.fire_timers(),
            }
        }
    }

    fn handle(&mut self, input: Input) {
        let outputs = self.node.handle(input, self.clock.now());
        self.route(outputs);
    }

    fn flush(&mut self) {
        let outputs = self.node.take_outputs();
        self.route(outputs);
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now().mono;
        while let Some(timer) = self.timers.pop_due(now).or_else(|| self.overdue.pop()) {
            self.handle(Input::Timer(timer));
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        self.next_inbound += 1;
        let id = InboundId(self.next_inbound);
        self.replies.insert(id, inbound.reply);
        self.handle(Input::Request {
            from: PeerAddr::new(inbound.from),
            id,
            request: inbound.request,
        });
        // The node answers every request at once; a missing answer must not leak.
        self.replies.remove(&id);
    }

    fn on_command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::AddPeers(peers) => {
                let short = self.node.table().len() < self.k;
                for peer in &peers {
                    self.endpoint.add_peer_addr(peer);
                }
                self.handle(Input::AddPeers(peers));
                if short && !self.node.table().is_empty() {
                    let _ = self.node.bootstrap(now);
                    self.flush();
                }
            }
            Command::Register {
                name,
                metadata,
                reply,
            } => {
                self.node.set_addr(self.endpoint.addr());
                match self.node.register(&name, metadata, now) {
                    Ok(op) => {
                        self.cache.remove(&name);
                        self.publishes.insert(op, reply);
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err.into()));
                    }
                }
                self.flush();
            }
            Command::Withdraw { name, reply } => {
                self.cache.remove(&name);
                match self.node.withdraw(&name, now) {
                    Ok(op) => {
                        self.withdrawals.insert(op, reply);
                    }
                    Err(err) => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(err.into()));
                        }
                    }
                }
                self.flush();
            }
            Command::Lookup {
                name,
                refresh,
                results,
                reply,
            } => self.start_lookup(name, refresh, results, reply, now),
            Command::Held { name, reply } => {
                let key = crate::proto::DhtId::of_name(&name);
                let records = self
                    .node
                    .store()
                    .providers(&key, now.wall)
                    .into_iter()
                    .map(|r| r.payload().clone())
                    .collect();
                let _ = reply.send(records);
            }
            Command::LocalRegistrations { reply } => {
                let records = self
                    .node
                    .registrations()
                    .map(|r| r.payload().clone())
                    .collect();
                let _ = reply.send(records);
            }
        }
    }

    fn start_lookup(
        &mut self,
        name: String,
        refresh: bool,
        results: mpsc::Sender<ProviderRecord>,
        reply: oneshot::Sender<Result<(), Error>>,
        now: Now,
    ) {
        if !refresh
            && let Some(entry) = self.cache.get(&name)
            && entry.fetched.elapsed() < self.cache_ttl
        {
            for record in &entry.records {
                if record.payload().expires_at() > now.wall {
                    let _ = results.try_send(record.payload().clone());
                }
            }
            let _ = reply.send(Ok(()));
            return;
        }
        match self.node.lookup(&name, now) {
            Ok(op) => {
                self.lookups.insert(
                    op,
                    Sink {
                        name,
                        results,
                        reported: BTreeSet::new(),
                        found: BTreeMap::new(),
                    },
                );
                let _ = reply.send(Ok(()));
            }
            Err(err) => {
                let _ = reply.send(Err(err.into()));
            }
        }
        self.flush();
    }

    fn route(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { id, to, request } => self.send_request(id, to, request),
                Output::Reply { id, response, .. } => {
                    if let Some(reply) = self.replies.remove(&id) {
                        let _ = reply.send(response);
                    }
                }
                Output::SetTimer { at, timer } => {
                    if let Err(full) = self.timers.schedule(at, timer) {
                        warn!(%full, "registry: timer queue full, firing at once");
                        self.overdue.push(full.timer);
                    }
                }
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    /// Runs one request in its own task; the result comes back through `results`.
    fn send_request(&mut self, id: RequestId, to: PeerAddr, message: Request) {
        self.endpoint.add_peer_addr(&to);
        let endpoint = self.endpoint.clone();
        let results = self.results_tx.clone();
        let timeout = self.request_timeout;
        tokio::spawn(async move {
            let response = async {
                let connection = endpoint.connect(&to, PROTOCOL).await.ok()?;
                match request::<Request, Response>(&connection, &message, MAX_MESSAGE_SIZE, timeout)
                    .await
                {
                    Ok(response) => Some(response),
                    Err(RequestError::Timeout(_)) => {
                        // A connection that let a request time out is likely stalled (lost
                        // packets, a partition that healed while QUIC backs off): close it so
                        // the next request dials afresh instead of queueing behind it. Requests
                        // it cuts short fail, and stores are retried.
                        connection.close(0u32.into(), b"registry request timed out");
                        None
                    }
                    Err(_) => None,
                }
            }
            .await;
            let _ = results.send((id, to.id, response)).await;
        });
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Providers { op, records } => {
                if let Some(sink) = self.lookups.get_mut(&op) {
                    for record in records {
                        let provider = record.payload().provider;
                        if sink.reported.insert(provider) {
                            let _ = sink.results.try_send(record.payload().clone());
                        }
                        sink.found.insert(provider, record);
                    }
                }
            }
            Event::LookupDone { op, .. } => {
                if let Some(sink) = self.lookups.remove(&op) {
                    self.cache_insert(sink.name, sink.found.into_values().collect());
                }
            }
            Event::Published { op, holders, .. } => {
                if let Some(reply) = self.publishes.remove(&op) {
                    let _ = reply.send(Ok(holders));
                }
            }
            Event::Withdrawn { op, holders, .. } => {
                if let Some(Some(reply)) = self.withdrawals.remove(&op) {
                    let _ = reply.send(Ok(holders));
                }
            }
            _ => {}
        }
    }

    fn cache_insert(&mut self, name: String, records: Vec<SignedRecord>) {
        if !self.cache.contains_key(&name) && self.cache.len() >= self.max_cache_entries {
            // Full: drop the oldest entry.
            let oldest = self
                .cache
                .iter()
                .min_by_key(|(_, entry)| entry.fetched)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                self.cache.remove(&oldest);
            }
        }
        self.cache.insert(
            name,
            CacheEntry {
                fetched: Instant::now(),
                records,
            },
        );
    }
}

/// The secret key of the endpoint, which the node signs records with.
fn endpoint_key(endpoint: &Endpoint) -> weft_transport::SecretKey {
    weft_transport::SecretKey::from_bytes(&endpoint.iroh().secret_key().to_bytes())
}
