//! Service calls between in-process `weft_node::Node`s on 127.0.0.1: a caller and three
//! providers of an echo service, default configs.
//!
//! - Latency: 1,000 calls of 32 bytes after a warm-up (connections open, round trips
//!   measured), each timed from `call` to its reply: lookup (cached), ordering, the exchange.
//! - Failover: the provider the caller tries first (the lowest round trip: the one that just
//!   answered) dies without withdrawing anything, then one call is timed until another
//!   provider answers, and the call after it too. Two ways to die:
//!   - *hung*: the provider's runtime stops (its only thread blocks), so its socket stays open
//!     and nothing it receives is ever answered: a frozen process, or a host gone off the
//!     network;
//!   - *closed*: its endpoint closes (QUIC's close reaches the caller, the port goes away),
//!     with no discovery departure and no registry withdrawal: a crash.
//!
//!   Each provider runs on a runtime and thread of its own so it can hang alone; each
//!   failover run starts fresh nodes. Runs for two per-attempt timeouts (1 s and the default).

use std::{
    net::SocketAddr,
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tokio::sync::oneshot;
use weft_node::{CallOptions, Node, service::DEFAULT_ATTEMPT_TIMEOUT};
use weft_transport::{PeerAddr, PeerId};

use crate::{stats::percentile, table::Table};

const NETWORK: &str = "weft-node-bench";
const SERVICE: &str = "bench/echo";
const PROVIDERS: usize = 3;
const CALLS: usize = 1_000;
const WARM_UP: usize = 20;
const REQUEST: [u8; 32] = [0x5a; 32];
/// Failover runs per way of dying and per attempt timeout.
const FAILOVER_RUNS: usize = 3;
/// How long setting a cluster up may take.
const PATIENCE: Duration = Duration::from_secs(30);

pub(super) async fn run() -> Result<()> {
    println!(
        "service calls: a caller and {PROVIDERS} providers (weft_node::Node, default configs) on \
         127.0.0.1\n"
    );
    let cluster = Cluster::start().await?;
    let latency = latency(&cluster).await;
    cluster.stop().await;
    let mut samples = latency?;
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let mut table = Table::new(["measure", "p50", "p99", "max"]);
    table.row([
        format!("{CALLS} calls of {} bytes", REQUEST.len()),
        ms(percentile(&mut samples, 50.0)),
        ms(percentile(&mut samples, 99.0)),
        ms(percentile(&mut samples, 100.0)),
    ]);
    println!("{}", table.render());

    let mut table = Table::new([
        "first provider",
        "attempt timeout",
        "failover call p50",
        "max",
        "next call p50",
        "max",
        "first attempt's error",
    ])
    .left_aligned();
    for death in [Death::Hung, Death::Closed] {
        for attempt_timeout in [Duration::from_secs(1), DEFAULT_ATTEMPT_TIMEOUT] {
            let mut failover = Vec::new();
            let mut next = Vec::new();
            let mut errors = Vec::new();
            for _ in 0..FAILOVER_RUNS {
                let mut cluster = Cluster::start().await?;
                let run = failover_once(&mut cluster, death, attempt_timeout).await;
                cluster.stop().await;
                let run = run?;
                failover.push(run.failover);
                next.push(run.next);
                if !errors.contains(&run.error) {
                    errors.push(run.error);
                }
            }
            table.row([
                death.label().to_owned(),
                format!("{attempt_timeout:?}"),
                ms(percentile(&mut failover, 50.0)),
                ms(percentile(&mut failover, 100.0)),
                ms(percentile(&mut next, 50.0)),
                ms(percentile(&mut next, 100.0)),
                errors.join(" | "),
            ]);
        }
    }
    println!(
        "failover: the first provider dies, then one call is timed ({FAILOVER_RUNS} runs each, \
         fresh nodes per run), and the call after it\n"
    );
    println!("{}", table.render());
    Ok(())
}

/// How a provider dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    Hung,
    Closed,
}

impl Death {
    fn label(self) -> &'static str {
        match self {
            Death::Hung => "hung (socket open, silent)",
            Death::Closed => "closed (endpoint closed)",
        }
    }
}

/// What a provider's thread is told at the end.
enum Fate {
    /// Block the runtime's only thread until the sender is dropped.
    Hang(mpsc::Receiver<()>),
    /// Close the endpoint, withdrawing nothing.
    Close,
    /// Shut down gracefully.
    Shutdown,
}

