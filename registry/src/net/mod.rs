//! The runtime: one actor task per registry that owns a [`crate::proto::Node`] and carries out
//! its outputs on a weft-transport [`Endpoint`](weft_transport::Endpoint), under the protocol `registry/1`.
//!
//! Ending: [`Registry::shutdown`], the drop of the last handle (every [`Registry`] clone and
//! every [`Registration`]), and iroh's `ProtocolHandler::shutdown` (called by
//! `Endpoint::shutdown`) do the same work: every registration still live is withdrawn (the
//! signed removals sent to the nodes that hold it), within [`Builder::shutdown_grace`], then
//! the actor stops. It is never aborted.

mod actor;
mod builder;
mod event;
mod finish;
mod handler;
mod metrics;
mod registration;

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use weft_transport::{
    ActorLink, EventSender, Events, PeerAddr, PeerId, Protocol, RegisterError, Subscribers,
};

pub use builder::{Builder, DEFAULT_SHUTDOWN_GRACE};
pub use event::Event;
pub use metrics::Metrics;
pub use registration::{LookupStream, Registration};

use crate::proto::{CommandError, ConfigError, ProviderRecord};

/// The registry's protocol: ALPN `weft/<network>/registry/1`.
pub const PROTOCOL: Protocol = Protocol::new("registry", 1);

/// Commands queued to the actor, at most. Senders wait when it is full (the actor drains it
/// in one loop turn), except `Registration`'s drop, which spawns the send.
const COMMAND_CAPACITY: usize = 256;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry has shut down ([`Registry::shutdown`], the endpoint's shutdown, or its
    /// last handle dropped).
    #[error("the registry has stopped")]
    Closed,
    /// The protocol refused the command.
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// Why a registry could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `registry/1` is already registered on this endpoint.
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// A running registry. Cheap to clone; every method takes `&self`.
///
/// The actor stops at [`Registry::shutdown`], at the endpoint's shutdown, or when the last
/// clone and the last [`Registration`] are dropped; each way withdraws every registration
/// still live first.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<Command>,
    id: PeerId,
    /// Shuts the actor down and sees it end.
    actor: ActorLink<Command>,
    /// The event subscribers, shared with the actor; `None` once it has ended.
    events: Shared,
    event_capacity: usize,
    /// The actor's counters.
    metrics: Arc<Metrics>,
}

/// Event subscribers, shared by the handles (which add them) and the actor (which delivers).
pub(super) type Shared = Arc<Mutex<Option<Subscribers<Event>>>>;

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
    HeldNames {
        max: usize,
        reply: oneshot::Sender<Vec<(String, usize)>>,
    },
    Shutdown,
}

impl Registry {
    /// A builder with the default settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// This node's id.
    pub fn id(&self) -> PeerId {
        self.inner.id
    }

    /// This instance's counters (records held, lookups, hops, cache hits, republishes),
    /// shared with the running actor; register them in an `iroh_metrics::Registry` to export.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
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
    /// dropping it, or [`Registration::withdraw`], removes the record everywhere, and so does
    /// the registry's shutdown. Registering a name this node already provides replaces its
    /// record (new metadata); both registrations then stand for that one record, and the first
    /// to be withdrawn removes it.
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
        Ok(Registration::new(name, holders, self.clone()))
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
        Ok(LookupStream::new(rx))
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

    /// The names this node holds live records for (for itself and for others), with how many
    /// providers each, in name order, at most `max` of them. For diagnostics: the status page.
    pub async fn held_names(&self, max: usize) -> Result<Vec<(String, usize)>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::HeldNames { max, reply }).await?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// A new subscriber to this registry's [`Event`]s, from now on. Its queue holds
    /// [`Builder::event_capacity`] events; a subscriber that falls behind gets
    /// [`Event::Lagged`] before the next event that fits, and never slows the registry. The
    /// stream ends (`recv` returns `None`) once the registry has shut down.
    pub fn events(&self) -> Events<Event> {
        let mut shared = lock(&self.inner.events);
        match shared.as_mut() {
            Some(subscribers) => subscribers.subscribe(self.inner.event_capacity),
            // Stopped: a stream that has ended.
            None => EventSender::channel(1).1,
        }
    }

    /// Withdraws every registration still live (the signed removals go to the nodes that hold
    /// each record, and to the closest nodes), waits for their answers within the grace period
    /// ([`Builder::shutdown_grace`]), and stops the actor. Lookups in progress end; event
    /// streams end; later calls on this registry's handles fail with [`Error::Closed`].
    /// Returns once the actor has ended; calling it again, from any clone, waits for the same
    /// end.
    ///
    /// `Endpoint::shutdown` calls this for a registry spawned on it, before it closes the
    /// connections; dropping the last handle does the same in the background.
    pub async fn shutdown(&self) {
        self.inner.actor.shutdown(Command::Shutdown).await;
    }
}

/// Locks the subscribers; a panic elsewhere while holding the lock leaves them usable.
fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Option<Subscribers<Event>>> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
