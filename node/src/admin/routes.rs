//! The route table: authentication first, then one line per route.
//!
//! To add a route: a path in [`paths`], a method on [`Api`] (or whatever produces the
//! answer: `/metrics` answers text), and a line in [`route`]. Authentication and the body
//! limits apply to every route without more code; a route that must answer without the token
//! (`/metrics` for a scraper, when the config opens it; the status page's files) is matched in
//! [`handle`] before the token check.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap};
use hyper::{Method, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::api::{Api, ApiError, ErrorKind};
use super::body::{self, JsonLines, ResponseBody};
use super::files::Token;
use super::page;
use super::server::ServerConfig;
use super::types::TopicRequest;

/// The paths of the admin API, shared by the server and the client.
pub(crate) mod paths {
    pub(crate) const STATUS: &str = "/v1/status";
    pub(crate) const PEERS: &str = "/v1/peers";
    pub(crate) const OVERVIEW: &str = "/v1/overview";
    pub(crate) const TOPOLOGY: &str = "/v1/topology";
    pub(crate) const GOSSIP_PUBLISH: &str = "/v1/gossip/publish";
    pub(crate) const GOSSIP_SUBSCRIBE: &str = "/v1/gossip/subscribe";
    pub(crate) const REGISTRY_PROVIDE: &str = "/v1/registry/provide";
    pub(crate) const REGISTRY_FIND: &str = "/v1/registry/find";
    pub(crate) const CALL: &str = "/v1/call";
    pub(crate) const SYNC_ADD: &str = "/v1/sync/add";
    pub(crate) const SYNC_LIST: &str = "/v1/sync/list";
    pub(crate) const SYNC_STATUS: &str = "/v1/sync/status";
    pub(crate) const SHUTDOWN: &str = "/v1/shutdown";
    pub(crate) const METRICS: &str = "/metrics";

    /// Every path, so a known path with the wrong method is a 405 and not a 404.
    pub(crate) const ALL: &[&str] = &[
        STATUS,
        PEERS,
        OVERVIEW,
        TOPOLOGY,
        GOSSIP_PUBLISH,
        GOSSIP_SUBSCRIBE,
        REGISTRY_PROVIDE,
        REGISTRY_FIND,
        CALL,
        SYNC_ADD,
        SYNC_LIST,
        SYNC_STATUS,
        SHUTDOWN,
        METRICS,
    ];
}

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct Shared<A> {
    pub(crate) api: Arc<A>,
    pub(crate) token: Token,
    pub(crate) config: ServerConfig,
    /// Cancelled when the server shuts down: ends streamed answers.
    pub(crate) shutdown: CancellationToken,
}

/// Answers one request. Never fails: every failure is an error answer.
pub(crate) async fn handle<A: Api>(
    shared: Arc<Shared<A>>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    // A scraper without the token, when the config opens `/metrics`: read-only counters, no body.
    if shared.config.open_metrics
        && request.method() == Method::GET
        && request.uri().path() == paths::METRICS
    {
        return Ok(metrics(&shared)
            .await
            .unwrap_or_else(|err| body::error(&err)));
    }
    // The status page's files hold no data (the page brings the token itself; see `page`).
    if request.method() == Method::GET
        && let Some(file) = page::file(request.uri().path())
    {
        return Ok(file);
    }
    // Before anything else, and before reading the body: an unauthenticated request gets
    // nothing done and costs no more than its headers.
    if !authorized(&shared.token, request.headers()) {
        return Ok(body::error(&ApiError::new(
            ErrorKind::Unauthorized,
            "missing or wrong admin token (send `Authorization: Bearer <contents of admin.token>`)",
        )));
    }
    let response = route(&shared, request).await;
    Ok(response.unwrap_or_else(|err| body::error(&err)))
}

async fn route<A: Api>(
    shared: &Shared<A>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    use paths::*;
    let api = &*shared.api;
    let method = request.method().clone();
    match (&method, request.uri().path()) {
        (&Method::GET, STATUS) => unary(shared, api.status()).await,
        (&Method::GET, PEERS) => unary(shared, api.peers()).await,
        (&Method::GET, OVERVIEW) => unary(shared, api.overview()).await,
        (&Method::GET, TOPOLOGY) => {
            let topic = query_value(&request, "topic").ok_or_else(|| {
                ApiError::bad_request("say which topic: /v1/topology?topic=<hex id or name>")
            })?;
            unary(shared, api.topology(TopicRequest { topic })).await
        }
        (&Method::POST, GOSSIP_PUBLISH) => {
            let input = read_json(shared, request).await?;
            unary(shared, api.gossip_publish(input)).await
        }
        (&Method::POST, GOSSIP_SUBSCRIBE) => {
            let input = read_json(shared, request).await?;
            let subscription = answer_within(shared, api.gossip_subscribe(input)).await?;
            Ok(body::json_lines(JsonLines::new(
                subscription.receiver,
                shared.shutdown.clone(),
            )))
        }
        (&Method::POST, REGISTRY_PROVIDE) => {
            let input = read_json(shared, request).await?;
            unary(shared, api.registry_provide(input)).await
        }
        (&Method::POST, REGISTRY_FIND) => {
            let input = read_json(shared, request).await?;
            unary(shared, api.registry_find(input)).await
        }
        (&Method::POST, CALL) => {
            let input = read_json(shared, request).await?;
            unary(shared, api.call(input)).await
        }
        (&Method::POST, SYNC_ADD) => {
            let input = read_json(shared, request).await?;
            unary(shared, api.sync_add(input)).await
        }
        (&Method::POST, SYNC_LIST) => {
            let input = read_json(shared, request).await?;
            unary(shared, api.sync_list(input)).await
        }
        (&Method::POST, SYNC_STATUS) => {
            let input = read_json(shared, request).await?;
            unary(shared, api.sync_status(input)).await
        }
        (&Method::POST, SHUTDOWN) => unary(shared, api.shutdown()).await,
        (&Method::GET, METRICS) => metrics(shared).await,
        (_, path) if ALL.contains(&path) => Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format_args!("{method} is not allowed on {path}"),
        )),
        (_, path) => Err(ApiError::not_found(format_args!("no route {path}"))),
    }
}

