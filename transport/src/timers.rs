//! A bounded queue of protocol timers on monotonic time, for the actors that drive sans-IO
//! protos.
//!
//! A proto asks for `timer` at monotonic time `at`; the actor [`schedule`](TimerQueue::schedule)s
//! it, sleeps until [`next_deadline`](TimerQueue::next_deadline), and feeds back every timer
//! [`pop_due`](TimerQueue::pop_due) returns. Deadlines are [`Duration`]s on the monotonic clock
//! of [`Now`](crate::Now), so a step of the wall clock moves no timer.
//!
//! # One pending firing per timer value
//! Scheduling a timer that is already pending moves it. Protocol timers name what they are for
//! (a request id, a session, *the* tick), so a second arming replaces the first.
//!
//! # Bound, and the policy when full
//! At most `capacity` one-shot timers are pending. *Periodic* timers (the protocol's ticks,
//! recognised by the predicate given to [`TimerQueue::new`]) are always admitted: they are a
//! handful of distinct values and re-arming moves them, so they add at most that many entries
//! beyond the bound. A periodic tick is therefore never refused, and a protocol loop driven by
//! one cannot stop. A *new* one-shot timer that finds the queue full is refused and handed back
//! ([`Full`]); nothing is dropped silently. The caller decides (the weft actors fire it at once:
//! a request time-out fires early rather than never, so no request waits forever).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::Duration,
};

/// A timer refused by a full [`TimerQueue`]: handed back to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full<T> {
    /// When it was asked for.
    pub at: Duration,
    /// The timer.
    pub timer: T,
}

impl<T: fmt::Debug> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timer queue full: {:?} at {:?} refused",
            self.timer, self.at
        )
    }
}

impl<T: fmt::Debug> std::error::Error for Full<T> {}

/// Timers due at monotonic deadlines, at most one pending per timer value, bounded.
///
/// At most `capacity` one-shot timers are pending; periodic ones (recognised by the predicate
/// given to [`TimerQueue::new`]) are always admitted, and a new one-shot timer that finds the
/// queue full is handed back as [`Full`], never dropped silently.
///
/// ```
/// use std::time::Duration;
/// use weft_transport::TimerQueue;
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
/// enum Timer { Tick, Request(u64) }
///
/// let mut timers = TimerQueue::new(1, |t| matches!(t, Timer::Tick));
/// let ms = Duration::from_millis;
/// timers.schedule(ms(30), Timer::Request(1)).unwrap();
/// // Full for one-shot timers, but a tick always gets in.
/// assert!(timers.schedule(ms(10), Timer::Request(2)).is_err());
/// timers.schedule(ms(20), Timer::Tick).unwrap();
/// assert_eq!(timers.next_deadline(), Some(ms(20)));
/// assert_eq!(timers.pop_due(ms(25)), Some(Timer::Tick));
/// assert_eq!(timers.pop_due(ms(25)), None);
/// ```
pub struct TimerQueue<T> {
    /// Each pending timer's deadline and arming number.
    by_timer: BTreeMap<T, (Duration, u64)>,
    /// Pending timers by deadline, then in the order they were armed.
    by_deadline: BTreeSet<(Duration, u64, T)>,
    /// Arming number of the next `schedule`: ties fire first armed, first fired.
    armed: u64,
    /// Pending timers that count against `capacity` (the one-shot ones).
    one_shot: usize,
    capacity: usize,
    periodic: fn(&T) -> bool,
}

impl<T: Ord + Copy> TimerQueue<T> {
    /// An empty queue holding at most `capacity` one-shot timers; timers for which `periodic`
    /// is true are always admitted (see the module docs).
    pub fn new(capacity: usize, periodic: fn(&T) -> bool) -> Self {
        Self {
            by_timer: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
            armed: 0,
            one_shot: 0,
            capacity,
            periodic,
        }
    }

    /// Arms `timer` at monotonic time `at`, moving it if it is pending already. Refuses a new
    /// one-shot timer when `capacity` of them are pending, handing it back.
    pub fn schedule(&mut self, at: Duration, timer: T) -> Result<(), Full<T>> {
        self.armed += 1;
        let armed = self.armed;
        if let Some(old) = self.by_timer.get_mut(&timer) {
            self.by_deadline.remove(&(old.0, old.1, timer));
            *old = (at, armed);
            self.by_deadline.insert((at, armed, timer));
            return Ok(());
        }
        let periodic = (self.periodic)(&timer);
        if !periodic {
            if self.one_shot >= self.capacity {
                return Err(Full { at, timer });
            }
            self.one_shot += 1;
        }
        self.by_timer.insert(timer, (at, armed));
        self.by_deadline.insert((at, armed, timer));
        Ok(())
    }

