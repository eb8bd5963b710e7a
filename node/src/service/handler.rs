//! What a service runs for each call, and how it is served.

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use super::CallFailure;

/// How long a handler may run by default before the call is answered
/// [`CallFailure::TimedOut`](super::CallFailure::TimedOut).
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(10);

/// The future a handler returns, boxed so every service fits one table. A failure is the
/// answer the caller gets: a user's handler can only fail with a message
/// ([`CallFailure::Handler`]); the node's own (a `[[service]]` program) also answers `Busy`,
/// `TimedOut` or `ResponseTooLarge`.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, CallFailure>> + Send>>;

/// A service's handler: request bytes in, response bytes or an error message out.
///
/// Made from any `Fn(Vec<u8>) -> impl Future<Output = Result<Vec<u8>, String>>` by
/// [`crate::Node::serve`]. It runs on its own task, so a panic is caught and answered as
/// [`CallFailure::Panicked`](super::CallFailure::Panicked), and one that never finishes is
/// cancelled at its timeout (an `.await` point is needed for that: a handler that blocks its
/// thread cannot be cancelled, so do blocking work in `spawn_blocking`).
#[derive(Clone)]
pub(crate) struct Handler(Arc<dyn Fn(Vec<u8>) -> HandlerFuture + Send + Sync>);

impl Handler {
    pub(crate) fn new<F, Fut>(handler: F) -> Self
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, String>> + Send + 'static,
    {
        Self::with_failures(move |request| {
            let answer = handler(request);
            async move { answer.await.map_err(CallFailure::Handler) }
        })
    }

    /// A handler that picks its failure answers itself.
    pub(crate) fn with_failures<F, Fut>(handler: F) -> Self
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, CallFailure>> + Send + 'static,
    {
        Self(Arc::new(move |request| Box::pin(handler(request))))
    }

    pub(crate) fn run(&self, request: Vec<u8>) -> HandlerFuture {
        (self.0)(request)
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler(..)")
    }
}

/// How a service is served ([`crate::Node::serve_with`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// How long the handler may run per call (default [`DEFAULT_HANDLER_TIMEOUT`]); then the
    /// handler is cancelled and the caller told [`CallFailure::TimedOut`](super::CallFailure::TimedOut).
    pub handler_timeout: Duration,
    /// Metadata published with the registry record (bounded by the registry's
    /// `max_metadata_len`, 1 KiB by default).
    pub metadata: Vec<u8>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
            metadata: Vec::new(),
        }
    }
}
