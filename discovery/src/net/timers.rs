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
