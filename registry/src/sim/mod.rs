//! A deterministic simulator of the registry over the sans-IO [`crate::Node`]: thousands of
//! nodes in one process, virtual time, a uniform latency model, seeded randomness.
//!
//! ```
//! use weft_registry::sim::{Scenario, run_scenario};
//!
//! let report = run_scenario(&Scenario {
//!     nodes: 50,
//!     lookups: 20,
//!     withdrawals: 1,
//!     ..Scenario::default()
//! });
//! assert_eq!(report.phases[0].success, 1.0);
//! println!("{report}");
//! ```
//!
//! Run from the workspace: `cargo xtask sim registry [FILE.toml]` (default file:
//! `registry/sim/default.toml`); [`Report::figures`] are what `--save-baseline` keeps
//! (`registry/sim/baseline.toml`) and `--baseline` compares with.

mod report;
mod scenario;
mod world;

use std::{collections::BTreeMap, time::Duration};

use rand::{Rng, seq::index::sample};
use weft_transport::PeerId;

pub use report::{Goal, Percentiles, PhaseReport, Report, ScenarioReport, WithdrawalReport};
pub use scenario::{Scenario, ScenarioFile};
pub use world::censor_answer;
use world::{Action, EPOCH, LookupTrack, WithdrawTrack, World};

use crate::proto::{DhtId, Time};

/// Time left for the network to settle after each phase's last action.
const SETTLE: Duration = Duration::from_secs(30);

/// Runs every scenario of a file, in order.
pub fn run_scenarios(file: &ScenarioFile) -> Report {
    Report {
        scenarios: file.scenarios.iter().map(run_scenario).collect(),
    }
}

/// Runs one scenario.
pub fn run_scenario(scenario: &Scenario) -> ScenarioReport {
    let n = scenario.nodes.max(1);
    let mut world = World::new(
        n,
        scenario.seed,
        &scenario.config,
        (scenario.latency_min_ms, scenario.latency_max_ms),
        scenario.bootstrap_peers.max(1),
    );

    // Joins, one after another.
    let join = Duration::from_millis(scenario.join_interval_ms);
    let mut at = EPOCH;
    for node in 0..n {
        world.schedule(at, Action::Join(node));
        at = at + join;
    }
    settle(&mut world, at);
    let join_messages = world.messages;

    // Registrations.
    let names: Vec<String> = (0..scenario.names)
        .map(|i| format!("service-{i}"))
        .collect();
    let mut providers: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let per_name = scenario.providers_per_name.clamp(1, n);
    let mut at = world.now;
    let before_registrations = world.messages;
    for name in &names {
        let chosen = sample(&mut world.rng, n, per_name).into_vec();
        for &node in &chosen {
            world.schedule(
                at,
                Action::Register {
                    node,
                    name: name.clone(),
                },
            );
            at = at + Duration::from_millis(10);
        }
        providers.insert(name.clone(), chosen);
    }
    settle(&mut world, at);
    let registrations = (names.len() * per_name, world.published);
    let registration_requests =
        per_registration(world.messages - before_registrations, registrations.0);

    let expected: BTreeMap<String, Vec<PeerId>> = providers
        .iter()
        .map(|(name, nodes)| (name.clone(), nodes.iter().map(|&i| world.ids[i]).collect()))
        .collect();
    let mut phases = Vec::new();
    let mut ground_registration_requests = None;
    if !names.is_empty() {
        phases.push(lookup_phase(
            &mut world, scenario, &names, &expected, "no churn",
        ));
        // Identities ground next to fresh names' keys, before any node is removed.
        if scenario.ground_identities > 0 {
            let (phase, requests) = ground_phase(&mut world, scenario);
            phases.push(phase);
            ground_registration_requests = Some(requests);
        }
        // Remove a share of nodes at once, and look up again without giving the network time
        // to repair.
        let share = scenario.removed_fraction.clamp(0.0, 0.95);
        // In range by the clamp: at most 95% of `n`.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let removed = ((n as f64) * share).round() as usize;
        if removed > 0 {
            for node in sample(&mut world.rng, n, removed) {
                world.remove(node);
            }
            let label = format!("{:.0}% removed", scenario.removed_fraction * 100.0);
            phases.push(lookup_phase(
                &mut world, scenario, &names, &expected, &label,
            ));
        }
    }

    let withdrawal = withdrawal_phase(&mut world, scenario, &providers);
    let mut goals = goals(n, &phases, &withdrawal);
    if let Some(attacked) = ground_registration_requests {
        let ratio = attacked / registration_requests.max(f64::MIN_POSITIVE);
        goals.push(Goal {
            goal: "requests per registration with ground ids <= 2x".into(),
            measured: format!("{ratio:.2}x ({attacked:.0})"),
            met: ratio <= 2.0,
        });
    }
    ScenarioReport {
        name: scenario.name.clone(),
        seed: scenario.seed,
        nodes: n,
        mean_table_size: world.mean_table_size(),
        join_messages_per_node: join_messages as f64 / n as f64,
        registrations,
        registration_requests,
        ground_registration_requests,
        phases,
        withdrawal,
        goals,
    }
}

