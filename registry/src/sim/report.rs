//! What a simulation measured, and its table form.

use std::fmt;

/// The reports of every scenario of a file.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One per scenario, in order.
    pub scenarios: Vec<ScenarioReport>,
}

impl Report {
    /// Whether every goal of every scenario is met.
    pub fn goals_met(&self) -> bool {
        self.scenarios.iter().all(ScenarioReport::goals_met)
    }

    /// The headline figures of every scenario — `(scenario, [(figure, value)])` — which
    /// `cargo xtask sim registry --save-baseline` keeps and `--baseline` compares later runs
    /// with. Without churn (`calm`) and with nodes removed (`churn`): median hops to the first
    /// provider, share of lookups that found every provider, requests per lookup; median time
    /// to the first provider and to a completed withdrawal; probes that still saw a withdrawn
    /// record after its withdrawal completed.
    pub fn figures(&self) -> Vec<(String, Vec<(&'static str, f64)>)> {
        self.scenarios
            .iter()
            .map(|s| {
                let calm = s.phases.first();
                let churn = s.churn_phase();
                let figures = vec![
                    ("hops_p50", calm.map_or(0.0, |p| p.hops.p50)),
                    ("success", calm.map_or(1.0, |p| p.success)),
                    ("success_churn", churn.map_or(1.0, |p| p.success)),
                    ("messages_mean", calm.map_or(0.0, |p| p.messages_mean)),
                    (
                        "messages_mean_churn",
                        churn.map_or(0.0, |p| p.messages_mean),
                    ),
                    (
                        "first_result_ms_p50",
                        calm.map_or(0.0, |p| p.first_result_ms.p50),
                    ),
                    ("withdrawal_ms_p50", s.withdrawal.completion_ms.p50),
                    (
                        "stale_after_completion",
                        s.withdrawal.stale_after_completion as f64,
                    ),
                ];
                (s.name.clone(), figures)
            })
            .collect()
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, Default)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// Its seed.
    pub seed: u64,
    /// Nodes in the network.
    pub nodes: usize,
    /// Mean routing-table size after the joins.
    pub mean_table_size: f64,
    /// Requests sent per node while joining (self-lookup and bucket refreshes).
    pub join_messages_per_node: f64,
    /// Registrations made, and those acknowledged by at least one holder.
    pub registrations: (usize, usize),
    /// Requests sent per registration (the publish's lookup and its stores, with whatever
    /// background traffic ran meanwhile), before any attack.
    pub registration_requests: f64,
    /// The same when the attacked names' providers register again with the ground identities
    /// in place (`None` without an attack).
    pub ground_registration_requests: Option<f64>,
    /// Lookup phases: without churn, of the attacked names with identities ground next to
    /// them (when the scenario attacks), then with nodes removed.
    pub phases: Vec<PhaseReport>,
    /// The withdrawal phase.
    pub withdrawal: WithdrawalReport,
    /// The goals, checked.
    pub goals: Vec<Goal>,
}

impl ScenarioReport {
    /// Whether every goal is met.
    pub fn goals_met(&self) -> bool {
        self.goals.iter().all(|g| g.met)
    }
}

/// Figures of one lookup phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseReport {
    /// What the phase is (`no churn`, `20% removed`).
    pub label: String,
    /// Lookups run.
    pub lookups: usize,
    /// Share of lookups that found every provider of the name (0..=1).
    pub success: f64,
    /// Hops until the first provider was found: median, 95th and 99th percentiles, maximum.
    pub hops: Percentiles,
    /// Requests sent per lookup.
    pub messages: Percentiles,
    /// Mean requests per lookup.
    pub messages_mean: f64,
    /// Time until the first provider was found, in milliseconds.
    pub first_result_ms: Percentiles,
    /// Time until the lookup ended, in milliseconds.
    pub done_ms: Percentiles,
}

impl ScenarioReport {
    /// The lookup phase run after nodes were removed, if there was one (labelled `N% removed`).
    pub fn churn_phase(&self) -> Option<&PhaseReport> {
        churn_phase(&self.phases)
    }
}

