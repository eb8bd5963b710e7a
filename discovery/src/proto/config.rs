//! Configuration: timings, bounds and entry limits, with defaults for the internet.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::time::serde_ms;

/// How a discovery node behaves. Plain data with [`Default`] and serde, so TOML scenario files
/// and node configs can set any field (durations are written in milliseconds, `*_ms`).
///
/// The defaults suit the internet: announce every 30 s, purge after 90 s of silence (three
/// missed announcements), tolerate 10 s of clock drift. Tests use much shorter timings.
///
/// ```
/// use weft_discovery::Config;
///
/// let config: Config = toml::from_str("announce_interval_ms = 1000\npurge_after_ms = 3000").unwrap();
/// assert_eq!(config.announce_interval.as_millis(), 1000);
/// assert_eq!(config.max_entries, Config::default().max_entries);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Time between two announcements of the local entry (before jitter).
    #[serde(rename = "announce_interval_ms", with = "serde_ms")]
    pub announce_interval: Duration,
    /// Each announcement is moved by a uniform random offset in `±announce_jitter`, so nodes
    /// started together do not announce in lockstep.
    #[serde(rename = "announce_jitter_ms", with = "serde_ms")]
    pub announce_jitter: Duration,
    /// An entry is purged, and reported departed, this long after its owner signed it unless
    /// a newer copy arrives first. An entry signed longer ago than this is refused as outdated.
    #[serde(rename = "purge_after_ms", with = "serde_ms")]
    pub purge_after: Duration,
    /// Least time between two purge runs: the purge timer fires at the soonest expiry, but no
    /// sooner than this after the previous run, which batches expiries and bounds the work.
    #[serde(rename = "purge_tick_ms", with = "serde_ms")]
    pub purge_tick: Duration,
    /// Largest accepted difference between a peer's clock and ours: entries and departures
    /// stamped further in the future are refused, departures older than this are ignored.
    #[serde(rename = "max_drift_ms", with = "serde_ms")]
    pub max_drift: Duration,
    /// An entry not refreshed for this long counts as stale: when the catalog is full, a stale
    /// entry may be evicted to make room (see [`Catalog`](crate::Catalog)).
    #[serde(rename = "stale_after_ms", with = "serde_ms")]
    pub stale_after: Duration,
    /// Most remote entries held in the catalog.
    pub max_entries: usize,
    /// Most departure tombstones remembered (they stop late copies of a departed entry from
    /// bringing it back). When full, the oldest is forgotten.
    pub max_tombstones: usize,
    /// A sync session that has not finished after this long is abandoned.
    #[serde(rename = "sync_timeout_ms", with = "serde_ms")]
    pub sync_timeout: Duration,
    /// A peer that answered `Busy` is offered again after a random delay between half and
    /// one and a half times this.
    #[serde(rename = "sync_retry_ms", with = "serde_ms")]
    pub sync_retry: Duration,
    /// Most sync sessions in progress at once (initiated and served together). Further requests
    /// are refused with `Busy`, further initiations wait in the queue.
    pub max_sync_sessions: usize,
    /// Most peers waiting for a sync session. When full, new peers are not queued: their
    /// entries still arrive by announcement within one interval.
    pub max_sync_queue: usize,
    /// After a sync, how many of the peers it taught us are synced with in turn (the cascade).
    pub sync_cascade: usize,
    /// Largest sync message we build, in bytes: entries that do not fit are left out (they
    /// arrive by announcement). Also the largest sync message we accept.
    pub max_sync_message_bytes: usize,
    /// Most buckets in a sync fingerprint.
    pub max_sync_buckets: u16,
    /// A ping without a pong after this long has failed.
    #[serde(rename = "ping_timeout_ms", with = "serde_ms")]
    pub ping_timeout: Duration,
    /// Most pings waiting for their pong. Further pings are refused at once.
    pub max_pending_pings: usize,
    /// Answers to pings re-sign the local entry at most this often (re-signing on every ping
    /// would let anyone make us burn CPU).
    #[serde(rename = "min_resign_interval_ms", with = "serde_ms")]
    pub min_resign_interval: Duration,
    /// Bounds on the content of an entry.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            announce_interval: Duration::from_secs(30),
            announce_jitter: Duration::from_secs(5),
            purge_after: Duration::from_secs(90),
            purge_tick: Duration::from_secs(1),
            max_drift: Duration::from_secs(10),
            stale_after: Duration::from_secs(45),
            max_entries: 10_000,
            max_tombstones: 1024,
            sync_timeout: Duration::from_secs(10),
            sync_retry: Duration::from_secs(2),
            max_sync_sessions: 16,
            max_sync_queue: 256,
            sync_cascade: 2,
            max_sync_message_bytes: 1024 * 1024,
            max_sync_buckets: 1024,
            ping_timeout: Duration::from_secs(10),
            max_pending_pings: 64,
            min_resign_interval: Duration::from_secs(1),
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// Short timings for tests: announce every second, purge after three.
    pub fn for_tests() -> Self {
        Self {
            announce_interval: Duration::from_secs(1),
            announce_jitter: Duration::from_millis(100),
            purge_after: Duration::from_secs(3),
            purge_tick: Duration::from_millis(50),
            max_drift: Duration::from_millis(500),
            stale_after: Duration::from_millis(1500),
            sync_timeout: Duration::from_secs(1),
            sync_retry: Duration::from_millis(200),
            ping_timeout: Duration::from_secs(1),
            min_resign_interval: Duration::from_millis(10),
            ..Self::default()
        }
    }
}

/// Bounds on what one entry may carry. Every node of a network should use the same limits: an
/// entry valid for its owner but too large for a receiver is refused by that receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most tags.
    pub max_tags: usize,
    /// Longest tag, in bytes.
    pub max_tag_len: usize,
    /// Most metadata keys.
    pub max_metadata_entries: usize,
    /// Longest metadata key, in bytes.
    pub max_metadata_key_len: usize,
    /// Most bytes in all metadata keys and values together.
    pub max_metadata_bytes: usize,
    /// Most direct addresses.
    pub max_direct_addrs: usize,
    /// Most bytes in the signed payload of an entry.
    pub max_entry_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tags: 16,
            max_tag_len: 64,
            max_metadata_entries: 16,
            max_metadata_key_len: 64,
            max_metadata_bytes: 4096,
            max_direct_addrs: 16,
            max_entry_bytes: 8192,
        }
    }
}