/// The value of `key` in the request's query string, percent-decoded.
fn query_value(request: &Request<Incoming>, key: &str) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.into_owned())
}

/// `GET /metrics`: the counters as OpenMetrics text.
async fn metrics<A: Api>(shared: &Shared<A>) -> Result<Response<ResponseBody>, ApiError> {
    let text = answer_within(shared, shared.api.metrics()).await?;
    Ok(body::respond(
        hyper::StatusCode::OK,
        body::OPENMETRICS,
        text.into(),
    ))
}

/// `Authorization: Bearer <token>`, the scheme matched without case (RFC 9110 §11.1).
fn authorized(token: &Token, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    const SCHEME: &[u8] = b"bearer ";
    if value.len() < SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return false;
    }
    token.matches(&value[SCHEME.len()..])
}

/// Runs an answer under the request timeout.
async fn answer_within<A, T>(
    shared: &Shared<A>,
    answer: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limit = shared.config.request_timeout;
    tokio::time::timeout(limit, answer)
        .await
        .map_err(|_| ApiError::timeout(format_args!("the node did not answer within {limit:?}")))?
}

async fn unary<A, T: Serialize>(
    shared: &Shared<A>,
    answer: impl Future<Output = Result<T, ApiError>>,
) -> Result<Response<ResponseBody>, ApiError> {
    Ok(body::json(&answer_within(shared, answer).await?))
}

/// Reads and decodes a JSON body, bounded in size and in time.
async fn read_json<A, T: DeserializeOwned>(
    shared: &Shared<A>,
    request: Request<Incoming>,
) -> Result<T, ApiError> {
    let max = shared.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format_args!("the request body is larger than the admin server's limit of {max} bytes"),
        )
    };
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large());
    }
    let limit = shared.config.body_read_timeout;
    let collected = tokio::time::timeout(limit, Limited::new(request.into_body(), max).collect())
        .await
        .map_err(|_| {
            ApiError::timeout(format_args!(
                "the request body did not arrive within {limit:?}"
            ))
        })?;
    let bytes: Bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(err) => {
            return Err(ApiError::bad_request(format_args!(
                "reading the request body failed: {err}"
            )));
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::bad_request(format_args!("the request body is not valid: {err}")))
}
