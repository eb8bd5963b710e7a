//! The admin server: HTTP/1.1 on a loopback address, one task per connection, bounded.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::api::{Api, ApiError};
use super::body;
use super::files::{self, AdminFiles, Token};
use super::routes::{self, Shared};

/// How many connections over the limit may be told "busy" at once; beyond that they are
/// closed unanswered, so a flood costs no more than this many small tasks.
const BUSY_ANSWERS: usize = 4;
/// The smallest read buffer hyper allows; it bounds a request's head (line and headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How many headers a request may have.
const MAX_HEADERS: usize = 32;

/// Limits and address of the admin server.
///
/// Every field is a bound: `weft` commands send small JSON bodies and hold a connection for
/// one command, so the defaults are generous for them and small for anything else.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen: a loopback address (`127.0.0.1` or `::1`) only; port 0 picks a free
    /// port (written to `admin.addr`). Default `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// The largest request body accepted; a larger one gets `413`. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Connections served at once. When full, a new connection gets `503` with a message
    /// (while at most a handful of such answers are pending; beyond that it is closed
    /// unanswered) and is closed. A `weft gossip subscribe` holds one for as long as it runs.
    /// Default 32.
    pub max_connections: usize,
    /// How long a client may take to send a request's head, and how long an idle kept-alive
    /// connection stays open. Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body. Default 10 s.
    pub body_read_timeout: Duration,
    /// How long the node may take to answer (a subscription: to start streaming); `504` after.
    /// Default 60 s.
    pub request_timeout: Duration,
    /// How long shutdown waits for requests in flight before closing their connections.
    /// Default 5 s.
    pub shutdown_grace: Duration,
    /// Whether `GET /metrics` answers without the token (for a Prometheus scraper on this
    /// machine). Every other route keeps requiring it. Default false.
    pub open_metrics: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes: 1024 * 1024,
            max_connections: 32,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
            open_metrics: false,
        }
    }
}

/// Why the admin server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The bind address is not a loopback address.
    #[error(
        "the admin API binds a loopback address only (127.0.0.1 or ::1), not {addr}: anyone who \
         reaches it could attempt to control the node"
    )]
    NotLoopback {
        /// The refused address.
        addr: SocketAddr,
    },
    /// The data directory is missing or not a directory.
    #[error("the data directory {} is not usable for the admin files: {source}", path.display())]
    DataDir {
        /// The data directory.
        path: PathBuf,
        /// What the filesystem said.
        source: io::Error,
    },
    /// Binding the listener failed.
    #[error("the admin API cannot listen on {addr}: {source}")]
    Bind {
        /// The bind address.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// The operating system's random generator failed.
    #[error("no admin token: the random generator failed: {0}")]
    Token(io::Error),
    /// Writing `admin.token` or `admin.addr` failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the filesystem said.
        source: io::Error,
    },
}

