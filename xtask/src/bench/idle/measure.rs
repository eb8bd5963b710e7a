//! What the idle benchmark reads about its own process: resident memory, CPU time, loopback
//! bytes, live tokio tasks. Linux only; elsewhere the readings are `None` and the table says so.

use std::time::Duration;

/// Resident set size of this process, in bytes (`/proc/self/statm`, second field, in pages).
///
/// What it counts: every page of this process that is in memory, so beyond the nodes' own
/// allocations it holds what the allocator keeps (glibc's per-thread arenas and the free
/// memory it has not returned to the system) and code and data pages touched for the first
/// time. A delta over many nodes averages those out; it is what the nodes cost the machine.
pub(crate) fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The kernel's page size on every machine this runs on (x86-64, aarch64 with 4 KiB pages);
    // `statm` has no unit of its own.
    Some(pages * 4096)
}

/// User + system CPU time of every thread of this process so far, to the nanosecond
/// (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`: what `getrusage(RUSAGE_SELF)` sums, at a finer
/// grain than its microseconds and far finer than `/proc`'s 10 ms ticks).
pub(crate) fn process_cpu() -> Option<Duration> {
    #[cfg(unix)]
    {
        use rustix::time::{ClockId, clock_gettime};
        let now = clock_gettime(ClockId::ProcessCPUTime);
        Some(Duration::new(
            u64::try_from(now.tv_sec).ok()?,
            u32::try_from(now.tv_nsec).ok()?,
        ))
    }
    #[cfg(not(unix))]
    None
}

/// Bytes sent on the loopback interface so far (`/proc/net/dev`, `lo`, transmit bytes).
///
/// Only meaningful inside a network namespace of our own, where this process is the only one
/// on `lo`: the caller runs each row in one (`unshare -n`) and asks this only then. On
/// loopback every byte sent is a byte received, so this is the nodes' traffic counted once.
pub(crate) fn loopback_tx_bytes() -> Option<u64> {
    let dev = std::fs::read_to_string("/proc/net/dev").ok()?;
    let line = dev
        .lines()
        .find(|line| line.trim_start().starts_with("lo:"))?;
    // After "lo:": 8 receive fields, then transmit bytes.
    let fields: Vec<&str> = line.split_once(':')?.1.split_whitespace().collect();
    fields.get(8)?.parse().ok()
}

/// The 1-minute load average (`/proc/loadavg`), to print beside CPU figures on a shared machine.
pub(crate) fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Tasks alive on the current tokio runtime (spawned and not yet finished).
pub(crate) fn tokio_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}
