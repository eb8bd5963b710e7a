//! Time as the proto sees it: [`Now`], both clocks read by the caller.
//!
//! Timers, the purge schedule, liveness ages (refreshed, last contact, eviction), round trips
//! and rate limits run on the monotonic part, `now.mono`. The wall part, `now.wall` ([`Time`]),
//! is only for what a signature covers: entry and departure timestamps, their freshness checks
//! against peers' clocks, and the remaining life of a received entry, which is turned into a
//! monotonic expiry once, on receipt. The proto never reads a clock: the runtime passes `now`
//! into every call, and the simulator passes virtual time.

use std::time::Duration;

pub use weft_transport::{Now, WallTime as Time};

/// A duration in whole milliseconds, saturating (no duration we handle comes near 584 million
/// years, but the conversion must not panic on a hostile config).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Serde helper: a [`Duration`] as whole milliseconds, so TOML says `announce_interval_ms = 30000`.
pub(crate) mod serde_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::millis(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
