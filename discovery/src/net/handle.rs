//! The public side of the runtime: [`Builder`], the [`Discovery`] handle, its events and errors.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot, watch};
use weft_gossip::{Gossip, TopicId};
use weft_transport::{
    ActorLink, Endpoint, EventSender, Events, HandlerRegistration, PeerAddr, PeerId, RegisterError,
    Subscribers, SystemWallClock, TicketError, WallClock,
};

use super::{actor::Actor, event::Event, metrics::Metrics, snapshot::CatalogSnapshot, wire};
use crate::proto::{Config, EntryError, LocalInfo, PING_PROTOCOL, PROTOCOL, Stats, topic_bytes};

/// Why [`Builder::spawn`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// A discovery protocol is already registered on this endpoint.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// A bootstrap ticket did not parse.
    #[error("bad bootstrap ticket: {0}")]
    Ticket(#[from] TicketError),
    /// The initial tags or metadata break the entry limits.
    #[error("the local entry is refused: {0}")]
    Entry(#[from] EntryError),
    /// The discovery topic could not be joined.
    #[error("cannot join the discovery topic: {0}")]
    Gossip(#[from] weft_gossip::Error),
}

/// Why a call on a [`Discovery`] handle failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The actor has stopped (shut down, or every handle dropped).
    #[error("discovery has stopped")]
    Closed,
    /// The local update breaks the entry limits; the local entry is unchanged.
    #[error("local update refused: {0}")]
    LocalUpdateRefused(EntryError),
    /// The ping got no pong in time, or too many pings were pending.
    #[error("ping to {0} failed")]
    PingFailed(PeerId),
    /// The sync session failed (timeout, or the peer was busy: the node retries by itself).
    #[error("sync with {0} failed")]
    SyncFailed(PeerId),
    /// No result within the time allowed.
    #[error("no result within {0:?}")]
    Timeout(Duration),
    /// Too many callers are waiting for pings and syncs.
    #[error("too many calls in progress")]
    Busy,
}

/// A command from a handle to the actor.
#[derive(Debug)]
pub(super) enum Command {
    Catalog(oneshot::Sender<CatalogSnapshot>),
    Stats(oneshot::Sender<Stats>),
    UpdateLocal {
        tags: BTreeSet<String>,
        metadata: BTreeMap<String, String>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Dial(PeerAddr),
    SyncWith {
        addr: PeerAddr,
        reply: oneshot::Sender<Result<usize, Error>>,
    },
    Ping {
        peer: PeerId,
        reply: oneshot::Sender<Result<Duration, Error>>,
    },
    Shutdown,
}

/// The subscribers to [`Discovery::events`], shared by the handles (which add subscribers) and
/// the actor (which delivers); `None` once the actor has stopped, which ends every stream.
pub(super) type Shared = Arc<Mutex<Option<Subscribers<Event>>>>;

/// Locks the subscribers; a panic elsewhere while holding the lock leaves them usable.
pub(super) fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Option<Subscribers<Event>>> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Builds a [`Discovery`].
///
/// ```no_run
/// # async fn demo(endpoint: weft_transport::Endpoint, gossip: weft_gossip::Gossip,
/// #     ticket: String) -> Result<(), Box<dyn std::error::Error>> {
/// use weft_discovery::{Config, Discovery};
///
/// let discovery = Discovery::builder()
///     .config(Config::default())
///     .tags(["storage".to_string()])
///     .bootstrap_tickets([ticket])
///     .spawn(&endpoint, &gossip)
///     .await?;
/// let catalog = discovery.catalog().await?;
/// println!("{} peers known", catalog.peers.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    pub(super) config: Config,
    bootstrap: Vec<PeerAddr>,
    tickets: Vec<String>,
    pub(super) tags: BTreeSet<String>,
    pub(super) metadata: BTreeMap<String, String>,
    event_capacity: usize,
    command_capacity: usize,
    pub(super) shutdown_grace: Duration,
    pub(super) wall_clock: Arc<dyn WallClock>,
}

impl Builder {
    fn new() -> Self {
        Self {
            config: Config::default(),
            bootstrap: Vec::new(),
            tickets: Vec::new(),
            tags: BTreeSet::new(),
            metadata: BTreeMap::new(),
            event_capacity: 1024,
            command_capacity: 256,
            shutdown_grace: Duration::from_millis(200),
            wall_clock: Arc::new(SystemWallClock),
        }
    }

    /// The protocol's settings (default: [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Joins through these peers (added to the ones given before).
    pub fn bootstrap(mut self, peers: impl IntoIterator<Item = PeerAddr>) -> Self {
        self.bootstrap.extend(peers);
        self
    }

    /// Joins through the peers of these tickets (`weft1...`); checked by [`Builder::spawn`].
    pub fn bootstrap_tickets(
        mut self,
        tickets: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.tickets.extend(tickets.into_iter().map(Into::into));
        self
    }

    /// The local entry's initial tags.
    pub fn tags(mut self, tags: impl IntoIterator<Item = String>) -> Self {
        self.tags = tags.into_iter().collect();
        self
    }

    /// The local entry's initial metadata.
    pub fn metadata(mut self, metadata: impl IntoIterator<Item = (String, String)>) -> Self {
        self.metadata = metadata.into_iter().collect();
        self
    }

    /// Events queued per [`Discovery::events`] subscriber before it gets [`Event::Lagged`]
    /// (default 1024; at least 2, room for the notice and the event after it).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// How long [`Discovery::shutdown`] waits after handing the departure to gossip, so that
    /// it is written out before the caller closes the endpoint (default 200 ms).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The wall clock that stamps and checks signed entries (default: the system clock).
    /// Timers and measured durations never read it: they run on the monotonic clock, so a
    /// step of this clock only makes the node re-sign its entry. Tests inject one they step.
    pub fn wall_clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.wall_clock = clock;
        self
    }

    /// Registers the sync and ping protocols on `endpoint`, joins the discovery topic of the
    /// endpoint's network on `gossip` through the bootstrap peers, and starts the actor (needs a
    /// tokio runtime).
    pub async fn spawn(
        self,
        endpoint: &Endpoint,
        gossip: &Gossip,
    ) -> Result<Discovery, SpawnError> {
        let mut bootstrap = self.bootstrap.clone();
        for ticket in &self.tickets {
            bootstrap.push(PeerAddr::from_ticket(ticket)?);
        }
        bootstrap.retain(|addr| addr.id != endpoint.id());
        for addr in &bootstrap {
            endpoint.add_peer_addr(addr);
        }
        let (inbound, inbound_rx) = wire::inbound();
        let (commands_tx, commands_rx) = mpsc::channel(self.command_capacity);
        // Weak: the registered handlers must not keep the actor alive once every handle is gone.
        let (actor_link, actor_guard) = ActorLink::new(&commands_tx);
        let max_message = self.config.max_sync_message_bytes;
        let sync = endpoint.register(
            PROTOCOL,
            wire::Handler::new(PROTOCOL, inbound.clone(), max_message, actor_link.clone()),
        )?;
        let ping = match endpoint.register(
            PING_PROTOCOL,
            wire::Handler::new(PING_PROTOCOL, inbound, max_message, actor_link.clone()),
        ) {
            Ok(ping) => ping,
            Err(err) => {
                endpoint.unregister_exact(sync);
                return Err(err.into());
            }
        };
        let unregister = Unregister {
            endpoint: endpoint.clone(),
            registrations: [sync, ping],
        };
        // Syncs and pings are one exchange each, with a peer asked now and then: a connection
        // kept for each (with QUIC keep-alives) would cost every node one per catalog peer.
        let idle = self.config.sync_timeout.max(self.config.ping_timeout) * 2;
        endpoint.close_idle(PROTOCOL, idle);
        endpoint.close_idle(PING_PROTOCOL, idle);
        let topic = TopicId(topic_bytes(&endpoint.network()));
        let topic = gossip.subscribe(topic, bootstrap).await?;
        let events: Shared = Arc::new(Mutex::new(Some(Subscribers::new())));
        let (watch_tx, watch_rx) = watch::channel(0);
        let info = LocalInfo {
            direct: endpoint.addr().direct,
            relay: endpoint.addr().relay,
            tags: self.tags.clone(),
            metadata: self.metadata.clone(),
        };
        let actor = Actor::new(
            &self,
            info,
            endpoint.clone(),
            topic,
            commands_rx,
            inbound_rx,
            events.clone(),
            watch_tx,
        )?;
        let metrics = actor.metrics.clone();
        // Not aborted with the last handle: the actor sees its command channel close and
        // departs, as `shutdown` would.
        tokio::spawn(actor.run(actor_guard));
        Ok(Discovery {
            inner: Arc::new(Inner {
                id: endpoint.id(),
                commands: commands_tx,
                events,
                event_capacity: self.event_capacity,
                watch: watch_rx,
                ping_timeout: self.config.ping_timeout,
                sync_timeout: self.config.sync_timeout,
                actor: actor_link,
                unregister,
                metrics,
            }),
        })
    }
}

