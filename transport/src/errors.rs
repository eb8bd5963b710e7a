//! Why binding an endpoint, dialling a peer or registering a protocol failed.

use std::time::Duration;

use crate::{PeerId, Protocol};

/// Why an endpoint could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// iroh refused the configuration or could not bind its sockets.
    #[error("could not bind the iroh endpoint: {0}")]
    Iroh(String),
    /// The memory network already has a live endpoint with this key.
    #[error("could not join the memory network: {0}")]
    Memory(std::io::Error),
}

/// Why a connection could not be made.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The dial did not complete within the connect timeout.
    #[error("dial to {peer:?} for {protocol} timed out after {after:?}")]
    Timeout {
        /// The peer dialled.
        peer: PeerId,
        /// The protocol asked for.
        protocol: Protocol,
        /// The timeout in force.
        after: Duration,
    },
    /// The handshake failed: the peer is unreachable, refused the protocol, is on another
    /// network (its ALPNs differ), or is not who the address claims.
    #[error("dial to {peer:?} for {protocol} failed: {reason}")]
    Failed {
        /// The peer dialled.
        peer: PeerId,
        /// The protocol asked for.
        protocol: Protocol,
        /// iroh's account of the failure.
        reason: String,
    },
    /// The endpoint has shut down.
    #[error("the endpoint is shut down")]
    Shutdown,
}

/// Why a protocol could not be registered.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// A handler is already registered for this protocol and version.
    #[error("a handler for {0} is already registered")]
    AlreadyRegistered(Protocol),
}
