//! The actor: owns the proto state, runs the select loop, and the reader and writer tasks.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, warn};
use weft_transport::{
    ActorGuard, Clock, Delivery, Endpoint, EventSender, FrameError, FramedRecv, FramedSend,
    HandlerRegistration, PeerAddr, PeerId, Sent, TimerQueue, WriterPool, iroh::Connection,
};

use super::{
    Builder, Error, MAX_OBSERVERS, TopicViews,
    metrics::{Direction, Metrics, is_push},
};
use crate::{
    PROTOCOL,
    proto::{
        AddressBook, Command, Content, Event, Input, Message, MessageId, Output, Scope, State,
        Timer, TopicId,
    },
};

/// Most peer addresses remembered by the actor.
pub(super) const MAX_ADDRS: usize = 4096;

/// What the runtime sends: a message and the addresses it needs to act on it (its sender's,
/// and those of the peers a membership message names). A CBOR array `[message, [addr…]]`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct NetFrame(Message<PeerId>, Vec<PeerAddr>);

/// [`NetFrame`] by reference, for encoding.
#[derive(Debug, serde::Serialize)]
pub(super) struct NetFrameRef<'a>(&'a Message<PeerId>, &'a Vec<PeerAddr>);

impl serde::Serialize for NetFrame {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        NetFrameRef(&self.0, &self.1).serialize(serializer)
    }
}

/// Most one-shot timers pending (grafts of missing messages, neighbour requests); periodic ones
/// are always admitted (see [`Timer::is_periodic`]). A one-shot timer beyond it fires at once.
pub(super) const MAX_TIMERS: usize = 16 * 1024;

/// Largest coalesced write of queued frames.
pub(super) const WRITE_BATCH: usize = 64 * 1024;

/// Most peers with an open writer (stream and queue); the least recently used is closed first.
pub(super) const MAX_WRITERS: usize = 256;