/// Unregisters the discovery protocols when the last handle goes (only if they are still
/// ours: a newer instance on the same endpoint keeps its own).
#[derive(Debug)]
struct Unregister {
    endpoint: Endpoint,
    registrations: [HandlerRegistration; 2],
}

impl Unregister {
    fn run(&self) {
        for registration in self.registrations {
            self.endpoint.unregister_exact(registration);
        }
    }
}

impl Drop for Unregister {
    fn drop(&mut self) {
        self.run();
    }
}

/// A running discovery instance. Cheap to clone. The actor departs and stops on
/// [`Discovery::shutdown`], on `Endpoint::shutdown`, or when the last clone is dropped (the
/// same departure, in the background).
#[derive(Debug, Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: PeerId,
    commands: mpsc::Sender<Command>,
    events: Shared,
    event_capacity: usize,
    watch: watch::Receiver<u64>,
    ping_timeout: Duration,
    sync_timeout: Duration,
    /// Shuts the actor down and sees it end (however it ended).
    actor: ActorLink<Command>,
    unregister: Unregister,
    metrics: Arc<Metrics>,
}

impl Discovery {
    /// Starts building a discovery instance (set its [`Config`] with [`Builder::config`]).
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The local peer id.
    pub fn id(&self) -> PeerId {
        self.inner.id
    }

