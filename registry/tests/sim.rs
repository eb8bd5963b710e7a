//! Fast simulator runs (100 nodes) asserting the registry's goals: every lookup succeeds
//! without churn, at least 99% do with 20% of nodes gone, hops stay within log2(N)/3, and no
//! lookup started after a withdrawal completed returns the withdrawn record.

use weft_registry::sim::{Scenario, ScenarioFile, run_scenario};

fn small(seed: u64) -> Scenario {
    Scenario {
        name: format!("small-{seed}"),
        seed,
        nodes: 100,
        names: 10,
        lookups: 100,
        withdrawals: 3,
        probes_per_withdrawal: 20,
        ..Scenario::default()
    }
}

#[test]
fn hundred_nodes_meet_the_goals() {
    for seed in [1, 2] {
        let report = run_scenario(&small(seed));
        let calm = &report.phases[0];
        let churn = &report.phases[1];
        assert_eq!(calm.success, 1.0, "{report}");
        assert!(churn.success >= 0.99, "{report}");
        assert!(calm.hops.p50 <= (100f64).log2() / 3.0, "{report}");
        assert!(churn.hops.p50 <= (100f64).log2() / 3.0, "{report}");
        let w = &report.withdrawal;
        assert_eq!(w.completed, w.withdrawals, "{report}");
        assert_eq!(w.stale_after_completion, 0, "{report}");
        assert!(report.goals_met(), "{report}");
    }
}

#[test]
fn same_seed_same_report() {
    let scenario = Scenario {
        nodes: 40,
        lookups: 30,
        ..small(7)
    };
    let a = run_scenario(&scenario).to_string();
    let b = run_scenario(&scenario).to_string();
    assert_eq!(a, b);
}

#[test]
fn default_scenario_file_parses() {
    let text = include_str!("../sim/default.toml");
    let file = ScenarioFile::from_toml(text).unwrap();
    assert!(file.scenarios.iter().any(|s| s.nodes == 1_000));
    assert!(file.scenarios.iter().any(|s| s.nodes == 10_000));
}

#[test]
fn figures_name_every_scenario() {
    let scenario = Scenario {
        nodes: 40,
        lookups: 30,
        ..small(3)
    };
    let file = ScenarioFile {
        scenarios: vec![scenario],
    };
    let report = weft_registry::sim::run_scenarios(&file);
    let figures = report.figures();
    assert_eq!(figures.len(), 1);
    let (_, values) = &figures[0];
    let success = values
        .iter()
        .find(|(name, _)| *name == "success")
        .unwrap()
        .1;
    assert_eq!(success, report.scenarios[0].phases[0].success);
}