fn settle(world: &mut World, last_action: Time) {
    world.run_until(last_action + SETTLE);
}

fn random_live_node(world: &mut World) -> usize {
    loop {
        let node = world.rng.random_range(0..world.nodes.len());
        if world.is_alive(node) {
            return node;
        }
    }
}

fn lookup_phase(
    world: &mut World,
    scenario: &Scenario,
    names: &[String],
    expected: &BTreeMap<String, Vec<PeerId>>,
    label: &str,
) -> PhaseReport {
    let first = world.lookups.len();
    let mut at = world.now;
    for _ in 0..scenario.lookups {
        let node = random_live_node(world);
        let name = names[world.rng.random_range(0..names.len())].clone();
        let track = world.lookups.len();
        world.lookups.push(LookupTrack::new(node, name));
        world.schedule(at, Action::Lookup(track));
        at = at + Duration::from_millis(scenario.lookup_interval_ms);
    }
    settle(world, at);

    let tracks = &world.lookups[first..];
    let mut hops = Vec::new();
    let mut messages = Vec::new();
    let mut first_ms = Vec::new();
    let mut done_ms = Vec::new();
    let mut successes = 0;
    for track in tracks {
        let complete = expected[&track.name]
            .iter()
            .all(|p| track.providers.contains(p));
        if let Some((end, stats)) = track.done {
            if complete {
                successes += 1;
            }
            if let Some(hop) = stats.first_result_hop {
                hops.push(f64::from(hop));
            }
            messages.push(f64::from(stats.requests));
            done_ms.push(end.since(track.start).as_millis() as f64);
        }
        if let Some(first) = track.first_result {
            first_ms.push(first.since(track.start).as_millis() as f64);
        }
    }
    let messages_mean = if messages.is_empty() {
        0.0
    } else {
        messages.iter().sum::<f64>() / messages.len() as f64
    };
    PhaseReport {
        label: label.to_owned(),
        lookups: tracks.len(),
        success: if tracks.is_empty() {
            1.0
        } else {
            successes as f64 / tracks.len() as f64
        },
        hops: Percentiles::of(&mut hops),
        messages: Percentiles::of(&mut messages),
        messages_mean,
        first_result_ms: Percentiles::of(&mut first_ms),
        done_ms: Percentiles::of(&mut done_ms),
    }
}

/// Requests per registration, as a mean.
fn per_registration(requests: u64, registrations: usize) -> f64 {
    if registrations == 0 {
        0.0
    } else {
        requests as f64 / registrations as f64
    }
}

/// Grinds identities next to the keys of `ground_names` fresh names, lets every node learn
/// them, has random live nodes register those names (so their records must get past the
/// crowd), and looks them up from random nodes. Returns the lookups' figures and the requests
/// per registration.
fn ground_phase(world: &mut World, scenario: &Scenario) -> (PhaseReport, f64) {
    let bits = if scenario.ground_bits == 0 {
        // A count of nodes is far below 2^52: exact as a float.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let log = (scenario.nodes.max(2) as f64).log2().ceil() as usize;
        log + 5
    } else {
        scenario.ground_bits
    };
    let names: Vec<String> = (0..scenario.ground_names.max(1))
        .map(|i| format!("attacked-{i}"))
        .collect();
    for name in &names {
        world.add_censors(&DhtId::of_name(name), scenario.ground_identities, bits);
    }
    settle(world, world.now);

    let before = world.messages;
    let mut at = world.now;
    let mut expected = BTreeMap::new();
    let per_name = scenario.providers_per_name.max(1);
    for name in &names {
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < per_name {
            let node = random_live_node(world);
            if !chosen.contains(&node) {
                chosen.push(node);
            }
        }
        for &node in &chosen {
            let name = name.clone();
            world.schedule(at, Action::Register { node, name });
            at = at + Duration::from_millis(10);
        }
        let ids = chosen.iter().map(|&node| world.ids[node]).collect();
        expected.insert(name.clone(), ids);
    }
    settle(world, at);
    let requests = per_registration(world.messages - before, names.len() * per_name);
    let label = format!("{} ground", scenario.ground_identities);
    (
        lookup_phase(world, scenario, &names, &expected, &label),
        requests,
    )
}

