//! The caller side: [`crate::Node::call`] looks a name's providers up, orders them
//! ([`super::order`]), and tries them one after another until one answers.

use std::{fmt, time::Duration};

use tokio::time::Instant;
use weft_transport::{
    FrameError, FramedRecv, FramedSend, PeerAddr, PeerId, encode_frame, iroh::Connection,
};

use super::{
    CallAnswer, CallFailure, CallRequest, MAX_ANSWER_FRAME, MAX_REQUEST_FRAME, MAX_REQUEST_SIZE,
    PROTOCOL, order, server::Server,
};
use crate::Node;

/// The default bound on a whole call, lookup and failovers included.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The default bound on one attempt at one provider (dial, request and answer).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default number of providers a call tries, at most.
pub const DEFAULT_MAX_ATTEMPTS: usize = 4;
/// The default number of providers without a measured round trip a call pings, at most.
pub const DEFAULT_MAX_PINGS: usize = 3;
/// The default time a call waits for those pings.
pub const DEFAULT_PING_WAIT: Duration = Duration::from_millis(250);

/// How a call is made ([`crate::Node::call_with`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOptions {
    /// The whole call, lookup and failovers included (default [`DEFAULT_CALL_TIMEOUT`]).
    pub timeout: Duration,
    /// One attempt at one provider (default [`DEFAULT_ATTEMPT_TIMEOUT`]); cut short by what is
    /// left of `timeout`.
    pub attempt_timeout: Duration,
    /// Providers tried, at most (default [`DEFAULT_MAX_ATTEMPTS`]); at least one is.
    pub max_attempts: usize,
    /// Providers without a measured round trip pinged before ordering, at most (default
    /// [`DEFAULT_MAX_PINGS`]; 0 orders by what discovery measured so far alone).
    pub max_pings: usize,
    /// How long the call waits for those pings (default [`DEFAULT_PING_WAIT`]).
    pub ping_wait: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_CALL_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_pings: DEFAULT_MAX_PINGS,
            ping_wait: DEFAULT_PING_WAIT,
        }
    }
}

/// A call that was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReply {
    /// The provider that answered.
    pub provider: PeerId,
    /// Its response.
    pub response: Vec<u8>,
    /// From the call to the answer, lookup and failovers included.
    pub elapsed: Duration,
    /// The providers tried before, in order, and why each failed.
    pub failed: Vec<Attempt>,
}

/// One provider tried without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The provider.
    pub provider: PeerId,
    /// Why it did not answer.
    pub error: AttemptError,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider.fmt_short(), self.error)
    }
}

/// Why one provider did not answer a call. Every one of them makes the call fail over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// The provider could not be reached.
    #[error("unreachable: {0}")]
    Connect(String),
    /// No answer within the attempt timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The stream broke, or the answer was not a call answer.
    #[error("broken exchange: {0}")]
    Stream(String),
    /// The provider answered without a response (refused, or its handler failed).
    #[error(transparent)]
    Failed(#[from] CallFailure),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The name is empty or longer than [`MAX_NAME_LEN`](super::MAX_NAME_LEN) bytes.
    #[error("invalid service name: {0}")]
    InvalidName(String),
    /// The request is over [`MAX_REQUEST_SIZE`]; nothing was sent.
    #[error("the request is {size} bytes, over the maximum of {max}")]
    RequestTooLarge {
        /// The request's size.
        size: usize,
        /// [`MAX_REQUEST_SIZE`].
        max: usize,
    },
    /// The node runs no registry, so it cannot find providers.
    #[error("the registry layer is not running on this node")]
    RegistryDisabled,
    /// The registry failed (it has shut down).
    #[error("the lookup failed: {0}")]
    Lookup(String),
    /// Nobody provides the name.
    #[error("no provider of {name:?} found")]
    NoProvider {
        /// The name.
        name: String,
    },
    /// Every provider tried failed (at most [`CallOptions::max_attempts`]).
    #[error("no provider of {name:?} answered: {}", list(attempts))]
    AllFailed {
        /// The name.
        name: String,
        /// Every provider tried, in order, and why it failed.
        attempts: Vec<Attempt>,
    },
    /// The call's timeout ran out before any provider answered.
    #[error("no answer within {after:?}; tried: {}", list(attempts))]
    TimedOut {
        /// The call's timeout.
        after: Duration,
        /// The providers tried before it ran out.
        attempts: Vec<Attempt>,
    },
}

fn list(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "none".into();
    }
    let all: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    all.join("; ")
}