#[derive(Debug)]
pub(super) enum ToActor {
    Subscribe {
        topic: TopicId,
        /// Unique per `Gossip`.
        id: u64,
        bootstrap: Vec<PeerAddr>,
        events: EventSender<Event<PeerId>>,
        /// Closes when the subscriber's last half is dropped.
        alive: oneshot::Receiver<()>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Broadcast {
        topic: TopicId,
        content: Content,
        scope: Scope,
        reply: oneshot::Sender<Result<MessageId, Error>>,
    },
    JoinPeers {
        topic: TopicId,
        peers: Vec<PeerAddr>,
    },
    Neighbors {
        topic: TopicId,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Every joined topic's views (for status pages and topology queries).
    Views {
        reply: oneshot::Sender<Vec<TopicViews>>,
    },
    /// A subscriber is gone (sent on its drop; its `alive` channel closing says it too).
    Unsubscribe { topic: TopicId, id: u64 },
    /// Watch a joined topic without keeping it joined ([`super::TopicObserver`]).
    Observe {
        topic: TopicId,
        events: EventSender<Event<PeerId>>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Leave every topic, flush, and stop (see [`Actor::finish`]).
    Shutdown,
}

/// From reader and writer tasks to the actor.
#[derive(Debug)]
pub(super) enum FromNet {
    Message(PeerId, Box<NetFrame>),
    /// The peer's link failed: our writer's (`None`) or the reader of the inbound connection
    /// with this `stable_id`.
    Gone(PeerId, Option<usize>),
}

/// The subscribers of a joined topic (never empty: the last one's departure leaves the topic),
/// each with its own bounded queue and `Lagged` count. By id, because a subscriber stays until
/// both halves of its `Topic` are gone, not only its event stream.
#[derive(Debug, Default)]
pub(super) struct Subscribers {
    by_id: HashMap<u64, EventSender<Event<PeerId>>>,
    /// Whether the topic has emitted `Joined` (replayed to later subscribers).
    joined: bool,
    /// Observers ([`super::TopicObserver`]): they get the events but do not keep the topic;
    /// dropped with it, which ends their streams. At most [`MAX_OBSERVERS`].
    observers: Vec<EventSender<Event<PeerId>>>,
}

pub(super) struct Actor {
    state: State<PeerId>,
    endpoint: Endpoint,
    clock: Clock,
    commands: mpsc::Receiver<ToActor>,
    conns: mpsc::Receiver<Connection>,
    inbound_rx: mpsc::Receiver<FromNet>,
    inbound_tx: mpsc::Sender<FromNet>,
    /// A writer per peer (at most `MAX_WRITERS`, the least recently used closed first), each
    /// ending with its queue closed and flushed and returning the connection it dialled.
    writers: WriterPool<Vec<u8>, Option<Connection>>,
    /// The reader of each peer's inbound connection, with the connection's `stable_id`. One
    /// per peer: a newer connection supersedes the older (see [`Actor::on_connection`]).
    readers: HashMap<PeerId, (usize, AbortOnDropHandle<()>)>,
    subscribers: HashMap<TopicId, Subscribers>,
    /// One task per subscriber, ending (with its topic and id) when the subscriber is dropped.
    subscriber_watch: JoinSet<(TopicId, u64)>,
    registration: HandlerRegistration,
    timers: TimerQueue<Timer<PeerId>>,
    /// One-shot timers the full queue handed back: fired at the next turn of the loop.
    overdue: Vec<Timer<PeerId>>,
    pub(super) metrics: Arc<Metrics>,
    /// Whether to count into `metrics` at all ([`super::Builder::collect_metrics`]).
    collect: bool,
    /// Known peer addresses (at most `MAX_ADDRS`, oldest forgotten first).
    addrs: AddressBook<PeerId, PeerAddr>,
    builder: Builder,
}

impl Actor {
    pub(super) fn new(
        state: State<PeerId>,
        endpoint: Endpoint,
        registration: HandlerRegistration,
        commands: mpsc::Receiver<ToActor>,
        conns: mpsc::Receiver<Connection>,
        builder: Builder,
    ) -> Self {
        let (inbound_tx, inbound_rx) = mpsc::channel(builder.inbound_capacity);
        Self {
            state,
            endpoint,
            clock: Clock::default(),
            commands,
            conns,
            inbound_rx,
            inbound_tx,
            writers: WriterPool::new(MAX_WRITERS, builder.send_queue_capacity),
            readers: HashMap::new(),
            subscribers: HashMap::new(),
            subscriber_watch: JoinSet::new(),
            registration,
            timers: TimerQueue::new(MAX_TIMERS, Timer::is_periodic),
            overdue: Vec::new(),
            metrics: Arc::default(),
            collect: builder.collect_metrics,
            addrs: AddressBook::new(MAX_ADDRS),
            builder,
        }
    }

    /// Runs until [`ToActor::Shutdown`] or until every handle is gone (the command channel
    /// closes), then leaves every topic and flushes ([`Actor::finish`]); `ended` is dropped at
    /// the end, however the task ends.
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
                    Some(ToActor::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some(Ok((topic, id))) = self.subscriber_watch.join_next(),
                    if !self.subscriber_watch.is_empty() => self.unsubscribe(topic, id),
                Some(conn) = self.conns.recv() => self.on_connection(conn),
                Some(event) = self.inbound_rx.recv() => {
                    let input = match event {
                        FromNet::Message(from, frame) => {
                            let NetFrame(message, addrs) = *frame;
                            self.learn_addrs(addrs);
                            if let Some(metrics) = self.counting() {
                                metrics.message(&message, Direction::Received);
                            }
                            Input::RecvMessage(from, message)
                        }
                        FromNet::Gone(peer, reader) => {
                            if let Some(conn) = reader {
                                if self.readers.get(&peer).is_none_or(|(id, _)| *id != conn) {
                                    // A superseded connection's reader: the peer is on a
                                    // newer one, already accounted for.
                                    continue;
                                }
                                self.readers.remove(&peer);
                            }
                            self.writers.remove(&peer);
                            Input::PeerDisconnected(peer)
                        }
                    };
                    self.handle(input);
                }
                () = sleep => self.fire_timers(),
            }
        }
        self.finish().await;
    }

    /// The end, however it came: stop accepting, say goodbye on every topic, let the writers
    /// deliver what is queued (each waits for the peer's acknowledgement) within the grace
    /// period, then close the connections we dialled. Commands that arrive meanwhile are not
    /// served: their callers get `Error::Closed`.
    async fn finish(mut self) {
        self.endpoint.unregister_exact(self.registration);
        self.conns.close();
        let topics: Vec<TopicId> = self.subscribers.keys().copied().collect();
        for topic in topics {
            self.handle(Input::Command(topic, Command::Quit));
        }
        // Event streams end; subscribers' guards no longer matter.
        self.subscribers.clear();
        self.subscriber_watch.abort_all();
        // Closing the queues lets each writer flush, finish its stream and wait for the ack.
        let (finished, cut_off) = self.writers.close(self.builder.shutdown_grace).await;
        if cut_off > 0 {
            debug!(
                left = cut_off,
                "gossip: writers cut off after the shutdown grace period"
            );
        }
        let dialled = finished.into_iter().flatten();
        for conn in dialled {
            conn.close(0u32.into(), b"gossip shut down");
        }
        // Readers (and the connections peers dialled) go with `self`.
    }

    fn handle(&mut self, input: Input<PeerId>) {
        let push = matches!(&input, Input::RecvMessage(_, message) if is_push(message));
        self.state.handle(input, self.clock.now());
        let delivered = self.apply();
        // A push that delivered nothing new had been seen: a duplicate.
        if push
            && delivered == 0
            && let Some(metrics) = self.counting()
        {
            metrics.duplicates.inc();
        }
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
                id,
                bootstrap,
                events,
                alive,
                reply,
            } => {
                let result = self.subscribe(topic, id, &bootstrap, events, alive);
                let _ = reply.send(result);
            }
            ToActor::Broadcast {
                topic,
                content,
                scope,
                reply,
            } => {
                let result = self
                    .state
                    .broadcast(topic, content, scope, self.clock.now())
                    .map_err(Error::from);
                self.apply();
                let _ = reply.send(result);
            }
            ToActor::JoinPeers { topic, peers } => {
                // An observer's join must not rejoin a topic its subscribers have left.
                if !self.subscribers.contains_key(&topic) {
                    return;
                }
                let ids = self.learn(&peers);
                if self.state.join(topic, &ids, self.clock.now()).is_ok() {
                    self.apply();
                }
            }
            ToActor::Neighbors { topic, reply } => {
                let _ = reply.send(self.state.neighbors(&topic));
            }
            ToActor::Views { reply } => {
                let views = self
                    .subscribers
                    .keys()
                    .map(|topic| TopicViews {
                        topic: *topic,
                        active: self.state.neighbors(topic),
                        passive: self.state.passive_peers(topic),
                    })
                    .collect();
                let _ = reply.send(views);
            }
            ToActor::Unsubscribe { topic, id } => self.unsubscribe(topic, id),
            ToActor::Observe {
                topic,
                events,
                reply,
            } => {
                let result = self.observe(topic, events);
                let _ = reply.send(result);
            }
            // Handled by the loop.
            ToActor::Shutdown => {}
        }
    }

    fn subscribe(
        &mut self,
        topic: TopicId,
        id: u64,
        bootstrap: &[PeerAddr],
        mut events: EventSender<Event<PeerId>>,
        alive: oneshot::Receiver<()>,
    ) -> Result<(), Error> {
        let ids = self.learn(bootstrap);
        self.state.join(topic, &ids, self.clock.now())?;
        let subscribers = self.subscribers.entry(topic).or_default();
        // A late subscriber starts from the topic's current state. (Its queue is fresh; should
        // it be smaller than the active view, the rest is reported as lagged.)
        for peer in self.state.neighbors(&topic) {
            events.deliver(Event::NeighborUp(peer));
        }
        if subscribers.joined {
            events.deliver(Event::Joined);
        }
        subscribers.by_id.insert(id, events);
        self.count_views();
        self.subscriber_watch.spawn(async move {
            // Err: the sender (in the subscriber's guard) is dropped; nothing is ever sent.
            let _ = alive.await;
            (topic, id)
        });
        self.apply();
        Ok(())
    }

    fn observe(
        &mut self,
        topic: TopicId,
        mut events: EventSender<Event<PeerId>>,
    ) -> Result<(), Error> {
        let Some(subscribers) = self.subscribers.get_mut(&topic) else {
            return Err(Error::NotJoined(topic));
        };
        subscribers.observers.retain(|sender| !sender.is_closed());
        if subscribers.observers.len() >= MAX_OBSERVERS {
            return Err(Error::TooManyObservers(topic));
        }
        // Like a late subscriber, an observer starts from the topic's current state.
        for peer in self.state.neighbors(&topic) {
            events.deliver(Event::NeighborUp(peer));
        }
        if subscribers.joined {
            events.deliver(Event::Joined);
        }
        subscribers.observers.push(events);
        Ok(())
    }

    /// A subscriber is gone; the topic is left with the last one. Told twice (its drop and its
    /// watch), the second time does nothing.
    fn unsubscribe(&mut self, topic: TopicId, id: u64) {
        let Some(subscribers) = self.subscribers.get_mut(&topic) else {
            return;
        };
        if subscribers.by_id.remove(&id).is_some() && subscribers.by_id.is_empty() {
            self.subscribers.remove(&topic);
            self.handle(Input::Command(topic, Command::Quit));
            self.count_views();
        }
    }

    fn learn(&mut self, peers: &[PeerAddr]) -> Vec<PeerId> {
        self.learn_addrs(peers.to_vec());
        peers
            .iter()
            .map(|a| a.id)
            .filter(|id| *id != self.state.me())
            .collect()
    }

    /// Remembers addresses (bounded: oldest forgotten first) and tells the endpoint.
    fn learn_addrs(&mut self, addrs: Vec<PeerAddr>) {
        for addr in addrs {
            if addr.id == self.state.me() || addr.direct.is_empty() && addr.relay.is_none() {
                continue;
            }
            self.endpoint.add_peer_addr(&addr);
            self.addrs.learn(addr.id, addr);
        }
    }

    /// This instance's counters, unless collection is off.
    fn counting(&self) -> Option<&Metrics> {
        self.collect.then_some(&*self.metrics)
    }

    /// Carries out the proto's queued outputs; returns how many messages they delivered.
    fn apply(&mut self) -> usize {
        let outs: Vec<_> = self.state.drain().collect();
        let mut delivered = 0;
        // Timers of one batch with equal delays fire in the order they were asked for (the
        // queue fires ties first armed, first fired), so grafts of messages announced
        // together fetch them in broadcast order.
        let now = self.clock.now().mono;
        for out in outs {
            match out {
                Output::SendMessage(to, message) => self.send_to(to, &message),
                Output::EmitEvent(topic, event) => {
                    delivered += usize::from(matches!(event, Event::Received { .. }));
                    self.emit(topic, event);
                }
                Output::ScheduleTimer(delay, timer) => {
                    if let Err(full) = self.timers.schedule(now + delay, timer) {
                        // Early rather than never: a graft or a neighbour request that fires
                        // early is retried by the proto; one never fired would stall it.
                        warn!(%full, "gossip: timer queue full, firing at once");
                        self.overdue.push(full.timer);
                    }
                }
                Output::DisconnectPeer(_) => {
                    // The writer stays: a new stream for the next messages to this peer could
                    // overtake the last ones on the old stream (a Disconnect overtaken by a
                    // Neighbor request leaves the link half-open). Writers are capped instead.
                }
            }
        }
        delivered
    }

    fn emit(&mut self, topic: TopicId, event: Event<PeerId>) {
        self.count(&event);
        if matches!(event, Event::NeighborUp(_) | Event::NeighborDown(_)) {
            self.count_views();
        }
        let Some(subscribers) = self.subscribers.get_mut(&topic) else {
            return;
        };
        if event == Event::Joined {
            subscribers.joined = true;
        }
        // A subscriber whose event stream is gone stays (its sender half keeps the topic);
        // `deliver` does nothing for it.
        subscribers
            .observers
            .retain_mut(|sender| sender.deliver(event.clone()) != Delivery::Closed);
        let mut subs = subscribers.by_id.values_mut().peekable();
        while let Some(sub) = subs.next() {
            if subs.peek().is_none() {
                sub.deliver(event);
                break;
            }
            sub.deliver(event.clone());
        }
    }

    /// Sets the gauges of topics and neighbours from the state (on membership changes only:
    /// a sum over topics).
    fn count_views(&self) {
        let Some(metrics) = self.counting() else {
            return;
        };
        let neighbors: usize = self
            .subscribers
            .keys()
            .map(|topic| self.state.neighbors(topic).len())
            .sum();
        metrics.neighbors.set(neighbors as i64);
        metrics.topics.set(self.subscribers.len() as i64);
    }

    /// Counts what an event says about the overlay and delivery.
    fn count(&self, event: &Event<PeerId>) {
        let Some(metrics) = self.counting() else {
            return;
        };
        match event {
            Event::NeighborUp(_) => {
                metrics.neighbor_up.inc();
            }
            Event::NeighborDown(_) => {
                metrics.neighbor_down.inc();
            }
            Event::Received { hops, .. } => {
                metrics.delivered.inc();
                metrics.delivery_hops.observe(f64::from(*hops));
            }
            _ => {}
        }
    }

    fn send_to(&mut self, to: PeerId, message: &Message<PeerId>) {
        let max = self.state.config().max_message_size;
        let addrs = self.addrs.for_message(message, self.endpoint.addr());
        let frame = match weft_transport::encode_frame(&NetFrameRef(message, &addrs), max) {
            Ok(frame) => frame,
            Err(err) => {
                debug!(%err, "gossip: message not sent");
                return;
            }
        };
        let endpoint = self.endpoint.clone();
        let gone = self.inbound_tx.clone();
        let metrics = self.counting().is_some().then(|| self.metrics.clone());
        let sent = self.writers.send(to, frame, move |rx| {
            write_loop(endpoint, to, rx, gone, metrics)
        });
        let full = sent == Sent::Full;
        if full {
            debug!(peer = %to.fmt_short(), "gossip: send queue full, frame dropped");
        }
        if let Some(metrics) = self.counting() {
            if full {
                metrics.send_queue_full.inc();
            } else {
                metrics.message(message, Direction::Sent);
            }
        }
    }

    /// A peer connected. If it had a connection already, this one supersedes it (the
    /// transport closed the old one, and our outbound one, when it admitted this: an honest
    /// peer dials again only after losing its side, as when it restarted). The peer is then
    /// disconnected in the proto before anything from the new connection is read, so the
    /// protocol sees the old link end and the peer's next messages (a `Join`) build a new one,
    /// answered through a new writer rather than the dead one.
    fn on_connection(&mut self, conn: Connection) {
        let peer = PeerId::from(conn.remote_id());
        let max = self.state.config().max_message_size;
        let tx = self.inbound_tx.clone();
        let metrics = self.counting().is_some().then(|| self.metrics.clone());
        let id = conn.stable_id();
        let reader =
            AbortOnDropHandle::new(tokio::spawn(read_connection(conn, peer, max, tx, metrics)));
        if let Some((_, old)) = self.readers.insert(peer, (id, reader)) {
            old.abort();
            debug!(peer = %peer.fmt_short(), "gossip: a newer connection supersedes the peer's old one");
            self.writers.remove(&peer);
            self.handle(Input::PeerDisconnected(peer));
        }
    }
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("me", &self.state.me())
            .finish_non_exhaustive()
    }
}