fn withdrawal_phase(
    world: &mut World,
    scenario: &Scenario,
    providers: &BTreeMap<String, Vec<usize>>,
) -> WithdrawalReport {
    // Live (provider, name) pairs, in a seeded order.
    let mut pairs: Vec<(usize, String)> = providers
        .iter()
        .flat_map(|(name, nodes)| nodes.iter().map(move |&n| (n, name.clone())))
        .filter(|(node, _)| world.is_alive(*node))
        .collect();
    let count = scenario.withdrawals.min(pairs.len());
    let chosen = sample(&mut world.rng, pairs.len(), count).into_vec();
    let mut picked: Vec<(usize, String)> = chosen.iter().map(|&i| pairs[i].clone()).collect();
    pairs.clear();
    picked.sort();

    let first_probe = world.lookups.len();
    let mut probe_of = Vec::new();
    let mut at = world.now;
    for (index, (node, name)) in picked.iter().enumerate() {
        world.withdrawals.push(WithdrawTrack {
            node: *node,
            name: name.clone(),
            start: at,
            done: None,
        });
        world.schedule(at, Action::Withdraw(index));
        let mut probe_at = at;
        for _ in 0..scenario.probes_per_withdrawal {
            let from = random_live_node(world);
            let track = world.lookups.len();
            world.lookups.push(LookupTrack::new(from, name.clone()));
            world.schedule(probe_at, Action::Lookup(track));
            probe_of.push(index);
            probe_at = probe_at + Duration::from_millis(scenario.probe_interval_ms);
        }
        at = at + Duration::from_millis(500);
    }
    let end = at
        + Duration::from_millis(scenario.probe_interval_ms * scenario.probes_per_withdrawal as u64);
    settle(world, end);

    let mut report = WithdrawalReport {
        withdrawals: picked.len(),
        probes: probe_of.len(),
        ..WithdrawalReport::default()
    };
    let mut completion = Vec::new();
    for track in &world.withdrawals {
        if let Some(done) = track.done {
            report.completed += 1;
            completion.push(done.since(track.start).as_millis() as f64);
        }
    }
    report.completion_ms = Percentiles::of(&mut completion);
    for (offset, &index) in probe_of.iter().enumerate() {
        let probe = &world.lookups[first_probe + offset];
        let withdrawal = &world.withdrawals[index];
        let provider = world.ids[withdrawal.node];
        if !probe.started || !probe.providers.contains(&provider) {
            continue;
        }
        let started = probe.start;
        match withdrawal.done {
            Some(done) if started >= done => report.stale_after_completion += 1,
            _ => report.stale_before_completion += 1,
        }
        let window = u64::try_from(started.since(withdrawal.start).as_millis()).unwrap_or(u64::MAX);
        report.stale_window_ms = report.stale_window_ms.max(window);
    }
    report
}

fn goals(nodes: usize, phases: &[PhaseReport], withdrawal: &WithdrawalReport) -> Vec<Goal> {
    let mut goals = Vec::new();
    let bound = (nodes as f64).log2() / 3.0;
    if let Some(calm) = phases.first() {
        goals.push(Goal {
            goal: format!("median hops <= log2(N)/3 = {bound:.1}"),
            measured: format!("{:.1}", calm.hops.p50),
            met: calm.hops.p50 <= bound,
        });
        goals.push(Goal {
            goal: "success 100% with no churn".into(),
            measured: format!("{:.2}%", calm.success * 100.0),
            met: calm.success >= 1.0,
        });
    }
    let churn = report::churn_phase(phases);
    if let Some(churn) = churn {
        goals.push(Goal {
            goal: format!("success >= 99% with {}", churn.label),
            measured: format!("{:.2}%", churn.success * 100.0),
            met: churn.success >= 0.99,
        });
    }
    if let (Some(calm), Some(churn)) = (phases.first(), churn) {
        let ratio = |churn: f64, calm: f64| if calm > 0.0 { churn / calm } else { 0.0 };
        let p50 = ratio(churn.done_ms.p50, calm.done_ms.p50);
        let p99 = ratio(churn.done_ms.p99, calm.done_ms.p99);
        goals.push(Goal {
            goal: format!("lookup p50 with {} <= 1.5x no churn", churn.label),
            measured: format!("{p50:.2}x ({:.0} ms)", churn.done_ms.p50),
            met: p50 <= 1.5,
        });
        goals.push(Goal {
            goal: format!("lookup p99 with {} <= 3x no churn", churn.label),
            measured: format!("{p99:.2}x ({:.0} ms)", churn.done_ms.p99),
            met: p99 <= 3.0,
        });
    }
    if let Some(ground) = phases.iter().find(|p| p.label.ends_with("ground")) {
        goals.push(Goal {
            goal: format!("success >= 99% with {}", ground.label),
            measured: format!("{:.2}%", ground.success * 100.0),
            met: ground.success >= 0.99,
        });
        if let Some(calm) = phases.first() {
            let ratio = ground.messages_mean / calm.messages_mean.max(f64::MIN_POSITIVE);
            goals.push(Goal {
                goal: format!("requests per lookup with {} <= 2x", ground.label),
                measured: format!("{ratio:.2}x ({:.1})", ground.messages_mean),
                met: ratio <= 2.0,
            });
        }
    }
    goals.push(Goal {
        goal: "withdrawn record returned after completion: 0".into(),
        measured: format!(
            "{} of {} probes",
            withdrawal.stale_after_completion, withdrawal.probes
        ),
        met: withdrawal.stale_after_completion == 0
            && withdrawal.completed == withdrawal.withdrawals,
    });
    goals
}
