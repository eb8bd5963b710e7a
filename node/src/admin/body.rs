//! Response bodies: whole JSON documents, errors, and JSON-lines streams.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::Full;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::api::{ApiError, ErrorBody, ErrorKind};

/// Every response body the server sends: `Unsync` because a stream holds a receiver and a
/// cancellation future, which are `Send` but not `Sync`.
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub(crate) const JSON_LINES: HeaderValue = HeaderValue::from_static("application/x-ndjson");
/// What Prometheus asks for first and parses: OpenMetrics text, ending with `# EOF`.
pub(crate) const OPENMETRICS: HeaderValue =
    HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");

/// A response with a body of bytes and a content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: HeaderValue,
    body: Bytes,
) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// `200 OK` with `value` as JSON.
pub(crate) fn json<T: Serialize>(value: &T) -> Response<ResponseBody> {
    match serde_json::to_vec(value) {
        Ok(body) => respond(StatusCode::OK, JSON, body.into()),
        // Our response types serialise infallibly (no maps with non-string keys, no custom
        // serialisers that fail); this is here so a future type that can fail says so.
        Err(err) => error(&ApiError::internal(format_args!(
            "encoding the answer failed: {err}"
        ))),
    }
}

/// An error answer: its kind's status and `{"error": {...}}`.
pub(crate) fn error(err: &ApiError) -> Response<ResponseBody> {
    let body = serde_json::to_vec(&ErrorBody { error: err.clone() }).unwrap_or_else(|_| {
        br#"{"error":{"kind":"internal","message":"unencodable error"}}"#.to_vec()
    });
    let mut response = respond(err.kind.status(), JSON, body.into());
    match err.kind {
        ErrorKind::Unauthorized => {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // The rest of an oversize body is not worth reading to keep the connection.
        ErrorKind::PayloadTooLarge => {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    response
}

/// A stream of JSON lines fed by a channel; it ends when the channel's sender is gone or the
/// server shuts down (so a subscription never holds a graceful shutdown open).
pub(crate) struct JsonLines<T> {
    receiver: mpsc::Receiver<T>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<T> JsonLines<T> {
    pub(crate) fn new(receiver: mpsc::Receiver<T>, shutdown: CancellationToken) -> Self {
        Self {
            receiver,
            shutdown: Box::pin(shutdown.cancelled_owned()),
        }
    }
}

impl<T: Serialize + Send + 'static> Body for JsonLines<T> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        loop {
            match self.receiver.poll_recv(cx) {
                Poll::Ready(Some(event)) => match serde_json::to_vec(&event) {
                    Ok(mut line) => {
                        line.push(b'\n');
                        return Poll::Ready(Some(Ok(Frame::data(line.into()))));
                    }
                    Err(err) => {
                        tracing::warn!(%err, "admin: an event could not be encoded; skipped");
                    }
                },
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// `200 OK` streaming `lines`.
pub(crate) fn json_lines<T: Serialize + Send + 'static>(
    lines: JsonLines<T>,
) -> Response<ResponseBody> {
    let mut response = Response::new(lines.boxed_unsync());
    response.headers_mut().insert(CONTENT_TYPE, JSON_LINES);
    response
}
