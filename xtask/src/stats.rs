//! Small statistics helpers for measurements.

use std::time::Duration;

/// The `p`-th percentile (0–100) of `samples`, by nearest rank. Sorts `samples`.
pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    // Nearest rank: the smallest sample with at least p% of samples at or below it.
    #[allow(clippy::cast_possible_truncation)]
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// The median of `values`. Sorts `values`.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, in clock ticks
/// assumed to be 10 ms, the kernel's usual `USER_HZ`); `None` elsewhere.
pub(crate) fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces): the first
    // is field 3 (state); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time of the calling thread so far, to the nanosecond (`clock_gettime` with the thread
/// CPU clock); [`process_cpu`] where there is no such clock, coarser and counting every thread.
pub(crate) fn thread_cpu() -> Option<Duration> {
    #[cfg(unix)]
    {
        use rustix::time::{ClockId, clock_gettime};
        let now = clock_gettime(ClockId::ThreadCPUTime);
        Some(Duration::new(
            u64::try_from(now.tv_sec).ok()?,
            u32::try_from(now.tv_nsec).ok()?,
        ))
    }
    #[cfg(not(unix))]
    process_cpu()
}
