//! The runtime: one actor per [`Gossip`] that owns the proto [`State`] and drives it over
//! weft-transport (protocol `gossip/1`).
//!
//! Wiring: every peer we send to gets a writer task with a bounded frame queue over one
//! unidirectional QUIC stream on the (cached) connection we dialled; every connection we accept
//! gets a reader task that decodes frames (at most `max_message_size`) and hands them to the
//! actor through a bounded channel. Timers live in a [`TimerQueue`](weft_transport::TimerQueue)
//! in the actor, on the monotonic half of a [`Clock`](weft_transport::Clock). Bounds and
//! policies:
//! - commands from handles: `command_capacity`, callers wait when full;
//! - connections accepted: handed to the actor by the protocol handler (its policy when full
//!   is stated in `handler.rs`);
//! - frames from readers: `inbound_capacity`, readers wait (QUIC flow control pushes back);
//! - frames to one peer: `send_queue_capacity`; when full the frame is dropped (the tree
//!   repairs it: IHAVE and graft), so a slow peer never stalls the actor;
//! - events to one subscriber: `event_capacity`, through [`weft_transport::EventSender`]: when
//!   full events are dropped and the next one delivered is `Event::Lagged(n)`. Every
//!   `subscribe` is its own subscriber (own queue, own `Lagged` count); a topic is left when
//!   its last subscriber is gone;
//! - observers of one topic ([`Gossip::observe`]): at most [`MAX_OBSERVERS`], more are refused;
//!   each has its own event queue like a subscriber's, and none keeps the topic joined;
//! - timers: at most `MAX_TIMERS` one-shot timers (grafts, neighbour requests) pending; the
//!   topics' periodic ones (shuffle, rejoin, refill, IHAVE dispatch) are always admitted. A
//!   one-shot timer that finds the queue full fires at once (early rather than never).
//!
//! Ending: [`Gossip::shutdown`] (or iroh's `ProtocolHandler::shutdown`, called by
//! `Endpoint::shutdown`), and the last handle's drop, do the same work: leave every topic
//! (`Disconnect{alive: false}` to each neighbour), let the writers flush their queues and wait
//! for the peers' acknowledgements for at most the grace period, then stop. The actor is never
//! aborted: it ends when its command channel closes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use weft_transport::{
    ActorLink, Endpoint, Events, HandlerRegistration, LayerEvent, PeerAddr, PeerId, RegisterError,
};

mod actor;
mod handler;
mod metrics;
mod observer;

pub use self::metrics::Metrics;

pub use self::observer::TopicObserver;
use self::{
    actor::{Actor, ToActor},
    handler::Handler,
};
use crate::{
    PROTOCOL,
    proto::{BroadcastError, Config, Content, Event, JoinError, MessageId, Scope, State, TopicId},
};

impl<PI: Send + 'static> LayerEvent for Event<PI> {
    fn lagged(missed: u64) -> Self {
        Event::Lagged(missed)
    }
}

/// One joined topic's overlay as this node sees it ([`Gossip::topics`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicViews {
    /// The topic.
    pub topic: TopicId,
    /// Its neighbours: the active view, the peers messages are exchanged with.
    pub active: Vec<PeerId>,
    /// Peers kept in reserve to replace a neighbour that fails: the passive view.
    pub passive: Vec<PeerId>,
}

/// Most observers of one topic; [`Gossip::observe`] refuses more ([`Error::TooManyObservers`]):
/// an observer is a watcher the owner of the node starts (the node's rendezvous, a diagnostic),
/// a handful per topic, never one per remote peer.
pub const MAX_OBSERVERS: usize = 8;

