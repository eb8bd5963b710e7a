//! A deterministic simulator of discovery over the sans-IO [`crate::Node`]: up to 10,000 nodes
//! in one process, virtual time, a uniform latency model, seeded randomness.
//!
//! The gossip topic is modelled simply: a broadcast reaches every live node on the sender's
//! side of a partition after one latency. Gossip's own tree, losses and relaying cost are
//! weft-gossip's to simulate; here only discovery's behaviour is measured. See [`Scenario`] for
//! the phases and the rest of the model.
//!
//! ```
//! use weft_discovery::sim::{Scenario, run_scenario};
//!
//! let report = run_scenario(&Scenario {
//!     nodes: 30,
//!     crashes: 2,
//!     departures: 2,
//!     ..Scenario::default()
//! });
//! assert!(report.goals_met(), "{report}");
//! println!("{report}");
//! ```
//!
//! Run from the workspace: `cargo xtask sim discovery [FILE.toml]` (default file:
//! `discovery/sim/default.toml`); [`Report::figures`] are what `--save-baseline` keeps
//! (`discovery/sim/baseline.toml`) and `--baseline` compares with.
//!
//! # Scale
//!
//! Every catalog holds every peer, so a run costs the square of its size: 10^8 records at
//! 10,000 nodes, and 10^8 deliveries per announce interval, each a lookup in the receiver's
//! catalog. The proto keeps that affordable without a simulator-only path: an announcement is
//! one [`SharedEntry`](crate::SharedEntry) (verified, checked for canonical encoding and
//! measured once) that every catalog shares, and a catalog is a table of 64-byte slots, so a
//! refresh misses cache once. The world queues one event per broadcast and latency instead of
//! one per receiver, looks the next receivers' slots up ahead so their misses overlap, and
//! counts sync bytes from the entries' known sizes instead of encoding them.
//!
//! Measured with `/usr/bin/time -v` on the project's 2-core machine, shared with other builds:
//!
//! | command | nodes | wall | user CPU | peak RSS |
//! |---|---|---|---|---|
//! | `cargo xtask sim discovery` | 1,000 | 12 s | 5.9 s | 0.21 GB |
//! | `cargo xtask sim discovery discovery/sim/10k.toml` | 10,000 | 21 min 37 s | 19 min 4 s | 15.4 GB |
//!
//! At 10,000 nodes every goal is met: complete catalogs 1.81 announce intervals after the
//! first join, a crashed node purged everywhere in 84.8 s, a departed one in 100 ms, and the
//! heal after a half/half partition sends 0.009 × the bytes of full-snapshot sync.
//! `docs/protocols/discovery.md` has the full table.

mod flood;
mod report;
mod scenario;
mod world;

use std::time::Duration;

use rand::seq::IteratorRandom;

pub use report::{Goal, PhaseReport, Report, ScenarioReport};
pub use scenario::{Scenario, ScenarioFile};
use world::{Action, Counters, World};

use crate::proto::{Time, time_millis};

/// Time left between phases so in-flight messages land before the next phase starts.
const SETTLE: Duration = Duration::from_secs(2);

/// Runs every scenario of a file, in order.
pub fn run_scenarios(file: &ScenarioFile) -> Report {
    Report {
        scenarios: file.scenarios.iter().map(run_scenario).collect(),
    }
}