/// Sends queued frames to `peer` over one stream; reports the peer gone when that fails. When
/// the queue closes, finishes the stream and waits until the peer has acknowledged all of it
/// (so a shutdown that closes the connection next loses nothing), then returns the connection.
pub(super) async fn write_loop(
    endpoint: Endpoint,
    peer: PeerId,
    mut rx: mpsc::Receiver<Vec<u8>>,
    gone: mpsc::Sender<FromNet>,
    metrics: Option<Arc<Metrics>>,
) -> Option<Connection> {
    let result: Result<Connection, String> = async {
        let conn = endpoint
            .connect(&PeerAddr::new(peer), PROTOCOL)
            .await
            .map_err(|e| e.to_string())?;
        let stream = conn.open_uni().await.map_err(|e| e.to_string())?;
        let mut send = FramedSend::<NetFrame, _>::new(stream, usize::MAX);
        let mut batch = Vec::new();
        while let Some(frame) = rx.recv().await {
            // Coalesce what is queued into one write (fewer packets under load), up to 64 KiB.
            batch.clear();
            batch.extend_from_slice(&frame);
            while batch.len() < WRITE_BATCH
                && let Ok(more) = rx.try_recv()
            {
                batch.extend_from_slice(&more);
            }
            send.send_encoded(&batch).await.map_err(|e| e.to_string())?;
            if let Some(metrics) = &metrics {
                metrics.bytes_sent.inc_by(batch.len() as u64);
            }
        }
        if send.finish().is_ok() {
            let _ = send.get_mut().stopped().await;
        }
        Ok(conn)
    }
    .await;
    match result {
        Ok(conn) => Some(conn),
        Err(err) => {
            debug!(me = ?endpoint.id().fmt_short(), peer = %peer.fmt_short(), %err, "gossip: link to peer failed");
            let _ = gone.send(FromNet::Gone(peer, None)).await;
            None
        }
    }
}

