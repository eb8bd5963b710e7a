//! The actor: owns the proto [`Node`], runs one `select!` loop over commands, inbound direct
//! messages, gossip topic events and timers, and maps the node's outputs to transport and
//! gossip calls.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};
use weft_gossip::{Event as GossipEvent, Topic, TopicEvents, TopicSender};
use weft_transport::{
    ActorGuard, Clock, Endpoint, PeerAddr, PeerId, RelayUrl, SecretKey, TimerQueue, encode_frame,
};

use super::{
    BROADCAST_QUEUE_CAPACITY, MAX_WAITERS,
    event::Event,
    handle::{Builder, Command, Error, Shared, lock},
    metrics::Metrics,
    snapshot::CatalogSnapshot,
    timers::{self, MAX_TIMERS},
    wire::{Inbound, Writers},
};
use crate::proto::{
    self, EntryError, Event as NodeEvent, Input, LocalInfo, Message, Node, Output, PING_PROTOCOL,
    PROTOCOL, PeerEntry, Timer,
};

/// How long a departure may wait to be handed to gossip.
const DEPARTURE_TIMEOUT: Duration = Duration::from_secs(1);

/// A broadcast for the broadcaster task, with an optional acknowledgement once gossip took it.
type Broadcast = (Vec<u8>, Option<oneshot::Sender<()>>);

type Waiters<T> = BTreeMap<PeerId, Vec<oneshot::Sender<Result<T, Error>>>>;