    /// This instance's counters (catalog size, upserts by outcome, purges, departures, sync
    /// and ping figures), shared with the running actor; register them in an
    /// `iroh_metrics::Registry` to export.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(make(reply))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// A snapshot of the catalog.
    pub async fn catalog(&self) -> Result<CatalogSnapshot, Error> {
        self.call(Command::Catalog).await
    }

    /// The node's protocol counters.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.call(Command::Stats).await
    }

    /// A counter that moves whenever the catalog's content changes (a peer discovered, updated
    /// or departed, or the local entry changed). Wait on `changed()`, then take a
    /// [`Discovery::catalog`] snapshot.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.watch.clone()
    }

    /// A new subscriber to the catalog [`Event`]s, from now on. Its queue holds
    /// [`Builder::event_capacity`] events; a subscriber that falls behind gets
    /// [`Event::Lagged`] before the next event that fits, and never slows the actor. The stream
    /// ends (`recv` returns `None`) once discovery has stopped.
    pub fn events(&self) -> Events<Event> {
        match lock(&self.inner.events).as_mut() {
            Some(subscribers) => subscribers.subscribe(self.inner.event_capacity),
            // Stopped: a stream that has ended.
            None => EventSender::channel(1).1,
        }
    }

    /// Replaces the local tags and metadata; the new entry is signed and announced at once.
    pub async fn update_local(
        &self,
        tags: BTreeSet<String>,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        self.call(|reply| Command::UpdateLocal {
            tags,
            metadata,
            reply,
        })
        .await?
    }

    /// Joins the discovery topic through `addr` (learning its address first). The catalogs
    /// sync once the link is up.
    pub async fn dial(&self, addr: PeerAddr) -> Result<(), Error> {
        self.inner
            .commands
            .send(Command::Dial(addr))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Syncs catalogs with `addr` now, even if synced before; returns how many peers other
    /// than itself it taught us (new or newer entries).
    pub async fn sync_with(&self, addr: PeerAddr) -> Result<usize, Error> {
        // A session may wait in the queue behind others before its own deadline starts.
        let within = self.inner.sync_timeout * 3;
        let call = self.call(|reply| Command::SyncWith { addr, reply });
        tokio::time::timeout(within, call)
            .await
            .map_err(|_| Error::Timeout(within))??
    }

    /// Pings `peer` (dialled by id: it must be in the catalog or otherwise known to the
    /// endpoint) and returns the round-trip time.
    pub async fn ping(&self, peer: PeerId) -> Result<Duration, Error> {
        // The node answers within its ping timeout; the margin covers a peer that leaves the
        // catalog while the ping is pending (the node then forgets the ping silently).
        let within = self.inner.ping_timeout + Duration::from_secs(1);
        let call = self.call(|reply| Command::Ping { peer, reply });
        tokio::time::timeout(within, call)
            .await
            .map_err(|_| Error::Timeout(within))??
    }

    /// Leaves gracefully: broadcasts the signed departure, waits the departure grace so it is
    /// written out, and stops the actor; event streams end. Later calls on any clone fail with
    /// [`Error::Closed`]. Returns once the actor has ended; calling it again, from any clone,
    /// waits for the same end. The endpoint and gossip stay the caller's to shut down.
    pub async fn shutdown(&self) {
        self.inner.actor.shutdown(Command::Shutdown).await;
        self.inner.unregister.run();
    }
}
