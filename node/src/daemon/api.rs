//! [`NodeApi`]: a running [`Node`] behind the admin API.

use std::path::Path;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::warn;

use crate::admin::{
    Api, ApiError, Call, CallReply, GossipEvent, GossipPublish, LayerStatus, Overview, Peer, Peers,
    Provided, Providers, Published, RegistryFind, RegistryProvide, Server, ServerConfig,
    ShuttingDown, StartError, Status, Subscription, SyncAdd, SyncAdded, SyncItems, SyncList,
    SyncStatus, TopicRequest, TopologyGraph,
};
use crate::daemon::saved::{JOINED_FILE, Joined, Saver};
use crate::daemon::{
    gossip::GossipTopics, overview::TopologyCache, recent::Recent, registry,
    registry::ProvidedNames, sync::SyncTopics,
};
use crate::{Node, layers};

/// A [`Node`] serving the admin API ([`crate::admin::Server::spawn`] takes it in an `Arc`).
///
/// What a command starts lasts until the node shuts down: gossip topics stay joined, names
/// stay provided, sync topics stay synced. Each kind is held in a map with a limit
/// ([`crate::MAX_GOSSIP_TOPICS`], [`crate::MAX_PROVIDED_NAMES`], [`crate::MAX_SYNC_TOPICS`]);
/// past it, the command is refused with a message saying so.
///
/// With [`NodeApi::saved_in`], what is joined and provided is also written to `joined.toml`
/// in the data directory each time it changes, and [`NodeApi::restore`] joins and provides it
/// again after a restart.
///
/// `shutdown` only cancels the token given to [`NodeApi::new`]: whoever runs the node waits
/// on it, shuts the node down, then stops the admin server (which is waiting for this very
/// answer, so it cannot be stopped from inside the request).
#[derive(Debug)]
pub struct NodeApi {
    node: Node,
    started: Instant,
    shutdown: CancellationToken,
    pub(super) gossip: GossipTopics,
    provided: ProvidedNames,
    pub(super) sync: SyncTopics,
    pub(super) recent: Recent,
    pub(super) topology: TopologyCache,
    /// Log the layers' events into `recent` while the API lives.
    _following: Vec<AbortOnDropHandle<()>>,
    saver: Option<Saver>,
}

impl NodeApi {
    /// The admin API of `node`; its `shutdown` cancels `shutdown`.
    pub fn new(node: Node, shutdown: CancellationToken) -> Self {
        let started = Instant::now();
        let recent = Recent::new(started);
        let following = recent.follow(&node);
        Self {
            node,
            started,
            shutdown,
            gossip: GossipTopics::new(recent.clone()),
            provided: ProvidedNames::default(),
            sync: SyncTopics::default(),
            recent,
            topology: TopologyCache::default(),
            _following: following,
            saver: None,
        }
    }

    /// Serves this API on an admin server, as `weft run` does: `config.bind` on loopback, the
    /// token and address files in `data_dir`. The server has a cancellation token of its own,
    /// so it answers until [`Server::shutdown`] (after the node has shut down).
    pub async fn serve(
        self: Arc<Self>,
        config: ServerConfig,
        data_dir: &Path,
    ) -> Result<Server, StartError> {
        Server::spawn(config, data_dir, self, &CancellationToken::new()).await
    }

    /// Keeps what the admin API joins and provides in `joined.toml` under `data_dir`, written
    /// each time it changes (so it survives a crash), from the end of [`NodeApi::restore`]
    /// on: call that next.
    #[must_use]
    pub fn saved_in(mut self, data_dir: &Path) -> Self {
        self.saver = Some(Saver::new(data_dir.join(JOINED_FILE)));
        self
    }

