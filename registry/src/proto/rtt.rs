//! The round-trip estimate behind a lookup's stall time.
//!
//! One estimate per node, over every answer it gets (RFC 6298's smoothed round trip and its
//! variation), not one per peer: peers are free to make up, and a lookup mostly asks peers it
//! has never asked before. Answers from near and far peers alike widen the variation, so the
//! stall time covers the spread of round trips across the network, not just the mean.

use std::time::Duration;

/// Smoothed round trip and its variation, as TCP keeps them.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RttEstimate {
    smoothed: Option<Duration>,
    variation: Duration,
}

impl RttEstimate {
    /// Takes one answer's round trip into the estimate.
    pub(super) fn sample(&mut self, rtt: Duration) {
        match self.smoothed {
            None => {
                self.smoothed = Some(rtt);
                self.variation = rtt / 2;
            }
            Some(smoothed) => {
                self.variation = (self.variation * 3 + smoothed.abs_diff(rtt)) / 4;
                self.smoothed = Some((smoothed * 7 + rtt) / 8);
            }
        }
    }

    /// How long a lookup waits for an answer before it stops counting on it: the smoothed round
    /// trip plus two variations (TCP waits four before retransmitting; a lookup can afford an
    /// early stall, as the late answer is still used), at least `min` and at most `timeout`
    /// (where the request fails anyway). A quarter of `timeout` before any answer was seen.
    pub(super) fn stall_after(&self, min: Duration, timeout: Duration) -> Duration {
        let stall = match self.smoothed {
            Some(smoothed) => smoothed + self.variation * 2,
            None => timeout / 4,
        };
        stall.clamp(min.min(timeout), timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(20);
    const TIMEOUT: Duration = Duration::from_secs(2);

    #[test]
    fn before_any_answer_a_quarter_of_the_timeout() {
        let rtt = RttEstimate::default();
        assert_eq!(rtt.stall_after(MIN, TIMEOUT), Duration::from_millis(500));
    }

    #[test]
    fn steady_round_trips_give_a_stall_time_near_them() {
        let mut rtt = RttEstimate::default();
        for _ in 0..50 {
            rtt.sample(Duration::from_millis(40));
        }
        let stall = rtt.stall_after(MIN, TIMEOUT);
        assert!(
            stall >= Duration::from_millis(40) && stall < Duration::from_millis(45),
            "{stall:?}"
        );
    }

    #[test]
    fn spread_round_trips_widen_the_stall_time() {
        let mut rtt = RttEstimate::default();
        for i in 0..100u64 {
            rtt.sample(Duration::from_millis(if i % 2 == 0 { 10 } else { 100 }));
        }
        let stall = rtt.stall_after(MIN, TIMEOUT);
        assert!(stall > Duration::from_millis(150), "{stall:?}");
    }

    #[test]
    fn bounded_by_the_minimum_and_the_timeout() {
        let mut fast = RttEstimate::default();
        fast.sample(Duration::from_micros(100));
        assert_eq!(fast.stall_after(MIN, TIMEOUT), MIN);
        let mut slow = RttEstimate::default();
        slow.sample(Duration::from_secs(5));
        assert_eq!(slow.stall_after(MIN, TIMEOUT), TIMEOUT);
        // A minimum above the timeout yields the timeout.
        assert_eq!(slow.stall_after(TIMEOUT * 2, TIMEOUT), TIMEOUT);
    }
}