/// A running admin server.
///
/// It serves until [`shutdown`](Self::shutdown), until the token given to
/// [`spawn`](Self::spawn) is cancelled, or until it is dropped; then it stops accepting, lets
/// requests in flight finish within [`ServerConfig::shutdown_grace`], ends streamed answers,
/// and removes `admin.addr` and `admin.token`.
///
/// Routes (JSON but for `/metrics`, all behind `Authorization: Bearer <admin.token>` but the
/// status page's files, which hold no data):
///
/// | route | [`Api`] method |
/// |---|---|
/// | `GET /v1/status` | [`status`](Api::status) |
/// | `GET /v1/peers` | [`peers`](Api::peers) |
/// | `GET /v1/overview` | [`overview`](Api::overview) |
/// | `GET /v1/topology?topic=<hex id or name>` | [`topology`](Api::topology) |
/// | `POST /v1/gossip/publish` | [`gossip_publish`](Api::gossip_publish) |
/// | `POST /v1/gossip/subscribe` (JSON lines) | [`gossip_subscribe`](Api::gossip_subscribe) |
/// | `POST /v1/registry/provide` | [`registry_provide`](Api::registry_provide) |
/// | `POST /v1/registry/find` | [`registry_find`](Api::registry_find) |
/// | `POST /v1/call` | [`call`](Api::call) |
/// | `POST /v1/sync/add` | [`sync_add`](Api::sync_add) |
/// | `POST /v1/sync/list` | [`sync_list`](Api::sync_list) |
/// | `POST /v1/sync/status` | [`sync_status`](Api::sync_status) |
/// | `POST /v1/shutdown` | [`shutdown`](Api::shutdown) |
/// | `GET /metrics` (OpenMetrics text; without the token when [`ServerConfig::open_metrics`]) | [`metrics`](Api::metrics) |
/// | `GET /`, `/page/app.js`, `/page/style.css` (the status page; no token) | — |
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    token: Token,
    files: AdminFiles,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `config.bind`, writes a fresh token to `<data_dir>/admin.token` (mode 0600)
    /// and the bound address to `<data_dir>/admin.addr`, and serves `api` until `cancel` is
    /// cancelled or [`shutdown`](Self::shutdown) is called.
    ///
    /// The data directory must exist. The token is written before the address, so a client
    /// that finds the address finds the token.
    pub async fn spawn<A: Api>(
        config: ServerConfig,
        data_dir: &Path,
        api: Arc<A>,
        cancel: &CancellationToken,
    ) -> Result<Self, StartError> {
        let addr = config.bind;
        if !addr.ip().is_loopback() {
            return Err(StartError::NotLoopback { addr });
        }
        match std::fs::metadata(data_dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(StartError::DataDir {
                    path: data_dir.to_owned(),
                    source: io::Error::other("not a directory"),
                });
            }
            Err(source) => {
                return Err(StartError::DataDir {
                    path: data_dir.to_owned(),
                    source,
                });
            }
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;

        let token = Token::generate().map_err(StartError::Token)?;
        let files = AdminFiles::in_dir(data_dir);
        let token_line = format!("{}\n", token.as_str());
        crate::atomic_file::write_atomic(&files.token, token_line.as_bytes(), 0o600).map_err(
            |source| StartError::Write {
                path: files.token.clone(),
                source,
            },
        )?;
        if let Err(source) =
            crate::atomic_file::write_atomic(&files.addr, format!("{bound}\n").as_bytes(), 0o644)
        {
            let _ = files::remove_if_present(&files.token);
            return Err(StartError::Write {
                path: files.addr.clone(),
                source,
            });
        }

        // A child token: dropping or shutting down this server must not cancel the caller's.
        let cancel = cancel.child_token();
        let shared = Arc::new(Shared {
            api,
            token: token.clone(),
            config,
            shutdown: cancel.clone(),
        });
        let task = tokio::spawn(serve(listener, bound, shared, files.clone()));
        tracing::info!(addr = %bound, "admin API listening");
        Ok(Self {
            addr: bound,
            token,
            files,
            cancel,
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `<data_dir>/admin.token`.
    pub fn token_path(&self) -> &Path {
        &self.files.token
    }

    /// `<data_dir>/admin.addr`.
    pub fn addr_path(&self) -> &Path {
        &self.files.addr
    }

    /// The status page's address, with the token in its fragment (`http://<addr>/#token=...`).
    pub fn page_url(&self) -> String {
        super::page::url(self.addr, self.token.as_str())
    }

    /// Stops the server and waits until it has stopped and removed its files.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take()
            && let Err(err) = task.await
        {
            tracing::warn!(%err, "admin server task failed");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The task finishes the shutdown (and removes the files) on its own.
        self.cancel.cancel();
    }
}

/// The accept loop, then the drain, then the files.
async fn serve<A: Api>(
    listener: TcpListener,
    bound: SocketAddr,
    shared: Arc<Shared<A>>,
    files: AdminFiles,
) {
    let cancel = shared.shutdown.clone();
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    let busy_slots = Arc::new(Semaphore::new(BUSY_ANSWERS));
    let timeout = shared.config.header_read_timeout;
    let busy = ApiError::unavailable(format_args!(
        "the admin API is serving its limit of {} connections; try again when one ends",
        shared.config.max_connections
    ));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors and the like: say so, and give the system a
                        // moment instead of spinning on the same error.
                        tracing::warn!(%err, "admin API: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if let Ok(permit) = slots.clone().try_acquire_owned() {
                    let shared = shared.clone();
                    let service = service_fn(move |request: Request<Incoming>| {
                        routes::handle(shared.clone(), request)
                    });
                    let conn = connection(stream, service, permit, cancel.clone(), timeout, true);
                    connections.spawn(conn);
                } else if let Ok(permit) = busy_slots.clone().try_acquire_owned() {
                    let busy = busy.clone();
                    let service = service_fn(move |_: Request<Incoming>| {
                        let answer = body::error(&busy);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let conn = connection(stream, service, permit, cancel.clone(), timeout, false);
                    connections.spawn(conn);
                } else {
                    // Even the busy answers are taken: a flood. Closing costs nothing.
                    drop(stream);
                }
            }
        }
    }
    drop(listener);
    let grace = shared.config.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            ?grace,
            "admin API: requests still running after the grace period; closed"
        );
        connections.shutdown().await;
    }
    // Only our own files: a server started since on the same directory (a restart in the
    // same process) has replaced them, and its files must stay.
    let ours = [
        (&files.addr, format!("{bound}\n")),
        (&files.token, format!("{}\n", shared.token.as_str())),
    ];
    for (path, contents) in ours {
        if let Err(err) = files::remove_if_unchanged(path, contents.as_bytes()) {
            tracing::warn!(%err, path = %path.display(), "admin API: cannot remove");
        }
    }
    tracing::info!("admin API stopped");
}

/// Serves one connection until it ends; on shutdown, finishes the request in flight and
/// closes. `keep_alive` is off for "busy" answers, so they close after one response.
async fn connection<S>(
    stream: TcpStream,
    service: S,
    permit: OwnedSemaphorePermit,
    cancel: CancellationToken,
    header_read_timeout: Duration,
    keep_alive: bool,
) where
    S: HttpService<Incoming, ResBody = body::ResponseBody>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(keep_alive);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = cancel.cancelled_owned() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        // Header timeouts, resets, malformed requests: the client's problem, not the node's.
        tracing::debug!(%err, "admin API connection ended with an error");
    }
    // The slot is held for the connection's whole life, and freed only now.
    drop(permit);
}
