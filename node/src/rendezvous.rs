//! Topic rendezvous through the registry: a node that subscribes to a topic registers itself
//! under the topic's name in the registry and joins through the other subscribers it finds
//! there, so joining a topic needs no peer list beyond the network's bootstrap.
//!
//! The names (version 1), one per kind of topic because a sync topic's overlay is a gossip
//! topic of its own ([`weft_sync::overlay_topic`]):
//!
//! ```text
//! weft/topic/1/gossip/<topic id, 64 lowercase hex digits>   a gossip topic
//! weft/topic/1/sync/<topic id, 64 lowercase hex digits>     a sync topic (its overlay joins)
//! ```
//!
//! Per topic, one task (started by the first subscription, whatever its number of subscribers):
//! 1. registers the name (the registry republishes it while the [`Registration`] lives);
//! 2. while the topic has no neighbour: looks the name up (bypassing the cache), hands at most
//!    [`RendezvousConfig::max_peers`] providers other than this node, chosen at random, to the
//!    topic's join, and waits [`Backoff`]'s next delay (from `retry_min`, doubling up to
//!    `retry_max`) before the next lookup, so two subscribers that registered at the same time
//!    still meet. Once the topic has a neighbour it stops looking, and starts again (from
//!    `retry_min`) should the topic lose every neighbour;
//! 3. ends when the topic's last subscription ends (the gossip [`TopicObserver`] it watches
//!    through does not keep the topic joined): the registration is dropped, which withdraws the
//!    name. At shutdown the registry withdraws every registration still live.
//!
//! Bounds: one task and one registration per subscribed topic (topics are bounded by the
//! gossip and sync layers' own limits); one lookup at a time per topic; at most `max_peers`
//! joins per lookup. The providers come from signed records, and the topic's join only
//! dials them: a provider that is not on the topic ignores the join, and the QUIC handshake
//! authenticates every id. Random choice keeps a flood of bogus registrations from always
//! filling the `max_peers` places.

use std::{
    collections::{BTreeSet, HashMap},
    hash::BuildHasher,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use tracing::debug;
use weft_gossip::{Event, Gossip, TopicId, TopicObserver};
use weft_registry::{ProviderRecord, Registration, Registry};
use weft_transport::{PeerAddr, PeerId};

use crate::duration;

/// The prefix of every rendezvous name; the `1` is the version of the derivation.
pub const RENDEZVOUS_PREFIX: &str = "weft/topic/1/";

/// `[rendezvous]`: meeting a topic's other subscribers through the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RendezvousConfig {
    /// Whether subscribed topics register and look up their subscribers (default `true`; it
    /// takes effect only on a node that runs the registry).
    pub enabled: bool,
    /// Most providers of a topic handed to its join per lookup (default 16, at least 1).
    pub max_peers: usize,
    /// The wait before the second lookup of a topic that has no neighbour yet (default `"1s"`).
    #[serde(with = "duration::serde_human")]
    pub retry_min: Duration,
    /// The longest wait between two lookups: the delay doubles up to it (default `"1m"`).
    #[serde(with = "duration::serde_human")]
    pub retry_max: Duration,
}

impl Default for RendezvousConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_peers: 16,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

impl RendezvousConfig {
    /// What cannot run: no peers per lookup, a zero or inverted retry range. The error names
    /// the key.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max_peers == 0 {
            return Err(("rendezvous.max_peers", "must be at least 1".into()));
        }
        if self.retry_min.is_zero() {
            return Err(("rendezvous.retry_min", "must be more than zero".into()));
        }
        if self.retry_max < self.retry_min {
            return Err((
                "rendezvous.retry_max",
                "must be at least rendezvous.retry_min".into(),
            ));
        }
        Ok(())
    }
}

/// Which layer a topic belongs to: each has its own rendezvous name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TopicKind {
    /// A gossip topic ([`crate::Node::subscribe_gossip`]).
    Gossip,
    /// A sync topic ([`crate::Node::subscribe_sync`]); its overlay is what joins.
    Sync,
}

/// The registry name under which the subscribers of `topic` meet (see the module docs).
///
/// ```
/// use weft_gossip::TopicId;
/// use weft_node::{TopicKind, rendezvous_name};
///
/// let name = rendezvous_name(TopicKind::Gossip, TopicId([0xab; 32]));
/// assert_eq!(name, format!("weft/topic/1/gossip/{}", "ab".repeat(32)));
/// ```
pub fn rendezvous_name(kind: TopicKind, topic: TopicId) -> String {
    let kind = match kind {
        TopicKind::Gossip => "gossip",
        TopicKind::Sync => "sync",
    };
    format!(
        "{RENDEZVOUS_PREFIX}{kind}/{}",
        hex::encode(topic.as_bytes())
    )
}

