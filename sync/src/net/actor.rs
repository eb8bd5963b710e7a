//! The actor: owns the [`Manager`], runs the select loop, and maps its outputs to streams,
//! timers and subscribers.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, warn};
use weft_gossip::{Event as GossipEvent, Topic as GossipTopic, TopicId};
use weft_transport::{ActorGuard, Clock, Endpoint, EventSender, PeerId, TimerQueue, encode_frame};

use super::{
    Error,
    metrics::Metrics,
    streams::{self, FromStream, Inbound, QueueFull, SessionQueue},
};
use crate::proto::{
    Event, Input, Item, ItemId, ItemKey, Manager, Output, ProtocolFactory, SessionId, SessionInfo,
    Timer, TopicItems,
};

/// Commands from handles.
pub(super) enum ToActor {
    Subscribe {
        topic: TopicId,
        items: TopicItems,
        protocol: Arc<dyn ProtocolFactory>,
        overlay: GossipTopic,
        events: EventSender<Event<PeerId>>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Unsubscribe {
        topic: TopicId,
    },
    Insert {
        topic: TopicId,
        item: Item,
        reply: oneshot::Sender<Result<bool, Error>>,
    },
    Get {
        topic: TopicId,
        id: ItemId,
        reply: oneshot::Sender<Result<Option<Item>, Error>>,
    },
    Len {
        topic: TopicId,
        reply: oneshot::Sender<Option<usize>>,
    },
    Keys {
        topic: TopicId,
        since: u64,
        limit: usize,
        reply: oneshot::Sender<Option<Vec<ItemKey>>>,
    },
    Sessions {
        topic: TopicId,
        reply: oneshot::Sender<Vec<SessionInfo<PeerId>>>,
    },
    Connect {
        topic: TopicId,
        peer: PeerId,
    },
    JoinPeers {
        topic: TopicId,
        peers: Vec<weft_transport::PeerAddr>,
    },
    /// End every session and stop; the handle waits for the actor's end through its
    /// `ActorLink`.
    Shutdown,
}

impl std::fmt::Debug for ToActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToActor")
    }
}

/// Neighbour changes of a topic's overlay, forwarded by a task per topic.
#[derive(Debug)]
pub(super) enum Neighbor {
    Up(TopicId, PeerId),
    Down(TopicId, PeerId),
    /// The whole set, after the overlay's events overflowed and some were lost.
    All(TopicId, Vec<PeerId>),
}

/// Most timers pending: each is one neighbour's fallback or retry, or one session's silence
/// check, so this is far above what the session and neighbour bounds allow.
const MAX_TIMERS: usize = 16 * 1024;

struct Subscriber {
    events: EventSender<Event<PeerId>>,
    /// Keeps the overlay joined; dropping it leaves the gossip topic.
    overlay: weft_gossip::TopicSender,
    /// Forwards the overlay's neighbour events; stops when dropped.
    _forwarder: AbortOnDropHandle<()>,
}

/// A gauge's value from a count.
fn gauge(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Limits of the runtime half (from the builder).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_queued_bytes: usize,
    pub(super) max_total_queued_bytes: usize,
    pub(super) shutdown_grace: Duration,
}

pub(super) struct Actor {
    manager: Manager<PeerId>,
    endpoint: Endpoint,
    clock: Clock,
    limits: Limits,
    commands: mpsc::Receiver<ToActor>,
    inbound: mpsc::Receiver<Inbound>,
    from_streams: mpsc::Receiver<FromStream>,
    to_actor: mpsc::Sender<FromStream>,
    neighbors_rx: mpsc::Receiver<Neighbor>,
    neighbors_tx: mpsc::Sender<Neighbor>,
    queues: HashMap<SessionId, SessionQueue>,
    /// Bytes queued to all sessions.
    total_queued: Arc<std::sync::atomic::AtomicUsize>,
    tasks: JoinSet<()>,
    subscribers: HashMap<TopicId, Subscriber>,
    timers: TimerQueue<Timer<PeerId>>,
    /// Timers the full queue handed back: fired at the next turn of the loop.
    overdue: Vec<Timer<PeerId>>,
    pub(super) metrics: Arc<Metrics>,
}

impl Actor {
    pub(super) fn new(
        manager: Manager<PeerId>,
        endpoint: Endpoint,
        limits: Limits,
        commands: mpsc::Receiver<ToActor>,
        inbound: mpsc::Receiver<Inbound>,
    ) -> Self {
        let (to_actor, from_streams) = mpsc::channel(1024);
        let (neighbors_tx, neighbors_rx) = mpsc::channel(256);
        Self {
            manager,
            endpoint,
            clock: Clock::default(),
            limits,
            commands,
            inbound,
            from_streams,
            to_actor,
            neighbors_rx,
            neighbors_tx,
            queues: HashMap::new(),
            total_queued: Arc::default(),
            tasks: JoinSet::new(),
            subscribers: HashMap::new(),
            // No timer is periodic: each is re-armed by what it is for, and bounded with it.
            timers: TimerQueue::new(MAX_TIMERS, |_| false),
            overdue: Vec::new(),
            metrics: Arc::default(),
        }
    }