/// Runs one scenario.
pub fn run_scenario(scenario: &Scenario) -> ScenarioReport {
    let n = scenario.nodes.clamp(1, 10_000);
    let mut world = World::new(&Scenario {
        nodes: n,
        ..scenario.clone()
    });
    let config = &scenario.config;
    let interval = config.announce_interval;
    let check = Duration::from_millis(scenario.check_interval_ms.max(1));
    let max_phase = interval * u32::try_from(scenario.max_phase_intervals.max(1)).unwrap_or(10);
    let mut report = ScenarioReport {
        name: scenario.name.clone(),
        seed: scenario.seed,
        nodes: n,
        announce_interval_ms: time_millis(interval),
        ..ScenarioReport::default()
    };

    // 1. Join from one bootstrap.
    let start = world.now;
    let gap = Duration::from_millis(scenario.join_interval_ms);
    for i in 0..n {
        world.schedule(
            start + gap * u32::try_from(i).unwrap_or(u32::MAX),
            Action::Join(i),
        );
    }
    let last_join = start + gap * u32::try_from(n - 1).unwrap_or(u32::MAX);
    reset(&mut world);
    let mut cursor = 0;
    let done = converge(&mut world, last_join, last_join + max_phase, check, |w| {
        complete(w, None, &mut cursor)
    });
    let mut join = phase(&world, "join", start, done);
    join.after_last_join_ms = done.map(|t| time_millis(t.since(last_join)));
    report.goals.push(Goal {
        goal: format!(
            "{n} nodes from one bootstrap: complete catalogs within 3 announce intervals"
        ),
        measured: join.rounds.map_or("never".into(), |r| {
            format!(
                "{r:.2} intervals ({:.1}s after the first join)",
                join.converged_ms.unwrap_or(0) as f64 / 1000.0
            )
        }),
        met: join.rounds.is_some_and(|r| r <= 3.0),
    });
    report.phases.push(join);
    world.run_until(world.now + SETTLE);

    // 2. Crashes.
    let bound = config.purge_after + config.purge_tick;
    let crash = removal_phase(
        &mut world,
        "crash",
        scenario.crashes,
        config.purge_after + max_phase,
        check,
        Action::Crash,
    );
    report.goals.push(Goal {
        goal: format!(
            "crashed node leaves every catalog within purge_after + purge tick ({:.2}s)",
            bound.as_secs_f64()
        ),
        measured: crash.converged_ms.map_or("never".into(), |v| {
            format!(
                "{:.2}s (slowest of {} crashes)",
                v as f64 / 1000.0,
                scenario.crashes
            )
        }),
        met: scenario.crashes == 0 || crash.converged_ms.is_some_and(|v| v <= time_millis(bound)),
    });
    report.phases.push(crash);
    world.run_until(world.now + SETTLE);

    // 3. Graceful departures.
    let round = scenario.latency_max_ms;
    let depart = removal_phase(
        &mut world,
        "depart",
        scenario.departures,
        max_phase,
        check,
        Action::Depart,
    );
    report.goals.push(Goal {
        goal: format!("departed node leaves every catalog within one gossip round ({round}ms)"),
        measured: depart.converged_ms.map_or("never".into(), |v| {
            format!("{v}ms (slowest of {} departures)", scenario.departures)
        }),
        met: scenario.departures == 0 || depart.converged_ms.is_some_and(|v| v <= round),
    });
    report.phases.push(depart);
    world.run_until(world.now + SETTLE);

    // 4. Partition into halves, changes on both sides, heal.
    let partition_at = world.now;
    world.schedule(partition_at, Action::Partition);
    let live = world.live();
    let fraction = scenario.changed_fraction.clamp(0.0, 1.0);
    // In 0..=live.len() by the clamp, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let changes = ((live.len() as f64) * fraction).round() as usize;
    let changed: Vec<usize> = live
        .iter()
        .copied()
        .choose_multiple(&mut world.rng, changes);
    let partition = Duration::from_millis(scenario.partition_ms);
    for (k, &i) in changed.iter().enumerate() {
        let at = partition_at + partition / 2 + Duration::from_millis(k as u64);
        world.schedule(at, Action::Change(i));
    }
    let heal_at = partition_at + partition;
    world.run_until(heal_at - Duration::from_millis(1));
    reset(&mut world);
    world.schedule(heal_at, Action::Heal);
    let mut cursor = 0;
    let done = converge(&mut world, heal_at, heal_at + max_phase, check, |w| {
        complete(w, Some(&changed), &mut cursor)
    });
    // Let the sessions the heal started finish, so all their bytes count.
    world.run_until(world.now + SETTLE);
    let heal = phase(&world, "heal", heal_at, done);
    report.goals.push(Goal {
        goal: "heal after a half/half partition: delta sync ≤ 0.1 × full-snapshot bytes".into(),
        measured: format!(
            "{:.3} ({} vs {} bytes, {} sessions, {} changed entries)",
            heal.delta_ratio(),
            heal.sync_bytes,
            heal.full_snapshot_bytes,
            heal.sessions,
            changed.len()
        ),
        met: heal.full_snapshot_bytes > 0 && heal.delta_ratio() <= 0.1,
    });
    report.phases.push(heal);

    // 5. A flood of throwaway identities, when asked for.
    if scenario.flood > 0 {
        world.run_until(world.now + SETTLE);
        flood::flood_phase(&mut world, scenario, &mut report);
    }
    report
}

/// Clears the per-phase counters.
fn reset(world: &mut World) {
    world.counters = Counters::default();
    for node in &mut world.nodes {
        node.announce_bytes = 0;
        node.sync_bytes = 0;
    }
}

/// Runs until `done` holds (checked every `check`, not before `earliest`) or `deadline`.
fn converge(
    world: &mut World,
    earliest: Time,
    deadline: Time,
    check: Duration,
    mut done: impl FnMut(&World) -> bool,
) -> Option<Time> {
    loop {
        let next = (world.now + check).min(deadline);
        world.run_until(next);
        if world.now >= earliest && done(world) {
            return Some(world.now);
        }
        if world.now >= deadline {
            return None;
        }
    }
}

