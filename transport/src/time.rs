//! Time as every weft protocol sees it: two clocks, each for its own job.
//!
//! - **Monotonic** time, a [`Duration`] since an arbitrary origin (the runtime's start, or the
//!   start of a simulation), runs every timer and every duration a protocol measures: request
//!   time-outs, round trips, ticks, republish and purge schedules, liveness ages. It never
//!   jumps, so a clock step cannot fire every timer at once or stall a tick.
//! - **Wall** time, [`WallTime`] (milliseconds since the Unix epoch), is only for what a
//!   signature covers: the timestamps and expiries that peers compare with their own clocks.
//!
//! A sans-IO proto reads neither: the runtime reads both at once into a [`Now`] and passes it
//! with every input; a simulator passes virtual time. With the feature `net`, [`Clock`] is the
//! runtime's reader, its wall half injectable through [`WallClock`] (tests step it).

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

/// A point on the wall clock: milliseconds since the Unix epoch (or since the start of a
/// simulation). Only for signed fields and the freshness checks of signed data: everything else
/// runs on the monotonic part of [`Now`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WallTime(pub u64);

impl WallTime {
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
    pub fn since(self, earlier: WallTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for WallTime {
    type Output = WallTime;

    /// Saturating, like [`WallTime::saturating_add`].
    fn add(self, d: Duration) -> WallTime {
        self.saturating_add(d)
    }
}

impl std::ops::Sub<Duration> for WallTime {
    type Output = WallTime;

    /// Saturating, like [`WallTime::saturating_sub`].
    fn sub(self, d: Duration) -> WallTime {
        self.saturating_sub(d)
    }
}

impl fmt::Debug for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A duration in whole milliseconds, saturating (no duration we handle comes near 584 million
/// years, but the conversion must not panic on a hostile config).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Both clocks, read at the same instant: what a proto is given with every input.
///
/// `mono` schedules timers and measures durations; `wall` stamps and checks signed data.
///
/// ```
/// use std::time::Duration;
/// use weft_transport::{Now, WallTime};
///
/// // A simulator runs both clocks from its virtual time.
/// let now = Now::virtual_millis(1_500);
/// assert_eq!(now.mono, Duration::from_millis(1_500));
/// assert_eq!(now.wall, WallTime::from_millis(1_500));
/// // A runtime whose wall clock stepped an hour ahead: timers do not notice.
/// let later = Now { mono: now.mono + Duration::from_millis(10), wall: now.wall + Duration::from_secs(3600) };
/// assert_eq!(later.mono - now.mono, Duration::from_millis(10));
/// assert!(later.wall_offset() - now.wall_offset() > 3_599_000);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Now {
    /// Monotonic time since the runtime's (or the simulation's) origin.
    pub mono: Duration,
    /// Wall-clock time.
    pub wall: WallTime,
}

impl Now {
    /// Both clocks at `ms` milliseconds of virtual time (a simulator's or a test's).
    pub const fn virtual_millis(ms: u64) -> Self {
        Self {
            mono: Duration::from_millis(ms),
            wall: WallTime::from_millis(ms),
        }
    }

    /// Wall minus monotonic time, in milliseconds. Constant while neither clock jumps (it drifts
    /// by the wall clock's slew): a change bigger than any drift means the wall clock stepped.
    pub fn wall_offset(&self) -> i128 {
        i128::from(self.wall.0) - i128::try_from(self.mono.as_millis()).unwrap_or(i128::MAX)
    }
}

impl fmt::Debug for Now {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Now({:?} mono, {:?} wall)", self.mono, self.wall)
    }
}

/// Watches the offset between the two clocks of successive [`Now`]s and reports when the wall
/// clock stepped (NTP, suspend and resume, a VM migration), so that a proto can re-sign what it
/// stamped with the old wall clock at once rather than at its next round.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepDetector {
    offset: Option<i128>,
}

impl StepDetector {
    /// Feeds the time of an input; returns the step, in milliseconds (positive: the wall clock
    /// jumped ahead), when the offset moved by more than `threshold` since the last call.
    /// Slower changes (a slewing clock) are followed without a report.
    pub fn observe(&mut self, now: Now, threshold: Duration) -> Option<i128> {
        let offset = now.wall_offset();
        let previous = self.offset.replace(offset)?;
        let step = offset - previous;
        (step.unsigned_abs() > threshold.as_millis()).then_some(step)
    }
}

#[cfg(feature = "net")]
pub use runtime::{Clock, OffsetWallClock, SystemWallClock, WallClock};

