//! The runtime: one actor task per registry that owns a [`crate::Node`] and carries out its
//! outputs on a weft-transport [`Endpoint`], under the protocol `registry/1`.
//!
//! ```no_run
//! # async fn demo(endpoint: weft_transport::Endpoint, peers: Vec<weft_transport::PeerAddr>)
//! # -> Result<(), weft_registry::net::Error> {
//! use weft_registry::{Config, net::Registry};
//!
//! let registry = Registry::builder(Config::default()).spawn(&endpoint)?;
//! registry.add_peers(peers).await?;
//! let registration = registry.register("chat/eu", b"v2".to_vec()).await?;
//! for provider in registry.lookup_all("chat/eu").await? {
//!     println!("{} provides chat/eu", provider.provider);
//! }
//! registration.withdraw().await?; // or drop it
//! # Ok(()) }
//! ```

mod actor;
mod handler;

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};
use weft_transport::{
    Endpoint, PeerAddr, PeerId, Protocol, RegisterError, SystemWallClock, WallClock,
};

use crate::proto::{CommandError, Config, ProviderRecord};

/// The registry's protocol: ALPN `weft/<network>/registry/1`.
pub const PROTOCOL: Protocol = Protocol::new("registry", 1);

/// Commands queued to the actor, at most. Senders wait when it is full (the actor drains it
/// in one loop turn), except `Registration`'s drop, which spawns the send.
const COMMAND_CAPACITY: usize = 256;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry's actor has stopped.
    #[error("the registry has stopped")]
    Closed,
    /// The protocol refused the command.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The protocol could not be registered on the endpoint.
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// Builds and spawns a [`Registry`].
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
    cache_ttl: Duration,
    max_cache_entries: usize,
    max_inbound: usize,
    wall_clock: Arc<dyn WallClock>,
}

impl Builder {
    /// How long a lookup's result is served from the local cache (default 60 s).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Names kept in the lookup cache (default 1,024); the oldest is dropped when full.
    pub fn max_cache_entries(mut self, max: usize) -> Self {
        self.max_cache_entries = max;
        self
    }

    /// Inbound requests waiting for the actor (default 256); further requests are dropped
    /// (their streams reset) until it catches up.
    pub fn max_inbound(mut self, max: usize) -> Self {
        self.max_inbound = max;
        self
    }

    /// The wall clock that stamps and checks signed records (default: the system clock).
    /// Timers, republish schedules and request time-outs never read it: they run on the
    /// monotonic clock, so a step of this clock only makes the node republish at once. Tests
    /// inject one they step.
    pub fn wall_clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.wall_clock = clock;
        self
    }

    /// Registers `registry/1` on `endpoint` and spawns the actor on the current tokio runtime.
    pub fn spawn(self, endpoint: &Endpoint) -> Result<Registry, Error> {
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (inbound, inbound_rx) = mpsc::channel(self.max_inbound.max(1));
        let timeout = self.config.request_timeout();
        endpoint.register(PROTOCOL, handler::Handler::new(inbound, timeout))?;
        let task = actor::Actor::new(self, endpoint.clone(), command_rx, inbound_rx).spawn();
        Ok(Registry {
            inner: std::sync::Arc::new(Inner {
                commands,
                id: endpoint.id(),
                task,
                endpoint: endpoint.clone(),
            }),
        })
    }
}

/// A running registry. Cheap to clone; the actor stops when the last clone (and the last
/// [`Registration`]) is dropped.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: std::sync::Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<Command>,
    id: PeerId,
    task: tokio::task::JoinHandle<()>,
    endpoint: Endpoint,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
        self.endpoint.unregister(PROTOCOL);
    }
}

