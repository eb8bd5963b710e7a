//! Phase 5: a flood of throwaway identities against catalogs with a small bound (see
//! [`Scenario::flood`](super::Scenario::flood)).

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weft_transport::SecretKey;

use super::{
    Goal, ScenarioReport, phase, reset,
    scenario::Scenario,
    world::{Action, FloodCounters, World},
};

/// Phases the flood runs after the last stranger joined, in announce intervals: long enough
/// for every stranger to announce and sync several times, and for stale entries to be evicted.
const AFTER_LAST_JOIN: u32 = 3;

/// Runs the flood and adds its phase, goal and counters to `report`.
pub(super) fn flood_phase(world: &mut World, scenario: &Scenario, report: &mut ScenarioReport) {
    let config = &scenario.config;
    // The flood meets a settled network: every live honest peer is live in every honest
    // catalog. After a long partition some entries expired and came back with the next
    // announcement after the heal (delta sync does not resend an unchanged version), so they
    // are on probation again until a refresh after `stale_after`: two announce periods on top.
    let period = config.announce_interval + config.announce_jitter;
    world.run_until(world.now + config.stale_after + period * 2);
    // Strangers' keys come from a stream of their own: the earlier phases draw exactly what
    // they drew without a flood.
    let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed ^ 0x0f10_0d00);
    let start = world.now;
    let gap = Duration::from_millis(scenario.join_interval_ms);
    let mut last = start;
    for k in 0..scenario.flood {
        let i = world.add_node(SecretKey::from_bytes(&rng.random::<[u8; 32]>()));
        last = start + gap * u32::try_from(k).unwrap_or(u32::MAX);
        world.schedule(last, Action::Join(i));
    }
    reset(world);
    world.flood = FloodCounters::default();
    world.run_until(last + config.announce_interval * AFTER_LAST_JOIN);

    let honest: Vec<usize> = (0..world.honest).filter(|&i| world.is_live(i)).collect();
    let missing = honest
        .iter()
        .filter_map(|&i| world.nodes[i].node.as_ref())
        .map(|node| {
            let catalog = node.catalog();
            honest
                .iter()
                .filter(|&&j| world.id(j) != catalog.local_id() && !catalog.contains(&world.id(j)))
                .count()
        })
        .sum::<usize>();
    let counters = world.flood;
    let bound = config.max_entries;
    report.goals.push(Goal {
        goal: format!(
            "{} throwaway identities against catalogs of {bound}: no live honest peer evicted",
            scenario.flood
        ),
        measured: format!(
            "{} honest evictions, {missing} honest entries missing; in honest catalogs strangers \
             admitted {}, evicted {}, offers refused {}",
            counters.honest_evicted,
            counters.strangers_admitted,
            counters.strangers_evicted,
            counters.refused_full
        ),
        met: counters.honest_evicted == 0 && missing == 0,
    });
    report.flood_honest_evicted = Some(counters.honest_evicted);
    let now = world.now;
    report.phases.push(phase(world, "flood", start, Some(now)));
}
