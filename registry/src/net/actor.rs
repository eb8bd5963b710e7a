//! The actor: owns the [`Node`], runs one `select!` loop over commands, inbound requests,
//! request results and timers, and maps the node's outputs to transport calls.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use weft_transport::{
    ActorGuard, Clock, Endpoint, HandlerRegistration, PeerAddr, PeerId, RequestError, TimerQueue,
    request,
};

use super::{
    Builder, Command, Error, Event, PROTOCOL, Shared, handler::Inbound, lock, metrics::Metrics,
};
use crate::proto::{
    Event as ProtoEvent, InboundId, Input, MAX_MESSAGE_SIZE, Node, OpId, Output, ProviderRecord,
    Request, RequestId, Response, Timer,
};

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

/// An open lookup: where its providers go, and which it reported.
#[derive(Debug)]
pub(super) struct Sink {
    results: mpsc::Sender<ProviderRecord>,
    reported: BTreeSet<PeerId>,
}

pub(super) type Reply = oneshot::Sender<Result<usize, Error>>;

/// The outcome of one outgoing request: its id, the peer asked, the answer if any.
pub(super) type RequestResult = (RequestId, PeerId, Option<Response>);

#[derive(Debug)]
pub(super) struct Actor {
    pub(super) node: Node,
    pub(super) endpoint: Endpoint,
    /// Our `registry/1` handler: removed when the actor ends, and only if it is still ours.
    pub(super) registration: HandlerRegistration,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) inbound: mpsc::Receiver<Inbound>,
    results_tx: mpsc::Sender<RequestResult>,
    pub(super) results: mpsc::Receiver<RequestResult>,
    /// Monotonic time for timers and schedules, wall time for signed records.
    pub(super) clock: Clock,
    timers: TimerQueue<Timer>,
    /// Timers the full queue refused: fired at the next turn of the loop.
    overdue: Vec<Timer>,
    next_inbound: u64,
    replies: BTreeMap<InboundId, oneshot::Sender<Response>>,
    pub(super) lookups: BTreeMap<OpId, Sink>,
    publishes: BTreeMap<OpId, Reply>,
    withdrawals: BTreeMap<OpId, Option<Reply>>,
    request_timeout: Duration,
    pub(super) shutdown_grace: Duration,
    pub(super) events: Shared,
    pub(super) metrics: Arc<Metrics>,
    /// A lookup served from the cache while its command runs: its `LookupDone` is a hit.
    cached_lookup: Option<OpId>,
}