/// Makes a call: see [`crate::Node::call_with`].
pub(crate) async fn call(
    node: &Node,
    server: &Server,
    name: &str,
    request: Vec<u8>,
    options: &CallOptions,
) -> Result<CallReply, CallError> {
    let started = Instant::now();
    if !super::valid_name(name) {
        return Err(CallError::InvalidName(name.chars().take(64).collect()));
    }
    if request.len() > MAX_REQUEST_SIZE {
        return Err(CallError::RequestTooLarge {
            size: request.len(),
            max: MAX_REQUEST_SIZE,
        });
    }
    let registry = node.registry().ok_or(CallError::RegistryDisabled)?;
    let deadline = started + options.timeout;
    let timed_out = |attempts| CallError::TimedOut {
        after: options.timeout,
        attempts,
    };

    let lookup = async {
        let found = registry.lookup_all(name).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        // An empty answer may be a cached one from before the name was registered.
        registry.lookup_all_refresh(name).await
    };
    let records = tokio::time::timeout_at(deadline, lookup)
        .await
        .map_err(|_| timed_out(Vec::new()))?
        .map_err(|err| CallError::Lookup(err.to_string()))?;
    let candidates = order::candidates(records);
    if candidates.is_empty() {
        return Err(CallError::NoProvider { name: name.into() });
    }
    let ordering = order::order(
        node.id(),
        candidates,
        node.endpoint(),
        node.discovery(),
        server.failures(),
        options.max_pings,
        options.ping_wait,
    );
    let ordered = tokio::time::timeout_at(deadline, ordering)
        .await
        .map_err(|_| timed_out(Vec::new()))?;

    let request = CallRequest {
        name: name.into(),
        body: request,
    };
    // Encoded once, sent to each provider tried. Cannot fail: the sizes were checked.
    let frame =
        encode_frame(&request, MAX_REQUEST_FRAME).map_err(|_| CallError::RequestTooLarge {
            size: request.body.len(),
            max: MAX_REQUEST_SIZE,
        })?;
    let mut failed = Vec::new();
    for candidate in ordered.into_iter().take(options.max_attempts.max(1)) {
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(failed));
        }
        let within = options.attempt_timeout.min(deadline - now);
        let outcome = if candidate.addr.id == node.id() {
            call_self(server, &request, within).await
        } else {
            attempt(node, &candidate.addr, &frame, within).await
        };
        match outcome {
            Ok(response) => {
                server.failures().answered(candidate.addr.id);
                return Ok(CallReply {
                    provider: candidate.addr.id,
                    response,
                    elapsed: started.elapsed(),
                    failed,
                });
            }
            Err(error) => {
                tracing::debug!(name, provider = %candidate.addr.id.fmt_short(), "call failed over: {error}");
                if candidate.addr.id != node.id() {
                    server.failures().failed(candidate.addr.id, Instant::now());
                }
                failed.push(Attempt {
                    provider: candidate.addr.id,
                    error,
                });
            }
        }
    }
    if Instant::now() >= deadline {
        return Err(timed_out(failed));
    }
    Err(CallError::AllFailed {
        name: name.into(),
        attempts: failed,
    })
}

/// One attempt at a remote provider, within `within`.
async fn attempt(
    node: &Node,
    addr: &PeerAddr,
    frame: &[u8],
    within: Duration,
) -> Result<Vec<u8>, AttemptError> {
    let exchange = async {
        let connection = node
            .endpoint()
            .connect(addr, PROTOCOL)
            .await
            .map_err(|err| AttemptError::Connect(err.to_string()))?;
        exchange(&connection, frame).await
    };
    match tokio::time::timeout(within, exchange).await {
        Err(_) => Err(AttemptError::Timeout(within)),
        Ok(Err(error)) => Err(error),
        Ok(Ok(CallAnswer::Ok(response))) => Ok(response),
        Ok(Ok(CallAnswer::Failed(failure))) => Err(AttemptError::Failed(failure)),
    }
}

/// Sends the request frame on a new stream and reads the one answer.
async fn exchange(connection: &Connection, frame: &[u8]) -> Result<CallAnswer, AttemptError> {
    let broken = |err: &dyn fmt::Display| AttemptError::Stream(err.to_string());
    let (send, recv) = connection.open_bi().await.map_err(|err| broken(&err))?;
    let mut send = FramedSend::<CallRequest>::new(send, MAX_REQUEST_FRAME);
    let sent = async {
        send.send_encoded(frame).await?;
        send.finish()
    }
    .await;
    let mut recv = FramedRecv::<CallAnswer>::new(recv, MAX_ANSWER_FRAME);
    // Read even when sending failed: a busy provider answers without reading the request,
    // and its answer says more than the stopped stream does.
    match (recv.recv().await, sent) {
        (Ok(answer), _) => Ok(answer),
        (Err(_), Err(err)) => Err(broken(&err)),
        (Err(FrameError::Closed), Ok(())) => Err(AttemptError::Stream(
            "the provider closed the stream without an answer".into(),
        )),
        (Err(err), Ok(())) => Err(broken(&err)),
    }
}

/// A call this node makes to itself: no network, the same dispatch and bounds as a peer's.
async fn call_self(
    server: &Server,
    request: &CallRequest,
    within: Duration,
) -> Result<Vec<u8>, AttemptError> {
    let Some(_permit) = server.try_permit() else {
        return Err(AttemptError::Failed(CallFailure::Busy));
    };
    match tokio::time::timeout(within, server.dispatch(request.clone())).await {
        Err(_) => Err(AttemptError::Timeout(within)),
        Ok(CallAnswer::Ok(response)) => Ok(response),
        Ok(CallAnswer::Failed(failure)) => Err(AttemptError::Failed(failure)),
    }
}
