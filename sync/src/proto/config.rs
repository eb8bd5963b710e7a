//! The sync layer's limits and timings: plain data with `Default` and serde, so scenario files
//! written in TOML can set them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits and timings of a sync manager. Every bound says what happens when it is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Most topics synced at once; a further `subscribe` is refused.
    pub max_topics: usize,
    /// Most sessions of one topic (both roles); a further inbound session is refused with
    /// `TooManySessions` and no outbound one is opened.
    pub max_sessions_per_topic: usize,
    /// Most sessions with one peer across all topics; a further one is refused the same way.
    pub max_sessions_per_peer: usize,
    /// Most inbound sessions waiting for their `Hello` at once; a further stream is refused
    /// with `TooManySessions` at once (peer ids are free: this bounds what silent streams from
    /// many identities can hold).
    pub max_pending_handshakes: usize,
    /// Largest session frame (handshake, protocol message) read or written; a larger one fails
    /// the session before it is buffered.
    pub max_frame_size: usize,
    /// Negentropy's frame size limit for reconciliation messages (0: unlimited; else at least
    /// 4,096). Must leave room for framing inside `max_frame_size`.
    pub reconcile_frame_limit: usize,
    /// Most item ids in one `Want` or `Offer`; a larger list fails the session.
    pub max_batch_items: usize,
    /// Most item ids requested and not yet answered, per session (pipelining depth).
    pub max_requested_items: usize,
    /// Most ids waiting to be fetched in one session (wanted, or deferred while another
    /// session fetches them); more fail the session. Costs about 40 bytes an id.
    pub max_wanted_items: usize,
    /// Largest item accepted (encoded bytes); a larger one is refused at insert and fails the
    /// session that carries it.
    pub max_item_size: usize,
    /// A handshake, or a catch-up that receives nothing for this long, fails the session.
    #[serde(with = "duration_ms")]
    pub session_timeout: Duration,
    /// The neighbour with the higher id waits this long for the lower one to open the session
    /// before it opens one itself.
    #[serde(with = "duration_ms")]
    pub fallback_wait: Duration,
    /// First retry delay after a failed session; doubles on every failure.
    #[serde(with = "duration_ms")]
    pub retry_base: Duration,
    /// Longest retry delay.
    #[serde(with = "duration_ms")]
    pub retry_max: Duration,
    /// Most sessions one peer may open on one topic per `attempt_window`; more are refused
    /// with `TooManyAttempts` (a peer opening sessions in a loop).
    pub max_attempts_per_window: u32,
    /// The window of `max_attempts_per_window`.
    #[serde(with = "duration_ms")]
    pub attempt_window: Duration,
    /// Most (peer, topic) pairs whose attempts are counted; the oldest window is forgotten
    /// first.
    pub max_tracked_peers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_topics: 256,
            max_sessions_per_topic: 64,
            max_sessions_per_peer: 64,
            max_pending_handshakes: 64,
            max_frame_size: 1024 * 1024,
            reconcile_frame_limit: 500_000,
            max_batch_items: 256,
            max_requested_items: 1024,
            max_wanted_items: 1_000_000,
            max_item_size: 256 * 1024,
            session_timeout: Duration::from_secs(30),
            fallback_wait: Duration::from_secs(1),
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            max_attempts_per_window: 20,
            attempt_window: Duration::from_secs(60),
            max_tracked_peers: 4096,
        }
    }
}

/// Durations in TOML as integer milliseconds.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