/// Whether every live node knows every other live node, and (when given) the current version
/// of every `changed` node.
///
/// `cursor` carries over between calls: the (changed node, catalog) pair that failed last is
/// checked first, since it is the likeliest to fail again. The answer does not depend on it.
fn complete(world: &World, changed: Option<&[usize]>, cursor: &mut usize) -> bool {
    let live = world.live();
    let catalogs: Vec<_> = live
        .iter()
        .filter_map(|&i| world.nodes[i].node.as_ref().map(|n| n.catalog()))
        .collect();
    if catalogs.iter().any(|c| c.len() != live.len() - 1) {
        return false;
    }
    match changed {
        // Right size, and a catalog never holds its own peer: complete when every peer it
        // holds is live. One merge walk per catalog over the sorted live ids.
        None => {
            let mut ids: Vec<_> = live.iter().map(|&j| world.id(j)).collect();
            ids.sort_unstable();
            catalogs.iter().all(|c| {
                let mut live_ids = ids.iter().peekable();
                c.iter().all(|(peer, _)| {
                    while live_ids.next_if(|id| *id < peer).is_some() {}
                    live_ids.peek().is_some_and(|id| *id == peer)
                })
            })
        }
        Some(changed) => {
            let targets: Vec<_> = changed
                .iter()
                .filter(|&&j| world.is_live(j))
                .filter_map(|&j| {
                    let node = world.nodes[j].node.as_ref()?;
                    Some((world.id(j), node.catalog().local().payload().version))
                })
                .collect();
            let pairs = targets.len() * catalogs.len();
            let start = if pairs == 0 { 0 } else { *cursor % pairs };
            let failed = (start..pairs).chain(0..start).find(|&k| {
                let (id, version) = &targets[k / catalogs.len()];
                let c = catalogs[k % catalogs.len()];
                !(c.local_id() == *id || c.get(id).is_some_and(|r| r.entry().version == *version))
            });
            if let Some(k) = failed {
                *cursor = k;
            }
            failed.is_none()
        }
    }
}

/// Stops `count` random live nodes (other than the bootstrap) with `action` and times how long
/// until every live node has dropped every one of them.
fn removal_phase(
    world: &mut World,
    label: &str,
    count: usize,
    max: Duration,
    check: Duration,
    action: fn(usize) -> Action,
) -> PhaseReport {
    let at = world.now;
    let victims: Vec<usize> = world
        .live()
        .into_iter()
        .filter(|&i| i != 0)
        .choose_multiple(&mut world.rng, count);
    world.tracked.clear();
    for &i in &victims {
        world.tracked.insert(world.id(i), (0, at));
        world.schedule(at, action(i));
    }
    reset(world);
    let expected = world.live().len() - victims.len();
    let done = converge(world, at, at + max, check, |w| {
        w.tracked.values().all(|(seen, _)| *seen >= expected)
    });
    let mut report = phase(world, label, at, done);
    if done.is_some() {
        // Exact: the time of the last removal, not of the check that noticed it.
        let last = world.tracked.values().map(|(_, t)| *t).max().unwrap_or(at);
        report.converged_ms = Some(time_millis(last.since(at)));
        report.rounds = report
            .converged_ms
            .map(|v| v as f64 / time_millis(world_interval(world)).max(1) as f64);
    }
    report
}

fn world_interval(world: &World) -> Duration {
    world
        .nodes
        .iter()
        .find_map(|n| n.node.as_ref().map(|n| n.config().announce_interval))
        .unwrap_or(Duration::from_secs(30))
}

/// The phase's figures from the world's counters.
fn phase(world: &World, label: &str, start: Time, done: Option<Time>) -> PhaseReport {
    let live = world.live();
    let count = live.len().max(1) as f64;
    let Counters {
        announce_bytes,
        sync_bytes,
        full_snapshot_bytes,
        sessions,
    } = world.counters;
    let max_sync = live
        .iter()
        .map(|&i| world.nodes[i].sync_bytes)
        .max()
        .unwrap_or(0);
    let converged_ms = done.map(|t| time_millis(t.since(start)));
    PhaseReport {
        label: label.into(),
        converged_ms,
        rounds: converged_ms.map(|v| v as f64 / time_millis(world_interval(world)).max(1) as f64),
        after_last_join_ms: None,
        announce_bytes_per_node: announce_bytes as f64 / count,
        sync_bytes_per_node: (sync_bytes as f64 / count, max_sync),
        sessions,
        sync_bytes,
        full_snapshot_bytes,
    }
}
