//! The [`Endpoint`]: a QUIC endpoint on iroh that routes protocols by ALPN and reuses one
//! connection per (peer, protocol).
//!
//! iroh's own `Router` fixes its protocols when it is spawned; weft's layers register theirs
//! after the endpoint exists (`Gossip::builder().spawn(&endpoint)`), so the endpoint runs its own
//! accept loop over a table that can grow, and re-announces its ALPNs on every change.

use std::{
    collections::{BTreeMap, VecDeque},
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use iroh::{
    RelayMode,
    address_lookup::memory::MemoryLookup,
    endpoint::{Connection, presets},
    protocol::{DynProtocolHandler, ProtocolHandler},
};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};
use tracing::{Instrument, warn};

use crate::{
    MemoryNetwork, NetworkId, PeerAddr, PeerId, Protocol, SecretKey,
    accept::{AcceptConfig, Handler, HandlerTable, accept_loop},
    addr::{from_endpoint_addr, to_endpoint_addr},
    admission::{AdmissionConfig, InboundStats, InboundTable},
    cache::{ConnectionCache, SharedCache},
    errors::{BindError, ConnectError, RegisterError},
    idle::IdleClose,
    metrics::Metrics,
    mount::MountedProtocol,
};

/// Default time a dial may take before [`ConnectError::Timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of (peer, protocol) connections kept for reuse.
pub const DEFAULT_MAX_CACHED_CONNECTIONS: usize = 1024;
/// Default number of inbound connections held at once (each for its whole life).
pub const DEFAULT_MAX_INBOUND: usize = 1024;
/// Default number of inbound connections one peer may hold.
pub const DEFAULT_MAX_INBOUND_PER_PEER: usize = 8;
/// Default number of inbound handshakes in progress at once.
pub const DEFAULT_MAX_HANDSHAKES: usize = 128;
/// Default time an admitted inbound connection has to send its first stream data.
pub const DEFAULT_FIRST_DATA_DEADLINE: Duration = Duration::from_secs(10);
/// Default time a connection must have been quiet before a newcomer may displace it.
pub const DEFAULT_DISPLACE_AFTER_IDLE: Duration = Duration::from_secs(10);
/// Default number of streams of each kind a peer may have open at once on one connection.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 128;
/// Default number of peer addresses remembered for dialling by id.
pub const DEFAULT_MAX_KNOWN_ADDRS: usize = 16_384;

/// Which relays the endpoint uses.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum RelayChoice {
    /// No relays: direct connections only. The default, and what tests use.
    #[default]
    Disabled,
    /// iroh's public default relays (reaches the internet).
    IrohDefault,
    /// These relays.
    Custom(Vec<crate::RelayUrl>),
}

/// Builds an [`Endpoint`].
///
/// Defaults: a fresh key, the network named `weft`, iroh's default sockets (all interfaces),
/// relays off, no external address lookup. Tests and local setups bind `127.0.0.1:0` or join a
/// [`MemoryNetwork`].
#[derive(Debug)]
pub struct Builder {
    secret_key: Option<SecretKey>,
    network: NetworkId,
    bind_addr: Option<SocketAddr>,
    relay: RelayChoice,
    memory: Option<MemoryNetwork>,
    connect_timeout: Duration,
    max_cached_connections: usize,
    max_inbound: usize,
    max_inbound_per_peer: usize,
    max_handshakes: usize,
    first_data_deadline: Duration,
    displace_after_idle: Duration,
    max_streams_per_connection: u32,
    max_known_addrs: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            secret_key: None,
            network: NetworkId::default(),
            bind_addr: None,
            relay: RelayChoice::Disabled,
            memory: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_cached_connections: DEFAULT_MAX_CACHED_CONNECTIONS,
            max_inbound: DEFAULT_MAX_INBOUND,
            max_inbound_per_peer: DEFAULT_MAX_INBOUND_PER_PEER,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            first_data_deadline: DEFAULT_FIRST_DATA_DEADLINE,
            displace_after_idle: DEFAULT_DISPLACE_AFTER_IDLE,
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            max_known_addrs: DEFAULT_MAX_KNOWN_ADDRS,
        }
    }
}

