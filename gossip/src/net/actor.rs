//! The actor: owns the proto state, runs the select loop, and the reader and writer tasks.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;
use tracing::debug;
use weft_transport::{
    Endpoint, FrameError, FramedRecv, FramedSend, PeerAddr, PeerId,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

use super::{Builder, Error, GOSSIP};
use crate::proto::{
    Command, Content, Event, InEvent, Message, MessageId, OutEvent, Scope, State, Timer, TopicId,
    TopicMessage,
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

/// Largest coalesced write of queued frames.
pub(super) const WRITE_BATCH: usize = 64 * 1024;

/// Most peers with an open writer (stream and queue); the least recently used is closed first.
pub(super) const MAX_WRITERS: usize = 256;

#[derive(Debug)]
pub(super) enum ToActor {
    Subscribe {
        topic: TopicId,
        bootstrap: Vec<PeerAddr>,
        events: mpsc::Sender<Event<PeerId>>,
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
    Quit {
        topic: TopicId,
    },
}

/// From reader and writer tasks to the actor.
#[derive(Debug)]
pub(super) enum FromNet {
    Message(PeerId, Box<NetFrame>),
    Gone(PeerId),
}

/// Accepts `gossip/1` connections for the actor.
#[derive(Debug, Clone)]
pub(super) struct Handler {
    pub(super) conns: mpsc::Sender<Connection>,
}

impl ProtocolHandler for Handler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        // Full: wait; the accept loop runs one task per connection, so this only delays this one.
        let _ = self.conns.send(conn).await;
        Ok(())
    }
}

#[derive(Debug)]
pub(super) struct Subscriber {
    pub(super) events: mpsc::Sender<Event<PeerId>>,
    pub(super) lagged: u64,
}

pub(super) struct Actor {
    state: State<PeerId>,
    endpoint: Endpoint,
    start: Instant,
    commands: mpsc::Receiver<ToActor>,
    conns: mpsc::Receiver<Connection>,
    inbound_rx: mpsc::Receiver<FromNet>,
    inbound_tx: mpsc::Sender<FromNet>,
    /// Writer queues by peer, with the tick of their last use. At most `MAX_WRITERS`; the
    /// least recently used one goes first.
    writers: HashMap<PeerId, (mpsc::Sender<Vec<u8>>, u64)>,
    writer_tick: u64,
    readers: Vec<AbortOnDropHandle<()>>,
    subscribers: HashMap<TopicId, Subscriber>,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer<PeerId>)>>,
    timer_seq: u64,
    pub(super) bytes_sent: Arc<AtomicU64>,
    /// Known peer addresses (at most `MAX_ADDRS`, oldest forgotten first).
    addrs: HashMap<PeerId, PeerAddr>,
    addr_order: VecDeque<PeerId>,
    builder: Builder,
}

