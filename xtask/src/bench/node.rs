//! `cargo xtask bench node`: a weft-node's start-up, its service calls, and the delay a dead
//! provider adds to a call.
//!
//! - Start-up: the real `weft` binary (release, built first), `weft init` in a fresh temporary
//!   data directory, then `weft run --bind 127.0.0.1:0`: the time from spawning the process to
//!   its ready line (it prints its id and ticket once the node and its admin API are up) and
//!   to the first answer of the admin API's `status`; cold (the first run on the directory)
//!   and warm (a restart on it: key, sync store and warm-restart state exist). Then the time
//!   from the admin API's `shutdown` to the process's exit. `--rounds N` runs (default 20).
//! - Calls and failover: see [`calls`].

mod calls;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use weft_node::admin::Client;

use crate::{stats::percentile, table::Table};

/// How long a node may take to print its ready line or exit before the run fails.
const PATIENCE: Duration = Duration::from_secs(60);

pub(crate) async fn run(rounds: Option<usize>) -> Result<()> {
    let weft = build_weft()?;
    startup(&weft, rounds.unwrap_or(20)).await?;
    calls::run().await
}

/// Builds the `weft` binary in release (as xtask itself is) and returns its path: beside
/// xtask's own binary, in the same target directory.
fn build_weft() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--package",
            "weft-node",
            "--bin",
            "weft",
        ])
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "building weft failed");
    let exe = std::env::current_exe()?;
    let weft = exe
        .parent()
        .context("xtask's binary has a directory")?
        .join(format!("weft{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(weft.exists(), "no weft binary at {}", weft.display());
    Ok(weft)
}

/// One start of `weft run`: the timings.
struct Start {
    ready: Duration,
    status: Duration,
    stop: Duration,
}

async fn startup(weft: &Path, runs: usize) -> Result<()> {
    println!(
        "node benchmark: `weft run` in a temporary data directory, bound to 127.0.0.1, {runs} \
         runs each cold (fresh directory after `weft init`) and warm (restart on it)\n"
    );
    let mut init = Vec::new();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for run in 0..runs {
        let dir =
            std::env::temp_dir().join(format!("weft-bench-node-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let output = weft_command(weft, &dir).arg("init").output()?;
        anyhow::ensure!(output.status.success(), "weft init failed: {output:?}");
        init.push(started.elapsed());
        let result = async {
            cold.push(start_once(weft, &dir).await?);
            warm.push(start_once(weft, &dir).await?);
            anyhow::Ok(())
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        result?;
    }
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let mut table = Table::new(["measure", "p50", "p99", "max"]);
    let mut row = |label: &str, mut samples: Vec<Duration>| {
        table.row([
            label.to_owned(),
            ms(percentile(&mut samples, 50.0)),
            ms(percentile(&mut samples, 99.0)),
            ms(percentile(&mut samples, 100.0)),
        ]);
    };
    row("weft init (key + config)", init);
    for (kind, starts) in [("cold", &cold), ("warm", &warm)] {
        row(
            &format!("{kind}: run -> ready line"),
            starts.iter().map(|s| s.ready).collect(),
        );
        row(
            &format!("{kind}: run -> status answered"),
            starts.iter().map(|s| s.status).collect(),
        );
        row(
            &format!("{kind}: shutdown -> exit"),
            starts.iter().map(|s| s.stop).collect(),
        );
    }
    println!("{}", table.render());
    Ok(())
}

fn weft_command(weft: &Path, dir: &Path) -> Command {
    let mut command = Command::new(weft);
    command
        .arg("--data-dir")
        .arg(dir)
        .env_remove("WEFT_DATA_DIR")
        .env_remove("WEFT_CONFIG")
        .env("RUST_LOG", "warn");
    command
}

/// Starts `weft run` on `dir`, times it to ready and to `status`, then shuts it down through
/// the admin API and times the exit.
async fn start_once(weft: &Path, dir: &Path) -> Result<Start> {
    let started = Instant::now();
    let mut child = weft_command(weft, dir)
        .args(["run", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting weft run")?;
    let result = async {
        let lines = read_lines(&mut child)?;
        // The ready line is the second: the id, then the ticket.
        for _ in 0..2 {
            tokio::task::block_in_place(|| lines.recv_timeout(PATIENCE))
                .context("weft run printed no ready line")?;
        }
        let ready = started.elapsed();
        let client = Client::from_data_dir(dir)?;
        client.status().await?;
        let status = started.elapsed();
        let stopping = Instant::now();
        client.shutdown().await?;
        let exited = tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(status) = child.try_wait()? {
                    return anyhow::Ok(status);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .context("weft run did not exit after shutdown")??;
        anyhow::ensure!(exited.success(), "weft run exited with {exited}");
        Ok(Start {
            ready,
            status,
            stop: stopping.elapsed(),
        })
    }
    .await;
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// The child's stdout, line by line, on a channel (read by a thread, so a wait can time out).
fn read_lines(child: &mut Child) -> Result<mpsc::Receiver<String>> {
    let Some(stdout) = child.stdout.take() else {
        bail!("weft run's stdout is not piped");
    };
    let (tx, rx) = mpsc::sync_channel(16);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
