//! Fast simulator checks (100 nodes): nothing missed, and RMR/LDH within bounds.
//!
//! The bounds sit a little above what the default config measures (see
//! `docs/protocols/gossip.md`), and at or below iroh-gossip's figures for the same scenarios
//! (one sender, 100 nodes: RMR 0.09, LDH 5.0; random sender: RMR 0.38, LDH 9.5; all send:
//! RMR 1.05).

use weft_gossip::sim::{Defaults, Failure, Partition, Scenario, SenderMode, run_one};

fn scenario(sender: SenderMode) -> Scenario {
    Scenario {
        name: format!("{sender:?}, 100"),
        nodes: 100,
        sender: Some(sender),
        seeds: Some(vec![0, 1]),
        rounds: Some(10),
        ..Scenario::default()
    }
}

fn defaults() -> Defaults {
    // Three shuffle periods of warm-up as in the default scenario file; cheap at 100 nodes.
    Defaults::default()
}

#[test]
fn one_sender_100() {
    let report = run_one(&scenario(SenderMode::One), &defaults());
    assert_eq!(report.missed.max, 0.0, "{report:?}");
    assert!(report.rmr.mean <= 0.09, "RMR {:?}", report.rmr);
    assert!(report.ldh.mean <= 5.0, "LDH {:?}", report.ldh);
}

#[test]
fn random_sender_100() {
    let report = run_one(&scenario(SenderMode::Random), &defaults());
    assert_eq!(report.missed.max, 0.0, "{report:?}");
    assert!(report.rmr.mean <= 0.1, "RMR {:?}", report.rmr);
    assert!(report.ldh.mean <= 8.0, "LDH {:?}", report.ldh);
}

#[test]
fn all_send_100() {
    let mut s = scenario(SenderMode::All);
    s.rounds = Some(3);
    let report = run_one(&s, &defaults());
    assert_eq!(report.missed.max, 0.0, "{report:?}");
    assert!(report.rmr.mean <= 1.05, "RMR {:?}", report.rmr);
}

#[test]
fn survivors_of_70_percent_failures_get_the_second_broadcast() {
    let mut s = scenario(SenderMode::Random);
    s.rounds = Some(5);
    s.failure = Some(Failure {
        before_round: 2,
        fraction: 0.7,
    });
    let report = run_one(&s, &defaults());
    for run in &report.runs {
        // Rounds 0 and 1 before the failure, 2 right after it (excused), 3 and 4 must be whole.
        assert_eq!(run.per_round_missed[3..], [0, 0], "{run:?}");
    }
}

#[test]
fn partition_heals_within_two_shuffle_periods() {
    let mut s = scenario(SenderMode::Random);
    s.rounds = Some(6);
    s.partition = Some(Partition {
        before_round: 2,
        heal_before_round: 4,
        heal_wait_ms: 120_000,
    });
    let report = run_one(&s, &defaults());
    for run in &report.runs {
        assert!(run.per_round_missed[2] > 0, "the partition splits: {run:?}");
        assert_eq!(run.per_round_missed[4..], [0, 0], "{run:?}");
    }
}