#[cfg(feature = "net")]
mod runtime {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicI64, Ordering},
        },
        time::{Duration, Instant, SystemTime, UNIX_EPOCH},
    };

    use super::{Now, WallTime};

    /// A source of wall-clock time. The system clock by default; tests inject one they can
    /// step.
    pub trait WallClock: Send + Sync + std::fmt::Debug + 'static {
        /// The current wall-clock time.
        fn now(&self) -> WallTime;
    }

    /// The operating system's wall clock.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct SystemWallClock;

    impl WallClock for SystemWallClock {
        fn now(&self) -> WallTime {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            WallTime(u64::try_from(ms).unwrap_or(u64::MAX))
        }
    }

    /// The system wall clock moved by an offset that can be changed at any time: steps the
    /// clock under running nodes in tests.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weft_transport::{OffsetWallClock, SystemWallClock, WallClock};
    ///
    /// let clock = OffsetWallClock::default();
    /// clock.step_forward(Duration::from_secs(3600));
    /// assert!(clock.now().since(SystemWallClock.now()) >= Duration::from_secs(3599));
    /// ```
    #[derive(Debug, Default)]
    pub struct OffsetWallClock {
        offset_ms: AtomicI64,
    }

    impl OffsetWallClock {
        /// Moves the clock ahead by `d`.
        pub fn step_forward(&self, d: Duration) {
            self.offset_ms.fetch_add(ms(d), Ordering::SeqCst);
        }

        /// Moves the clock back by `d`.
        pub fn step_back(&self, d: Duration) {
            self.offset_ms.fetch_sub(ms(d), Ordering::SeqCst);
        }
    }

    fn ms(d: Duration) -> i64 {
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }

    impl WallClock for OffsetWallClock {
        fn now(&self) -> WallTime {
            let system = SystemWallClock.now().0;
            let offset = self.offset_ms.load(Ordering::SeqCst);
            WallTime(system.saturating_add_signed(offset))
        }
    }

    /// A runtime's clocks: monotonic time since the clock was made, and a wall clock.
    #[derive(Debug, Clone)]
    pub struct Clock {
        origin: Instant,
        wall: Arc<dyn WallClock>,
    }

    impl Default for Clock {
        fn default() -> Self {
            Self::new(Arc::new(SystemWallClock))
        }
    }

    impl Clock {
        /// Monotonic time from now on, and `wall` for wall-clock time.
        pub fn new(wall: Arc<dyn WallClock>) -> Self {
            Self {
                origin: Instant::now(),
                wall,
            }
        }

        /// Reads both clocks.
        pub fn now(&self) -> Now {
            Now {
                mono: self.origin.elapsed(),
                wall: self.wall.now(),
            }
        }

        /// The instant at monotonic time `mono` (to sleep until a timer's deadline).
        pub fn instant(&self, mono: Duration) -> Instant {
            self.origin + mono
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_saturates_and_measures() {
        let t = WallTime::from_millis(1_000) + Duration::from_secs(2);
        assert_eq!(t.as_millis(), 3_000);
        assert_eq!(t.since(WallTime(500)), Duration::from_millis(2_500));
        assert_eq!(WallTime(5).since(t), Duration::ZERO);
        assert_eq!(WallTime(5) - Duration::from_secs(1), WallTime(0));
        assert_eq!(WallTime(u64::MAX) + Duration::MAX, WallTime(u64::MAX));
    }

    #[test]
    fn step_detector_reports_steps_both_ways_and_follows_drift() {
        let mut steps = StepDetector::default();
        let threshold = Duration::from_millis(100);
        let at = |mono: u64, wall: u64| Now {
            mono: Duration::from_millis(mono),
            wall: WallTime(wall),
        };
        assert_eq!(steps.observe(at(0, 10_000), threshold), None);
        // Slewing: 50 ms of drift twice is followed, never reported.
        assert_eq!(steps.observe(at(1_000, 11_050), threshold), None);
        assert_eq!(steps.observe(at(2_000, 12_100), threshold), None);
        assert_eq!(
            steps.observe(at(3_000, 3_613_100), threshold),
            Some(3_600_000)
        );
        assert_eq!(
            steps.observe(at(4_000, 14_100), threshold),
            Some(-3_600_000)
        );
        assert_eq!(steps.observe(at(5_000, 15_100), threshold), None);
    }

    #[cfg(feature = "net")]
    #[test]
    fn offset_clock_steps_both_ways_while_mono_does_not() {
        use std::sync::Arc;
        let wall = Arc::new(OffsetWallClock::default());
        let clock = Clock::new(wall.clone());
        let before = clock.now();
        wall.step_forward(Duration::from_secs(3600));
        let ahead = clock.now();
        assert!(ahead.wall.since(before.wall) >= Duration::from_secs(3600));
        wall.step_back(Duration::from_secs(7200));
        let behind = clock.now();
        assert!(before.wall.since(behind.wall) >= Duration::from_secs(3599));
        assert!(behind.mono >= ahead.mono && ahead.mono >= before.mono);
        assert!(behind.mono - before.mono < Duration::from_secs(60));
    }
}
