//! [`Builder`]: how a [`Node`] is configured and started, and [`SpawnError`], why it could not.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use weft_discovery::Discovery;
use weft_gossip::Gossip;
use weft_registry::Registry;
use weft_sync::{
    SyncManager,
    store::{RedbDatabase, StoreError},
};
use weft_transport::{BindError, Endpoint, PeerAddr, Protocol, SecretKey, iroh::ProtocolHandler};

use crate::{
    Config, ConfigError, Node,
    data_dir::{DataDir, DataDirError},
    node::{Inner, Layers},
    protocols::UserProtocol,
    service::ServeError,
    state::WarmState,
    wiring,
};

/// Why a node could not start. Each case is one kind of failure; the ones about files name
/// the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The config cannot run (see [`Config::validate`]).
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    /// The data directory could not be used: locked by another node, or a bad key file.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The sync store in the data directory could not be opened (damaged, or not a store).
    #[error("cannot open the sync store: {0}")]
    Store(#[source] StoreError),
    /// The endpoint could not bind its socket.
    #[error("cannot bind the endpoint: {0}")]
    Bind(#[from] BindError),
    /// The gossip layer did not start.
    #[error("gossip did not start: {0}")]
    Gossip(#[from] weft_gossip::SpawnError),
    /// The discovery layer did not start.
    #[error("discovery did not start: {0}")]
    Discovery(#[from] weft_discovery::SpawnError),
    /// The registry layer did not start.
    #[error("registry did not start: {0}")]
    Registry(#[from] weft_registry::SpawnError),
    /// The sync layer did not start.
    #[error("sync did not start: {0}")]
    Sync(#[from] weft_sync::SpawnError),
    /// The service call protocol (`call/1`) could not be registered on the endpoint.
    #[error("the call protocol did not start: {0}")]
    Calls(#[from] weft_transport::RegisterError),
    /// Local-network discovery (`[bootstrap] local_network`) could not start: a bind address
    /// off the LAN, or the multicast socket refused.
    #[error("local-network discovery did not start: {0}")]
    LocalNetwork(#[source] std::io::Error),
    /// A protocol given to [`Builder::protocol`] could not be registered: its ALPN is taken
    /// (by a layer, `call/1`, or another protocol given to the builder).
    #[error("cannot serve your protocol: {0}")]
    Protocol(#[source] weft_transport::RegisterError),
    /// A `[[service]]` of the config could not be served.
    #[error("cannot serve [[service]] {name:?}: {source}")]
    Service {
        /// The service's name.
        name: String,
        /// Why.
        source: ServeError,
    },
}

/// Where a node keeps its key, sync store and state.
#[derive(Debug, Clone, Default)]
enum Storage {
    /// Nothing on disk: a fresh key unless one is given, sync topics in memory.
    #[default]
    Ephemeral,
    /// A data directory (see [`crate::data_dir`]'s layout).
    Dir(PathBuf),
}

/// Builds a [`Node`]: `Node::builder().data_dir(path).config(config).spawn().await`.
///
/// The builder's own setters ([`Builder::network`], [`Builder::bind_addr`],
/// [`Builder::bootstrap`]) take precedence over the [`Config`] whatever the order of the calls:
/// they are what command-line flags set. Without [`Builder::data_dir`] a node is ephemeral.
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
    storage: Storage,
    secret_key: Option<SecretKey>,
    network: Option<String>,
    bind_addr: Option<SocketAddr>,
    bootstrap: Vec<PeerAddr>,
    discovery: bool,
    registry: bool,
    sync: bool,
    protocols: Vec<UserProtocol>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            config: Config::default(),
            storage: Storage::Ephemeral,
            secret_key: None,
            network: None,
            bind_addr: None,
            bootstrap: Vec::new(),
            discovery: true,
            registry: true,
            sync: true,
            protocols: Vec::new(),
        }
    }
}

impl Builder {
    /// Keeps the key, the sync store and the warm-restart state in `path` (created if
    /// missing), locked against a second node for as long as this one runs.
    pub fn data_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.storage = Storage::Dir(path.into());
        self
    }

    /// Keeps nothing on disk (the default): a fresh identity unless [`Builder::secret_key`]
    /// gives one, sync topics in memory, no state for a restart.
    pub fn ephemeral(mut self) -> Self {
        self.storage = Storage::Ephemeral;
        self
    }

    /// The whole config (default [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The identity. With a data directory it is saved there on the first start; a directory
    /// that holds a different key refuses it ([`DataDirError::KeyConflict`]).
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.secret_key = Some(key);
        self
    }

    /// The network's name (overrides `[node] network`).
    pub fn network(mut self, name: impl Into<String>) -> Self {
        self.network = Some(name.into());
        self
    }

    /// The UDP socket address (overrides `[node] bind`), e.g. `127.0.0.1:0`.
    pub fn bind_addr(mut self, addr: SocketAddr) -> Self {
        self.bind_addr = Some(addr);
        self
    }

    /// Adds bootstrap peers (to the config's `[bootstrap] peers`). A [`weft_transport::Ticket`]
    /// converts with `PeerAddr::from(ticket)`.
    pub fn bootstrap(mut self, peers: impl IntoIterator<Item = PeerAddr>) -> Self {
        self.bootstrap.extend(peers);
        self
    }

    /// Runs no discovery (as `[layers] discovery = false` does): the registry then knows only
    /// the bootstrap peers, and topics bootstrap from them alone.
    pub fn without_discovery(mut self) -> Self {
        self.discovery = false;
        self
    }

    /// Runs no registry (as `[layers] registry = false` does): nothing can be found by name,
    /// so no service calls and no `[[service]]` (a config with one is then refused).
    pub fn without_registry(mut self) -> Self {
        self.registry = false;
        self
    }

    /// Runs no sync manager (as `[layers] sync = false` does), and opens no sync store.
    pub fn without_sync(mut self) -> Self {
        self.sync = false;
        self
    }

    /// Serves `protocol` with `handler` on the node's endpoint, next to the layers: connections
    /// whose ALPN is `weft/<network>/<name>/<version>` reach `handler`, after the same
    /// handshake bounds and inbound admission as the layers' own connections. Repeatable, one
    /// handler per protocol; a protocol whose ALPN is taken fails the spawn with
    /// [`SpawnError::Protocol`].
    ///
    /// The handler's `shutdown` runs first in [`Node::shutdown`] (newest protocol first), while
    /// every layer still runs. Peers dial it with [`Endpoint::connect`] on their node's
    /// [`Node::endpoint`].
    ///
    /// ```no_run
    /// use weft_node::Node;
    /// use weft_transport::{
    ///     Protocol,
    ///     iroh::{AcceptError, Connection, ProtocolHandler},
    /// };
    ///
    /// /// Echoes every bidirectional stream back.
    /// #[derive(Debug, Clone)]
    /// struct Echo;
    ///
    /// impl Echo {
    ///     const PROTOCOL: Protocol = Protocol::new("echo", 1);
    /// }
    ///
    /// impl ProtocolHandler for Echo {
    ///     async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
    ///         while let Ok((mut send, mut recv)) = connection.accept_bi().await {
    ///             let Ok(bytes) = recv.read_to_end(64 * 1024).await else { break };
    ///             let _ = send.write_all(&bytes).await;
    ///             let _ = send.finish();
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # async fn example(server: Node) -> Result<(), Box<dyn std::error::Error>> {
    /// let node = Node::builder().protocol(Echo::PROTOCOL, Echo).spawn().await?;
    ///
    /// // Another node dials it on its own endpoint.
    /// let connection = server.endpoint().connect(&node.addr(), Echo::PROTOCOL).await?;
    /// let (mut send, mut recv) = connection.open_bi().await?;
    /// send.write_all(b"hello").await?;
    /// send.finish()?;
    /// assert_eq!(recv.read_to_end(1024).await?, b"hello");
    /// # Ok(()) }
    /// ```
    pub fn protocol(mut self, protocol: Protocol, handler: impl ProtocolHandler) -> Self {
        self.protocols.push(UserProtocol::new(protocol, handler));
        self
    }

    /// Opens the data directory, binds the endpoint, starts the layers in order (gossip,
    /// discovery, registry, sync), wires them to each other, registers the protocols given to
    /// [`Builder::protocol`], and serves the config's `[[service]]` programs. Needs a tokio
    /// runtime.
    ///
    /// On failure nothing keeps running: the layers started so far are shut down and the
    /// directory's lock is released.
    pub async fn spawn(self) -> Result<Node, SpawnError> {
        let Builder {
            mut config,
            storage,
            secret_key,
            network,
            bind_addr,
            bootstrap,
            discovery,
            registry,
            sync,
            protocols,
        } = self;
        // The builder only turns layers off; the effective config says what runs.
        config.layers.discovery &= discovery;
        config.layers.registry &= registry;
        config.layers.sync &= sync;
        let enabled = Enabled {
            discovery: config.layers.discovery,
            registry: config.layers.registry,
            sync: config.layers.sync,
        };
        if let Some(network) = network {
            config.node.network = network;
        }
        if let Some(bind) = bind_addr {
            config.node.bind = bind;
        }
        config.bootstrap.peers.extend(bootstrap);
        config.validate()?;

        let (data_dir, key, store, warm) = match &storage {
            Storage::Ephemeral => (
                None,
                secret_key.unwrap_or_else(SecretKey::generate),
                None,
                WarmState::default(),
            ),
            Storage::Dir(path) => {
                let dir = DataDir::open(path)?;
                let key = dir.key(secret_key)?;
                let store = if enabled.sync {
                    Some(open_store(&dir.store_path()).await?)
                } else {
                    None
                };
                let warm = WarmState::read(&dir.state_path());
                (Some(dir), key, store, warm)
            }
        };
        let me = key.peer_id();
        let bootstrap = merge_peers(me, &config.bootstrap.peers, &warm.peers);

        let endpoint = Endpoint::builder()
            .secret_key(key)
            .network(config.node.network_id())
            .bind_addr(config.node.bind)
            .bind()
            .await?;
        for addr in &bootstrap {
            endpoint.add_peer_addr(addr);
        }
        let spawned = spawn_layers(&endpoint, &config, &bootstrap, enabled)
            .await
            .and_then(|layers| Ok((layers, register_protocols(&endpoint, &protocols)?)));
        let (mut layers, user) = match spawned {
            Ok(spawned) => spawned,
            Err(err) => {
                // Whatever started must not outlive the failed spawn.
                endpoint.shutdown().await;
                return Err(err);
            }
        };
        let wiring = match (&layers.discovery, &layers.registry) {
            (Some(discovery), Some(registry)) => {
                Some(wiring::spawn(discovery.clone(), registry.clone()))
            }
            _ => None,
        };
        layers.user = user;
        let node = Node::new(Inner::new(
            config, endpoint, layers, bootstrap, data_dir, store, wiring,
        ));
        if let Err(err) = node.start_local_network() {
            node.shutdown().await;
            return Err(SpawnError::LocalNetwork(err));
        }
        match node.serve_configured().await {
            Ok(services) => {
                node.keep_services(services);
                Ok(node)
            }
            Err((name, source)) => {
                node.shutdown().await;
                Err(SpawnError::Service { name, source })
            }
        }
    }
}

/// The optional layers the builder keeps.
#[derive(Debug, Clone, Copy)]
struct Enabled {
    discovery: bool,
    registry: bool,
    sync: bool,
}

/// Starts the layers in the order their shutdowns must run backwards: sync ends its sessions
/// before the registry withdraws, which goes before the departure, which goes before gossip
/// leaves its topics (`Endpoint::shutdown` runs handlers newest first, and so does
/// [`Node::shutdown`]).
async fn spawn_layers(
    endpoint: &Endpoint,
    config: &Config,
    bootstrap: &[PeerAddr],
    enabled: Enabled,
) -> Result<Layers, SpawnError> {
    let gossip = Gossip::builder()
        .config(config.gossip.clone())
        .spawn(endpoint)
        .await?;
    let discovery = if enabled.discovery {
        Some(
            Discovery::builder()
                .config(config.discovery.clone())
                .bootstrap(bootstrap.iter().cloned())
                .spawn(endpoint, &gossip)
                .await?,
        )
    } else {
        None
    };
    let registry = if enabled.registry {
        let registry = Registry::builder()
            .config(config.registry.clone())
            .spawn(endpoint)
            .await?;
        if !bootstrap.is_empty() {
            // Fails only if the registry stopped, which it cannot have yet.
            let _ = registry.add_peers(bootstrap.iter().cloned()).await;
        }
        Some(registry)
    } else {
        None
    };
    let sync = if enabled.sync {
        Some(
            SyncManager::builder()
                .config(config.sync.clone())
                .spawn(endpoint, &gossip)
                .await?,
        )
    } else {
        None
    };
    if config.topology.answer {
        endpoint.register(
            crate::topology::PROTOCOL,
            crate::topology::Server::new(gossip.clone()),
        )?;
    }
    // Registered last, so `Endpoint::shutdown` stops answering calls first.
    let (calls, _) = crate::service::Server::spawn(endpoint)?;
    Ok(Layers {
        gossip,
        discovery,
        registry,
        sync,
        calls,
        user: Vec::new(),
    })
}

/// Registers the user's protocols after the layers, so they are the newest handlers.
fn register_protocols(
    endpoint: &Endpoint,
    protocols: &[UserProtocol],
) -> Result<Vec<crate::protocols::Registered>, SpawnError> {
    protocols
        .iter()
        .map(|protocol| protocol.register(endpoint).map_err(SpawnError::Protocol))
        .collect()
}

/// Opens the sync store off the runtime: redb checks the whole file on open.
async fn open_store(path: &Path) -> Result<RedbDatabase, SpawnError> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || RedbDatabase::open(owned))
        .await
        .map_err(|err| {
            SpawnError::Store(StoreError::Open {
                path: path.to_path_buf(),
                message: format!("the opening task failed: {err}"),
            })
        })?
        .map_err(SpawnError::Store)
}

/// The configured peers, then the remembered ones, each once, without this node.
fn merge_peers(
    me: weft_transport::PeerId,
    configured: &[PeerAddr],
    remembered: &[PeerAddr],
) -> Vec<PeerAddr> {
    let mut seen = std::collections::BTreeSet::from([me]);
    configured
        .iter()
        .chain(remembered)
        .filter(|addr| seen.insert(addr.id))
        .cloned()
        .collect()
}
