//! The provider side: the `call/1` protocol handler, the table of served names, and the
//! bounds on what serving may cost.
//!
//! Each call is one bidirectional stream. A stream is served only with two permits in hand:
//! one of [`MAX_IN_FLIGHT`] for the node and one of [`MAX_IN_FLIGHT_PER_CONNECTION`] for its
//! connection, so one peer cannot take every slot. When either is gone the stream is answered
//! [`CallFailure::Busy`] at once, without reading the request: the caller fails over to another
//! provider rather than queueing here.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};
use tracing::{debug, warn};
use weft_transport::{
    Endpoint, FrameError, FramedRecv, FramedSend, HandlerRegistration, PeerId, RegisterError,
    iroh::{AcceptError, Connection, ProtocolHandler, RecvStream, SendStream},
};

use super::{
    CallAnswer, CallFailure, CallRequest, MAX_ANSWER_FRAME, MAX_ERROR_LEN, MAX_REQUEST_FRAME,
    MAX_REQUEST_SIZE, MAX_RESPONSE_SIZE, PROTOCOL, handler::Handler, order::RecentFailures,
};

/// Calls served at once by one node, at most; the next is answered [`CallFailure::Busy`].
pub const MAX_IN_FLIGHT: usize = 256;

/// Calls served at once on one connection, at most; the next is answered
/// [`CallFailure::Busy`]. A peer holds at most the endpoint's `max_inbound_per_peer`
/// connections, so this bounds what one peer can take of [`MAX_IN_FLIGHT`].
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 32;

/// How long a caller has to send its whole request once it opened the stream.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long writing an answer may take; a caller that does not read loses it.
const ANSWER_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One served name.
#[derive(Debug, Clone)]
struct Served {
    /// Tells this serving apart from a later one of the same name, so a stale
    /// [`super::Service`] handle never removes its successor.
    id: u64,
    handler: Handler,
    timeout: Duration,
}

/// The names this node serves and the `call/1` handler that answers for them. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    services: Mutex<BTreeMap<String, Served>>,
    next_id: AtomicU64,
    in_flight: Arc<Semaphore>,
    /// Cancelled when the node stops serving: calls are then answered `ShuttingDown`.
    stopped: CancellationToken,
    /// Providers this node's calls failed at lately, tried last by the next calls.
    failures: RecentFailures,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A plain map: a panic elsewhere leaves it usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Server {
    /// A server answering `call/1` on `endpoint`, serving no name yet.
    pub(crate) fn spawn(endpoint: &Endpoint) -> Result<(Self, HandlerRegistration), RegisterError> {
        let server = Self {
            inner: Arc::new(Inner {
                services: Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(0),
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                stopped: CancellationToken::new(),
                failures: RecentFailures::default(),
            }),
        };
        let registration = endpoint.register(PROTOCOL, server.clone())?;
        // A caller's connection to a provider it no longer calls goes; an attempt is silent
        // for at most its handler's time-out, well within the call's.
        endpoint.close_idle(PROTOCOL, super::DEFAULT_CALL_TIMEOUT);
        Ok((server, registration))
    }

    /// The providers this node's calls failed at lately.
    pub(crate) fn failures(&self) -> &RecentFailures {
        &self.inner.failures
    }

    /// Starts answering for `name`; `None` if it is served already.
    pub(crate) fn add(&self, name: &str, handler: Handler, timeout: Duration) -> Option<u64> {
        let mut services = lock(&self.inner.services);
        if services.contains_key(name) {
            return None;
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        services.insert(
            name.to_owned(),
            Served {
                id,
                handler,
                timeout,
            },
        );
        Some(id)
    }

    /// Stops answering for `name` if serving `id` still holds it.
    pub(crate) fn remove(&self, name: &str, id: u64) {
        let mut services = lock(&self.inner.services);
        if services.get(name).is_some_and(|served| served.id == id) {
            services.remove(name);
        }
    }

    /// The names served now, in order.
    pub(crate) fn names(&self) -> Vec<String> {
        lock(&self.inner.services).keys().cloned().collect()
    }

    /// Stops answering every call (each is answered `ShuttingDown` from now on).
    pub(crate) fn stop(&self) {
        self.inner.stopped.cancel();
    }

    /// A permit to serve one call, if the node has one free.
    pub(crate) fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.in_flight.clone().try_acquire_owned().ok()
    }

    /// Answers one request (already holding its permit): runs the handler on its own task,
    /// within its timeout, and turns whatever happens into an answer. Used for calls from
    /// peers and for calls this node makes to itself.
    pub(crate) async fn dispatch(&self, request: CallRequest) -> CallAnswer {
        if self.inner.stopped.is_cancelled() {
            return CallAnswer::Failed(CallFailure::ShuttingDown);
        }
        let Some(served) = lock(&self.inner.services).get(&request.name).cloned() else {
            return CallAnswer::Failed(CallFailure::UnknownService);
        };
        if request.body.len() > MAX_REQUEST_SIZE {
            return CallAnswer::Failed(CallFailure::RequestTooLarge);
        }
        // Its own task: a panic ends that task only. Aborted when dropped, so neither the
        // timeout nor a caller giving up leaves a handler running.
        let task = AbortOnDropHandle::new(tokio::spawn(served.handler.run(request.body)));
        match tokio::time::timeout(served.timeout, task).await {
            Err(_) => {
                debug!(name = %request.name, "a handler timed out");
                CallAnswer::Failed(CallFailure::TimedOut)
            }
            Ok(Err(err)) => {
                warn!(name = %request.name, "a handler failed: {err}");
                CallAnswer::Failed(CallFailure::Panicked)
            }
            Ok(Ok(Err(CallFailure::Handler(message)))) => {
                CallAnswer::Failed(CallFailure::Handler(truncate(message, MAX_ERROR_LEN)))
            }
            Ok(Ok(Err(failure))) => CallAnswer::Failed(failure),
            Ok(Ok(Ok(response))) if response.len() > MAX_RESPONSE_SIZE => {
                CallAnswer::Failed(CallFailure::ResponseTooLarge)
            }
            Ok(Ok(Ok(response))) => CallAnswer::Ok(response),
        }
    }

    /// Serves one stream: reads the request, dispatches it, writes the answer.
    async fn serve_stream(&self, from: PeerId, send: SendStream, recv: RecvStream) {
        let mut recv = FramedRecv::<CallRequest>::new(recv, MAX_REQUEST_FRAME);
        let answer = match tokio::time::timeout(REQUEST_READ_TIMEOUT, recv.recv()).await {
            Ok(Ok(request)) => self.dispatch(request).await,
            // Answered, so a buggy or hostile caller learns why rather than seeing a reset.
            Ok(Err(FrameError::TooLarge { .. })) => {
                CallAnswer::Failed(CallFailure::RequestTooLarge)
            }
            Ok(Err(FrameError::Malformed(reason))) => {
                debug!(peer = %from.fmt_short(), "a malformed call: {reason}");
                CallAnswer::Failed(CallFailure::Malformed)
            }
            // The stream broke or ended early, or the caller was too slow: nobody to answer.
            Ok(Err(_)) | Err(_) => return,
        };
        // The request is read; the receive side is done.
        drop(recv);
        let mut send = FramedSend::<CallAnswer>::new(send, MAX_ANSWER_FRAME);
        let _ = tokio::time::timeout(ANSWER_WRITE_TIMEOUT, answer_once(&mut send, &answer)).await;
    }
}

