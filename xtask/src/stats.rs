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
