//! The actor's timers: proto [`Timer`]s on the shared monotonic
//! [`TimerQueue`](weft_transport::TimerQueue), so a step of the wall clock moves none of them.
//!
//! One pending firing per timer value: arming a timer again moves it. That is what the proto
//! means: it only acts on the latest announce and the earliest purge it armed, and the other
//! timers (sync and ping deadlines, sync retries) name their session, nonce or peer.
//!
//! Bound: [`MAX_TIMERS`] deadlines and retries. The announce and purge loops are periodic and
//! always admitted, so announcing and purging never stop. A deadline or retry that finds the
//! queue full fires at once: the ping or sync it guards fails (or is retried) early, which the
//! proto recovers from. The proto's own bounds (sessions, queue, pending pings) keep the
//! queue far below the bound; only a deadline left behind by every session that ended early
//! lingers, for at most `sync_timeout` or `ping_timeout`.

use crate::proto::Timer;

/// Deadlines and retries pending at once, at most (the periodic announce and purge come on
/// top). Beyond it a new one fires at once.
pub(crate) const MAX_TIMERS: usize = 16 * 1024;

/// The timers that drive the node's loops: never refused by a full queue.
pub(super) fn periodic(timer: &Timer) -> bool {
    matches!(timer, Timer::Announce | Timer::Purge)
}