    /// Runs until every handle is gone or `shutdown` finished; `ended` tells the handles and
    /// the protocol handler the actor has ended, however it ended.
    pub(super) async fn run(mut self, ended: ActorGuard) {
        let _ended = ended;
        loop {
            let deadline = if self.overdue.is_empty() {
                self.timers.next_deadline()
            } else {
                Some(Duration::ZERO)
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
                    Some(ToActor::Shutdown) => {
                        self.shutdown().await;
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => break,
                },
                Some(inbound) = self.inbound.recv() => self.on_inbound(inbound),
                Some(event) = self.from_streams.recv() => self.on_stream(event),
                Some(neighbor) = self.neighbors_rx.recv() => {
                    let input = match neighbor {
                        Neighbor::Up(topic, peer) => Input::NeighborUp { topic, peer },
                        Neighbor::Down(topic, peer) => Input::NeighborDown { topic, peer },
                        Neighbor::All(topic, peers) => Input::Neighbors { topic, peers },
                    };
                    self.handle(input);
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                () = sleep => self.fire_timers(),
            }
        }
        // Every handle is gone: end sessions cleanly all the same.
        self.shutdown().await;
    }

    fn handle(&mut self, input: Input<PeerId>) {
        self.manager.handle(input, self.clock.now());
        self.apply();
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now().mono;
        while let Some(timer) = self.timers.pop_due(now).or_else(|| self.overdue.pop()) {
            self.handle(Input::TimerExpired(timer));
        }
    }

    fn on_command(&mut self, command: ToActor) {
        match command {
            ToActor::Subscribe {
                topic,
                items,
                protocol,
                overlay,
                events,
                reply,
            } => {
                let result = self
                    .manager
                    .subscribe(topic, items, protocol)
                    .map_err(Error::from);
                if result.is_ok() {
                    let (sender, overlay_events) = overlay.split();
                    let neighbors = self.neighbors_tx.clone();
                    let forwarder = tokio::spawn(forward_neighbors(
                        topic,
                        sender.clone(),
                        overlay_events,
                        neighbors,
                    ));
                    let subscriber = Subscriber {
                        events,
                        overlay: sender,
                        _forwarder: AbortOnDropHandle::new(forwarder),
                    };
                    self.subscribers.insert(topic, subscriber);
                }
                let _ = reply.send(result);
            }
            ToActor::Unsubscribe { topic } => {
                self.manager.unsubscribe(topic);
                self.apply();
                self.subscribers.remove(&topic);
            }
            ToActor::Insert { topic, item, reply } => {
                let result = self.manager.insert(topic, item).map_err(Error::from);
                self.apply();
                let _ = reply.send(result);
            }
            ToActor::Get { topic, id, reply } => {
                let result = match self.manager.items(topic) {
                    Some(items) => items.get(&id).map_err(Error::from),
                    None => Err(Error::UnknownTopic(topic)),
                };
                let _ = reply.send(result);
            }
            ToActor::Len { topic, reply } => {
                let _ = reply.send(self.manager.items(topic).map(TopicItems::len));
            }
            ToActor::Keys {
                topic,
                since,
                limit,
                reply,
            } => {
                let keys = self.manager.items(topic).map(|items| {
                    let index = items.index();
                    let from = index.lower_bound(&ItemKey::new(since, ItemId([0; 32])));
                    let to = from.saturating_add(limit).min(index.len());
                    index.range(from..to).collect()
                });
                let _ = reply.send(keys);
            }
            ToActor::Sessions { topic, reply } => {
                let _ = reply.send(self.manager.sessions(topic));
            }
            ToActor::Connect { topic, peer } => {
                self.manager.connect(topic, peer, self.clock.now());
                self.apply();
            }
            ToActor::JoinPeers { topic, peers } => {
                if let Some(sub) = self.subscribers.get(&topic) {
                    let sender = sub.overlay.clone();
                    // The gossip actor answers quickly; not worth blocking this loop on.
                    self.tasks.spawn(async move {
                        let _ = sender.join_peers(peers).await;
                    });
                }
            }
            ToActor::Shutdown => unreachable!("handled in run"),
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        let Inbound { peer, send, recv } = inbound;
        let session = self.manager.accept(peer, self.clock.now());
        let (queue, frames) = SessionQueue::new(&self.total_queued);
        let max = self.manager.config().max_frame_size;
        self.tasks.spawn(streams::run_stream(
            session,
            send,
            recv,
            frames,
            queue.queued.clone(),
            max,
            self.to_actor.clone(),
        ));
        self.queues.insert(session, queue);
        self.apply();
    }

    fn on_stream(&mut self, event: FromStream) {
        let input = match event {
            FromStream::Frame(session, frame) => Input::Frame { session, frame },
            FromStream::Closed(session, error) => {
                self.queues.remove(&session);
                Input::Closed { session, error }
            }
        };
        self.handle(input);
    }

    fn apply(&mut self) {
        // Acting on an output can feed the manager again (a full send queue fails its
        // session), so drain until nothing is left.
        loop {
            let outputs: Vec<_> = self.manager.drain().collect();
            if outputs.is_empty() {
                self.metrics.sessions.set(gauge(self.queues.len()));
                self.metrics.topics.set(gauge(self.subscribers.len()));
                return;
            }
            self.apply_outputs(outputs);
        }
    }

    fn apply_outputs(&mut self, outputs: Vec<Output<PeerId>>) {
        for output in outputs {
            match output {
                Output::Open { session, peer } => self.open(session, peer),
                Output::Send { session, frame } => self.send(session, &frame),
                Output::Close { session } => {
                    // Dropping the queue lets the writer finish the stream after what is queued.
                    self.queues.remove(&session);
                }
                Output::Emit { topic, event } => self.emit(topic, event),
                Output::ScheduleTimer(delay, timer) => {
                    let at = self.clock.now().mono + delay;
                    if let Err(full) = self.timers.schedule(at, timer) {
                        warn!(%full, "sync: timer queue full, firing at once");
                        self.overdue.push(full.timer);
                    }
                }
            }
        }
    }

    fn open(&mut self, session: SessionId, peer: PeerId) {
        let (queue, frames) = SessionQueue::new(&self.total_queued);
        let max = self.manager.config().max_frame_size;
        self.tasks.spawn(streams::outbound(
            self.endpoint.clone(),
            peer,
            session,
            frames,
            queue.queued.clone(),
            max,
            self.to_actor.clone(),
        ));
        self.queues.insert(session, queue);
    }

    fn send(&mut self, session: SessionId, frame: &crate::proto::Frame) {
        let Some(queue) = self.queues.get(&session) else {
            return;
        };
        let max = self.manager.config().max_frame_size;
        let failure = match encode_frame(frame, max) {
            Ok(bytes) => {
                let len = bytes.len() as u64;
                match queue.push(
                    bytes,
                    self.limits.max_queued_bytes,
                    self.limits.max_total_queued_bytes,
                ) {
                    Ok(()) => {
                        self.metrics.frames_sent.inc();
                        self.metrics.bytes_sent.inc_by(len);
                        return;
                    }
                    Err(QueueFull::Session) => {
                        "send queue full: the peer reads too slowly".to_owned()
                    }
                    Err(QueueFull::Total) => "send queues of all sessions full".to_owned(),
                }
            }
            Err(err) => format!("frame not sent: {err}"),
        };
        // Fail the session; a later one reconciles whatever did not go out.
        debug!(%failure, "sync: session failed on send");
        self.queues.remove(&session);
        self.manager.handle(
            Input::Closed {
                session,
                error: Some(failure),
            },
            self.clock.now(),
        );
    }

    fn emit(&mut self, topic: TopicId, event: Event<PeerId>) {
        self.metrics.event(&event);
        if let Some(sub) = self.subscribers.get_mut(&topic) {
            sub.events.deliver(event);
        }
    }

    /// Ends every session, lets the writers finish their streams within the grace period,
    /// then leaves the overlays.
    async fn shutdown(&mut self) {
        self.manager.shutdown();
        self.apply();
        self.queues.clear();
        // Leave the overlays: no new neighbour starts a session now.
        self.subscribers.clear();
        let grace = self.limits.shutdown_grace;
        let tasks = &mut self.tasks;
        let from_streams = &mut self.from_streams;
        let _ = tokio::time::timeout(grace, async {
            loop {
                tokio::select! {
                    joined = tasks.join_next() => if joined.is_none() { break },
                    // Keep the stream tasks from blocking on a full channel.
                    Some(_) = from_streams.recv() => {}
                }
            }
        })
        .await;
    }
}

/// Forwards one overlay's neighbour events to the actor; after lost events, the whole set.
async fn forward_neighbors(
    topic: TopicId,
    overlay: weft_gossip::TopicSender,
    mut events: weft_gossip::TopicEvents,
    to_actor: mpsc::Sender<Neighbor>,
) {
    while let Some(event) = events.recv().await {
        let change = match event {
            GossipEvent::NeighborUp(peer) => Neighbor::Up(topic, peer),
            GossipEvent::NeighborDown(peer) => Neighbor::Down(topic, peer),
            GossipEvent::Lagged(_) => match overlay.neighbors().await {
                Ok(peers) => Neighbor::All(topic, peers),
                Err(_) => return,
            },
            _ => continue,
        };
        if to_actor.send(change).await.is_err() {
            return;
        }
    }
}