/// A command from a handle to the actor.
#[derive(Debug)]
enum Command {
    AddPeers(Vec<PeerAddr>),
    Register {
        name: String,
        metadata: Vec<u8>,
        reply: oneshot::Sender<Result<usize, Error>>,
    },
    Withdraw {
        name: String,
        reply: Option<oneshot::Sender<Result<usize, Error>>>,
    },
    Lookup {
        name: String,
        refresh: bool,
        results: mpsc::Sender<ProviderRecord>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    LocalRegistrations {
        reply: oneshot::Sender<Vec<ProviderRecord>>,
    },
    Held {
        name: String,
        reply: oneshot::Sender<Vec<ProviderRecord>>,
    },
}

impl Registry {
    /// A builder with the protocol settings `config`.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            cache_ttl: Duration::from_secs(60),
            max_cache_entries: 1024,
            max_inbound: 256,
            wall_clock: Arc::new(SystemWallClock),
        }
    }

    /// This node's id.
    pub fn id(&self) -> PeerId {
        self.inner.id
    }

    async fn send(&self, command: Command) -> Result<(), Error> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| Error::Closed)
    }

    /// Feeds peers to the routing table (the node feeds it from discovery). When the table was
    /// short of `k` peers, this also starts a bootstrap.
    pub async fn add_peers(&self, peers: impl IntoIterator<Item = PeerAddr>) -> Result<(), Error> {
        self.send(Command::AddPeers(peers.into_iter().collect()))
            .await
    }

    /// Registers `name` and waits until the record reached the closest nodes. The record is
    /// republished before it expires for as long as the returned [`Registration`] lives;
    /// dropping it, or [`Registration::withdraw`], removes the record everywhere. Registering a
    /// name this node already provides replaces its record (new metadata); both registrations
    /// then stand for that one record, and the first to be withdrawn removes it.
    pub async fn register(
        &self,
        name: impl Into<String>,
        metadata: Vec<u8>,
    ) -> Result<Registration, Error> {
        let name = name.into();
        let (reply, rx) = oneshot::channel();
        self.send(Command::Register {
            name: name.clone(),
            metadata,
            reply,
        })
        .await?;
        let holders = rx.await.map_err(|_| Error::Closed)??;
        Ok(Registration {
            name,
            holders,
            registry: Some(self.clone()),
        })
    }

    /// Looks `name` up, streaming each provider once, as answers arrive. A result younger than
    /// the cache TTL is served from the cache.
    pub async fn lookup(&self, name: &str) -> Result<LookupStream, Error> {
        self.start_lookup(name, false).await
    }

    /// Like [`Registry::lookup`], but always asks the network (and refreshes the cache).
    pub async fn lookup_refresh(&self, name: &str) -> Result<LookupStream, Error> {
        self.start_lookup(name, true).await
    }

    async fn start_lookup(&self, name: &str, refresh: bool) -> Result<LookupStream, Error> {
        let (results, rx) = mpsc::channel(actor::LOOKUP_STREAM_CAPACITY);
        let (reply, done) = oneshot::channel();
        self.send(Command::Lookup {
            name: name.to_owned(),
            refresh,
            results,
            reply,
        })
        .await?;
        done.await.map_err(|_| Error::Closed)??;
        Ok(LookupStream { rx })
    }

    /// Looks `name` up and collects every provider (empty for an unknown name).
    pub async fn lookup_all(&self, name: &str) -> Result<Vec<ProviderRecord>, Error> {
        Ok(self.lookup(name).await?.collect().await)
    }

    /// Like [`Registry::lookup_all`], bypassing the cache.
    pub async fn lookup_all_refresh(&self, name: &str) -> Result<Vec<ProviderRecord>, Error> {
        Ok(self.lookup_refresh(name).await?.collect().await)
    }

    /// The records this node currently provides.
    pub async fn local_registrations(&self) -> Result<Vec<ProviderRecord>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::LocalRegistrations { reply }).await?;
        rx.await.map_err(|_| Error::Closed)
    }
}

impl Registry {
    /// The live records this node holds under `name` in its store (for itself and for others):
    /// what it would answer a `GetProviders` with. For diagnostics.
    pub async fn held(&self, name: &str) -> Result<Vec<ProviderRecord>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Held {
            name: name.to_owned(),
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Closed)
    }
}

/// Providers of a name, as a lookup finds them. Ends when the lookup is over.
#[derive(Debug)]
pub struct LookupStream {
    rx: mpsc::Receiver<ProviderRecord>,
}

impl LookupStream {
    /// The next provider, or `None` when the lookup is over.
    pub async fn next(&mut self) -> Option<ProviderRecord> {
        self.rx.recv().await
    }

    /// Every remaining provider.
    pub async fn collect(mut self) -> Vec<ProviderRecord> {
        let mut out = Vec::new();
        while let Some(record) = self.next().await {
            out.push(record);
        }
        out
    }
}

/// A live registration. Dropping it withdraws the name (in the background); call
/// [`Registration::withdraw`] to wait for the withdrawal to complete.
#[derive(Debug)]
pub struct Registration {
    name: String,
    holders: usize,
    registry: Option<Registry>,
}

impl Registration {
    /// The name registered.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nodes that acknowledged storing the record when it was first published.
    pub fn holders(&self) -> usize {
        self.holders
    }

    /// Withdraws the name everywhere and waits until every holder answered. Returns how many
    /// acknowledged the removal.
    pub async fn withdraw(mut self) -> Result<usize, Error> {
        let Some(registry) = self.registry.take() else {
            return Ok(0);
        };
        let (reply, rx) = oneshot::channel();
        registry
            .send(Command::Withdraw {
                name: self.name.clone(),
                reply: Some(reply),
            })
            .await?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(registry) = self.registry.take() else {
            return;
        };
        let command = Command::Withdraw {
            name: std::mem::take(&mut self.name),
            reply: None,
        };
        match registry.inner.commands.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                // The queue is full: wait for room in the background, if a runtime is there.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = registry.inner.commands.send(command).await;
                    });
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}