    /// Joins and provides again what `joined.toml` lists (a damaged file is ignored with a
    /// warning): sync topics first, then gossip topics, then names, each failure logged and
    /// skipped. Then starts saving: an entry that could not be restored is dropped from the
    /// file. Changes made through the API meanwhile take effect at once and are saved when
    /// this returns. Does nothing without [`NodeApi::saved_in`].
    pub async fn restore(&self) {
        let Some(saver) = &self.saver else { return };
        let saved = Joined::read(saver.path());
        for topic in &saved.sync {
            let request = SyncAdd {
                topic: topic.clone(),
                content: None,
                timestamp: None,
            };
            if let Err(err) = self.sync.add(&self.node, request).await {
                warn!(topic, "sync topic not restored: {}", err.message);
            }
        }
        for topic in &saved.gossip {
            if let Err(err) = self.gossip.join(&self.node, topic).await {
                warn!(topic, "gossip topic not restored: {}", err.message);
            }
        }
        for provided in &saved.provided {
            let name = &provided.name;
            let result = match self.registry("restoring a provided name") {
                Ok(registry) => {
                    self.provided
                        .provide(registry, name.clone(), provided.metadata.clone())
                        .await
                }
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                warn!(name, "provided name not restored: {}", err.message);
            }
        }
        saver.restored(saved).await;
        self.save().await;
    }

    /// Writes `joined.toml` if what is joined and provided changed since the last write.
    /// Holding the saver's lock while taking the snapshot keeps two saves from writing in the
    /// wrong order.
    async fn save(&self) {
        let Some(saver) = &self.saver else { return };
        let mut written = saver.lock().await;
        if written.is_none() {
            // Still restoring: the restore saves when it is done.
            return;
        }
        let now = Joined::new(
            self.gossip.names().await,
            self.sync.names().await,
            self.provided.list().await,
        );
        saver.write(&mut written, now).await;
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    fn registry(&self, what: &str) -> Result<&weft_registry::Registry, ApiError> {
        self.node
            .registry()
            .ok_or_else(|| ApiError::unavailable(layers::off("registry", what)))
    }

    fn sync_on(&self, what: &str) -> Result<(), ApiError> {
        match self.node.sync() {
            Some(_) => Ok(()),
            None => Err(ApiError::unavailable(layers::off("sync", what))),
        }
    }

    fn running(&self) -> Result<(), ApiError> {
        if self.node.is_shut_down() {
            return Err(ApiError::unavailable("the node is shutting down"));
        }
        Ok(())
    }
}

impl Api for NodeApi {
    async fn status(&self) -> Result<Status, ApiError> {
        let node = &self.node;
        let addr = node.addr();
        let up = !node.is_shut_down();
        let layers = [
            ("transport", true),
            ("gossip", true),
            ("discovery", node.discovery().is_some()),
            ("registry", node.registry().is_some()),
            ("sync", node.sync().is_some()),
        ]
        .into_iter()
        .map(|(name, present)| LayerStatus {
            name: name.to_owned(),
            running: up && present,
            enabled: present,
        })
        .collect();
        Ok(Status {
            id: node.id().to_string(),
            ticket: node.ticket().to_string(),
            network: node.config().node.network.clone(),
            addresses: addr.direct.into_iter().collect(),
            relay: addr.relay.map(|relay| relay.to_string()),
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            layers,
            services: node.served(),
        })
    }

    /// Discovery's catalog, with the round-trip time of discovery's last ping of each peer
    /// (no ping is sent for the listing: it would cost a round trip per peer per call).
    async fn metrics(&self) -> Result<String, ApiError> {
        Ok(self.node.encode_metrics())
    }

    async fn overview(&self) -> Result<Overview, ApiError> {
        self.overview_now().await
    }

    async fn topology(&self, request: TopicRequest) -> Result<TopologyGraph, ApiError> {
        self.topology_of(&request.topic).await
    }

    async fn peers(&self) -> Result<Peers, ApiError> {
        let Some(discovery) = self.node.discovery() else {
            return Err(ApiError::unavailable(layers::off(
                "discovery",
                "weft peers",
            )));
        };
        let catalog = discovery
            .catalog()
            .await
            .map_err(|err| ApiError::unavailable(format_args!("discovery has stopped: {err}")))?;
        let peers = catalog
            .peers
            .values()
            .map(|record| {
                let entry = record.entry();
                Peer {
                    id: entry.peer.to_string(),
                    addresses: entry.direct.iter().copied().collect(),
                    relay: entry.relay.as_ref().map(ToString::to_string),
                    rtt_us: record
                        .rtt()
                        .map(|rtt| u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX)),
                }
            })
            .collect();
        Ok(Peers { peers })
    }

