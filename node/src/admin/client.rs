//! The admin client: finds a running node through its data directory and calls its API.

use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

use super::api::{ApiError, ErrorBody, ErrorKind};
use super::body::JSON;
use super::files::{self, AdminFiles, Token};
use super::overview::{Overview, TopologyGraph};
use super::routes::paths;
use super::types::{
    Call, CallReply, GossipEvent, GossipPublish, Payload, Peers, Provided, Providers, Published,
    RegistryFind, RegistryProvide, ShuttingDown, Status, SyncAdd, SyncAdded, SyncItems, SyncList,
    SyncStatus, TopicRequest,
};

/// How long connecting to the admin server may take; it is on loopback, so a slow connect
/// means a wedged node, not a slow network.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read; answers are small JSON documents.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// The longest line of a streamed answer.
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No node is running on the data directory: no `admin.addr`, or nothing listens at it.
    #[error("no running node for data directory {} ({reason})", data_dir.display())]
    NoRunningNode {
        /// The data directory.
        data_dir: PathBuf,
        /// What was found instead, in a few words.
        reason: String,
    },
    /// The node refused the token.
    #[error(
        "the node refused the admin token in {} (a token from another run of the node, or a \
         changed file)",
        token_file.display()
    )]
    Unauthorized {
        /// The token file that was read.
        token_file: PathBuf,
    },
    /// An admin file exists but cannot be read or parsed.
    #[error("cannot use {}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The node answered with an error.
    #[error("the node says: {0}")]
    Api(#[from] ApiError),
    /// The call did not finish in time.
    #[error("the node did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection to the node failed mid-call.
    #[error("the admin connection failed: {0}")]
    Connection(String),
    /// The request could not be encoded (not expected of the request types).
    #[error("cannot encode the request: {0}")]
    Encode(String),
    /// The node answered something this client cannot read (a different `weft` version?).
    #[error("unreadable answer from the node: {0}")]
    InvalidResponse(String),
}

/// A client of a running node's admin API.
///
/// ```no_run
/// # async fn run() -> Result<(), weft_node::admin::ClientError> {
/// let client = weft_node::admin::Client::from_data_dir("/var/lib/weft".as_ref())?;
/// let status = client.status().await?;
/// println!("{} up for {} ms", status.id, status.uptime_ms);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    data_dir: PathBuf,
    files: AdminFiles,
    addr: SocketAddr,
    token: Token,
    timeout: Duration,
}

impl Client {
    /// The default time a call may take, longer than the server's default request timeout so
    /// the server's `504` (which says more) arrives first.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(75);