/// Why the actor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// `gossip/1` is already registered on this endpoint.
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// Why a call on a gossip handle failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broadcast was refused (too large, or the topic is not joined).
    #[error(transparent)]
    Broadcast(#[from] BroadcastError),
    /// The topic could not be joined (too many topics).
    #[error("cannot join topic: {0}")]
    Join(#[from] JoinError),
    /// The actor stopped ([`Gossip::shutdown`], or its `Gossip` handles were all dropped).
    #[error("gossip actor stopped")]
    Closed,
    /// [`Gossip::observe`]: the topic has no subscriber on this node.
    #[error("topic {0:?} is not joined")]
    NotJoined(TopicId),
    /// [`Gossip::observe`]: the topic has [`MAX_OBSERVERS`] observers already.
    #[error("topic {0:?} has {MAX_OBSERVERS} observers already")]
    TooManyObservers(TopicId),
}

/// Builds a [`Gossip`].
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
    event_capacity: usize,
    command_capacity: usize,
    inbound_capacity: usize,
    send_queue_capacity: usize,
    shutdown_grace: Duration,
    collect_metrics: bool,
}

/// Default time the writers get to flush at shutdown ([`Builder::shutdown_grace`]).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

impl Default for Builder {
    fn default() -> Self {
        Self {
            config: Config::default(),
            event_capacity: 1024,
            command_capacity: 256,
            inbound_capacity: 1024,
            send_queue_capacity: 1024,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            collect_metrics: true,
        }
    }
}

impl Builder {
    /// The protocol config.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Events buffered per subscription before `Lagged` (default 1024).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Frames queued per peer before new ones are dropped (default 1024).
    pub fn send_queue_capacity(mut self, capacity: usize) -> Self {
        self.send_queue_capacity = capacity.max(1);
        self
    }

    /// How long, at shutdown, the writers may take to deliver what is queued (the topics'
    /// goodbyes first of all) before they are cut off (default [`DEFAULT_SHUTDOWN_GRACE`]).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Whether the actor counts into [`Gossip::metrics`] (default `true`). Off, every counter
    /// stays at zero, [`Gossip::bytes_sent`] included: for measuring what counting costs
    /// (`cargo xtask bench gossip` runs both ways).
    pub fn collect_metrics(mut self, collect: bool) -> Self {
        self.collect_metrics = collect;
        self
    }

    /// Registers `gossip/1` on `endpoint` and starts the actor (needs a tokio runtime).
    pub async fn spawn(self, endpoint: &Endpoint) -> Result<Gossip, SpawnError> {
        let (commands_tx, commands_rx) = mpsc::channel(self.command_capacity);
        // Weak: a registered handler must not keep the actor alive once every handle is gone.
        let (actor_link, actor_guard) = ActorLink::new(&commands_tx);
        let (handler, conns_rx) = Handler::new(actor_link.clone());
        let registration = endpoint.register(PROTOCOL, handler)?;
        let me = endpoint.id();
        // Secret: peers must not predict our random walks and choices.
        let seed = endpoint.secret_seed("weft/gossip/state");
        let max_content = self.config.max_content_size();
        let event_capacity = self.event_capacity;
        let state = State::new(me, self.config.clone(), seed);
        let actor = Actor::new(
            state,
            endpoint.clone(),
            registration,
            commands_rx,
            conns_rx,
            self,
        );
        let metrics = actor.metrics.clone();
        // Not aborted on drop: the actor ends when its command channel closes, after leaving
        // its topics (see `Actor::run`).
        tokio::spawn(actor.run(actor_guard));
        Ok(Gossip {
            inner: Arc::new(Inner {
                commands: commands_tx,
                max_content,
                event_capacity,
                next_subscriber: AtomicU64::new(0),
                metrics,
                me,
                endpoint: endpoint.clone(),
                registration,
                actor: actor_link,
            }),
        })
    }
}

/// A running gossip instance. Cheap to clone; the actor stops at [`Gossip::shutdown`], or when
/// the last clone (and the last topic handle) is dropped, leaving its topics either way.
#[derive(Debug, Clone)]
pub struct Gossip {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<ToActor>,
    max_content: usize,
    event_capacity: usize,
    next_subscriber: AtomicU64,
    metrics: Arc<Metrics>,
    me: PeerId,
    endpoint: Endpoint,
    /// Our `gossip/1` handler: removed on drop, and only if it is still ours.
    registration: HandlerRegistration,
    /// Shuts the actor down and sees it end.
    actor: ActorLink<ToActor>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.endpoint.unregister_exact(self.registration);
    }
}