/// The delays between the lookups of a topic without neighbours: `min`, doubling up to `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min,
            min,
            max,
        }
    }

    /// The wait before the next lookup.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to `min`: the topic lost its last neighbour and looks again from the start.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// At most `max` providers other than `me`, each once, in the order of `rank` (lowest first):
/// the node ranks with a keyed hash fresh at every lookup, a random order no one can predict.
pub(crate) fn pick(
    records: &[ProviderRecord],
    me: PeerId,
    max: usize,
    rank: impl Fn(&PeerId) -> u64,
) -> Vec<PeerAddr> {
    let mut seen = BTreeSet::from([me]);
    let mut peers: Vec<PeerAddr> = records
        .iter()
        .filter(|record| seen.insert(record.provider))
        .map(ProviderRecord::provider_addr)
        .collect();
    peers.sort_by_cached_key(|addr| rank(&addr.id));
    peers.truncate(max);
    peers
}

/// The rendezvous of one node: a task per subscribed topic.
#[derive(Debug)]
pub(crate) struct Rendezvous {
    config: RendezvousConfig,
    gossip: Gossip,
    registry: Registry,
    topics: Arc<Mutex<HashMap<(TopicKind, TopicId), Entry>>>,
}

/// A topic's task, and the observer of a newer subscription waiting to take over (see
/// [`Rendezvous::joined`]).
#[derive(Debug)]
struct Entry {
    task: AbortOnDropHandle<()>,
    next: Option<TopicObserver>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic elsewhere leaves it usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Rendezvous {
    pub(crate) fn new(config: RendezvousConfig, gossip: Gossip, registry: Registry) -> Self {
        Self {
            config,
            gossip,
            registry,
            topics: Arc::default(),
        }
    }

    /// A subscription to `topic` has just been made: starts the topic's rendezvous unless it
    /// runs. `overlay` is the gossip topic that joins (the topic itself, or a sync topic's
    /// overlay).
    pub(crate) async fn joined(&self, kind: TopicKind, topic: TopicId, overlay: TopicId) {
        let observer = match self.gossip.observe(overlay).await {
            Ok(observer) => observer,
            // Left already (the subscription was dropped at once), or gossip stopped.
            Err(err) => {
                debug!(?topic, "rendezvous: not started: {err}");
                return;
            }
        };
        let mut topics = lock(&self.topics);
        match topics.get_mut(&(kind, topic)) {
            // The running task may be watching an earlier joining of the topic, one that is
            // ending (its last subscriber left just before this subscription came): it takes
            // this observer over when its own stream ends. The newest one is the one to keep.
            Some(entry) if !entry.task.is_finished() => entry.next = Some(observer),
            _ => {
                let task = tokio::spawn(run(
                    kind,
                    topic,
                    observer,
                    self.config.clone(),
                    self.registry.clone(),
                    self.topics.clone(),
                ));
                topics.insert(
                    (kind, topic),
                    Entry {
                        task: AbortOnDropHandle::new(task),
                        next: None,
                    },
                );
            }
        }
    }

    /// Stops every topic's task (the registrations they hold are dropped, which withdraws
    /// them unless the registry has stopped and withdrawn them already).
    pub(crate) fn stop(&self) {
        lock(&self.topics).clear();
    }
}

/// One topic's rendezvous, until its last subscription ends (see the module docs).
async fn run(
    kind: TopicKind,
    topic: TopicId,
    mut observer: TopicObserver,
    config: RendezvousConfig,
    registry: Registry,
    topics: Arc<Mutex<HashMap<(TopicKind, TopicId), Entry>>>,
) {
    let name = rendezvous_name(kind, topic);
    let _registration: Registration = match registry.register(name.clone(), Vec::new()).await {
        Ok(registration) => registration,
        Err(err) => {
            debug!(%name, "rendezvous: cannot register: {err}");
            forget(&topics, kind, topic);
            return;
        }
    };
    let me = registry.id();
    let mut neighbors = BTreeSet::new();
    let mut backoff = Backoff::new(config.retry_min, config.retry_max);
    // The first lookup at once: the registration is in place, so of two subscribers that
    // register at the same time, the later lookup finds the other.
    let mut next_lookup = Some(Instant::now());
    loop {
        let wait = async {
            match next_lookup {
                Some(at) if neighbors.is_empty() => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            event = observer.recv() => match event {
                Some(Event::NeighborUp(peer)) => {
                    neighbors.insert(peer);
                }
                Some(Event::NeighborDown(peer)) => {
                    neighbors.remove(&peer);
                    if neighbors.is_empty() {
                        backoff.reset();
                        next_lookup = Some(Instant::now());
                    }
                }
                Some(Event::Lagged(_)) => match observer.neighbors().await {
                    Ok(now) => neighbors = now.into_iter().collect(),
                    Err(_) => break,
                },
                Some(_) => {}
                None => {
                    // The topic was left: carry on with a newer subscription's observer, or end.
                    let mut all = lock(&topics);
                    let Some(next) = all.get_mut(&(kind, topic)).and_then(|e| e.next.take())
                    else {
                        all.remove(&(kind, topic));
                        return;
                    };
                    observer = next;
                    neighbors.clear();
                    backoff.reset();
                    next_lookup = Some(Instant::now());
                }
            },
            () = wait => {
                let peers = lookup(&registry, &name, me, config.max_peers).await;
                debug!(%name, found = peers.len(), "rendezvous: lookup");
                if !peers.is_empty() && observer.join_peers(peers).await.is_err() {
                    break;
                }
                next_lookup = Some(Instant::now() + backoff.next_delay());
            }
        }
    }
    forget(&topics, kind, topic);
}

/// The topic's providers to join through; none if the registry has stopped.
async fn lookup(registry: &Registry, name: &str, me: PeerId, max: usize) -> Vec<PeerAddr> {
    let Ok(records) = registry.lookup_all_refresh(name).await else {
        return Vec::new();
    };
    // A fresh key per lookup: a different random choice each time.
    let keys = std::collections::hash_map::RandomState::new();
    pick(&records, me, max, |id| keys.hash_one(id))
}

/// Removes the topic's entry (its task is ending).
fn forget(topics: &Mutex<HashMap<(TopicKind, TopicId), Entry>>, kind: TopicKind, topic: TopicId) {
    lock(topics).remove(&(kind, topic));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use weft_registry::{DhtId, Time};
    use weft_transport::SecretKey;

    use super::*;

    fn record(provider: PeerId) -> ProviderRecord {
        ProviderRecord {
            key: DhtId::of_name("t"),
            name: "t".into(),
            provider,
            addresses: BTreeSet::from(["127.0.0.1:1".parse().expect("addr")]),
            relay: None,
            metadata: Vec::new(),
            issued_at: Time::from_millis(0),
            ttl_ms: 1000,
        }
    }

    #[test]
    fn the_backoff_doubles_up_to_its_maximum_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn pick_skips_this_node_and_duplicates_and_keeps_at_most_max_in_rank_order() {
        let me = SecretKey::generate().peer_id();
        let others: Vec<PeerId> = (0..5).map(|_| SecretKey::generate().peer_id()).collect();
        let mut records: Vec<ProviderRecord> = others.iter().copied().map(record).collect();
        records.push(record(me));
        records.push(record(others[0]));
        // Ranked by position in `others`, reversed.
        let rank = |id: &PeerId| 10 - others.iter().position(|o| o == id).unwrap_or(10) as u64;
        let picked: Vec<PeerId> = pick(&records, me, 3, rank).iter().map(|a| a.id).collect();
        assert_eq!(picked, [others[4], others[3], others[2]]);
        let all = pick(&records, me, 16, rank);
        assert_eq!(all.len(), 5, "every other provider once, not this node");
        assert!(all.iter().all(|addr| !addr.direct.is_empty()));
    }

    #[test]
    fn names_differ_by_kind_and_topic() {
        let a = TopicId::from_name("a");
        let names = BTreeSet::from([
            rendezvous_name(TopicKind::Gossip, a),
            rendezvous_name(TopicKind::Sync, a),
            rendezvous_name(TopicKind::Gossip, TopicId::from_name("b")),
        ]);
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|name| name.starts_with(RENDEZVOUS_PREFIX)));
    }

    #[test]
    fn the_config_refuses_what_cannot_run() {
        assert!(RendezvousConfig::default().check().is_ok());
        for (config, key) in [
            (
                RendezvousConfig {
                    max_peers: 0,
                    ..Default::default()
                },
                "rendezvous.max_peers",
            ),
            (
                RendezvousConfig {
                    retry_min: Duration::ZERO,
                    ..Default::default()
                },
                "rendezvous.retry_min",
            ),
            (
                RendezvousConfig {
                    retry_max: Duration::from_millis(10),
                    ..Default::default()
                },
                "rendezvous.retry_max",
            ),
        ] {
            assert_eq!(config.check().map_err(|(k, _)| k), Err(key));
        }
    }
}
