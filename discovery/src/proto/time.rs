//! Time as the proto sees it: wall-clock milliseconds passed in by the caller.
//!
//! Discovery compares timestamps made by different peers (an entry signed "in the future", a
//! departure "too old"), so its clock is the wall clock, not a monotonic one. The proto never
//! reads it: the runtime passes `now` into every call, and the simulator passes virtual time.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since the Unix epoch (or since the start of a simulation).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Time(u64);

impl Time {
    /// The time `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(millis(d)))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(millis(d)))
    }

    /// How long after `earlier` this is (zero when `earlier` is later).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;

    /// Saturating, like [`Time::saturating_add`].
    fn add(self, d: Duration) -> Time {
        self.saturating_add(d)
    }
}

impl std::ops::Sub<Duration> for Time {
    type Output = Time;

    /// Saturating, like [`Time::saturating_sub`].
    fn sub(self, d: Duration) -> Time {
        self.saturating_sub(d)
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

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