impl Gossip {
    /// Starts building a gossip instance.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Our peer id.
    pub fn id(&self) -> PeerId {
        self.inner.me
    }

    /// Bytes of gossip frames written to peers so far (framing included, QUIC overhead not).
    pub fn bytes_sent(&self) -> u64 {
        self.inner.metrics.bytes_sent.get()
    }

    /// This instance's counters (messages by kind, duplicates, neighbours, delivery hops),
    /// shared with the running actor; register them in an `iroh_metrics::Registry` to export.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The largest broadcast content accepted.
    pub fn max_content_size(&self) -> usize {
        self.inner.max_content
    }

    /// Joins `topic` through `bootstrap` peers (none: wait to be joined) and returns a handle
    /// to broadcast on it and its event stream.
    ///
    /// Every call adds a subscriber with its own event queue (and its own
    /// [`Event::Lagged`] count): one slow subscriber never makes another miss events. A
    /// subscriber to a topic joined already first gets `NeighborUp` for each current neighbour
    /// (and `Joined`, if the topic has had a neighbour); its `bootstrap` peers are added and
    /// joined through. The topic is left (`Disconnect{alive: false}` to the neighbours) when the
    /// last subscriber is gone: both halves of every `Topic` dropped.
    pub async fn subscribe(
        &self,
        topic: TopicId,
        bootstrap: Vec<PeerAddr>,
    ) -> Result<Topic, Error> {
        let (events_tx, events_rx) =
            weft_transport::EventSender::channel(self.inner.event_capacity);
        let (reply, rx) = oneshot::channel();
        // Dropped with the last half (or with this future, if it is cancelled): the actor
        // watches it and removes the subscriber then, so a drop is never lost to a full
        // command queue.
        let (alive, alive_rx) = oneshot::channel();
        let id = self.inner.next_subscriber.fetch_add(1, Ordering::Relaxed);
        self.send(ToActor::Subscribe {
            topic,
            id,
            bootstrap,
            events: events_tx,
            alive: alive_rx,
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Closed)??;
        let guard = Arc::new(SubscriberGuard {
            topic,
            id,
            _alive: alive,
            gossip: self.clone(),
        });
        Ok(Topic {
            sender: TopicSender {
                topic,
                gossip: self.clone(),
                _guard: guard.clone(),
            },
            events: TopicEvents {
                events: events_rx,
                _guard: guard,
            },
        })
    }

    /// Watches `topic`, which a subscriber on this node has joined, without keeping it joined:
    /// the observer gets the topic's events (first `NeighborUp` for each current neighbour, and
    /// `Joined` if the topic has had one) and can add peers to join through, and its stream
    /// ends once the topic's last subscriber is gone. What a helper that serves a topic for as
    /// long as others use it needs (the node's rendezvous). Refused for a topic not joined
    /// ([`Error::NotJoined`]), and beyond [`MAX_OBSERVERS`] per topic.
    pub async fn observe(&self, topic: TopicId) -> Result<TopicObserver, Error> {
        let (events_tx, events) = weft_transport::EventSender::channel(self.inner.event_capacity);
        let (reply, rx) = oneshot::channel();
        self.send(ToActor::Observe {
            topic,
            events: events_tx,
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Closed)??;
        Ok(TopicObserver::new(topic, self.clone(), events))
    }

    /// The views of every topic this instance has joined: its neighbours (active view) and
    /// the peers it keeps in reserve (passive view), in no particular order.
    pub async fn topics(&self) -> Result<Vec<TopicViews>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(ToActor::Views { reply }).await?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Adds bootstrap peers to `topic` and joins through them (nothing for a topic not joined).
    async fn join_peers(&self, topic: TopicId, peers: Vec<PeerAddr>) -> Result<(), Error> {
        self.send(ToActor::JoinPeers { topic, peers }).await
    }

    /// `topic`'s neighbours (empty for a topic not joined).
    async fn neighbors(&self, topic: TopicId) -> Result<Vec<PeerId>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(ToActor::Neighbors { topic, reply }).await?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Leaves every topic (`Disconnect{alive: false}` to each neighbour, so they learn at once),
    /// gives the writers the grace period ([`Builder::shutdown_grace`]) to deliver what is
    /// queued, and stops the actor. Event streams end (`recv` returns `None`); later calls on
    /// this instance's handles fail with [`Error::Closed`]. Returns once the actor has ended;
    /// calling it again, from any clone, waits for the same end.
    ///
    /// `Endpoint::shutdown` calls this for a gossip registered on it, before it closes the
    /// connections.
    pub async fn shutdown(&self) {
        self.inner.actor.shutdown(ToActor::Shutdown).await;
    }

    async fn send(&self, command: ToActor) -> Result<(), Error> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| Error::Closed)
    }
}