    async fn gossip_publish(&self, request: GossipPublish) -> Result<Published, ApiError> {
        self.running()?;
        let published = self
            .gossip
            .publish(&self.node, &request.topic, request.content)
            .await;
        // The topic stays joined even when the broadcast failed.
        self.save().await;
        Ok(Published {
            message_id: published?,
        })
    }

    async fn gossip_subscribe(
        &self,
        request: TopicRequest,
    ) -> Result<Subscription<GossipEvent>, ApiError> {
        self.running()?;
        let subscription = self.gossip.subscribe(&self.node, &request.topic).await;
        self.save().await;
        subscription
    }

    async fn registry_provide(&self, request: RegistryProvide) -> Result<Provided, ApiError> {
        self.running()?;
        let provided = self
            .provided
            .provide(
                self.registry("weft registry provide")?,
                request.name,
                request.metadata,
            )
            .await;
        // A replaced name is withdrawn first: the file changes even when the new one failed.
        self.save().await;
        provided
    }

    async fn registry_find(&self, request: RegistryFind) -> Result<Providers, ApiError> {
        self.running()?;
        registry::find(self.registry("weft registry find")?, request.name).await
    }

    async fn call(&self, request: Call) -> Result<CallReply, ApiError> {
        self.running()?;
        self.registry("a service call")?;
        call(&self.node, request).await
    }

    async fn sync_add(&self, request: SyncAdd) -> Result<SyncAdded, ApiError> {
        self.running()?;
        self.sync_on("weft sync")?;
        let added = self.sync.add(&self.node, request).await;
        self.save().await;
        added
    }

    async fn sync_list(&self, request: SyncList) -> Result<SyncItems, ApiError> {
        self.running()?;
        self.sync_on("weft sync")?;
        self.sync.list(request).await
    }

    async fn sync_status(&self, request: TopicRequest) -> Result<SyncStatus, ApiError> {
        self.running()?;
        self.sync_on("weft sync")?;
        self.sync.status(request.topic).await
    }

    /// Asks whoever runs the node to shut it down, and answers at once.
    async fn shutdown(&self) -> Result<ShuttingDown, ApiError> {
        self.shutdown.cancel();
        Ok(ShuttingDown {})
    }
}

/// A service call through the node: providers from the registry, tried fastest first, failing
/// over on error or time-out ([`Node::call_with`]).
async fn call(node: &Node, request: Call) -> Result<CallReply, ApiError> {
    let mut options = node.config().calls.options();
    if let Some(ms) = request.timeout_ms {
        options.timeout = std::time::Duration::from_millis(ms);
    }
    match node
        .call_with(&request.name, request.request.0, &options)
        .await
    {
        Ok(reply) => Ok(CallReply {
            provider: reply.provider.to_string(),
            response: reply.response.into(),
            elapsed_ms: u64::try_from(reply.elapsed.as_millis()).unwrap_or(u64::MAX),
            failed: reply
                .failed
                .iter()
                .map(|attempt| crate::admin::CallFailure {
                    provider: attempt.provider.to_string(),
                    error: attempt.error.to_string(),
                })
                .collect(),
        }),
        Err(err) => Err(call_error(&err)),
    }
}

/// The admin error kind of a failed call: the caller's mistakes are 400s, an unknown name 404.
fn call_error(err: &crate::CallError) -> ApiError {
    use crate::CallError as E;
    match err {
        E::InvalidName(_) | E::RequestTooLarge { .. } => ApiError::bad_request(err),
        E::NoProvider { .. } => ApiError::not_found(err),
        E::TimedOut { .. } => ApiError::timeout(err),
        _ => ApiError::unavailable(err),
    }
}
