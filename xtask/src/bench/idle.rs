//! `cargo xtask bench idle`: what an idle node costs, weft layer by layer beside iroh-gossip.
//!
//! Each row starts `--nodes` nodes (default 50) in one process on 127.0.0.1, node 0 the
//! bootstrap node and the others joining through it, lets them settle (`--settle`, default
//! 30 s: the joins' catalog exchanges and session starts are not idle, and the connections
//! they leave close after 15–30 s), then measures an idle window (`--idle`, default 20 s) in
//! which nothing is asked of them. Per node:
//! - memory: the process's resident set after the window minus before the first node started,
//!   over the nodes (see [`measure::rss_bytes`] for what that includes), and the same right
//!   after joining;
//! - CPU: the process's user + system CPU time over the window, over the window's length and
//!   the nodes, as a percentage of one core;
//! - bytes sent per second, when the row runs in a network namespace of its own (as root,
//!   `unshare -n`), where the loopback interface's counter is this row's traffic alone;
//! - tokio tasks alive.
//!
//! Every row runs in a fresh child process (xtask re-runs itself with the hidden command
//! `bench-idle-row`), so no row inherits another's heap or threads.

mod measure;
mod rows;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::table::Table;

/// The hidden command a row's child process runs.
pub(crate) const ROW_COMMAND: &str = "bench-idle-row";
/// What a row's child prints its figures after, on one line of stdout.
const REPORT_PREFIX: &str = "idle-row";

/// The benchmark's settings.
#[derive(Debug, Clone)]
pub(crate) struct IdleArgs {
    /// Nodes per row.
    pub(crate) nodes: usize,
    /// The measured idle window.
    pub(crate) idle: Duration,
    /// The wait between the last join and the window.
    pub(crate) settle: Duration,
    /// Only the rows whose names are listed (all when empty).
    pub(crate) only: Vec<String>,
}

