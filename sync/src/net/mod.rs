//! The runtime: one actor per [`SyncManager`] that owns the proto [`Manager`] and drives it
//! over weft-transport (protocol `sync/1`) and weft-gossip (neighbour events).
//!
//! Wiring: every synced topic joins a gossip overlay on a topic id derived from the sync topic
//! ([`overlay_topic`]), used only to sample peers; its neighbour events start and end
//! sessions. Each session is one bidirectional QUIC stream with a task that moves its frames.
//! Bounds and policies:
//! - commands from handles: `command_capacity`, callers wait when full;
//! - streams opened by peers: 64 waiting for the actor, handed over by the protocol handler
//!   (its policy when full is stated in `streams.rs`);
//! - frames queued to one session: `max_queued_bytes` (and 4,096 frames), and to all sessions
//!   together: `max_total_queued_bytes`; when over either the session fails and is retried
//!   later, and the next session reconciles what was not sent, so nothing is lost, only
//!   delayed;
//! - events to a topic's subscriber: `event_capacity`, through
//!   [`weft_transport::EventSender`]; when full events are dropped and the next one delivered
//!   is `Event::Lagged(n)` (the items themselves are in the store);
//! - timers: in a [`TimerQueue`](weft_transport::TimerQueue) on the monotonic clock, at most
//!   `MAX_TIMERS` pending (one per neighbour and session); a timer that finds it full fires at
//!   once (early rather than never: a retry or a silence check that fires early is harmless).
//!
//! [`Manager`]: crate::proto::Manager

mod actor;
mod metrics;
mod streams;

pub use self::metrics::Metrics;

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};
use weft_gossip::{Gossip, TopicId};
use weft_transport::{
    ActorLink, Endpoint, EventSender, Events, HandlerRegistration, LayerEvent, PeerAddr, PeerId,
    RegisterError,
};

use self::{
    actor::{Actor, Limits, ToActor},
    streams::Handler,
};
use crate::{
    PROTOCOL,
    proto::{
        Config, Event, InsertError, Item, ItemId, ItemKey, Manager, ProtocolFactory, SessionInfo,
        SetReconciliationFactory, SubscribeError, TopicItems,
    },
    store::{Store, StoreError},
};

impl<PI: Send + 'static> LayerEvent for Event<PI> {
    fn lagged(missed: u64) -> Self {
        Event::Lagged(missed)
    }
}

/// The gossip topic whose overlay samples the peers of a sync topic.
pub fn overlay_topic(topic: TopicId) -> TopicId {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"weft/sync/overlay/1");
    hasher.update(topic.as_bytes());
    TopicId(*hasher.finalize().as_bytes())
}

/// Why the actor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// `sync/1` is already registered on this endpoint.
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// Why a call on a sync handle failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topic could not be subscribed.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// The insert was refused.
    #[error(transparent)]
    Insert(#[from] InsertError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The topic is not synced.
    #[error("topic {0} is not synced")]
    UnknownTopic(TopicId),
    /// The gossip overlay could not be joined.
    #[error("gossip: {0}")]
    Gossip(#[from] weft_gossip::Error),
    /// The actor stopped (shut down, or every handle dropped).
    #[error("sync actor stopped")]
    Closed,
}

/// Builds a [`SyncManager`].
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
    event_capacity: usize,
    command_capacity: usize,
    max_queued_bytes: usize,
    max_total_queued_bytes: usize,
    shutdown_grace: Duration,
}