/// Writes an answer and finishes the stream.
async fn answer_once(
    send: &mut FramedSend<CallAnswer>,
    answer: &CallAnswer,
) -> Result<(), FrameError> {
    send.send(answer).await?;
    // A finished stream is delivered even after it is dropped.
    send.finish()
}

/// `message` cut to at most `max` bytes, on a character boundary.
fn truncate(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut end = max;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

impl ProtocolHandler for Server {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let from = PeerId::from(connection.remote_id());
        let per_connection = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
        loop {
            let (send, recv) = tokio::select! {
                () = self.inner.stopped.cancelled() => break,
                stream = connection.accept_bi() => match stream {
                    Ok(stream) => stream,
                    Err(_) => break,
                },
            };
            let permits = per_connection
                .clone()
                .try_acquire_owned()
                .ok()
                .zip(self.try_permit());
            let Some(permits) = permits else {
                // Answered inline: a one-frame write on a fresh stream does not wait on the
                // caller, and only this peer's own connection waits if it does.
                let mut send = FramedSend::<CallAnswer>::new(send, MAX_ANSWER_FRAME);
                let busy = CallAnswer::Failed(CallFailure::Busy);
                let _ = tokio::time::timeout(ANSWER_WRITE_TIMEOUT, async {
                    send.send(&busy).await?;
                    send.finish()
                })
                .await;
                drop(recv);
                continue;
            };
            let server = self.clone();
            tokio::spawn(async move {
                server.serve_stream(from, send, recv).await;
                drop(permits);
            });
        }
        Ok(())
    }

    /// Called by `Endpoint::shutdown`: calls in progress finish, new ones are refused.
    async fn shutdown(&self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_keeps_whole_characters() {
        assert_eq!(truncate("héllo".into(), 2), "h");
        assert_eq!(truncate("hello".into(), 10), "hello");
        assert_eq!(truncate("hello".into(), 3), "hel");
    }
}
