//! A small in-memory node behind the admin API, and helpers to start a server on it.
//!
//! It is a real backend, not a recording: gossip fans messages out to subscribers, the
//! registry stores providers, `call` answers an `echo` service, sync topics keep items, so a
//! test can check an answer end to end.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use weft_node::admin::{
    Api, ApiError, Call, CallReply, GossipEvent, GossipPublish, GossipTopicView, LayerStatus,
    Overview, Peer, Peers, Provided, Provider, Providers, Published, RegistryFind,
    RegistryOverview, RegistryProvide, Server, ServerConfig, ShuttingDown, Status, Subscription,
    SyncAdd, SyncAdded, SyncItem, SyncItems, SyncList, SyncStatus, SyncTopicOverview, TopicRequest,
    TopologyGraph, TopologyNode,
};

pub const NODE_ID: &str = "6b2f1c0e9a7d4c3b2a190807f6e5d4c3b2a19080706f5e4d3c2b1a0908070605";
const SUBSCRIBER_CAPACITY: usize = 16;

#[derive(Debug, Default)]
pub struct MemoryNode {
    state: Mutex<State>,
    /// Signalled whenever a gossip subscriber is added.
    pub subscribed: Notify,
    /// Cancelled by `shutdown`.
    pub shut_down: CancellationToken,
}

#[derive(Debug, Default)]
struct State {
    subscribers: BTreeMap<String, Vec<mpsc::Sender<GossipEvent>>>,
    published: u64,
    providers: BTreeMap<String, Vec<Provider>>,
    sync: BTreeMap<String, Vec<SyncItem>>,
}

/// A stand-in topic id for a name (the in-memory node has no gossip): its bytes, padded.
fn padded_id(name: &str) -> [u8; 32] {
    let mut id = [0u8; 32];
    for (slot, byte) in id.iter_mut().zip(name.bytes()) {
        *slot = byte;
    }
    id
}

impl MemoryNode {
    /// How many messages were published: lets a test show a refused request did nothing.
    pub fn published(&self) -> u64 {
        self.state.lock().unwrap().published
    }

    pub fn subscribers(&self, topic: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .subscribers
            .get(topic)
            .map_or(0, |subscribers| {
                subscribers.iter().filter(|s| !s.is_closed()).count()
            })
    }

    /// Waits until `topic` has `count` open subscribers.
    pub async fn wait_for_subscribers(&self, topic: &str, count: usize) {
        loop {
            let notified = self.subscribed.notified();
            if self.subscribers(topic) >= count {
                return;
            }
            notified.await;
        }
    }
}

impl Api for MemoryNode {
    async fn status(&self) -> Result<Status, ApiError> {
        Ok(Status {
            id: NODE_ID.to_owned(),
            ticket: format!("weft1{NODE_ID}"),
            network: "test".to_owned(),
            addresses: vec![SocketAddr::from(([127, 0, 0, 1], 4433))],
            relay: None,
            uptime_ms: 3_723_000,
            version: "0.1.0".to_owned(),
            layers: ["transport", "gossip", "discovery", "registry", "sync"]
                .into_iter()
                .map(|name| LayerStatus {
                    name: name.to_owned(),
                    running: true,
                    enabled: true,
                })
                .collect(),
            services: vec!["echo".to_owned()],
        })
    }

    async fn overview(&self) -> Result<Overview, ApiError> {
        let status = self.status().await?;
        let peers = self.peers().await?.peers;
        let state = self.state.lock().unwrap();
        let hex = |name: &str| hex::encode(padded_id(name));
        Ok(Overview {
            status,
            peers,
            gossip: state
                .subscribers
                .keys()
                .map(|name| GossipTopicView {
                    topic: hex(name),
                    name: Some(name.clone()),
                    active: Vec::new(),
                    passive: Vec::new(),
                })
                .collect(),
            registry: Some(RegistryOverview {
                records_held: state.providers.values().map(Vec::len).sum::<usize>() as u64,
                routing_peers: 1,
                held: state
                    .providers
                    .iter()
                    .map(|(name, providers)| weft_node::admin::HeldName {
                        name: name.clone(),
                        providers: providers.len(),
                    })
                    .collect(),
                provided: state.providers.keys().cloned().collect(),
            }),
            sync: state
                .sync
                .iter()
                .map(|(name, items)| SyncTopicOverview {
                    topic: hex(name),
                    name: Some(name.clone()),
                    items: items.len() as u64,
                    sessions: Vec::new(),
                })
                .collect(),
            events: Vec::new(),
        })
    }

    async fn topology(&self, request: TopicRequest) -> Result<TopologyGraph, ApiError> {
        // A node alone on each topic it joined: the graph is itself.
        if !self
            .state
            .lock()
            .unwrap()
            .subscribers
            .contains_key(&request.topic)
        {
            return Err(ApiError::not_found("not joined"));
        }
        Ok(TopologyGraph {
            topic: request.topic,
            nodes: vec![TopologyNode {
                id: NODE_ID.to_owned(),
                me: true,
                depth: 0,
                answered: true,
            }],
            edges: Vec::new(),
            asked: 0,
            unanswered: 0,
            truncated: false,
        })
    }

    async fn metrics(&self) -> Result<String, ApiError> {
        // What a node with one counter would answer; the real encoding is tested on a node.
        Ok("# TYPE weft_test_requests counter\nweft_test_requests_total 1\n# EOF\n".to_owned())
    }

    async fn peers(&self) -> Result<Peers, ApiError> {
        Ok(Peers {
            peers: vec![Peer {
                id: "a".repeat(64),
                addresses: vec![SocketAddr::from(([127, 0, 0, 1], 4434))],
                relay: None,
                rtt_us: Some(1_250),
            }],
        })
    }

