//! The actor's timers: proto [`Timer`]s due at wall-clock [`Time`]s.
//!
//! One pending firing per timer value: arming a timer again moves it. That is what the proto
//! means: it only acts on the latest announce and the earliest purge it armed, and the other
//! timers (sync and ping deadlines, sync retries) name their session, nonce or peer. So the
//! table holds at most one announce, one purge, one deadline per sync session and pending ping,
//! and one retry per peer waiting for one, all bounded by the proto's own limits.

use std::collections::{BTreeMap, BTreeSet};

use crate::proto::{Time, Timer};

#[derive(Debug, Default)]
pub(super) struct Timers {
    by_timer: BTreeMap<Timer, Time>,
    by_time: BTreeSet<(Time, Timer)>,
}

impl Timers {
    /// Arms `timer` at `at`, replacing an earlier arming of the same timer.
    pub(super) fn arm(&mut self, timer: Timer, at: Time) {
        if let Some(old) = self.by_timer.insert(timer, at) {
            self.by_time.remove(&(old, timer));
        }
        self.by_time.insert((at, timer));
    }

    /// When the next timer is due.
    pub(super) fn next(&self) -> Option<Time> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns a timer due by `now`.
    pub(super) fn pop_due(&mut self, now: Time) -> Option<Timer> {
        let &(at, timer) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.pop_first();
        self.by_timer.remove(&timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use weft_transport::SecretKey;

    use super::*;

    #[test]
    fn rearming_moves_a_timer_and_due_ones_pop_in_order() {
        let peer = SecretKey::from_bytes(&[1; 32]).peer_id();
        let mut timers = Timers::default();
        timers.arm(Timer::Announce, Time::from_millis(100));
        timers.arm(Timer::Purge, Time::from_millis(50));
        timers.arm(Timer::SyncRetry { peer }, Time::from_millis(70));
        // The announce timer moves; it does not fire twice.
        timers.arm(Timer::Announce, Time::from_millis(60));
        assert_eq!(timers.next(), Some(Time::from_millis(50)));
        assert_eq!(timers.pop_due(Time::from_millis(40)), None);
        let due: Vec<Timer> =
            std::iter::from_fn(|| timers.pop_due(Time::from_millis(200))).collect();
        assert_eq!(
            due,
            [Timer::Purge, Timer::Announce, Timer::SyncRetry { peer }]
        );
        assert_eq!(timers.next(), None);
    }
}