    /// When the soonest timer is due.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.by_deadline.first().map(|(at, _, _)| *at)
    }

    /// Removes and returns a timer due by `now`, soonest first; timers due at the same time
    /// in the order they were armed.
    pub fn pop_due(&mut self, now: Duration) -> Option<T> {
        let &(at, _, timer) = self.by_deadline.first()?;
        if at > now {
            return None;
        }
        self.by_deadline.pop_first();
        self.forget(&timer);
        Some(timer)
    }

    /// Cancels `timer`; returns whether it was pending.
    pub fn cancel(&mut self, timer: &T) -> bool {
        let Some((at, armed)) = self.by_timer.get(timer).copied() else {
            return false;
        };
        self.by_deadline.remove(&(at, armed, *timer));
        self.forget(timer);
        true
    }

    fn forget(&mut self, timer: &T) {
        self.by_timer.remove(timer);
        if !(self.periodic)(timer) {
            self.one_shot -= 1;
        }
    }

    /// Pending timers, periodic ones included.
    pub fn len(&self) -> usize {
        self.by_timer.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.by_timer.is_empty()
    }

    /// The bound on pending one-shot timers.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl<T: fmt::Debug> fmt::Debug for TimerQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerQueue")
            .field("pending", &self.by_deadline)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Timer {
        Tick,
        Purge,
        Request(u64),
    }

    fn periodic(t: &Timer) -> bool {
        matches!(t, Timer::Tick | Timer::Purge)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn timers_due_at_the_same_time_fire_in_the_order_they_were_armed() {
        let mut q = TimerQueue::new(8, periodic);
        q.schedule(ms(10), Timer::Request(3)).unwrap();
        q.schedule(ms(10), Timer::Request(1)).unwrap();
        q.schedule(ms(10), Timer::Request(2)).unwrap();
        let fired: Vec<Timer> = std::iter::from_fn(|| q.pop_due(ms(10))).collect();
        assert_eq!(
            fired,
            vec![Timer::Request(3), Timer::Request(1), Timer::Request(2)]
        );
    }

    #[test]
    fn rearming_moves_a_timer_and_due_ones_pop_in_order() {
        let mut q = TimerQueue::new(8, periodic);
        q.schedule(ms(100), Timer::Tick).unwrap();
        q.schedule(ms(50), Timer::Purge).unwrap();
        q.schedule(ms(70), Timer::Request(1)).unwrap();
        // The tick moves; it does not fire twice.
        q.schedule(ms(60), Timer::Tick).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(q.next_deadline(), Some(ms(50)));
        assert_eq!(q.pop_due(ms(40)), None);
        let due: Vec<Timer> = std::iter::from_fn(|| q.pop_due(ms(200))).collect();
        assert_eq!(due, [Timer::Purge, Timer::Tick, Timer::Request(1)]);
        assert_eq!(q.next_deadline(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_queue_refuses_new_one_shots_but_never_a_tick() {
        let mut q = TimerQueue::new(2, periodic);
        q.schedule(ms(10), Timer::Request(1)).unwrap();
        q.schedule(ms(20), Timer::Request(2)).unwrap();
        assert_eq!(
            q.schedule(ms(5), Timer::Request(3)),
            Err(Full {
                at: ms(5),
                timer: Timer::Request(3)
            })
        );
        // Moving a pending one-shot needs no room.
        q.schedule(ms(30), Timer::Request(2)).unwrap();
        // Ticks get in whatever the load, and keep getting in as they re-arm.
        for round in 0..1000 {
            q.schedule(ms(40 + round), Timer::Tick).unwrap();
            q.schedule(ms(45 + round), Timer::Purge).unwrap();
            let _ = q.schedule(ms(40 + round), Timer::Request(100 + round));
        }
        assert_eq!(q.len(), 4);
        // Room comes back as one-shots fire or are cancelled.
        assert_eq!(q.pop_due(ms(10)), Some(Timer::Request(1)));
        q.schedule(ms(5), Timer::Request(3)).unwrap();
        assert!(q.cancel(&Timer::Request(3)));
        assert!(!q.cancel(&Timer::Request(3)));
        q.schedule(ms(6), Timer::Request(4)).unwrap();
        assert!(q.schedule(ms(7), Timer::Request(5)).is_err());
    }

    #[test]
    fn a_tick_keeps_firing_under_a_flood_of_one_shots() {
        // The registry bug this replaces: a capped map dropped the re-armed tick once requests
        // filled it, and republishing stopped for good.
        let mut q = TimerQueue::new(16, periodic);
        let mut now = ms(0);
        q.schedule(now + ms(10), Timer::Tick).unwrap();
        let mut ticks = 0;
        let mut refused = 0;
        let mut id = 0;
        for _ in 0..100 {
            now += ms(10);
            while let Some(timer) = q.pop_due(now) {
                if timer == Timer::Tick {
                    ticks += 1;
                    q.schedule(now + ms(10), Timer::Tick).unwrap();
                }
            }
            for _ in 0..50 {
                id += 1;
                if q.schedule(now + ms(1000), Timer::Request(id)).is_err() {
                    refused += 1;
                }
            }
        }
        assert_eq!(ticks, 100);
        assert!(refused > 0);
        assert!(q.len() <= 17);
    }
}