    async fn gossip_publish(&self, request: GossipPublish) -> Result<Published, ApiError> {
        let mut state = self.state.lock().unwrap();
        state.published += 1;
        let id = state.published;
        let subscribers = state.subscribers.entry(request.topic).or_default();
        subscribers.retain(|subscriber| !subscriber.is_closed());
        for subscriber in subscribers.iter() {
            // A full subscriber misses the message; the real node reports `Lagged`.
            let _ = subscriber.try_send(GossipEvent::Message {
                from: NODE_ID.to_owned(),
                content: request.content.clone(),
            });
        }
        Ok(Published {
            message_id: format!("{id:016x}"),
        })
    }

    async fn gossip_subscribe(
        &self,
        request: TopicRequest,
    ) -> Result<Subscription<GossipEvent>, ApiError> {
        let (sender, subscription) = Subscription::channel(SUBSCRIBER_CAPACITY);
        self.state
            .lock()
            .unwrap()
            .subscribers
            .entry(request.topic)
            .or_default()
            .push(sender);
        self.subscribed.notify_waiters();
        Ok(subscription)
    }

    async fn registry_provide(&self, request: RegistryProvide) -> Result<Provided, ApiError> {
        if request.name.is_empty() {
            return Err(ApiError::bad_request("the name is empty"));
        }
        let provider = Provider {
            id: NODE_ID.to_owned(),
            addresses: vec![SocketAddr::from(([127, 0, 0, 1], 4433))],
            relay: None,
            metadata: request.metadata,
            expires_in_ms: 3_600_000,
        };
        let mut state = self.state.lock().unwrap();
        let providers = state.providers.entry(request.name.clone()).or_default();
        providers.retain(|existing| existing.id != provider.id);
        providers.push(provider);
        Ok(Provided {
            name: request.name,
            holders: 1,
        })
    }

    async fn registry_find(&self, request: RegistryFind) -> Result<Providers, ApiError> {
        let providers = self
            .state
            .lock()
            .unwrap()
            .providers
            .get(&request.name)
            .cloned()
            .unwrap_or_default();
        Ok(Providers {
            name: request.name,
            providers,
        })
    }

    async fn call(&self, request: Call) -> Result<CallReply, ApiError> {
        match request.name.as_str() {
            "echo" => Ok(CallReply {
                provider: NODE_ID.to_owned(),
                response: request.request,
                elapsed_ms: 1,
                failed: Vec::new(),
            }),
            // Never answers: the server's request timeout has to.
            "hang" => std::future::pending().await,
            name => Err(ApiError::not_found(format_args!(
                "no provider of {name} answered"
            ))),
        }
    }

    async fn sync_add(&self, request: SyncAdd) -> Result<SyncAdded, ApiError> {
        let mut state = self.state.lock().unwrap();
        let items = state.sync.entry(request.topic.clone()).or_default();
        let item = request.content.map(|content| {
            let id = format!("{:064x}", items.len() + 1);
            let timestamp = request.timestamp.unwrap_or(items.len() as u64 + 1);
            items.push(SyncItem {
                id: id.clone(),
                timestamp,
                content,
            });
            items.sort_by_key(|item| item.timestamp);
            id
        });
        Ok(SyncAdded {
            topic: request.topic,
            item,
        })
    }

    async fn sync_list(&self, request: SyncList) -> Result<SyncItems, ApiError> {
        let state = self.state.lock().unwrap();
        let Some(items) = state.sync.get(&request.topic) else {
            return Err(ApiError::not_found(format_args!(
                "not syncing {}",
                request.topic
            )));
        };
        let matching: Vec<_> = items
            .iter()
            .filter(|item| item.timestamp >= request.since)
            .collect();
        let limit = request.limit as usize;
        Ok(SyncItems {
            topic: request.topic,
            items: matching
                .iter()
                .take(limit)
                .map(|item| (*item).clone())
                .collect(),
            more: matching.len() > limit,
        })
    }

    async fn sync_status(&self, request: TopicRequest) -> Result<SyncStatus, ApiError> {
        let state = self.state.lock().unwrap();
        let items = state.sync.get(&request.topic);
        Ok(SyncStatus {
            topic: request.topic,
            joined: items.is_some(),
            items: items.map_or(0, |items| items.len() as u64),
            sessions: Vec::new(),
        })
    }

    async fn shutdown(&self) -> Result<ShuttingDown, ApiError> {
        self.shut_down.cancel();
        Ok(ShuttingDown {})
    }
}

/// A server on a fresh data directory.
pub struct Running {
    pub dir: tempfile::TempDir,
    pub node: Arc<MemoryNode>,
    pub server: Server,
}

pub async fn start(config: ServerConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(MemoryNode::default());
    let server = Server::spawn(config, dir.path(), node.clone(), &CancellationToken::new())
        .await
        .unwrap();
    Running { dir, node, server }
}

/// One request with the given `Authorization` value (or none), answered with its status and
/// body: for testing what the typed client never sends.
pub async fn raw(
    addr: SocketAddr,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Bytes) {
    let (status, _, body) = raw_response(addr, method, path, authorization, body).await;
    (status, body)
}

/// As [`raw`], with the response's headers.
pub async fn raw_response(
    addr: SocketAddr,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

/// The token the server wrote.
pub fn token(running: &Running) -> String {
    std::fs::read_to_string(running.server.token_path())
        .unwrap()
        .trim()
        .to_owned()
}

/// Fails a test that waits for something that never comes, instead of hanging it.
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("timed out after 30 s")
}