#[derive(Debug)]
pub(super) struct Actor {
    node: Node,
    endpoint: Endpoint,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Receiver<Inbound>,
    topic_events: TopicEvents,
    topic_sender: TopicSender,
    broadcasts: mpsc::Sender<Broadcast>,
    writers: Writers,
    /// Monotonic time for timers and durations, wall time for signed entries.
    clock: Clock,
    timers: TimerQueue<Timer>,
    /// Timers the full queue refused: fired at the next turn of the loop.
    overdue: Vec<Timer>,
    events: Shared,
    watch: watch::Sender<u64>,
    pings: Waiters<Duration>,
    syncs: Waiters<usize>,
    /// Set by the last `LocalUpdateRefused` the node emitted.
    refused: Option<EntryError>,
    addresses: (BTreeSet<SocketAddr>, Option<RelayUrl>),
    max_message: usize,
    shutdown_grace: Duration,
    pub(super) metrics: Arc<Metrics>,
}

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        builder: &Builder,
        info: LocalInfo,
        endpoint: Endpoint,
        topic: Topic,
        commands: mpsc::Receiver<Command>,
        inbound: mpsc::Receiver<Inbound>,
        events: Shared,
        watch: watch::Sender<u64>,
    ) -> Result<Self, EntryError> {
        let key = SecretKey::from_bytes(&endpoint.iroh().secret_key().to_bytes());
        let clock = Clock::new(builder.wall_clock.clone());
        let now = clock.now();
        // Secret: it keys the catalog's hash table (see `Catalog::new`).
        let seed = endpoint.secret_seed("weft/discovery/node");
        let addresses = (info.direct.clone(), info.relay.clone());
        let node = Node::new(
            key,
            endpoint.network(),
            info,
            builder.config.clone(),
            seed,
            now,
        )?;
        let (topic_sender, topic_events) = topic.split();
        let (broadcasts, queue) = mpsc::channel(BROADCAST_QUEUE_CAPACITY);
        tokio::spawn(broadcast_loop(topic_sender.clone(), queue));
        Ok(Self {
            node,
            writers: Writers::new(endpoint.clone()),
            endpoint,
            commands,
            inbound,
            topic_events,
            topic_sender,
            broadcasts,
            clock,
            timers: TimerQueue::new(MAX_TIMERS, timers::periodic),
            overdue: Vec::new(),
            events,
            watch,
            pings: BTreeMap::new(),
            syncs: BTreeMap::new(),
            refused: None,
            addresses,
            max_message: builder.config.max_sync_message_bytes,
            shutdown_grace: builder.shutdown_grace,
            metrics: Arc::default(),
        })
    }

    /// Runs until a shutdown command or the last handle's drop, then departs; `ended` tells
    /// `Discovery::shutdown` and the handlers the actor has ended, even if it panicked.
    pub(super) async fn run(mut self, ended: ActorGuard) {
        let _ended = ended;
        self.node.start(self.clock.now());
        let outputs = self.node.drain();
        self.apply(outputs);
        let mut gossip_open = true;
        loop {
            let deadline = if self.overdue.is_empty() {
                self.timers.next_deadline()
            } else {
                Some(std::time::Duration::ZERO)
            }
            .map(|at| tokio::time::Instant::from_std(self.clock.instant(at)));
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) => {
                        self.depart().await;
                        break;
                    }
                    Some(command) => self.on_command(command),
                    // The last handle is gone: leave as `shutdown` would.
                    None => {
                        self.depart().await;
                        break;
                    }
                },
                Some((from, message)) = self.inbound.recv() => {
                    self.handle(Input::Message { from, message });
                }
                event = self.topic_events.recv(), if gossip_open => match event {
                    Some(event) => self.on_gossip(event),
                    None => {
                        debug!("discovery: gossip stopped; announcements no longer flow");
                        gossip_open = false;
                    }
                },
                () = sleep => self.fire_timers(),
            }
        }
        // Event streams end.
        lock(&self.events).take();
    }

    fn handle(&mut self, input: Input) {
        self.node.handle(input, self.clock.now());
        let outputs = self.node.drain();
        self.apply(outputs);
        self.metrics
            .copy_stats(&self.node.stats(), self.node.catalog().len());
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Broadcast(announcement) => {
                    let bytes = announcement.encode();
                    let len = bytes.len() as u64;
                    if self.broadcasts.try_send((bytes, None)).is_err() {
                        self.metrics.broadcasts_dropped.inc();
                        debug!("discovery: broadcast queue full, announcement dropped");
                    } else {
                        self.metrics.broadcast_bytes_sent.inc_by(len);
                    }
                }
                Output::Send { to, message } => self.send(to, &message),
                Output::ArmTimer { at, timer } => {
                    if let Err(full) = self.timers.schedule(at, timer) {
                        // Fired at once rather than lost: a deadline that fires early fails its
                        // ping or sync, which the node recovers from; one never fired would
                        // leak its session. Only a proto bug can get here (see `timers`).
                        warn!(%full, "discovery: timer queue full, firing at once");
                        self.overdue.push(full.timer);
                    }
                }
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    fn send(&mut self, to: PeerId, message: &Message) {
        let protocol = match message {
            Message::Ping { .. } | Message::Pong { .. } => PING_PROTOCOL,
            _ => PROTOCOL,
        };
        match encode_frame(message, self.max_message) {
            Ok(frame) => {
                self.metrics.direct_messages_sent.inc();
                self.metrics.direct_bytes_sent.inc_by(frame.len() as u64);
                self.writers.send(to, protocol, frame);
            }
            Err(err) => debug!(%err, "discovery: message not encoded"),
        }
    }

    fn on_event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::PeerDiscovered(entry) => {
                let entry = entry.payload().clone();
                self.learn_addr(&entry);
                self.publish(&Event::PeerDiscovered(entry));
            }
            NodeEvent::PeerUpdated(entry) => {
                let entry = entry.payload().clone();
                self.learn_addr(&entry);
                self.publish(&Event::PeerUpdated(entry));
            }
            NodeEvent::PeerDeparted { peer, reason } => {
                self.metrics.departed(reason);
                self.publish(&Event::PeerDeparted { peer, reason });
            }
            NodeEvent::Pong { peer, rtt } => {
                self.metrics.pong(rtt);
                resolve(&mut self.pings, peer, &Ok(rtt));
            }
            NodeEvent::PingFailed { peer } => {
                self.metrics.ping_failures.inc();
                resolve(&mut self.pings, peer, &Err(Error::PingFailed(peer)));
            }
            NodeEvent::SyncFinished { peer, learnt } => resolve(&mut self.syncs, peer, &Ok(learnt)),
            NodeEvent::SyncFailed { peer } => {
                resolve(&mut self.syncs, peer, &Err(Error::SyncFailed(peer)));
            }
            NodeEvent::LocalUpdateRefused(err) => self.refused = Some(err),
            NodeEvent::EntryRefused { from, outcome } => {
                debug!(from = ?from.map(|p| p.fmt_short()), ?outcome, "discovery: entry refused");
            }
            NodeEvent::Violation { peer, violation } => {
                debug!(peer = %peer.fmt_short(), ?violation, "discovery: protocol violation");
            }
            NodeEvent::BadAnnouncement(err) => debug!(%err, "discovery: bad announcement"),
        }
    }

    /// Feeds a peer's addresses to the endpoint, so any layer can dial it by id.
    fn learn_addr(&self, entry: &PeerEntry) {
        if !entry.direct.is_empty() || entry.relay.is_some() {
            self.endpoint.add_peer_addr(&entry.addr());
        }
    }

    fn publish(&mut self, event: &Event) {
        if let Some(subscribers) = lock(&self.events).as_mut() {
            subscribers.deliver(event);
        }
        self.watch.send_modify(|version| *version += 1);
    }

    fn on_gossip(&mut self, event: GossipEvent<PeerId>) {
        match event {
            GossipEvent::NeighborUp(peer) => self.handle(Input::NeighborUp(peer)),
            GossipEvent::NeighborDown(peer) => self.handle(Input::NeighborDown(peer)),
            GossipEvent::Received { content, .. } => {
                self.handle(Input::Gossip(content.as_bytes().to_vec()));
            }
            // Missed announcements come again within an interval.
            GossipEvent::Lagged(n) => debug!(n, "discovery: gossip events lagged"),
            GossipEvent::Joined => debug!("discovery: joined the topic"),
            _ => {}
        }
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now().mono;
        while let Some(timer) = self.timers.pop_due(now).or_else(|| self.overdue.pop()) {
            if timer == Timer::Announce {
                self.refresh_addresses();
            }
            self.handle(Input::Timer(timer));
        }
    }

    /// Re-reads the endpoint's addresses before each announcement: when they changed, the
    /// node signs and announces a new entry.
    fn refresh_addresses(&mut self) {
        let addr = self.endpoint.addr();
        let current = (addr.direct, addr.relay);
        if current != self.addresses {
            self.addresses = current.clone();
            let (direct, relay) = current;
            self.handle(Input::Command(proto::Command::SetAddresses {
                direct,
                relay,
            }));
            self.watch.send_modify(|version| *version += 1);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Catalog(reply) => {
                let catalog = self.node.catalog();
                let _ = reply.send(CatalogSnapshot {
                    local: catalog.local().payload().clone(),
                    peers: catalog.iter().map(|(id, r)| (*id, r.clone())).collect(),
                    taken: self.clock.now().mono,
                });
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.node.stats());
            }
            Command::UpdateLocal {
                tags,
                metadata,
                reply,
            } => {
                let _ = reply.send(self.update_local(tags, metadata));
            }
            Command::Dial(addr) => self.dial(addr),
            Command::SyncWith { addr, reply } => {
                let peer = addr.id;
                self.endpoint.add_peer_addr(&addr);
                if !add_waiter(&mut self.syncs, &self.pings, peer, reply) {
                    return;
                }
                self.handle(Input::Command(proto::Command::SyncWith(peer)));
            }
            Command::Ping { peer, reply } => {
                if !add_waiter(&mut self.pings, &self.syncs, peer, reply) {
                    return;
                }
                self.handle(Input::Command(proto::Command::Ping(peer)));
            }
            // Handled in the loop, which stops after it.
            Command::Shutdown => {}
        }
    }

    fn update_local(
        &mut self,
        tags: BTreeSet<String>,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        self.refused = None;
        self.handle(Input::Command(proto::Command::SetContent {
            tags,
            metadata,
        }));
        if let Some(err) = self.refused.take() {
            return Err(Error::LocalUpdateRefused(err));
        }
        self.watch.send_modify(|version| *version += 1);
        Ok(())
    }

    fn dial(&mut self, addr: PeerAddr) {
        if addr.id == self.node.id() {
            return;
        }
        self.endpoint.add_peer_addr(&addr);
        let sender = self.topic_sender.clone();
        // Off the loop: gossip's command queue may be busy.
        tokio::spawn(async move {
            if let Err(err) = sender.join_peers(vec![addr]).await {
                debug!(%err, "discovery: join through a dialled peer failed");
            }
        });
    }

    /// Broadcasts the signed departure and waits until gossip took it, plus the grace.
    async fn depart(&mut self) {
        self.node
            .handle(Input::Command(proto::Command::Depart), self.clock.now());
        let outputs = self.node.drain();
        let mut acks = Vec::new();
        for output in outputs {
            if let Output::Broadcast(announcement) = output {
                let (ack, done) = oneshot::channel();
                let _ = self
                    .broadcasts
                    .send((announcement.encode(), Some(ack)))
                    .await;
                acks.push(done);
            }
        }
        for done in acks {
            let _ = tokio::time::timeout(DEPARTURE_TIMEOUT, done).await;
        }
        tokio::time::sleep(self.shutdown_grace).await;
    }
}