impl Actor {
    pub(super) fn new(
        builder: Builder,
        endpoint: Endpoint,
        registration: HandlerRegistration,
        commands: mpsc::Receiver<Command>,
        inbound: mpsc::Receiver<Inbound>,
        events: Shared,
    ) -> Self {
        let (results_tx, results) = mpsc::channel(RESULT_CAPACITY);
        let key = endpoint_key(&endpoint);
        // Secret: peers must not predict our lookup and republish choices.
        let seed = endpoint.secret_seed("weft/registry/node");
        let request_timeout = builder.config.request_timeout();
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
            registration,
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
            request_timeout,
            shutdown_grace: builder.shutdown_grace,
            events,
            metrics: Arc::default(),
            cached_lookup: None,
        }
    }

    /// Runs the actor on its own task; `ended` goes with the task, however it ends (even with
    /// a runtime shutting down), so waiters on the actor's end go on.
    pub(super) fn spawn(self, ended: ActorGuard) {
        tokio::spawn(self.run(ended));
    }

    async fn run(mut self, ended: ActorGuard) {
        let _ended = ended;
        self.flush();
        loop {
            let sleep = self.next_timer();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some(inbound) = self.inbound.recv() => self.on_inbound(inbound),
                Some(result) = self.results.recv() => self.on_result(result),
                () = sleep => self.fire_timers(),
            }
        }
        self.finish().await;
    }

    /// Sleeps until the earliest timer is due (at once when one is overdue).
    pub(super) fn next_timer(&self) -> impl Future<Output = ()> + use<> {
        let next = if self.overdue.is_empty() {
            self.timers.next_deadline()
        } else {
            Some(Duration::ZERO)
        }
        .map(|at| tokio::time::Instant::from_std(self.clock.instant(at)));
        async move {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        }
    }

    pub(super) fn on_result(&mut self, (id, from, response): RequestResult) {
        let input = match response {
            Some(response) => Input::Response { id, from, response },
            None => {
                self.metrics.requests_failed.inc();
                Input::Failed { id }
            }
        };
        self.handle(input);
    }

    fn handle(&mut self, input: Input) {
        self.node.handle(input, self.clock.now());
        self.flush();
    }

    pub(super) fn flush(&mut self) {
        let outputs = self.node.drain();
        self.route(outputs);
        // Gauges after every step: three lengths, cheaper than tracking each change.
        self.metrics
            .records_held
            .set(gauge(self.node.store().len()));
        self.metrics
            .routing_table_peers
            .set(gauge(self.node.table().len()));
        self.metrics
            .names_provided
            .set(gauge(self.node.registrations().count()));
    }

    pub(super) fn fire_timers(&mut self) {
        let now = self.clock.now().mono;
        while let Some(timer) = self.timers.pop_due(now).or_else(|| self.overdue.pop()) {
            self.handle(Input::Timer(timer));
        }
    }

    pub(super) fn on_inbound(&mut self, inbound: Inbound) {
        self.metrics.requests_served.inc();
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

    pub(super) fn on_command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::AddPeers(peers) => {
                for peer in &peers {
                    self.endpoint.add_peer_addr(peer);
                }
                // A table short of k peers bootstraps: the node decides.
                self.handle(Input::AddPeers(peers));
            }
            Command::Register {
                name,
                metadata,
                reply,
            } => {
                self.node.set_addr(self.endpoint.addr());
                match self.node.register(&name, metadata, now) {
                    Ok(op) => {
                        self.publishes.insert(op, reply);
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err.into()));
                    }
                }
                self.flush();
            }
            Command::Withdraw { name, reply } => {
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
            } => {
                let started = if refresh {
                    self.node.lookup(&name, now)
                } else {
                    self.node.lookup_cached(&name, now)
                };
                match started {
                    Ok(op) => {
                        self.metrics.lookups.inc();
                        let reported = BTreeSet::new();
                        self.lookups.insert(op, Sink { results, reported });
                        let _ = reply.send(Ok(()));
                        // A cached answer is already among the outputs flushed next.
                        self.cached_lookup = (!refresh).then_some(op);
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err.into()));
                    }
                }
                self.flush();
                self.cached_lookup = None;
            }
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
            Command::HeldNames { max, reply } => {
                let store = self.node.store();
                let mut names: Vec<(String, usize)> = store
                    .keys()
                    .filter_map(|key| {
                        let records = store.providers(key, now.wall);
                        let name = records.first()?.payload().name.clone();
                        Some((name, records.len()))
                    })
                    .collect();
                names.sort();
                names.truncate(max);
                let _ = reply.send(names);
            }
            Command::LocalRegistrations { reply } => {
                let records = self
                    .node
                    .registrations()
                    .map(|r| r.payload().clone())
                    .collect();
                let _ = reply.send(records);
            }
            // Served by the loop.
            Command::Shutdown => {}
        }
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
        self.metrics.requests_sent.inc();
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

    fn on_event(&mut self, event: ProtoEvent) {
        match event {
            ProtoEvent::Providers { op, records } => {
                if let Some(sink) = self.lookups.get_mut(&op) {
                    for record in records {
                        if sink.reported.insert(record.payload().provider) {
                            let _ = sink.results.try_send(record.payload().clone());
                        }
                    }
                }
            }
            ProtoEvent::LookupDone { op, stats } => {
                let cached = self.cached_lookup == Some(op);
                self.metrics.lookup_done(&stats, cached);
                if let Some(sink) = self.lookups.remove(&op) {
                    if !sink.reported.is_empty() {
                        self.metrics.lookups_found.inc();
                    }
                    // Its stream ends with the sink: after the counts, so that a caller who
                    // saw the end reads them.
                    drop(sink);
                }
            }
            ProtoEvent::Published { op, name, holders } => {
                let asked = self.publishes.remove(&op);
                let republished = asked.is_none();
                self.metrics.published(republished);
                if let Some(reply) = asked {
                    let _ = reply.send(Ok(holders));
                }
                self.deliver(&Event::Published {
                    name,
                    holders,
                    republished,
                });
            }
            ProtoEvent::Withdrawn { op, name, holders } => {
                self.metrics.withdrawals.inc();
                if let Some(Some(reply)) = self.withdrawals.remove(&op) {
                    let _ = reply.send(Ok(holders));
                }
                self.deliver(&Event::Withdrawn { name, holders });
            }
            ProtoEvent::Bootstrapped { peers } => self.deliver(&Event::Bootstrapped { peers }),
        }
    }

    fn deliver(&mut self, event: &Event) {
        if let Some(subscribers) = lock(&self.events).as_mut() {
            subscribers.deliver(event);
        }
    }
}

/// A gauge's value from a count.
fn gauge(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The secret key of the endpoint, which the node signs records with.
fn endpoint_key(endpoint: &Endpoint) -> weft_transport::SecretKey {
    weft_transport::SecretKey::from_bytes(&endpoint.iroh().secret_key().to_bytes())
}