/// A provider on its own thread and current-thread runtime.
struct Provider {
    id: PeerId,
    fate: Option<oneshot::Sender<Fate>>,
    /// Kept to release a hung provider (dropping it unblocks the thread).
    release: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Provider {
    fn spawn(bootstrap: PeerAddr) -> Result<Self> {
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (fate_tx, fate_rx) = oneshot::channel::<Fate>();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = ready_tx.send(Err(anyhow::Error::from(err)));
                    return;
                }
            };
            runtime.block_on(async move {
                let started = async {
                    let node = node_builder().bootstrap([bootstrap]).spawn().await?;
                    let service = node
                        .serve(SERVICE, |request: Vec<u8>| async move { Ok(request) })
                        .await?;
                    anyhow::Ok((node, service))
                }
                .await;
                let (node, service) = match started {
                    Ok(started) => started,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(node.id()));
                match fate_rx.await {
                    Ok(Fate::Hang(release)) => {
                        // Blocks the only thread: every task of this node stops, the socket
                        // stays bound and unread.
                        let _ = release.recv();
                        std::mem::forget(service);
                    }
                    Ok(Fate::Close) => {
                        std::mem::forget(service);
                        node.endpoint().iroh().close().await;
                    }
                    Ok(Fate::Shutdown) | Err(_) => {
                        drop(service);
                        node.shutdown().await;
                    }
                }
            });
        });
        let id = ready_rx
            .recv_timeout(PATIENCE)
            .context("a provider did not start")??;
        Ok(Self {
            id,
            fate: Some(fate_tx),
            release: None,
            thread: Some(thread),
        })
    }

    fn kill(&mut self, death: Death) {
        let fate = match death {
            Death::Hung => {
                let (release, wait) = mpsc::sync_channel(1);
                self.release = Some(release);
                Fate::Hang(wait)
            }
            Death::Closed => Fate::Close,
        };
        if let Some(tx) = self.fate.take() {
            let _ = tx.send(fate);
        }
    }

    /// Ends the provider (gracefully if it is still alive) and joins its thread.
    fn stop(mut self) {
        if let Some(tx) = self.fate.take() {
            let _ = tx.send(Fate::Shutdown);
        }
        self.release = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn node_builder() -> weft_node::Builder {
    Node::builder()
        .ephemeral()
        .network(NETWORK)
        .bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A caller on the benchmark's runtime and its providers, each found by the caller.
struct Cluster {
    caller: Node,
    providers: Vec<Provider>,
}

impl Cluster {
    async fn start() -> Result<Self> {
        let caller = node_builder().spawn().await?;
        let mut providers = Vec::new();
        for _ in 0..PROVIDERS {
            let addr = caller.addr();
            providers.push(tokio::task::spawn_blocking(move || Provider::spawn(addr)).await??);
        }
        let cluster = Self { caller, providers };
        // Registration reaches the record holders asynchronously: look until all are found.
        let registry = cluster.caller.registry().context("registry")?;
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                let records = registry.lookup_all_refresh(SERVICE).await?;
                if records.len() >= PROVIDERS {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        if !matches!(found, Ok(Ok(()))) {
            cluster.stop().await;
            bail!("the caller did not find all {PROVIDERS} providers");
        }
        Ok(cluster)
    }

    async fn stop(self) {
        let providers = self.providers;
        let _ = tokio::task::spawn_blocking(move || {
            for provider in providers {
                provider.stop();
            }
        })
        .await;
        self.caller.shutdown().await;
    }
}

async fn latency(cluster: &Cluster) -> Result<Vec<Duration>> {
    for _ in 0..WARM_UP {
        cluster.caller.call(SERVICE, REQUEST.to_vec()).await?;
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let reply = cluster.caller.call(SERVICE, REQUEST.to_vec()).await?;
        samples.push(started.elapsed());
        anyhow::ensure!(reply.response == REQUEST, "a wrong echo");
    }
    Ok(samples)
}

struct FailoverRun {
    failover: Duration,
    next: Duration,
    error: String,
}

async fn failover_once(
    cluster: &mut Cluster,
    death: Death,
    attempt_timeout: Duration,
) -> Result<FailoverRun> {
    let options = CallOptions {
        attempt_timeout,
        ..CallOptions::default()
    };
    // Warm: connections open, round trips measured; the last answer names the first tried.
    let mut first = None;
    for _ in 0..WARM_UP {
        let reply = cluster
            .caller
            .call_with(SERVICE, REQUEST.to_vec(), &options)
            .await?;
        first = Some(reply.provider);
    }
    let first = first.context("no warm-up call")?;
    let index = cluster
        .providers
        .iter()
        .position(|provider| provider.id == first)
        .context("the answering provider is not one of ours")?;
    cluster.providers[index].kill(death);

    let started = Instant::now();
    let reply = cluster
        .caller
        .call_with(SERVICE, REQUEST.to_vec(), &options)
        .await?;
    let failover = started.elapsed();
    let Some(attempt) = reply.failed.first() else {
        bail!("the call after the death did not try the dead provider first");
    };
    anyhow::ensure!(attempt.provider == first, "a live provider failed first");
    let error = attempt_kind(&attempt.error);
    let started = Instant::now();
    cluster
        .caller
        .call_with(SERVICE, REQUEST.to_vec(), &options)
        .await?;
    Ok(FailoverRun {
        failover,
        next: started.elapsed(),
        error,
    })
}

/// The kind of an attempt's error, without its details.
fn attempt_kind(error: &weft_node::service::AttemptError) -> String {
    use weft_node::service::AttemptError;
    match error {
        AttemptError::Connect(_) => "unreachable".into(),
        AttemptError::Timeout(after) => format!("no answer within {after:?}"),
        AttemptError::Stream(_) => "stream broke".into(),
        other => other.to_string(),
    }
}