impl Builder {
    /// Uses this identity (default: a fresh one).
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.secret_key = Some(key);
        self
    }

    /// Joins this network (default: the network named `weft`).
    pub fn network(mut self, network: NetworkId) -> Self {
        self.network = network;
        self
    }

    /// Binds the UDP socket to `addr` only, e.g. `127.0.0.1:0`.
    pub fn bind_addr(mut self, addr: SocketAddr) -> Self {
        self.bind_addr = Some(addr);
        self
    }

    /// Chooses relays (default: none).
    pub fn relay(mut self, relay: RelayChoice) -> Self {
        self.relay = relay;
        self
    }

    /// Runs over an in-process [`MemoryNetwork`] instead of UDP.
    pub fn memory(mut self, network: &MemoryNetwork) -> Self {
        self.memory = Some(network.clone());
        self
    }

    /// How long a dial may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many (peer, protocol) connections are kept for reuse (default 1024). When full, the
    /// least recently used entry leaves the cache; its connection stays open for those holding it.
    pub fn max_cached_connections(mut self, max: usize) -> Self {
        self.max_cached_connections = max.max(1);
        self
    }

    /// How many inbound connections are held at once (default 1024), each for its whole life.
    /// When all are taken, a newcomer displaces the connection quiet longest if it has been
    /// quiet for [`Builder::displace_after_idle`], else it is refused.
    pub fn max_inbound(mut self, max: usize) -> Self {
        self.max_inbound = max.max(1);
        self
    }

    /// How many inbound connections one peer may hold (default 8); a further one is refused.
    pub fn max_inbound_per_peer(mut self, max: usize) -> Self {
        self.max_inbound_per_peer = max.max(1);
        self
    }

    /// How many inbound handshakes may run at once (default 128); a further incoming
    /// connection is refused before any crypto is spent on it. Each may take at most the
    /// connect timeout.
    pub fn max_handshakes(mut self, max: usize) -> Self {
        self.max_handshakes = max.max(1);
        self
    }

    /// How long an admitted inbound connection has to send its first stream data before it is
    /// closed (default 10 s).
    pub fn first_data_deadline(mut self, deadline: Duration) -> Self {
        self.first_data_deadline = deadline;
        self
    }

    /// How long a connection must have been quiet (no stream data received) before a newcomer
    /// may displace it when the inbound limit is reached (default 10 s).
    pub fn displace_after_idle(mut self, idle: Duration) -> Self {
        self.displace_after_idle = idle;
        self
    }

    /// How many streams of each kind (bidirectional, unidirectional) a peer may have open at
    /// once on one connection (default 128); QUIC flow control makes it wait for more.
    pub fn max_streams_per_connection(mut self, max: u32) -> Self {
        self.max_streams_per_connection = max.max(1);
        self
    }

    /// How many peer addresses [`Endpoint::add_peer_addr`] remembers (default 16,384); the oldest
    /// is forgotten first.
    pub fn max_known_addrs(mut self, max: usize) -> Self {
        self.max_known_addrs = max.max(1);
        self
    }

    /// Binds the endpoint and starts its accept loop.
    pub async fn bind(self) -> Result<Endpoint, BindError> {
        let secret_key = self.secret_key.clone().unwrap_or_else(SecretKey::generate);
        let id = secret_key.peer_id();
        let known_addrs = MemoryLookup::new();
        let streams = iroh::endpoint::VarInt::from_u32(self.max_streams_per_connection);
        let transport = iroh::endpoint::QuicTransportConfig::builder()
            .max_concurrent_bidi_streams(streams)
            .max_concurrent_uni_streams(streams)
            .build();
        let mut builder = iroh::Endpoint::builder(presets::Minimal)
            .secret_key(secret_key.to_iroh())
            .transport_config(transport)
            .address_lookup(known_addrs.clone());
        builder = match &self.relay {
            RelayChoice::Disabled => builder.relay_mode(RelayMode::Disabled),
            RelayChoice::IrohDefault => builder.relay_mode(RelayMode::Default),
            RelayChoice::Custom(urls) => {
                builder.relay_mode(RelayMode::custom(urls.iter().cloned()))
            }
        };
        if let Some(memory) = &self.memory {
            let transport = memory.attach(id).map_err(BindError::Memory)?;
            builder = builder
                .clear_ip_transports()
                .add_custom_transport(transport)
                .address_lookup(memory.address_lookup());
        } else if let Some(addr) = self.bind_addr {
            // Replace iroh's all-interfaces sockets, so nothing is bound or advertised beyond
            // the address asked for.
            builder = builder
                .clear_ip_transports()
                .bind_addr(addr)
                .map_err(|err| BindError::Iroh(err.to_string()))?;
        }
        let endpoint = builder
            .bind()
            .await
            .map_err(|err| BindError::Iroh(err.to_string()))?;
        Ok(Endpoint::new(endpoint, &self, known_addrs, true))
    }
}

/// A registered protocol handler, as returned by [`Endpoint::register`]: names exactly that
/// registration, so [`Endpoint::unregister_exact`] never removes a handler registered later
/// for the same protocol (by a newer instance of the same layer, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerRegistration {
    protocol: Protocol,
    id: u64,
}