impl Actor {
    pub(super) fn new(
        state: State<PeerId>,
        endpoint: Endpoint,
        commands: mpsc::Receiver<ToActor>,
        conns: mpsc::Receiver<Connection>,
        builder: Builder,
    ) -> Self {
        let (inbound_tx, inbound_rx) = mpsc::channel(builder.inbound_capacity);
        Self {
            state,
            endpoint,
            start: Instant::now(),
            commands,
            conns,
            inbound_rx,
            inbound_tx,
            writers: HashMap::new(),
            writer_tick: 0,
            readers: Vec::new(),
            subscribers: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            bytes_sent: Arc::new(AtomicU64::new(0)),
            addrs: HashMap::new(),
            addr_order: VecDeque::new(),
            builder,
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
            let sleep = async {
                match next_timer {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                Some(conn) = self.conns.recv() => self.on_connection(conn),
                Some(event) = self.inbound_rx.recv() => {
                    let input = match event {
                        FromNet::Message(from, frame) => {
                            let NetFrame(message, addrs) = *frame;
                            self.learn_addrs(addrs);
                            InEvent::RecvMessage(from, message)
                        }
                        FromNet::Gone(peer) => {
                            self.writers.remove(&peer);
                            InEvent::PeerDisconnected(peer)
                        }
                    };
                    self.handle(input);
                }
                () = sleep => self.fire_timers(),
            }
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn handle(&mut self, input: InEvent<PeerId>) {
        let now = self.now();
        let outs: Vec<_> = self.state.handle(input, now).collect();
        self.apply(outs);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, _, timer))) = self.timers.pop() {
                self.handle(InEvent::TimerExpired(timer));
            }
        }
    }

    fn on_command(&mut self, command: ToActor) {
        match command {
            ToActor::Subscribe {
                topic,
                bootstrap,
                events,
                reply,
            } => {
                let ids = self.learn(&bootstrap);
                let now = self.now();
                let result = self
                    .state
                    .join(topic, &ids, now)
                    .map_err(|err| Error::Join(err.to_string()));
                if result.is_ok() {
                    self.subscribers
                        .insert(topic, Subscriber { events, lagged: 0 });
                    let outs: Vec<_> = self.state.drain().collect();
                    self.apply(outs);
                }
                let _ = reply.send(result);
            }
            ToActor::Broadcast {
                topic,
                content,
                scope,
                reply,
            } => {
                let now = self.now();
                let result = self
                    .state
                    .broadcast(topic, content, scope, now)
                    .map_err(Error::from);
                let outs: Vec<_> = self.state.drain().collect();
                self.apply(outs);
                let _ = reply.send(result);
            }
            ToActor::JoinPeers { topic, peers } => {
                let ids = self.learn(&peers);
                let now = self.now();
                if self.state.join(topic, &ids, now).is_ok() {
                    let outs: Vec<_> = self.state.drain().collect();
                    self.apply(outs);
                }
            }
            ToActor::Neighbors { topic, reply } => {
                let _ = reply.send(self.state.neighbors(&topic));
            }
            ToActor::Quit { topic } => {
                self.subscribers.remove(&topic);
                self.handle(InEvent::Command(topic, Command::Quit));
            }
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
            if self.addrs.insert(addr.id, addr.clone()).is_none() {
                self.addr_order.push_back(addr.id);
                while self.addr_order.len() > MAX_ADDRS {
                    if let Some(old) = self.addr_order.pop_front() {
                        self.addrs.remove(&old);
                    }
                }
            }
        }
    }

    /// The addresses to ship with a message: for membership messages, ours and those of the
    /// peers it names, so the receiver can dial them (the proto speaks of ids only).
    fn addrs_for(&self, message: &Message<PeerId>) -> Vec<PeerAddr> {
        use crate::proto::hyparview::Message as M;
        let TopicMessage::Membership(membership) = &message.message else {
            return Vec::new();
        };
        let named: Vec<PeerId> = match membership {
            M::ForwardJoin { peer, .. } => vec![*peer],
            M::Shuffle { origin, peers, .. } => std::iter::once(*origin)
                .chain(peers.iter().copied())
                .collect(),
            M::ShuffleReply { peers } => peers.clone(),
            M::Swap { drop } => vec![*drop],
            M::SwapReply { dropped, .. } => dropped.iter().copied().collect(),
            M::Replace { with } => with.iter().copied().collect(),
            _ => Vec::new(),
        };
        let mut addrs = vec![self.endpoint.addr()];
        addrs.extend(named.iter().filter_map(|id| self.addrs.get(id).cloned()));
        addrs
    }

    fn apply(&mut self, outs: Vec<OutEvent<PeerId>>) {
        for out in outs {
            match out {
                OutEvent::SendMessage(to, message) => self.send_to(to, &message),
                OutEvent::EmitEvent(topic, event) => self.emit(topic, event),
                OutEvent::ScheduleTimer(delay, timer) => {
                    self.timer_seq += 1;
                    self.timers
                        .push(Reverse((Instant::now() + delay, self.timer_seq, timer)));
                }
                OutEvent::DisconnectPeer(_) => {
                    // The writer stays: a new stream for the next messages to this peer could
                    // overtake the last ones on the old stream (a Disconnect overtaken by a
                    // Neighbor request leaves the link half-open). Writers are capped instead.
                }
            }
        }
    }

    fn emit(&mut self, topic: TopicId, event: Event<PeerId>) {
        let Some(sub) = self.subscribers.get_mut(&topic) else {
            return;
        };
        if sub.lagged > 0 {
            match sub.events.try_send(Event::Lagged(sub.lagged)) {
                Ok(()) => sub.lagged = 0,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    sub.lagged += 1;
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        match sub.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => sub.lagged += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn send_to(&mut self, to: PeerId, message: &Message<PeerId>) {
        let max = self.state.config().max_message_size;
        let addrs = self.addrs_for(message);
        let frame = match weft_transport::encode_frame(&NetFrameRef(message, &addrs), max) {
            Ok(frame) => frame,
            Err(err) => {
                debug!(%err, "gossip: message not sent");
                return;
            }
        };
        self.writer_tick += 1;
        let tick = self.writer_tick;
        if let Some((writer, used)) = self.writers.get_mut(&to)
            && !writer.is_closed()
        {
            *used = tick;
            if writer.try_send(frame).is_err() {
                debug!(peer = %to.fmt_short(), "gossip: send queue full, frame dropped");
            }
            return;
        }
        if self.writers.len() >= MAX_WRITERS
            && let Some(oldest) = self
                .writers
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(p, _)| *p)
        {
            self.writers.remove(&oldest);
        }
        let (tx, rx) = mpsc::channel(self.builder.send_queue_capacity);
        let _ = tx.try_send(frame);
        self.writers.insert(to, (tx, tick));
        let endpoint = self.endpoint.clone();
        let gone = self.inbound_tx.clone();
        tokio::spawn(write_loop(endpoint, to, rx, gone, self.bytes_sent.clone()));
    }

    fn on_connection(&mut self, conn: Connection) {
        let peer = PeerId::from(conn.remote_id());
        let max = self.state.config().max_message_size;
        let tx = self.inbound_tx.clone();
        self.readers.retain(|task| !task.is_finished());
        self.readers
            .push(AbortOnDropHandle::new(tokio::spawn(read_connection(
                conn, peer, max, tx,
            ))));
    }
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("me", &self.state.me())
            .finish_non_exhaustive()
    }
}

