//! Shared fixtures of the runtime tests: nodes with an endpoint, gossip and a sync manager, on
//! the memory network or on real QUIC over 127.0.0.1, and waiting for events.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use tokio::time::timeout;
use weft_gossip::{Config as GossipConfig, Gossip, PlumtreeConfig, TopicId};
use weft_sync::{
    Item, SyncManager, SyncTopic,
    proto::{Config, Event},
    store::Store,
};
use weft_transport::{Endpoint, MemoryNetwork, NetworkId, PeerAddr, PeerId, SecretKey};

/// Where the endpoints live.
#[derive(Debug)]
pub enum Net {
    /// The in-process memory network.
    Memory(MemoryNetwork),
    /// Real QUIC on 127.0.0.1, isolated by a network id.
    Loopback(NetworkId),
}

impl Net {
    pub fn memory(seed: u64) -> Self {
        Self::Memory(MemoryNetwork::new(seed))
    }

    pub fn loopback(name: &str) -> Self {
        Self::Loopback(NetworkId::from_name(name))
    }

    /// An endpoint whose key is fixed by `seed` (a restarted node keeps its id).
    pub async fn endpoint(&self, seed: u8) -> Endpoint {
        let builder = Endpoint::builder()
            .secret_key(SecretKey::from_bytes(&[seed; 32]))
            .connect_timeout(Duration::from_secs(2));
        let builder = match self {
            Self::Memory(net) => builder.memory(net),
            Self::Loopback(network) => builder
                .network(*network)
                .bind_addr("127.0.0.1:0".parse().unwrap()),
        };
        builder.bind().await.unwrap()
    }
}

/// Sync timings for fast links: a lost session is retried quickly.
pub fn fast_config() -> Config {
    Config {
        fallback_wait: Duration::from_millis(200),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_secs(1),
        session_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

fn gossip_config() -> GossipConfig {
    GossipConfig {
        broadcast: PlumtreeConfig::for_link_rtt(Duration::from_millis(4)),
        ..GossipConfig::default()
    }
}

/// One node: endpoint, gossip, sync manager.
#[derive(Debug)]
pub struct Node {
    pub endpoint: Endpoint,
    pub gossip: Gossip,
    pub sync: SyncManager,
}

impl Node {
    pub async fn start(net: &Net, seed: u8) -> Self {
        Self::start_with(net, seed, fast_config()).await
    }

    pub async fn start_with(net: &Net, seed: u8, config: Config) -> Self {
        let endpoint = net.endpoint(seed).await;
        let gossip = Gossip::builder()
            .config(gossip_config())
            .spawn(&endpoint)
            .await
            .unwrap();
        let sync = SyncManager::builder()
            .config(config)
            .spawn(&endpoint, &gossip)
            .await
            .unwrap();
        Self {
            endpoint,
            gossip,
            sync,
        }
    }

    pub fn id(&self) -> PeerId {
        self.endpoint.id()
    }

    pub fn addr(&self) -> PeerAddr {
        self.endpoint.addr()
    }

    pub async fn subscribe(
        &self,
        topic: TopicId,
        store: impl Store,
        bootstrap: Vec<PeerAddr>,
    ) -> SyncTopic {
        self.sync.subscribe(topic, store, bootstrap).await.unwrap()
    }
}

/// Items `range`, as a topic would hold them.
pub fn items(range: std::ops::Range<u64>) -> Vec<Item> {
    range
        .map(|i| Item::new(i, format!("item {i}").as_bytes()))
        .collect()
}

/// Waits (at most 20 s) for an event that `want` picks, returning it; panics on time-out.
pub async fn wait_for<T>(
    topic: &mut SyncTopic,
    what: &str,
    mut want: impl FnMut(&Event<PeerId>) -> Option<T>,
) -> T {
    let found = timeout(Duration::from_secs(20), async {
        loop {
            let event = topic.recv().await.expect("sync actor stopped");
            if let Some(found) = want(&event) {
                return found;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits until `topic` holds `count` items, reading its events.
pub async fn wait_for_count(topic: &mut SyncTopic, count: usize) {
    timeout(Duration::from_secs(20), async {
        while topic.item_count().await.unwrap() < count {
            topic.recv().await.expect("sync actor stopped");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {count} items"));
}