/// Reads every stream a peer opens on an accepted connection.
pub(super) async fn read_connection(
    conn: Connection,
    peer: PeerId,
    max: usize,
    tx: mpsc::Sender<FromNet>,
    metrics: Option<Arc<Metrics>>,
) {
    let mut streams = Vec::new();
    while let Ok(stream) = conn.accept_uni().await {
        let (conn, tx, metrics) = (conn.clone(), tx.clone(), metrics.clone());
        streams.push(AbortOnDropHandle::new(tokio::spawn(async move {
            let mut recv = FramedRecv::<NetFrame, _>::new(stream, max);
            loop {
                let read_before = recv.bytes_read();
                match recv.recv().await {
                    Ok(frame) => {
                        if let Some(metrics) = &metrics {
                            metrics
                                .bytes_received
                                .inc_by(recv.bytes_read().saturating_sub(read_before));
                        }
                        if tx
                            .send(FromNet::Message(peer, Box::new(frame)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(FrameError::Closed | FrameError::Io(_) | FrameError::Truncated { .. }) => {
                        return;
                    }
                    Err(err) => {
                        // Malformed or oversized: this peer is broken or hostile. Drop it.
                        debug!(peer = %peer.fmt_short(), %err, "gossip: bad frame, closing");
                        conn.close(1u32.into(), b"bad frame");
                        return;
                    }
                }
            }
        })));
        streams.retain(|task| !task.is_finished());
    }
    // The streams' last frames (a `Disconnect` before a close, say) must reach the actor
    // before the peer is reported gone: they are still readable after the connection closed.
    for stream in streams {
        let _ = stream.await;
    }
    debug!(peer = %peer.fmt_short(), reason = ?conn.close_reason(), "gossip: inbound connection ended");
    let _ = tx.send(FromNet::Gone(peer, Some(conn.stable_id()))).await;
}