/// Sends queued frames to `peer` over one stream; reports the peer gone when that fails.
pub(super) async fn write_loop(
    endpoint: Endpoint,
    peer: PeerId,
    mut rx: mpsc::Receiver<Vec<u8>>,
    gone: mpsc::Sender<FromNet>,
    bytes_sent: Arc<AtomicU64>,
) {
    let result: Result<(), String> = async {
        let conn = endpoint
            .connect(&PeerAddr::new(peer), GOSSIP)
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
            bytes_sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        let _ = send.finish();
        Ok(())
    }
    .await;
    if let Err(err) = result {
        debug!(me = ?endpoint.id().fmt_short(), peer = %peer.fmt_short(), %err, "gossip: link to peer failed");
        let _ = gone.send(FromNet::Gone(peer)).await;
    }
}

/// Reads every stream a peer opens on an accepted connection.
pub(super) async fn read_connection(
    conn: Connection,
    peer: PeerId,
    max: usize,
    tx: mpsc::Sender<FromNet>,
) {
    let mut streams = Vec::new();
    while let Ok(stream) = conn.accept_uni().await {
        let (conn, tx) = (conn.clone(), tx.clone());
        streams.push(AbortOnDropHandle::new(tokio::spawn(async move {
            let mut recv = FramedRecv::<NetFrame, _>::new(stream, max);
            loop {
                match recv.recv().await {
                    Ok(frame) => {
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
    debug!(peer = %peer.fmt_short(), reason = ?conn.close_reason(), "gossip: inbound connection ended");
    let _ = tx.send(FromNet::Gone(peer)).await;
}