impl Builder {
    /// The protocol config.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Events buffered per topic before `Lagged` (default 4,096).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Bytes queued to one session before it fails as too slow (default 16 MiB; at least one
    /// frame).
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Bytes queued to all sessions together before the session that would add more fails
    /// (default 128 MiB): what slow or silent peers, however many identities they use, can make
    /// this node hold.
    pub fn max_total_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_total_queued_bytes = bytes;
        self
    }

    /// How long [`SyncManager::shutdown`] waits for sessions to close cleanly (default 2 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Registers `sync/1` on `endpoint` and starts the actor (needs a tokio runtime). Topics
    /// join overlays on `gossip`, which must run on the same endpoint.
    pub async fn spawn(
        self,
        endpoint: &Endpoint,
        gossip: &Gossip,
    ) -> Result<SyncManager, SpawnError> {
        let (commands_tx, commands_rx) = mpsc::channel(self.command_capacity);
        // Weak: the registered handler must not keep the actor alive once every handle is gone.
        let (actor_link, actor_guard) = ActorLink::new(&commands_tx);
        let (handler, inbound_rx) = Handler::new(actor_link.clone());
        let registration = endpoint.register(PROTOCOL, handler)?;
        let seed = endpoint.secret_seed("weft/sync/manager");
        let manager = Manager::new(endpoint.id(), self.config.clone(), seed);
        // A session must be able to queue at least one whole frame.
        let frame = self.config.max_frame_size;
        let limits = Limits {
            max_queued_bytes: self.max_queued_bytes.max(frame),
            max_total_queued_bytes: self.max_total_queued_bytes.max(frame),
            shutdown_grace: self.shutdown_grace,
        };
        let actor = Actor::new(manager, endpoint.clone(), limits, commands_rx, inbound_rx);
        let metrics = actor.metrics.clone();
        tokio::spawn(actor.run(actor_guard));
        Ok(SyncManager {
            inner: Arc::new(Inner {
                commands: commands_tx,
                config: self.config,
                event_capacity: self.event_capacity,
                gossip: gossip.clone(),
                endpoint: endpoint.clone(),
                registration,
                actor: actor_link,
                metrics,
            }),
        })
    }
}

/// A running sync manager. Cheap to clone; the actor ends its sessions and stops when the last
/// clone is dropped or [`SyncManager::shutdown`] is called.
#[derive(Debug, Clone)]
pub struct SyncManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<ToActor>,
    config: Config,
    event_capacity: usize,
    gossip: Gossip,
    endpoint: Endpoint,
    registration: HandlerRegistration,
    /// Shuts the actor down and sees it end.
    actor: ActorLink<ToActor>,
    /// The actor's counters.
    metrics: Arc<Metrics>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.endpoint.unregister_exact(self.registration);
    }
}

impl SyncManager {
    /// Starts building a sync manager.
    pub fn builder() -> Builder {
        Builder {
            config: Config::default(),
            event_capacity: 4096,
            command_capacity: 256,
            max_queued_bytes: 16 * 1024 * 1024,
            max_total_queued_bytes: 128 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(2),
        }
    }

    /// Our peer id.
    pub fn id(&self) -> PeerId {
        self.inner.endpoint.id()
    }

    /// This manager's counters (sessions, reconciliations, items and bytes each way), shared
    /// with the running actor; register them in an `iroh_metrics::Registry` to export.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Starts syncing `topic` with the items in `store`, by set reconciliation, joining its
    /// overlay through `bootstrap` peers (none: wait to be joined).
    pub async fn subscribe(
        &self,
        topic: TopicId,
        store: impl Store,
        bootstrap: Vec<PeerAddr>,
    ) -> Result<SyncTopic, Error> {
        let protocol = Arc::new(SetReconciliationFactory::new((&self.inner.config).into()));
        self.subscribe_with(topic, Box::new(store), protocol, bootstrap)
            .await
    }

    /// Starts syncing `topic` with your own session protocol.
    pub async fn subscribe_with(
        &self,
        topic: TopicId,
        store: Box<dyn Store>,
        protocol: Arc<dyn ProtocolFactory>,
        bootstrap: Vec<PeerAddr>,
    ) -> Result<SyncTopic, Error> {
        // Joining the overlay of a topic synced already would disturb that topic's overlay.
        let topic_is_new = self
            .ask(|reply| ToActor::Len { topic, reply })
            .await?
            .is_none();
        if !topic_is_new {
            return Err(SubscribeError::AlreadySubscribed(topic).into());
        }
        // Reading every key of a large persistent store takes a while: not on the runtime.
        let items = tokio::task::spawn_blocking(move || TopicItems::open(store))
            .await
            .map_err(|_| Error::Closed)??;
        let overlay = self
            .inner
            .gossip
            .subscribe(overlay_topic(topic), bootstrap)
            .await?;
        let (events_tx, events) = EventSender::channel(self.inner.event_capacity);
        let (reply, rx) = oneshot::channel();
        self.send(ToActor::Subscribe {
            topic,
            items,
            protocol,
            overlay,
            events: events_tx,
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Closed)??;
        Ok(SyncTopic {
            topic,
            manager: self.clone(),
            events,
        })
    }

    /// Ends every session cleanly (streams finished, within the grace period), leaves every
    /// overlay and stops the actor. Later calls fail with [`Error::Closed`]. Returns once the
    /// actor has ended; calling it again, from any clone, waits for the same end.
    pub async fn shutdown(&self) {
        self.inner.actor.shutdown(ToActor::Shutdown).await;
        self.inner
            .endpoint
            .unregister_exact(self.inner.registration);
    }

    async fn send(&self, command: ToActor) -> Result<(), Error> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| Error::Closed)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> ToActor,
    ) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(command(reply)).await?;
        rx.await.map_err(|_| Error::Closed)
    }
}