impl IdleArgs {
    /// The settings from the command line: `--nodes N --idle SECONDS --settle SECONDS
    /// --only ROW[,ROW]`.
    pub(crate) fn parse(args: &[String], nodes: Option<usize>) -> Result<Self> {
        let seconds = |flag| -> Result<Option<Duration>> {
            Ok(crate::flag_value(args, flag)?.map(|s| Duration::from_secs(s as u64)))
        };
        Ok(Self {
            nodes: nodes.unwrap_or(50),
            idle: seconds("--idle")?.unwrap_or(Duration::from_secs(20)),
            settle: seconds("--settle")?.unwrap_or(Duration::from_secs(30)),
            only: crate::flag_text(args, "--only")?
                .map(|list| list.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }
}

/// One row's figures, as its child process reported them.
#[derive(Debug, Default, Clone)]
struct RowReport {
    nodes: usize,
    not_joined: usize,
    join_secs: f64,
    rss_before: u64,
    rss_joined: u64,
    rss_end: u64,
    cpu_secs: f64,
    window_secs: f64,
    tx_bytes: Option<u64>,
    tasks: usize,
    inbound: Option<usize>,
}

impl RowReport {
    fn mb_per_node(&self, rss: u64) -> f64 {
        rss.saturating_sub(self.rss_before) as f64 / 1e6 / self.nodes as f64
    }

    /// Percent of one core per node over the window.
    fn cpu_per_node(&self) -> f64 {
        100.0 * self.cpu_secs / self.window_secs / self.nodes as f64
    }

    fn bytes_per_node_per_sec(&self) -> Option<f64> {
        Some(self.tx_bytes? as f64 / self.window_secs / self.nodes as f64)
    }
}

/// Runs every row in its own child process and prints the table.
pub(crate) fn run(args: &IdleArgs) -> Result<()> {
    anyhow::ensure!(args.nodes >= 2, "the idle benchmark needs at least 2 nodes");
    let netns = Command::new("unshare")
        .args(["-n", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let load_before = measure::load_average();
    println!(
        "idle benchmark: {} nodes per row in one process on 127.0.0.1, joined through node 0, \
         settle {:?}, idle window {:?}; each row in a fresh process{}",
        args.nodes,
        args.settle,
        args.idle,
        if netns {
            ", in a network namespace of its own"
        } else {
            " (no network namespace: bytes not counted)"
        }
    );
    let mut reports = Vec::new();
    for (row, label) in rows::ROWS {
        if !args.only.is_empty() && !args.only.iter().any(|name| name == row) {
            continue;
        }
        let started = Instant::now();
        let report = run_row(row, args, netns).with_context(|| format!("row {row}"))?;
        eprintln!("  {label}: done in {:.0?}", started.elapsed());
        reports.push((*row, *label, report));
    }
    let reference = reports
        .iter()
        .find(|(row, _, _)| *row == "iroh-gossip")
        .map(|(_, _, report)| report.clone());

    let mut table = Table::new([
        "row",
        "MB/node",
        "(joined)",
        "CPU %/node",
        "B/s/node",
        "tasks/node",
        "conns/node",
        "mem x ref",
        "CPU x ref",
        "join s",
    ]);
    for (_, label, report) in &reports {
        let ratio = |value: f64, reference: Option<f64>| {
            reference
                .filter(|r| *r > 0.0)
                .map_or_else(|| "-".to_owned(), |r| format!("{:.2}x", value / r))
        };
        let mem = report.mb_per_node(report.rss_end);
        let cpu = report.cpu_per_node();
        let mut name = (*label).to_owned();
        if report.not_joined > 0 {
            name.push_str(&format!(" ({} not joined)", report.not_joined));
        }
        table.row([
            name,
            format!("{mem:.2}"),
            format!("{:.2}", report.mb_per_node(report.rss_joined)),
            format!("{cpu:.3}"),
            report
                .bytes_per_node_per_sec()
                .map_or_else(|| "-".to_owned(), |b| format!("{b:.0}")),
            format!("{:.1}", report.tasks as f64 / report.nodes as f64),
            report.inbound.map_or_else(
                || "-".to_owned(),
                |held| format!("{:.1}", held as f64 / report.nodes as f64),
            ),
            ratio(mem, reference.as_ref().map(|r| r.mb_per_node(r.rss_end))),
            ratio(cpu, reference.as_ref().map(RowReport::cpu_per_node)),
            format!("{:.1}", report.join_secs),
        ]);
    }
    println!("\n{}", table.render());
    let load = |load: Option<f64>| load.map_or_else(|| "?".to_owned(), |l| format!("{l:.2}"));
    println!(
        "MB/node: resident memory after the window minus before the first node, over the nodes \
         (allocator arenas and retained free memory included); (joined): the same right after \
         the last join. conns: inbound connections held (each connection is one node's inbound), \
         weft rows only. CPU: user + system over the window, % of one core per node. \
         Load average (1 min) {} before, {} after.",
        load(load_before),
        load(measure::load_average())
    );
    println!("goal: weft-node, all layers, <= 1.5x iroh-gossip in memory and in CPU");
    Ok(())
}

/// Runs `row` in a child process (inside `unshare -n` with loopback up when `netns`) and
/// parses its report.
fn run_row(row: &str, args: &IdleArgs, netns: bool) -> Result<RowReport> {
    let exe = std::env::current_exe().context("finding xtask's own binary")?;
    let row_args = [
        ROW_COMMAND.to_owned(),
        row.to_owned(),
        "--nodes".to_owned(),
        args.nodes.to_string(),
        "--idle".to_owned(),
        args.idle.as_secs().to_string(),
        "--settle".to_owned(),
        args.settle.as_secs().to_string(),
    ];
    let mut command = if netns {
        let mut command = Command::new("unshare");
        // The new namespace's loopback starts down; `$0` is xtask, `$@` the row's arguments.
        command
            .args([
                "-n",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" \"$@\" --netns",
            ])
            .arg(&exe);
        command
    } else {
        Command::new(&exe)
    };
    let output = command
        .args(&row_args)
        .stderr(Stdio::inherit())
        .output()
        .context("running the row's process")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("the row's process failed ({}): {stdout}", output.status);
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(REPORT_PREFIX))
        .with_context(|| format!("no report from the row's process: {stdout}"))?;
    parse_report(line)
}

fn parse_report(line: &str) -> Result<RowReport> {
    let mut report = RowReport::default();
    for pair in line.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("bad report field {pair:?}"))?;
        let int = || {
            value
                .parse::<u64>()
                .with_context(|| format!("{key}={value}"))
        };
        let float = || {
            value
                .parse::<f64>()
                .with_context(|| format!("{key}={value}"))
        };
        match key {
            "nodes" => report.nodes = usize::try_from(int()?)?,
            "not_joined" => report.not_joined = usize::try_from(int()?)?,
            "join_secs" => report.join_secs = float()?,
            "rss_before" => report.rss_before = int()?,
            "rss_joined" => report.rss_joined = int()?,
            "rss_end" => report.rss_end = int()?,
            "cpu_secs" => report.cpu_secs = float()?,
            "window_secs" => report.window_secs = float()?,
            "tx_bytes" => report.tx_bytes = Some(int()?),
            "tasks" => report.tasks = usize::try_from(int()?)?,
            "inbound" => report.inbound = Some(usize::try_from(int()?)?),
            _ => {}
        }
    }
    Ok(report)
}

/// The child's side: starts one row, waits, measures, prints one report line, and exits
/// without shutting the nodes down (the process ends; nothing of it is measured any more).
pub(crate) async fn row(args: &[String]) -> Result<()> {
    let Some(row) = args.first() else {
        bail!("{ROW_COMMAND} needs a row name");
    };
    let settings = IdleArgs::parse(args, crate::flag_value(args, "--nodes")?)?;
    let netns = args.iter().any(|arg| arg == "--netns");
    let unknown = || anyhow::anyhow!("this platform does not report memory or CPU time");

    let tasks_before = measure::tokio_tasks();
    let rss_before = measure::rss_bytes().ok_or_else(unknown)?;
    let join_started = Instant::now();
    let started = rows::start(row, settings.nodes).await?;
    let join_secs = join_started.elapsed().as_secs_f64();
    let rss_joined = measure::rss_bytes().ok_or_else(unknown)?;
    tokio::time::sleep(settings.settle).await;

    let cpu_before = measure::process_cpu().ok_or_else(unknown)?;
    let tx_before = netns.then(measure::loopback_tx_bytes).flatten();
    let window_started = Instant::now();
    tokio::time::sleep(settings.idle).await;
    let window_secs = window_started.elapsed().as_secs_f64();
    let cpu_secs = (measure::process_cpu().ok_or_else(unknown)? - cpu_before).as_secs_f64();
    let tx_bytes = tx_before
        .zip(netns.then(measure::loopback_tx_bytes).flatten())
        .map(|(before, after)| after.saturating_sub(before));
    let rss_end = measure::rss_bytes().ok_or_else(unknown)?;
    let tasks = measure::tokio_tasks().saturating_sub(tasks_before);

    let mut line = format!(
        "{REPORT_PREFIX} nodes={} not_joined={} join_secs={join_secs:.3} rss_before={rss_before} \
         rss_joined={rss_joined} rss_end={rss_end} cpu_secs={cpu_secs:.6} \
         window_secs={window_secs:.6} tasks={tasks}",
        settings.nodes, started.not_joined
    );
    if let Some(tx) = tx_bytes {
        line.push_str(&format!(" tx_bytes={tx}"));
    }
    if !started.endpoints.is_empty() {
        let inbound: usize = started
            .endpoints
            .iter()
            .map(|endpoint| endpoint.inbound_stats().held)
            .sum();
        line.push_str(&format!(" inbound={inbound}"));
    }
    println!("{line}");
    std::io::Write::flush(&mut std::io::stdout())?;
    // Exit here, nodes running: their shutdown is not part of the measure, and the runtime's
    // teardown of a thousand tasks would only slow the next row.
    std::process::exit(0)
}