/// The phase of `phases` run after nodes were removed: the one labelled `N% removed`.
pub(super) fn churn_phase(phases: &[PhaseReport]) -> Option<&PhaseReport> {
    phases.iter().find(|p| p.label.ends_with("removed"))
}

/// Median, 95th and 99th percentiles and maximum of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The maximum.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `values` (all zero when empty).
    pub fn of(values: &mut [f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        // Nearest rank, in integers: `percent` of the way from the first to the last value.
        let at = |percent: usize| values[((values.len() - 1) * percent + 50) / 100];
        Self {
            p50: at(50),
            p95: at(95),
            p99: at(99),
            max: values[values.len() - 1],
        }
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.1} / {:.1} / {:.1} / {:.0}",
            self.p50, self.p95, self.p99, self.max
        )
    }
}

/// Figures of the withdrawal phase.
#[derive(Debug, Clone, Default)]
pub struct WithdrawalReport {
    /// Withdrawals started.
    pub withdrawals: usize,
    /// Withdrawals that completed (every targeted holder answered or timed out).
    pub completed: usize,
    /// Time from the start of a withdrawal to its completion, in milliseconds.
    pub completion_ms: Percentiles,
    /// Probe lookups of withdrawn names.
    pub probes: usize,
    /// Probes started before the withdrawal completed that still returned the record.
    pub stale_before_completion: usize,
    /// Probes started after the withdrawal completed that still returned the record (goal: 0).
    pub stale_after_completion: usize,
    /// The longest time after a withdrawal started at which a probe that returned the record
    /// started, in milliseconds (0 when none did).
    pub stale_window_ms: u64,
}

/// A goal and whether it is met.
#[derive(Debug, Clone, Default)]
pub struct Goal {
    /// What is required.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Whether it is met.
    pub met: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scenario) in self.scenarios.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{scenario}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "registry scenario {:?}: {} nodes, seed {}",
            self.name, self.nodes, self.seed
        )?;
        writeln!(
            f,
            "  join: mean routing table {:.1} peers, {:.1} requests per node; registrations {} ({} acknowledged), {:.1} requests each{}",
            self.mean_table_size,
            self.join_messages_per_node,
            self.registrations.0,
            self.registrations.1,
            self.registration_requests,
            self.ground_registration_requests
                .map(|r| format!(", {r:.1} with the ground identities"))
                .unwrap_or_default()
        )?;
        writeln!(
            f,
            "  {:<14} {:>7} {:>9} {:>22} {:>24} {:>8} {:>28} {:>30}",
            "phase",
            "lookups",
            "success",
            "hops p50/p95/p99/max",
            "msgs p50/p95/p99/max",
            "msgs avg",
            "first result ms",
            "done ms"
        )?;
        for phase in &self.phases {
            writeln!(
                f,
                "  {:<14} {:>7} {:>8.2}% {:>22} {:>24} {:>8.1} {:>28} {:>30}",
                phase.label,
                phase.lookups,
                phase.success * 100.0,
                phase.hops.to_string(),
                phase.messages.to_string(),
                phase.messages_mean,
                phase.first_result_ms.to_string(),
                phase.done_ms.to_string()
            )?;
        }
        let w = &self.withdrawal;
        writeln!(
            f,
            "  withdrawal: {}/{} completed in {} ms (p50/p95/p99/max); {} probes: {} stale before completion, {} after; stale window {} ms",
            w.completed,
            w.withdrawals,
            w.completion_ms,
            w.probes,
            w.stale_before_completion,
            w.stale_after_completion,
            w.stale_window_ms
        )?;
        writeln!(f, "  {:<48} {:<24} met", "goal", "measured")?;
        for goal in &self.goals {
            writeln!(
                f,
                "  {:<48} {:<24} {}",
                goal.goal,
                goal.measured,
                if goal.met { "yes" } else { "NO" }
            )?;
        }
        Ok(())
    }
}