/// A joined topic: a sender and an event stream (see [`Topic::split`]).
#[derive(Debug)]
pub struct Topic {
    sender: TopicSender,
    events: TopicEvents,
}

impl Topic {
    /// Separates the sending half from the event stream.
    pub fn split(self) -> (TopicSender, TopicEvents) {
        (self.sender, self.events)
    }

    /// The sending half.
    pub fn sender(&self) -> &TopicSender {
        &self.sender
    }

    /// The next event (see [`TopicEvents::recv`]).
    pub async fn recv(&mut self) -> Option<Event<PeerId>> {
        self.events.recv().await
    }
}

/// One subscriber: alive while either half of its `Topic` is. Its drop tells the actor (which
/// leaves the topic if it was the last), and it keeps the actor running meanwhile.
#[derive(Debug)]
struct SubscriberGuard {
    topic: TopicId,
    id: u64,
    _alive: oneshot::Sender<()>,
    gossip: Gossip,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        // In order with the commands this thread sends next (a test, or a caller that drops a
        // subscriber and then asks for neighbours, sees the drop served first). Should the
        // queue be full, `_alive`'s drop still tells the actor, a moment later.
        let _ = self.gossip.inner.commands.try_send(ToActor::Unsubscribe {
            topic: self.topic,
            id: self.id,
        });
    }
}

/// Sends on a topic. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TopicSender {
    topic: TopicId,
    gossip: Gossip,
    _guard: Arc<SubscriberGuard>,
}

impl TopicSender {
    /// Broadcasts to the whole topic. Content larger than [`Gossip::max_content_size`] is
    /// refused with [`BroadcastError::TooLarge`].
    pub async fn broadcast(&self, content: impl Into<Vec<u8>>) -> Result<MessageId, Error> {
        self.send(content.into(), Scope::Swarm).await
    }

    /// Sends to the direct neighbours only (they do not forward it).
    pub async fn broadcast_neighbors(
        &self,
        content: impl Into<Vec<u8>>,
    ) -> Result<MessageId, Error> {
        self.send(content.into(), Scope::Neighbors).await
    }

    async fn send(&self, content: Vec<u8>, scope: Scope) -> Result<MessageId, Error> {
        let max = self.gossip.inner.max_content;
        if content.len() > max {
            return Err(BroadcastError::TooLarge {
                size: content.len(),
                max,
            }
            .into());
        }
        let (reply, rx) = oneshot::channel();
        let content = Content::from(content);
        self.gossip
            .send(ToActor::Broadcast {
                topic: self.topic,
                content,
                scope,
                reply,
            })
            .await?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Adds bootstrap peers and joins through them.
    pub async fn join_peers(&self, peers: Vec<PeerAddr>) -> Result<(), Error> {
        self.gossip.join_peers(self.topic, peers).await
    }

    /// The current neighbours (active view).
    pub async fn neighbors(&self) -> Result<Vec<PeerId>, Error> {
        self.gossip.neighbors(self.topic).await
    }
}

/// The events of a topic: a [`weft_transport::Events`] stream (bounded, `Event::Lagged(n)`
/// after a gap) that also keeps this subscription alive.
#[derive(Debug)]
pub struct TopicEvents {
    events: Events<Event<PeerId>>,
    _guard: Arc<SubscriberGuard>,
}

impl TopicEvents {
    /// The next event; `None` once the actor stopped (shutdown).
    pub async fn recv(&mut self) -> Option<Event<PeerId>> {
        self.events.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event<PeerId>> {
        self.events.try_recv()
    }
}
