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
    /// `cargo xtask sim discovery --save-baseline` keeps and `--baseline` compares later runs
    /// with: announce intervals until every catalog was complete and the sync bytes per node
    /// it took; seconds until a crashed entry and milliseconds until a departed one left the
    /// last catalog; delta over full-snapshot sync bytes after the heal. A phase that did not
    /// converge is infinite.
    pub fn figures(&self) -> Vec<(String, Vec<(&'static str, f64)>)> {
        self.scenarios
            .iter()
            .map(|s| {
                let phase = |label: &str| s.phase(label);
                let converged_ms = |label: &str| {
                    phase(label)
                        .and_then(|p| p.converged_ms)
                        .map_or(f64::INFINITY, |ms| ms as f64)
                };
                let mut figures = vec![
                    (
                        "join_rounds",
                        phase("join")
                            .and_then(|p| p.rounds)
                            .unwrap_or(f64::INFINITY),
                    ),
                    (
                        "join_sync_bytes_per_node",
                        phase("join").map_or(0.0, |p| p.sync_bytes_per_node.0),
                    ),
                    ("crash_s", converged_ms("crash") / 1000.0),
                    ("depart_ms", converged_ms("depart")),
                    ("heal_ratio", phase("heal").map_or(0.0, |p| p.delta_ratio())),
                ];
                if let Some(evicted) = s.flood_honest_evicted {
                    figures.push(("flood_honest_evicted", evicted as f64));
                }
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
    /// Times a live honest peer was evicted from an honest catalog in the flood phase (`None`
    /// without one).
    pub flood_honest_evicted: Option<u64>,
    /// Announce interval, in milliseconds (the unit of "rounds").
    pub announce_interval_ms: u64,
    /// One row per phase.
    pub phases: Vec<PhaseReport>,
    /// The goals, checked.
    pub goals: Vec<Goal>,
}

impl ScenarioReport {
    /// Whether every goal is met.
    pub fn goals_met(&self) -> bool {
        self.goals.iter().all(|g| g.met)
    }

    /// The phase with this label.
    pub fn phase(&self, label: &str) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.label == label)
    }
}

/// Figures of one phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseReport {
    /// `join`, `crash`, `depart` or `heal`.
    pub label: String,
    /// Virtual time from the phase's start (first join, crash, departure, heal) until it
    /// converged, in milliseconds; `None` if it did not within the allowed time.
    pub converged_ms: Option<u64>,
    /// The same in announce intervals.
    pub rounds: Option<f64>,
    /// For the join phase: time from the last join until convergence, in milliseconds.
    pub after_last_join_ms: Option<u64>,
    /// Announcement bytes originated per live node (gossip relaying not counted).
    pub announce_bytes_per_node: f64,
    /// Sync bytes sent per live node: mean and maximum.
    pub sync_bytes_per_node: (f64, u64),
    /// Sync sessions started.
    pub sessions: u64,
    /// Delta sync bytes sent in the phase.
    pub sync_bytes: u64,
    /// What full-snapshot sync would have sent for the same sessions.
    pub full_snapshot_bytes: u64,
}

impl PhaseReport {
    /// Delta sync bytes over full-snapshot bytes.
    pub fn delta_ratio(&self) -> f64 {
        if self.full_snapshot_bytes == 0 {
            0.0
        } else {
            self.sync_bytes as f64 / self.full_snapshot_bytes as f64
        }
    }
}

/// A goal from the issue, with the figure measured for it.
#[derive(Debug, Clone, Default)]
pub struct Goal {
    /// What is aimed for.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Whether the goal is met.
    pub met: bool,
}

fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "never".into(), |v| format!("{:.1}s", v as f64 / 1000.0))
}

fn bytes(value: f64) -> String {
    if value >= 1_048_576.0 {
        format!("{:.1}MiB", value / 1_048_576.0)
    } else if value >= 1024.0 {
        format!("{:.1}KiB", value / 1024.0)
    } else {
        format!("{value:.0}B")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for scenario in &self.scenarios {
            writeln!(f, "{scenario}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} (seed {}, {} nodes, announce every {:.1}s)",
            self.name,
            self.seed,
            self.nodes,
            self.announce_interval_ms as f64 / 1000.0
        )?;
        writeln!(
            f,
            "  {:<8} {:>10} {:>7} {:>10} {:>10} {:>12} {:>10} {:>9} {:>11} {:>11} {:>6}",
            "phase",
            "converged",
            "rounds",
            "after-last",
            "ann/node",
            "sync/node",
            "sync-max",
            "sessions",
            "delta",
            "full-snap",
            "ratio"
        )?;
        for p in &self.phases {
            writeln!(
                f,
                "  {:<8} {:>10} {:>7} {:>10} {:>10} {:>12} {:>10} {:>9} {:>11} {:>11} {:>6.3}",
                p.label,
                ms(p.converged_ms),
                p.rounds.map_or_else(|| "-".into(), |r| format!("{r:.2}")),
                p.after_last_join_ms
                    .map_or_else(|| "-".into(), |v| ms(Some(v))),
                bytes(p.announce_bytes_per_node),
                bytes(p.sync_bytes_per_node.0),
                bytes(p.sync_bytes_per_node.1 as f64),
                p.sessions,
                bytes(p.sync_bytes as f64),
                bytes(p.full_snapshot_bytes as f64),
                p.delta_ratio(),
            )?;
        }
        writeln!(f, "  goals:")?;
        for g in &self.goals {
            writeln!(
                f,
                "    [{}] {:<62} measured: {}",
                if g.met { "met" } else { "MISSED" },
                g.goal,
                g.measured
            )?;
        }
        Ok(())
    }
}
