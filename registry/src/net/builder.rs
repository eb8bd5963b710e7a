//! Builds and spawns a [`Registry`].

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::mpsc;
use weft_transport::{ActorLink, Endpoint, Subscribers, SystemWallClock, WallClock};

use super::{COMMAND_CAPACITY, Inner, PROTOCOL, Registry, SpawnError, actor::Actor, handler};
use crate::proto::Config;

/// Default time a shutdown gives the withdrawals to be answered ([`Builder::shutdown_grace`]).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Builds and spawns a [`Registry`]: `Registry::builder().config(config).spawn(&endpoint)`.
#[derive(Debug, Clone)]
pub struct Builder {
    pub(super) config: Config,
    pub(super) max_inbound: usize,
    pub(super) event_capacity: usize,
    pub(super) shutdown_grace: Duration,
    pub(super) wall_clock: Arc<dyn WallClock>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            config: Config::default(),
            max_inbound: 256,
            event_capacity: 256,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            wall_clock: Arc::new(SystemWallClock),
        }
    }
}

impl Builder {
    /// The protocol settings (default [`Config::default`]); checked by [`Builder::spawn`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Inbound requests waiting for the actor (default 256, at least 1); further requests are
    /// refused (their streams reset) until it catches up.
    pub fn max_inbound(mut self, max: usize) -> Self {
        self.max_inbound = max;
        self
    }

    /// Events queued per [`Registry::events`] subscriber before it gets `Lagged` (default 256).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(2);
        self
    }

    /// How long a shutdown waits for the withdrawals of the registrations still live to be
    /// answered before the actor stops (default [`DEFAULT_SHUTDOWN_GRACE`]). Holders a removal
    /// did not reach keep the record until it expires (at most its TTL).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
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

    /// Checks the config, registers `registry/1` on `endpoint` and spawns the actor on the
    /// current tokio runtime.
    pub async fn spawn(self, endpoint: &Endpoint) -> Result<Registry, SpawnError> {
        self.config.validate()?;
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        // Weak: the registered handler must not keep the actor alive once every handle is gone.
        let (actor_link, actor_guard) = ActorLink::new(&commands);
        let (handler, inbound_rx) = handler::Handler::new(
            NonZeroUsize::new(self.max_inbound).unwrap_or(NonZeroUsize::MIN),
            self.config.request_timeout(),
            actor_link.clone(),
        );
        let registration = endpoint.register(PROTOCOL, handler)?;
        // Requests go to whichever peers a lookup walks through: without this, a connection
        // (with QUIC keep-alives) stays open to every peer ever asked.
        endpoint.close_idle(PROTOCOL, self.config.request_timeout() * 5);
        let events: super::Shared = Arc::new(Mutex::new(Some(Subscribers::new())));
        let event_capacity = self.event_capacity;
        let actor = Actor::new(
            self,
            endpoint.clone(),
            registration,
            command_rx,
            inbound_rx,
            events.clone(),
        );
        let metrics = actor.metrics.clone();
        actor.spawn(actor_guard);
        Ok(Registry {
            inner: Arc::new(Inner {
                commands,
                id: endpoint.id(),
                actor: actor_link,
                events,
                event_capacity,
                metrics,
            }),
        })
    }
}
