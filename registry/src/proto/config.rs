//! Settings of a registry node. Plain data with defaults, loadable from TOML.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a registry node behaves. Every field has a default; durations are in milliseconds so
/// a TOML scenario file reads plainly (`request_timeout_ms = 1000`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Bucket size and replication factor: a record is stored on the `k` closest nodes.
    pub k: usize,
    /// Requests a lookup keeps in flight at once (per path).
    pub alpha: usize,
    /// Disjoint paths per lookup (S/Kademlia): 1 is plain Kademlia; more resist peers that
    /// answer with made-up neighbours, at the cost of more requests.
    pub disjoint_paths: usize,
    /// How long a request may go unanswered before its peer counts as failed.
    pub request_timeout_ms: u64,
    /// Shortest stall time: a lookup stops waiting for an answer after the node's smoothed
    /// round trip plus two variations (at least this, at most `request_timeout_ms`), and asks
    /// the next candidate instead, so peers that left cost round trips rather than timeouts.
    pub min_stall_ms: u64,
    /// Reach past identities crowded next to a key (see `docs/protocols/registry.md`,
    /// "Crowding"): lookups, stores and answers take the `k` closest plus the excess of peers
    /// over what the network's estimated size puts that close. Off: plain Kademlia, which ground
    /// identities can cut a name off in.
    pub crowding_aware: bool,
    /// Requests a peer may fail in a row before it leaves the routing table (sooner when a
    /// newcomer waits for its bucket).
    pub max_failures: u32,
    /// Lookups (user lookups, publishes, withdrawals, refreshes) running at once. A new lookup
    /// beyond this is refused with [`crate::proto::CommandError::Busy`].
    pub max_lookups: usize,
    /// Candidates a lookup remembers; the farthest are forgotten beyond this.
    pub max_candidates: usize,
    /// Time to live given to records this node registers.
    pub record_ttl_ms: u64,
    /// Time between two bucket refreshes, and the idle time after which a bucket is refreshed.
    pub refresh_interval_ms: u64,
    /// Period of the maintenance tick (republish, refresh, expiry sweep).
    pub tick_interval_ms: u64,
    /// Attempts to deliver a record or removal to one holder (the first and the retries after
    /// it got no answer).
    pub store_attempts: u32,
    /// Records this node hands over to one newly seen closer node, at most.
    pub max_handover: usize,
    /// A node hands its records for a key over to a new close node when it is among this many
    /// closest known holders of the key (1: only the closest does; more: redundancy against a
    /// closest node that missed the newcomer).
    pub handover_holders: usize,
    /// How long a lookup's result is served from the lookup cache
    /// ([`crate::proto::Node::lookup_cached`]); 0 turns the cache off.
    pub cache_ttl_ms: u64,
    /// Names kept in the lookup cache; the oldest fetch is dropped when full.
    pub max_cache_entries: usize,
    /// Limits on the records this node stores and accepts.
    pub store: StoreConfig,
    /// Limits on what a single record may contain.
    pub limits: RecordLimits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            k: 20,
            alpha: 3,
            disjoint_paths: 1,
            request_timeout_ms: 2_000,
            min_stall_ms: 50,
            crowding_aware: true,
            max_failures: 3,
            max_lookups: 64,
            max_candidates: 100,
            record_ttl_ms: 300_000,
            refresh_interval_ms: 600_000,
            tick_interval_ms: 10_000,
            store_attempts: 3,
            max_handover: 256,
            handover_holders: 3,
            cache_ttl_ms: 60_000,
            max_cache_entries: 1024,
            store: StoreConfig::default(),
            limits: RecordLimits::default(),
        }
    }
}

/// Why a [`Config`] cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A count that must be at least one is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// A duration that must be positive is zero.
    #[error("{0} must be more than 0 ms")]
    NoTime(&'static str),
    /// Records this node signs would outlive what holders accept.
    #[error("record_ttl_ms {ttl} is above limits.max_ttl_ms {max}")]
    TtlAboveLimit {
        /// The TTL asked for.
        ttl: u64,
        /// The limit.
        max: u64,
    },
}

impl Config {
    /// Checks that the settings can run: counts at least one, periods above zero, and a
    /// record TTL that the node's own limits accept.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let counts = [
            ("k", self.k),
            ("alpha", self.alpha),
            ("disjoint_paths", self.disjoint_paths),
            ("max_lookups", self.max_lookups),
            ("max_candidates", self.max_candidates),
            ("store.max_per_key", self.store.max_per_key),
            ("store.max_total", self.store.max_total),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(ConfigError::Zero(name));
        }
        let periods = [
            ("request_timeout_ms", self.request_timeout_ms),
            ("record_ttl_ms", self.record_ttl_ms),
            ("refresh_interval_ms", self.refresh_interval_ms),
            ("tick_interval_ms", self.tick_interval_ms),
        ];
        if let Some((name, _)) = periods.iter().find(|(_, ms)| *ms == 0) {
            return Err(ConfigError::NoTime(name));
        }
        if self.record_ttl_ms > self.limits.max_ttl_ms {
            return Err(ConfigError::TtlAboveLimit {
                ttl: self.record_ttl_ms,
                max: self.limits.max_ttl_ms,
            });
        }
        Ok(())
    }

    /// [`Config::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`Config::min_stall_ms`] as a duration.
    pub fn min_stall(&self) -> Duration {
        Duration::from_millis(self.min_stall_ms)
    }

    /// [`Config::record_ttl_ms`] as a duration.
    pub fn record_ttl(&self) -> Duration {
        Duration::from_millis(self.record_ttl_ms)
    }

    /// [`Config::refresh_interval_ms`] as a duration.
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_millis(self.refresh_interval_ms)
    }

    /// [`Config::tick_interval_ms`] as a duration.
    pub fn tick_interval(&self) -> Duration {
        Duration::from_millis(self.tick_interval_ms)
    }
}

/// Bounds of the record store. See [`crate::proto::Store`] for the policy when full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Providers kept per key (records and removals together).
    pub max_per_key: usize,
    /// Entries one provider may hold in this store, over all keys.
    pub max_per_provider: usize,
    /// Entries in the whole store.
    pub max_total: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_per_key: 64,
            max_per_provider: 256,
            max_total: 65_536,
        }
    }
}

/// What a single record may hold. A record outside these is refused, wherever it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordLimits {
    /// Bytes in a name.
    pub max_name_len: usize,
    /// Bytes of application metadata.
    pub max_metadata_len: usize,
    /// Direct addresses.
    pub max_addresses: usize,
    /// The longest time to live a record may ask for. Removals are kept this long, so an older
    /// copy of the record they remove can never come back.
    pub max_ttl_ms: u64,
    /// How far in the future an `issued_at` may be, to tolerate clock skew.
    pub max_clock_skew_ms: u64,
}

impl Default for RecordLimits {
    fn default() -> Self {
        Self {
            max_name_len: 255,
            max_metadata_len: 1024,
            max_addresses: 16,
            max_ttl_ms: 24 * 3_600_000,
            max_clock_skew_ms: 60_000,
        }
    }
}