    /// A client of the node running on `data_dir`, found through `admin.addr` and
    /// `admin.token`. Fails with [`ClientError::NoRunningNode`] when there is no `admin.addr`.
    pub fn from_data_dir(data_dir: &Path) -> Result<Self, ClientError> {
        let files = AdminFiles::in_dir(data_dir);
        let addr_text = match std::fs::read_to_string(&files.addr) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(ClientError::NoRunningNode {
                    data_dir: data_dir.to_owned(),
                    reason: format!("no {}; start one with `weft run`", files::ADDR_FILE),
                });
            }
            Err(err) => {
                return Err(ClientError::BadFile {
                    path: files.addr,
                    reason: err.to_string(),
                });
            }
        };
        let addr = files::parse_addr(&addr_text).map_err(|err| ClientError::BadFile {
            path: files.addr.clone(),
            reason: format!("not an address: {err}"),
        })?;
        let token = std::fs::read_to_string(&files.token)
            .map(|text| Token::from_text(&text))
            .map_err(|err| ClientError::BadFile {
                path: files.token.clone(),
                reason: err.to_string(),
            })?;
        Ok(Self {
            data_dir: data_dir.to_owned(),
            files,
            addr,
            token,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// Sets how long a call may take (a subscription: how long until it starts streaming).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The admin server's address, from `admin.addr`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get(paths::STATUS).await
    }

    /// `GET /metrics`: the node's counters as OpenMetrics text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let bytes = self
            .fetch(Method::GET, paths::METRICS, Bytes::new())
            .await?;
        String::from_utf8(bytes.to_vec())
            .map_err(|err| ClientError::InvalidResponse(err.to_string()))
    }

    /// `GET /v1/peers`.
    pub async fn peers(&self) -> Result<Peers, ClientError> {
        self.get(paths::PEERS).await
    }

    /// `GET /v1/overview`: what the status page shows but the graph.
    pub async fn overview(&self) -> Result<Overview, ClientError> {
        self.get(paths::OVERVIEW).await
    }

    /// `GET /v1/topology?topic=...`: a gossip topic's overlay (`topic`: a hex id or a name).
    pub async fn topology(&self, topic: &str) -> Result<TopologyGraph, ClientError> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("topic", topic)
            .finish();
        self.get(&format!("{}?{query}", paths::TOPOLOGY)).await
    }

    /// The status page's address, with the token in its fragment: open it in a browser on
    /// this machine (`weft status` prints it).
    pub fn page_url(&self) -> String {
        super::page::url(self.addr, self.token.as_str())
    }

    /// `POST /v1/gossip/publish`.
    pub async fn gossip_publish(
        &self,
        topic: &str,
        content: impl Into<Payload>,
    ) -> Result<Published, ClientError> {
        let request = GossipPublish {
            topic: topic.to_owned(),
            content: content.into(),
        };
        self.post(paths::GOSSIP_PUBLISH, &request).await
    }

    /// `POST /v1/gossip/subscribe`: the topic's events until the node or the caller stops.
    pub async fn gossip_subscribe(
        &self,
        topic: &str,
    ) -> Result<EventStream<GossipEvent>, ClientError> {
        let request = TopicRequest {
            topic: topic.to_owned(),
        };
        let body =
            serde_json::to_vec(&request).map_err(|err| ClientError::Encode(err.to_string()))?;
        let response = self
            .within(self.send(Method::POST, paths::GOSSIP_SUBSCRIBE, body.into()))
            .await?;
        let response = self.check(response).await?;
        Ok(EventStream {
            body: response.into_body(),
            buffer: BytesMut::new(),
            _event: PhantomData,
        })
    }

    /// `POST /v1/registry/provide`.
    pub async fn registry_provide(
        &self,
        name: &str,
        metadata: impl Into<Payload>,
    ) -> Result<Provided, ClientError> {
        let request = RegistryProvide {
            name: name.to_owned(),
            metadata: metadata.into(),
        };
        self.post(paths::REGISTRY_PROVIDE, &request).await
    }

    /// `POST /v1/registry/find`.
    pub async fn registry_find(&self, name: &str) -> Result<Providers, ClientError> {
        let request = RegistryFind {
            name: name.to_owned(),
        };
        self.post(paths::REGISTRY_FIND, &request).await
    }

    /// `POST /v1/call`.
    pub async fn call(&self, request: &Call) -> Result<CallReply, ClientError> {
        self.post(paths::CALL, request).await
    }

    /// `POST /v1/sync/add`.
    pub async fn sync_add(&self, request: &SyncAdd) -> Result<SyncAdded, ClientError> {
        self.post(paths::SYNC_ADD, request).await
    }

    /// `POST /v1/sync/list`.
    pub async fn sync_list(&self, request: &SyncList) -> Result<SyncItems, ClientError> {
        self.post(paths::SYNC_LIST, request).await
    }

    /// `POST /v1/sync/status`.
    pub async fn sync_status(&self, topic: &str) -> Result<SyncStatus, ClientError> {
        let request = TopicRequest {
            topic: topic.to_owned(),
        };
        self.post(paths::SYNC_STATUS, &request).await
    }

    /// `POST /v1/shutdown`.
    pub async fn shutdown(&self) -> Result<ShuttingDown, ClientError> {
        self.post(paths::SHUTDOWN, &ShuttingDown {}).await
    }

    async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.unary(Method::GET, path, Bytes::new()).await
    }

    async fn post<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        request: &T,
    ) -> Result<R, ClientError> {
        let body =
            serde_json::to_vec(request).map_err(|err| ClientError::Encode(err.to_string()))?;
        self.unary(Method::POST, path, body.into()).await
    }

    async fn unary<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<R, ClientError> {
        let bytes = self.fetch(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|err| ClientError::InvalidResponse(err.to_string()))
    }

    /// One request's answer body, checked for an error status, bounded in size and time.
    async fn fetch(&self, method: Method, path: &str, body: Bytes) -> Result<Bytes, ClientError> {
        self.within(async {
            let response = self.send(method, path, body).await?;
            let response = self.check(response).await?;
            read_limited(response.into_body()).await
        })
        .await
    }

    async fn within<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }

    /// One request on a fresh connection: a command makes one call, so there is nothing to
    /// keep alive, and the node's connection limit is not held by an idle client.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr))
            .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(ClientError::NoRunningNode {
                    data_dir: self.data_dir.clone(),
                    reason: format!("nothing listens at {} from {}", self.addr, files::ADDR_FILE),
                });
            }
            Ok(Err(err)) => {
                return Err(ClientError::Connection(format!(
                    "connecting to {}: {err}",
                    self.addr
                )));
            }
            Err(_) => return Err(ClientError::Timeout(CONNECT_TIMEOUT)),
        };
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| ClientError::Connection(err.to_string()))?;
        // Drives the connection; it ends when the response is read and `sender` is dropped.
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "admin client connection ended with an error");
            }
        });
        let authorization = HeaderValue::try_from(format!("Bearer {}", self.token.as_str()))
            .map_err(|_| ClientError::BadFile {
                path: self.files.token.clone(),
                reason: "the token is not printable text".to_owned(),
            })?;
        let host = HeaderValue::try_from(self.addr.to_string())
            .map_err(|err| ClientError::Connection(err.to_string()))?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host)
            .header(AUTHORIZATION, authorization)
            .header(CONTENT_TYPE, JSON)
            .body(Full::new(body))
            .map_err(|err| ClientError::Connection(err.to_string()))?;
        sender
            .send_request(request)
            .await
            .map_err(|err| ClientError::Connection(err.to_string()))
    }

    /// Turns a non-2xx answer into the error it carries.
    async fn check(
        &self,
        response: hyper::Response<Incoming>,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized {
                token_file: self.files.token.clone(),
            });
        }
        let bytes = read_limited(response.into_body()).await?;
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api(body.error)),
            Err(_) => Err(ClientError::Api(ApiError::new(
                ErrorKind::Other,
                format_args!("HTTP {status}"),
            ))),
        }
    }
}

async fn read_limited(body: Incoming) -> Result<Bytes, ClientError> {
    Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|err| ClientError::Connection(format!("reading the answer: {err}")))
}

/// A streamed answer: one `T` per JSON line.
#[derive(Debug)]
pub struct EventStream<T> {
    body: Incoming,
    buffer: BytesMut,
    _event: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> EventStream<T> {
    /// The next event; `None` when the node ended the stream (it shut down, or the
    /// subscription ended).
    pub async fn next(&mut self) -> Option<Result<T, ClientError>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&byte| byte == b'\n') {
                let line = self.buffer.split_to(end + 1);
                let line = &line[..end];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(
                    serde_json::from_slice(line)
                        .map_err(|err| ClientError::InvalidResponse(err.to_string())),
                );
            }
            if self.buffer.len() > MAX_LINE_BYTES {
                return Some(Err(ClientError::InvalidResponse(format!(
                    "a streamed line is longer than {MAX_LINE_BYTES} bytes"
                ))));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(err)) => return Some(Err(ClientError::Connection(err.to_string()))),
                None => return None,
            }
        }
    }
}
