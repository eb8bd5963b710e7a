//! [`Node`]: the running layers on one endpoint, their data directory, and their shutdown.

use std::{
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{sync::OnceCell, task::JoinHandle, time::Instant};
use tracing::{debug, warn};
use weft_discovery::Discovery;
use weft_gossip::{Gossip, Topic, TopicId};
use weft_registry::Registry;
use weft_sync::{
    SyncManager, SyncTopic,
    store::{MemoryStore, RedbDatabase, StoreError},
};
use weft_transport::{Endpoint, PeerAddr, PeerId, Ticket};

use crate::{
    Builder, Config,
    data_dir::DataDir,
    local_network::{Handoff, LocalNetwork},
    rendezvous::{Rendezvous, TopicKind},
    state::WarmState,
};

/// Catalog peers handed to a topic as its bootstrap, at most: a HyParView join needs a few
/// live contacts, not the whole network.
pub const MAX_TOPIC_BOOTSTRAP: usize = 16;

/// How long the endpoint may take to close after the grace period ran out on the layers.
const CLOSE_MARGIN: Duration = Duration::from_secs(1);

/// Why a call on a [`Node`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The layer the call needs was left out by the builder (`without_sync`, ...).
    #[error("the {0} layer is not running on this node")]
    LayerDisabled(&'static str),
    /// The node has shut down.
    #[error("the node has shut down")]
    Closed,
    /// Gossip refused the call.
    #[error(transparent)]
    Gossip(#[from] weft_gossip::Error),
    /// Sync refused the call.
    #[error(transparent)]
    Sync(#[from] weft_sync::Error),
    /// The sync store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The layers a node runs. Gossip always (discovery and sync ride on it).
#[derive(Debug)]
pub(crate) struct Layers {
    pub(crate) gossip: Gossip,
    pub(crate) discovery: Option<Discovery>,
    pub(crate) registry: Option<Registry>,
    pub(crate) sync: Option<SyncManager>,
    /// The provider side of service calls (`call/1`): always on, serving nothing until
    /// [`Node::serve`].
    pub(crate) calls: crate::service::Server,
    /// The application's protocols ([`Builder::protocol`]), in registration order.
    pub(crate) user: Vec<crate::protocols::Registered>,
}

/// A running weft node: every layer on one endpoint, wired to each other. Cheap to clone.
///
/// The layers the builder left out answer `None` ([`Node::discovery`], [`Node::registry`],
/// [`Node::sync`]): an `Option` rather than an error, so code that needs a layer says so at
/// the call, and code that can do without checks once.
///
/// Dropping the last clone without [`Node::shutdown`] lets every layer end in the background
/// (each layer's drop does its own shutdown) but writes no warm-restart state, and unlocks the
/// data directory while the sync store may still be closing; call `shutdown` to leave cleanly.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    config: Config,
    endpoint: Endpoint,
    layers: Layers,
    /// The configured and remembered peers, which every topic also bootstraps from.
    bootstrap: Vec<PeerAddr>,
    data_path: Option<std::path::PathBuf>,
    /// Held until shutdown has written the state: the lock stays taken while anything may
    /// still write to the directory.
    data_dir: Mutex<Option<DataDir>>,
    /// The sync store; dropped at shutdown so the file closes with the node.
    store: Mutex<Option<RedbDatabase>>,
    /// The task that feeds discovery's peers to the registry.
    wiring: Mutex<Option<JoinHandle<()>>>,
    /// Topic rendezvous through the registry, when it runs and `[rendezvous]` is enabled.
    rendezvous: Option<Rendezvous>,
    /// Local-network discovery, when `[bootstrap] local_network` is on (set once, at spawn).
    local: Mutex<Option<LocalNetwork>>,
    /// The config's `[[service]]`s, served until the node shuts down.
    services: Mutex<Vec<crate::Service>>,
    /// Set when the shutdown begins; `shutdown` completes once it has ended.
    shutting_down: AtomicBool,
    shutdown: OnceCell<()>,
}

impl Inner {
    pub(crate) fn new(
        config: Config,
        endpoint: Endpoint,
        layers: Layers,
        bootstrap: Vec<PeerAddr>,
        data_dir: Option<DataDir>,
        store: Option<RedbDatabase>,
        wiring: Option<JoinHandle<()>>,
    ) -> Self {
        let rendezvous = match &layers.registry {
            Some(registry) if config.rendezvous.enabled => Some(Rendezvous::new(
                config.rendezvous.clone(),
                layers.gossip.clone(),
                registry.clone(),
            )),
            _ => None,
        };
        Self {
            rendezvous,
            local: Mutex::new(None),
            config,
            endpoint,
            layers,
            bootstrap,
            data_path: data_dir.as_ref().map(|dir| dir.path().to_path_buf()),
            data_dir: Mutex::new(data_dir),
            store: Mutex::new(store),
            wiring: Mutex::new(wiring),
            services: Mutex::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
            shutdown: OnceCell::new(),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The wiring task holds layer handles; it must not keep them alive past the node.
        if let Some(task) = lock(&self.wiring).take() {
            task.abort();
        }
        if let Some(rendezvous) = &self.rendezvous {
            rendezvous.stop();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are plain handles: a panic elsewhere leaves them usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Node {
    /// Starts building a node.
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn new(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// This node's identity.
    pub fn id(&self) -> PeerId {
        self.inner.endpoint.id()
    }

    /// The effective config the node started with (defaults, file, environment, builder).
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The endpoint every layer runs on; register your own protocols on it.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The gossip layer.
    pub fn gossip(&self) -> &Gossip {
        &self.inner.layers.gossip
    }

    /// The discovery layer, unless the builder left it out.
    pub fn discovery(&self) -> Option<&Discovery> {
        self.inner.layers.discovery.as_ref()
    }

    /// The registry, unless the builder left it out.
    pub fn registry(&self) -> Option<&Registry> {
        self.inner.layers.registry.as_ref()
    }

    /// The sync manager, unless the builder left it out.
    pub fn sync(&self) -> Option<&SyncManager> {
        self.inner.layers.sync.as_ref()
    }

    /// This node's address: id and bound direct addresses.
    pub fn addr(&self) -> PeerAddr {
        self.inner.endpoint.addr()
    }

    /// This node's address as a ticket (`weft1...`) that other nodes bootstrap from.
    pub fn ticket(&self) -> Ticket {
        Ticket::from(self.addr())
    }

    /// The provider side of service calls (see [`Node::serve`]).
    pub(crate) fn calls(&self) -> &crate::service::Server {
        &self.inner.layers.calls
    }

    /// Keeps the config's services served for as long as the node runs.
    pub(crate) fn keep_services(&self, services: Vec<crate::Service>) {
        lock(&self.inner.services).extend(services);
    }

    /// The data directory, `None` for an ephemeral node.
    pub fn data_dir(&self) -> Option<&Path> {
        self.inner.data_path.as_deref()
    }

    /// Peers to join a topic through: the configured and remembered bootstrap peers, the
    /// peers found on the local network (`[bootstrap] local_network`), then discovery's
    /// catalog, [`MAX_TOPIC_BOOTSTRAP`] at most, without this node.
    pub async fn topic_bootstrap(&self) -> Vec<PeerAddr> {
        let mut peers: Vec<PeerAddr> = self.inner.bootstrap.clone();
        let local = lock(&self.inner.local).as_ref().map(LocalNetwork::peers);
        peers.extend(local.into_iter().flatten());
        if let Some(discovery) = self.discovery()
            && let Ok(catalog) = discovery.catalog().await
        {
            peers.extend(catalog.peers.values().map(|record| record.entry().addr()));
        }
        let mut seen = std::collections::BTreeSet::from([self.id()]);
        peers.retain(|addr| seen.insert(addr.id));
        peers.truncate(MAX_TOPIC_BOOTSTRAP);
        peers
    }

    /// Joins a gossip topic through [`Node::topic_bootstrap`]'s peers, and through the topic's
    /// other subscribers that the registry knows (see [`crate::rendezvous_name`]; `[rendezvous]`
    /// in the config), looked up in the background.
    ///
    /// Peers that have not joined the topic ignore the join; the topic retries while it has
    /// no neighbour, and a peer joining later through this node links up with it, so
    /// subscribing on every node in any order converges.
    pub async fn subscribe_gossip(&self, topic: TopicId) -> Result<Topic, Error> {
        let bootstrap = self.topic_bootstrap().await;
        let subscribed = self.gossip().subscribe(topic, bootstrap).await?;
        if let Some(rendezvous) = &self.inner.rendezvous {
            rendezvous.joined(TopicKind::Gossip, topic, topic).await;
        }
        Ok(subscribed)
    }

    /// The overlay of a gossip topic this node has joined, as far as peers answer: its
    /// neighbours, theirs, and so on, breadth first within `[topology]`'s limits (the status
    /// page draws it). Sync topics ride on gossip overlays ([`weft_sync::overlay_topic`]).
    pub async fn topology(&self, topic: TopicId) -> Result<crate::Topology, crate::TopologyError> {
        crate::topology::query(
            self.endpoint(),
            self.gossip(),
            topic,
            &self.config().topology,
        )
        .await
    }

    /// Starts syncing a topic: its items live in the data directory's sync store (in memory
    /// for an ephemeral node), and its overlay joins through [`Node::topic_bootstrap`]'s peers
    /// and the topic's other subscribers in the registry, as [`Node::subscribe_gossip`]'s does.
    pub async fn subscribe_sync(&self, topic: TopicId) -> Result<SyncTopic, Error> {
        let sync = self.sync().ok_or(Error::LayerDisabled("sync"))?;
        let bootstrap = self.topic_bootstrap().await;
        let database = lock(&self.inner.store).clone();
        let topic_bytes = *topic.as_bytes();
        let synced = match (database, &self.inner.data_path) {
            (Some(database), _) => {
                // Creating the topic's tables is a write transaction: off the runtime.
                let store = tokio::task::spawn_blocking(move || database.store(topic_bytes))
                    .await
                    .map_err(|_| Error::Closed)??;
                sync.subscribe(topic, store, bootstrap).await?
            }
            // A node with a data directory whose store is gone has shut down.
            (None, Some(_)) => return Err(Error::Closed),
            (None, None) => sync.subscribe(topic, MemoryStore::new(), bootstrap).await?,
        };
        if let Some(rendezvous) = &self.inner.rendezvous {
            let overlay = weft_sync::overlay_topic(topic);
            rendezvous.joined(TopicKind::Sync, topic, overlay).await;
        }
        Ok(synced)
    }

    /// Starts local-network discovery if the config asks for it (at spawn, once).
    pub(crate) fn start_local_network(&self) -> std::io::Result<()> {
        let config = &self.inner.config;
        if !config.bootstrap.local_network {
            return Ok(());
        }
        let handoff = Handoff {
            endpoint: self.inner.endpoint.clone(),
            discovery: self.discovery().cloned(),
            registry: self.registry().cloned(),
        };
        let local = LocalNetwork::spawn(config.node.network_id(), config.node.bind.ip(), handoff)?;
        *lock(&self.inner.local) = Some(local);
        Ok(())
    }

    /// Whether [`Node::shutdown`] has begun.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Relaxed) || self.inner.endpoint.is_shut_down()
    }

    /// Shuts down gracefully within `[node] shutdown_grace`, in this order: calls are refused,
    /// the protocols given to [`Builder::protocol`] shut down, sync sessions end,
    /// registrations are withdrawn, the departure is announced, gossip topics are left, then
    /// the endpoint closes its connections. Then the warm-restart state is written and the
    /// data directory unlocked. Idempotent: a second call, from any clone, waits for the
    /// same end.
    pub async fn shutdown(&self) {
        self.inner
            .shutdown
            .get_or_init(|| self.run_shutdown())
            .await;
    }

    async fn run_shutdown(&self) {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + inner.config.node.shutdown_grace;
        // Taken while discovery still runs: the peers a restart rejoins through.
        let peers = tokio::time::timeout_at(deadline, self.recent_peers())
            .await
            .unwrap_or_else(|_| inner.bootstrap.clone());
        let wiring = lock(&inner.wiring).take();
        if let Some(task) = wiring {
            task.abort();
            let _ = task.await;
        }
        // No lookups while the layers end; the registrations the rendezvous held are
        // withdrawn with the registry's below.
        if let Some(rendezvous) = &inner.rendezvous {
            rendezvous.stop();
        }
        // Nor new peers from the link.
        lock(&inner.local).take();
        let layers = &inner.layers;
        // Callers fail over to other providers from now on.
        layers.calls.stop();
        let in_order = async {
            // The application's protocols first: they may ride on any layer below.
            crate::protocols::shutdown(&inner.endpoint, &layers.user).await;
            if let Some(sync) = &layers.sync {
                sync.shutdown().await;
                debug!("sync sessions ended");
            }
            if let Some(registry) = &layers.registry {
                registry.shutdown().await;
                debug!("registrations withdrawn");
            }
            if let Some(discovery) = &layers.discovery {
                discovery.shutdown().await;
                debug!("departure announced");
            }
            layers.gossip.shutdown().await;
            debug!("gossip topics left");
            // The layers' handlers are down; this stops accepting and closes connections.
            inner.endpoint.shutdown().await;
        };
        if tokio::time::timeout_at(deadline, in_order).await.is_err() {
            warn!(
                grace = ?inner.config.node.shutdown_grace,
                "the shutdown did not finish within the grace period; closing the endpoint now"
            );
            let _ = tokio::time::timeout(CLOSE_MARGIN, inner.endpoint.iroh().close()).await;
        }
        if let Some(dir) = lock(&inner.data_dir).as_ref()
            && let Err(err) = WarmState::new(peers).write(&dir.state_path())
        {
            warn!(path = %dir.state_path().display(), "cannot write the state file: {err}");
        }
        // The registry's shutdown withdrew their records; now the handles can go.
        lock(&inner.services).clear();
        // Close the store, then unlock: a node started on this directory next finds both free.
        lock(&inner.store).take();
        lock(&inner.data_dir).take();
    }

    /// The catalog's peers, most recently refreshed first, then the bootstrap peers.
    async fn recent_peers(&self) -> Vec<PeerAddr> {
        let mut peers = Vec::new();
        if let Some(discovery) = self.discovery()
            && let Ok(catalog) = discovery.catalog().await
        {
            let mut records: Vec<_> = catalog.peers.values().collect();
            records.sort_by_key(|record| std::cmp::Reverse(record.refreshed()));
            peers.extend(records.iter().map(|record| record.entry().addr()));
        }
        peers.extend(self.inner.bootstrap.iter().cloned());
        let mut seen = std::collections::BTreeSet::from([self.id()]);
        peers.retain(|addr| seen.insert(addr.id));
        peers
    }
}