impl HandlerRegistration {
    /// The registered protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
}

/// A weft node's QUIC endpoint. Cheap to clone; all clones share one endpoint.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use weft_transport::{Endpoint, NetworkId, Protocol};
///
/// let endpoint = Endpoint::builder()
///     .network(NetworkId::from_name("my-app"))
///     .bind_addr("127.0.0.1:0".parse()?)
///     .bind()
///     .await?;
/// println!("reach me at {}", endpoint.addr().to_ticket());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: iroh::Endpoint,
    network: NetworkId,
    handlers: HandlerTable,
    /// Ids handed to registrations.
    registrations: AtomicU64,
    /// Seeds handed out by `secret_seed`.
    seeds_given: AtomicU64,
    connections: SharedCache,
    idle: IdleClose,
    known_addrs: MemoryLookup,
    known_order: Mutex<VecDeque<PeerId>>,
    max_known_addrs: usize,
    connect_timeout: Duration,
    cancel: CancellationToken,
    /// Whether weft runs the accept loop and sets the ALPNs (not under a user's iroh `Router`).
    owns_accept: bool,
    accept_loop: Mutex<Option<AbortOnDropHandle<()>>>,
    inbound: InboundTable,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state stays consistent across a panic elsewhere (maps and counters only).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Endpoint {
    /// Starts building an endpoint.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// An endpoint on `endpoint`; `owns_accept` says whether weft runs the accept loop (or a
    /// user's iroh `Router` does, see [`Builder::wrap_iroh`]).
    pub(crate) fn new(
        endpoint: iroh::Endpoint,
        config: &Builder,
        known_addrs: MemoryLookup,
        owns_accept: bool,
    ) -> Self {
        let handlers = Arc::new(RwLock::new(BTreeMap::new()));
        let cancel = CancellationToken::new();
        let inbound = InboundTable::new(AdmissionConfig {
            max_inbound: config.max_inbound,
            max_per_peer: config.max_inbound_per_peer,
            first_data_deadline: config.first_data_deadline,
            displace_after_idle: config.displace_after_idle,
        });
        let connections: SharedCache = Arc::new(Mutex::new(ConnectionCache::new(
            config.max_cached_connections,
        )));
        let accept_loop = owns_accept.then(|| {
            let accept = AcceptConfig {
                handlers: handlers.clone(),
                cancel: cancel.clone(),
                inbound: inbound.clone(),
                connections: connections.clone(),
                handshakes: Arc::new(Semaphore::new(config.max_handshakes)),
                handshake_timeout: config.connect_timeout,
            };
            let span =
                tracing::info_span!("weft.accept", me = %PeerId::from(endpoint.id()).fmt_short());
            // No protocols yet: refuse every handshake until one registers.
            endpoint.set_alpns(Vec::new());
            AbortOnDropHandle::new(tokio::spawn(
                accept_loop(endpoint.clone(), accept).instrument(span),
            ))
        });
        Self {
            inner: Arc::new(Inner {
                endpoint,
                network: config.network,
                handlers,
                registrations: AtomicU64::new(0),
                seeds_given: AtomicU64::new(0),
                connections,
                idle: IdleClose::default(),
                known_addrs,
                known_order: Mutex::new(VecDeque::new()),
                max_known_addrs: config.max_known_addrs,
                connect_timeout: config.connect_timeout,
                cancel,
                owns_accept,
                accept_loop: Mutex::new(accept_loop),
                inbound,
            }),
        }
    }

    /// This node's identity.
    pub fn id(&self) -> PeerId {
        self.inner.endpoint.id().into()
    }

    /// A seed for `purpose` that peers cannot predict: derived from this node's secret key, the
    /// wall clock and a per-endpoint counter, so every call gives a new one. For the RNGs and
    /// hash keys of the layers' state machines (a peer that could compute them could steer
    /// random walks or mint ids that collide in a hash table).
    pub fn secret_seed(&self, purpose: &str) -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let count = self.inner.seeds_given.fetch_add(1, Ordering::Relaxed);
        let secret = self.inner.endpoint.secret_key().to_bytes();
        let material = [
            secret.as_slice(),
            purpose.as_bytes(),
            &nanos.to_le_bytes(),
            &count.to_le_bytes(),
        ]
        .concat();
        let derived = blake3::derive_key("weft/transport/secret-seed/1", &material);
        let mut first = [0u8; 8];
        first.copy_from_slice(&derived[..8]);
        u64::from_le_bytes(first)
    }

    /// The network this endpoint belongs to.
    pub fn network(&self) -> NetworkId {
        self.inner.network
    }

    /// This node's address: its id, bound direct addresses and relay, if any.
    ///
    /// On a memory network the address has no direct addresses: the network resolves ids.
    pub fn addr(&self) -> PeerAddr {
        from_endpoint_addr(&self.inner.endpoint.addr())
    }

    /// The ALPN of `protocol` on this endpoint's network.
    pub fn alpn(&self, protocol: Protocol) -> Vec<u8> {
        self.inner.network.alpn(protocol)
    }

    /// Routes inbound connections for `protocol` to `handler`.
    ///
    /// The handler is any iroh [`ProtocolHandler`]; it receives each accepted connection whose
    /// ALPN is this protocol on this network. The returned [`HandlerRegistration`] removes exactly
    /// this handler later ([`Endpoint::unregister_exact`]).
    pub fn register(
        &self,
        protocol: Protocol,
        handler: impl ProtocolHandler,
    ) -> Result<HandlerRegistration, RegisterError> {
        let alpn = self.alpn(protocol);
        let mut handlers = self
            .inner
            .handlers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if handlers.contains_key(&alpn) {
            return Err(RegisterError::AlreadyRegistered(protocol));
        }
        let handler: Box<dyn DynProtocolHandler> = Box::new(handler);
        let registration = HandlerRegistration {
            protocol,
            id: self.inner.registrations.fetch_add(1, Ordering::Relaxed),
        };
        handlers.insert(alpn, (registration, Arc::new(handler)));
        if self.inner.owns_accept {
            self.inner
                .endpoint
                .set_alpns(handlers.keys().cloned().collect());
        }
        Ok(registration)
    }

    /// Stops routing `protocol`, whoever registered it. Returns whether it was registered.
    pub fn unregister(&self, protocol: Protocol) -> bool {
        self.remove_handler(protocol, |_| true)
    }

    /// Stops routing the registration's protocol if this registration still holds it; a handler
    /// registered for the protocol since stays. Returns whether it was removed.
    pub fn unregister_exact(&self, registration: HandlerRegistration) -> bool {
        self.remove_handler(registration.protocol, |current| *current == registration)
    }

    fn remove_handler(
        &self,
        protocol: Protocol,
        is_it: impl Fn(&HandlerRegistration) -> bool,
    ) -> bool {
        let alpn = self.alpn(protocol);
        let mut handlers = self
            .inner
            .handlers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !handlers
            .get(&alpn)
            .is_some_and(|(current, _)| is_it(current))
        {
            return false;
        }
        handlers.remove(&alpn);
        if self.inner.owns_accept {
            self.inner
                .endpoint
                .set_alpns(handlers.keys().cloned().collect());
        }
        true
    }

    /// Remembers how to reach a peer, so later dials may name it by id alone.
    ///
    /// Bounded by [`Builder::max_known_addrs`]; the oldest remembered peer is forgotten first.
    pub fn add_peer_addr(&self, addr: &PeerAddr) {
        if addr.id == self.id() {
            return;
        }
        self.inner
            .known_addrs
            .add_endpoint_info(to_endpoint_addr(addr));
        let mut order = lock(&self.inner.known_order);
        if !order.contains(&addr.id) {
            order.push_back(addr.id);
        }
        while order.len() > self.inner.max_known_addrs {
            if let Some(old) = order.pop_front() {
                self.inner.known_addrs.remove_endpoint_info(old.to_iroh());
            }
        }
    }

    /// A connection to `addr` speaking `protocol`: the cached live one, or a new dial.
    ///
    /// Concurrent calls for the same (peer, protocol) share one dial. A dial that does not finish
    /// within the connect timeout fails with [`ConnectError::Timeout`]; a peer of another
    /// network fails at the handshake with [`ConnectError::Failed`].
    pub async fn connect(
        &self,
        addr: &PeerAddr,
        protocol: Protocol,
    ) -> Result<Connection, ConnectError> {
        if self.inner.cancel.is_cancelled() {
            return Err(ConnectError::Shutdown);
        }
        let key = (addr.id, protocol);
        let cell = lock(&self.inner.connections).cell(key);
        let result = cell
            .get_or_try_init(|| self.dial(addr, protocol))
            .await
            .cloned();
        if result.is_err() {
            lock(&self.inner.connections).forget_failed(&key, &cell);
        }
        result
    }

    /// Closes `protocol`'s cached connections (dialled by [`Endpoint::connect`]) once nobody
    /// used them for `after`: not handed out, no stream frame either way (closed with
    /// [`CLOSE_IDLE`](crate::CLOSE_IDLE); the next `connect` dials again). For request/response
    /// protocols, so a peer asked once does not cost a connection kept alive for ever; `after`
    /// must outlast the protocol's slowest silent exchange.
    pub fn close_idle(&self, protocol: Protocol, after: Duration) {
        let inner = &self.inner;
        (inner.idle).set(protocol, after, &inner.connections, &inner.cancel);
    }

    /// Dials without the cache: always a new connection.
    pub async fn dial(
        &self,
        addr: &PeerAddr,
        protocol: Protocol,
    ) -> Result<Connection, ConnectError> {
        let timeout = self.inner.connect_timeout;
        let alpn = self.alpn(protocol);
        let dial = self
            .inner
            .endpoint
            .connect(self.with_known_addrs(addr), &alpn);
        let dialled = tokio::time::timeout(timeout, dial).await;
        self.metrics().dials.inc();
        if !matches!(dialled, Ok(Ok(_))) {
            self.metrics().dial_failures.inc();
        }
        match dialled {
            Err(_) => Err(ConnectError::Timeout {
                peer: addr.id,
                protocol,
                after: timeout,
            }),
            Ok(Err(err)) => Err(ConnectError::Failed {
                peer: addr.id,
                protocol,
                reason: format!("{err:#}"),
            }),
            Ok(Ok(conn)) => Ok(conn),
        }
    }

    /// `addr` with every address remembered for its peer ([`Endpoint::add_peer_addr`]) added.
    ///
    /// Named explicitly in the dial rather than left to iroh's address lookup alone, so a peer
    /// that moved (restarted on a new port) is offered its new address along with the old.
    /// (iroh 1.4 was still seen dialling such a peer in vain while it held paths to the old
    /// port: see "Transport in one page" in docs/architecture.md.)
    fn with_known_addrs(&self, addr: &PeerAddr) -> iroh_base::EndpointAddr {
        let mut full = to_endpoint_addr(addr);
        if let Some(known) = self.inner.known_addrs.get_endpoint_info(addr.id.to_iroh()) {
            let known = known.into_endpoint_addr();
            full = iroh_base::EndpointAddr::from_parts(
                full.id,
                full.addrs
                    .iter()
                    .cloned()
                    .chain(known.addrs.iter().cloned()),
            );
        }
        full
    }

    /// `protocol` as an iroh [`ProtocolHandler`] for a router you run: mount it with
    /// `Router::builder(iroh_endpoint).accept(endpoint.alpn(protocol), endpoint.mount(protocol))`
    /// on an endpoint made with [`Builder::wrap_iroh`]. See [`MountedProtocol`].
    pub fn mount(&self, protocol: Protocol) -> MountedProtocol {
        MountedProtocol {
            protocol,
            alpn: self.alpn(protocol),
            handlers: self.inner.handlers.clone(),
            inbound: self.inner.inbound.clone(),
            connections: self.inner.connections.clone(),
        }
    }

    /// The iroh endpoint underneath, for users who bring their own iroh protocols.
    pub fn iroh(&self) -> &iroh::Endpoint {
        &self.inner.endpoint
    }

    /// Shuts down: lets every handler shut down (while dials still work, so goodbyes get
    /// through), stops accepting, then closes all connections gracefully. Idempotent.
    pub async fn shutdown(&self) {
        // Handlers first, while dials still work: a goodbye may need a connection. The layer
        // registered last goes first (it may ride on one registered before it: sync on gossip).
        let mut handlers: Vec<(HandlerRegistration, Handler)> = self
            .inner
            .handlers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect();
        handlers.sort_by_key(|(registration, _)| std::cmp::Reverse(registration.id));
        for (_, handler) in handlers {
            handler.shutdown().await;
        }
        self.inner.cancel.cancel();
        let task = lock(&self.inner.accept_loop).take();
        if let Some(task) = task
            && let Err(err) = task.await
            && err.is_panic()
        {
            warn!("accept loop panicked: {err}");
        }
        if self.inner.owns_accept {
            self.inner.endpoint.close().await;
        }
    }

    /// What inbound admission has done so far: connections held now, displaced, refused.
    pub fn inbound_stats(&self) -> InboundStats {
        let stats = self.inner.inbound.stats();
        InboundStats {
            held: stats.admitted,
            displaced: stats.displaced,
            refused: stats.refused,
            superseded: stats.superseded,
        }
    }

    /// This endpoint's counters (connections admitted, held, displaced, refused; dials).
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.inner.inbound.metrics()
    }

    /// Whether [`Endpoint::shutdown`] has begun.
    pub fn is_shut_down(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }
}