/// A synced topic: insert items, read them, and receive its events. Dropping it stops
/// syncing the topic (its sessions end, its overlay is left).
#[derive(Debug)]
pub struct SyncTopic {
    topic: TopicId,
    manager: SyncManager,
    events: Events<Event<PeerId>>,
}

impl SyncTopic {
    /// The topic id.
    pub fn id(&self) -> TopicId {
        self.topic
    }

    /// Inserts an item made of a timestamp and a payload; returns its id. It reaches every
    /// live session at once.
    pub async fn insert(&self, timestamp: u64, payload: &[u8]) -> Result<ItemId, Error> {
        let item = Item::new(timestamp, payload);
        let id = item.id();
        self.insert_item(item).await?;
        Ok(id)
    }

    /// Inserts an item; returns whether it was new.
    pub async fn insert_item(&self, item: Item) -> Result<bool, Error> {
        let topic = self.topic;
        self.manager
            .ask(|reply| ToActor::Insert { topic, item, reply })
            .await?
    }

    /// The item with this id, if the topic holds it.
    pub async fn get(&self, id: ItemId) -> Result<Option<Item>, Error> {
        let topic = self.topic;
        self.manager
            .ask(|reply| ToActor::Get { topic, id, reply })
            .await?
    }

    /// How many items the topic holds.
    pub async fn item_count(&self) -> Result<usize, Error> {
        let topic = self.topic;
        self.manager
            .ask(|reply| ToActor::Len { topic, reply })
            .await?
            .ok_or(Error::UnknownTopic(topic))
    }

    /// Up to `limit` keys of the topic's items with a timestamp of at least `since`, in
    /// (timestamp, id) order: how an application that lagged finds what it missed (then
    /// [`SyncTopic::get`] each).
    pub async fn keys_since(&self, since: u64, limit: usize) -> Result<Vec<ItemKey>, Error> {
        let topic = self.topic;
        self.manager
            .ask(|reply| ToActor::Keys {
                topic,
                since,
                limit,
                reply,
            })
            .await?
            .ok_or(Error::UnknownTopic(topic))
    }

    /// The topic's sessions.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo<PeerId>>, Error> {
        let topic = self.topic;
        self.manager
            .ask(|reply| ToActor::Sessions { topic, reply })
            .await
    }

    /// Opens a session with `peer` now if none runs (normally sessions follow the overlay's
    /// neighbours; this syncs with a chosen peer, e.g. one that is not a neighbour).
    pub async fn sync_with(&self, peer: PeerAddr) -> Result<(), Error> {
        self.manager.inner.endpoint.add_peer_addr(&peer);
        let topic = self.topic;
        self.manager
            .send(ToActor::Connect {
                topic,
                peer: peer.id,
            })
            .await
    }

    /// Adds peers to the topic's overlay (joins through them): how a node that learns peers
    /// later (from discovery, say) brings them into the topic.
    pub async fn join_peers(&self, peers: Vec<PeerAddr>) -> Result<(), Error> {
        let topic = self.topic;
        self.manager.send(ToActor::JoinPeers { topic, peers }).await
    }

    /// The next event; `None` once the actor stopped. A [`weft_transport::Events`] stream:
    /// bounded by the builder's `event_capacity`, `Event::Lagged(n)` after a gap.
    pub async fn recv(&mut self) -> Option<Event<PeerId>> {
        self.events.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event<PeerId>> {
        self.events.try_recv()
    }
}

impl Drop for SyncTopic {
    fn drop(&mut self) {
        // Best effort: a full command queue means a busy actor; the topic then stays synced
        // until the manager shuts down.
        let _ = self
            .manager
            .inner
            .commands
            .try_send(ToActor::Unsubscribe { topic: self.topic });
    }
}