/// Registers a caller waiting for a result about `peer`; refuses when too many wait.
fn add_waiter<T, U>(
    waiters: &mut Waiters<T>,
    others: &Waiters<U>,
    peer: PeerId,
    reply: oneshot::Sender<Result<T, Error>>,
) -> bool {
    // Callers that gave up (timed out) no longer count.
    for list in waiters.values_mut() {
        list.retain(|w| !w.is_closed());
    }
    waiters.retain(|_, list| !list.is_empty());
    let count: usize = waiters.values().map(Vec::len).sum::<usize>()
        + others.values().map(Vec::len).sum::<usize>();
    if count >= MAX_WAITERS {
        let _ = reply.send(Err(Error::Busy));
        return false;
    }
    waiters.entry(peer).or_default().push(reply);
    true
}

fn resolve<T: Clone>(waiters: &mut Waiters<T>, peer: PeerId, result: &Result<T, Error>) {
    for waiter in waiters.remove(&peer).unwrap_or_default() {
        let _ = waiter.send(result.clone());
    }
}

/// Hands announcements to gossip in order, off the actor's loop.
async fn broadcast_loop(sender: TopicSender, mut queue: mpsc::Receiver<Broadcast>) {
    while let Some((bytes, ack)) = queue.recv().await {
        if let Err(err) = sender.broadcast(bytes).await {
            debug!(%err, "discovery: broadcast failed");
        }
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }
}
