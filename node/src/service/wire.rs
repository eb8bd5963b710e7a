//! The call protocol's two messages: one [`CallRequest`] frame from the caller, one
//! [`CallAnswer`] frame back, on a fresh bidirectional stream of a `call/1` connection.

use serde::{Deserialize, Serialize};

/// A call as it travels: which service, and the request's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRequest {
    /// The service's name, as registered in the registry.
    pub name: String,
    /// The request, at most [`super::MAX_REQUEST_SIZE`] bytes.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// A provider's one answer to a [`CallRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallAnswer {
    /// The handler's response, at most [`super::MAX_RESPONSE_SIZE`] bytes.
    Ok(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The provider did not produce a response, and says why.
    Failed(CallFailure),
}

/// Why a provider answered a call without a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum CallFailure {
    /// This node does not serve the name (never did, or stopped).
    #[error("the provider does not serve this name")]
    UnknownService,
    /// The provider is serving as many calls as it allows; try another.
    #[error("the provider is busy")]
    Busy,
    /// The request frame was not a [`CallRequest`].
    #[error("the provider could not decode the request")]
    Malformed,
    /// The request is over [`super::MAX_REQUEST_SIZE`].
    #[error("the request is larger than the provider accepts")]
    RequestTooLarge,
    /// The handler returned an error (its message, cut to [`super::MAX_ERROR_LEN`] bytes).
    #[error("the handler failed: {0}")]
    Handler(String),
    /// The handler panicked; the provider stays up.
    #[error("the handler panicked")]
    Panicked,
    /// The handler did not finish within the provider's handler timeout.
    #[error("the handler did not finish in time")]
    TimedOut,
    /// The handler's response is over [`super::MAX_RESPONSE_SIZE`].
    #[error("the handler's response is larger than the protocol allows")]
    ResponseTooLarge,
    /// The provider is shutting down.
    #[error("the provider is shutting down")]
    ShuttingDown,
}
