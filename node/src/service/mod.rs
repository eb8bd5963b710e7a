//! Service calls with failover: [`crate::Node::serve`] answers calls for a name,
//! [`crate::Node::call`] finds the name's providers and tries them nearest first.
//!
//! - `wire`: the two frames of the `call/1` protocol.
//! - `handler`: what a service runs per call, and its options.
//! - `server`: the provider side: the protocol handler, the served names, the bounds.
//! - `serve`: the [`Service`] handle.
//! - `order`: which provider a call tries first.
//! - `call`: the caller side: lookup, attempts, failover.
//! - `api`: the `Node` methods.
//! - `config`: `[[service]]` and `[calls]` in the config file.
//! - `exec`: a `[[service]]` program as a handler.
//!
//! The protocol is specified in `docs/architecture.md` (weft-node, "Service calls").

mod api;
mod call;
mod config;
mod exec;
mod handler;
mod order;
mod serve;
mod server;
mod wire;

use weft_transport::Protocol;

pub use call::{
    Attempt, AttemptError, CallError, CallOptions, CallReply, DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_PINGS, DEFAULT_PING_WAIT,
};
pub use config::{CallsConfig, DEFAULT_MAX_CONCURRENT, MAX_SERVICES, ServiceConfig};
pub use exec::MAX_STDERR_LOGGED;
pub use handler::{DEFAULT_HANDLER_TIMEOUT, ServeOptions};
pub use serve::{ServeError, Service};
pub use server::{MAX_IN_FLIGHT, MAX_IN_FLIGHT_PER_CONNECTION};
pub use wire::{CallAnswer, CallFailure, CallRequest};

pub(crate) use call::call;
pub(crate) use handler::Handler;
pub(crate) use server::Server;

/// The call protocol: ALPN `weft/<network>/call/1`. One protocol for every service: each
/// request names its service.
pub const PROTOCOL: Protocol = Protocol::new("call", 1);

/// The largest request body a call may carry: 1 MiB. A larger one is refused before it is
/// sent ([`CallError::RequestTooLarge`]).
pub const MAX_REQUEST_SIZE: usize = 1024 * 1024;

/// The largest response a handler may return: 1 MiB. A larger one is answered
/// [`CallFailure::ResponseTooLarge`] instead.
pub const MAX_RESPONSE_SIZE: usize = 1024 * 1024;

/// The longest service name, in bytes: the registry's default name limit.
pub const MAX_NAME_LEN: usize = 255;

/// The longest handler error message sent back, in bytes; a longer one is cut.
pub const MAX_ERROR_LEN: usize = 1024;

/// Room for a frame's CBOR structure around its payload (map keys, variant names, lengths).
const ENVELOPE: usize = 64;

/// The largest request frame a provider reads: announced larger, it answers
/// [`CallFailure::RequestTooLarge`] without reading the body.
pub(crate) const MAX_REQUEST_FRAME: usize = MAX_REQUEST_SIZE + MAX_NAME_LEN + ENVELOPE;

/// The largest answer frame a caller reads.
pub(crate) const MAX_ANSWER_FRAME: usize = if MAX_RESPONSE_SIZE > MAX_ERROR_LEN {
    MAX_RESPONSE_SIZE
} else {
    MAX_ERROR_LEN
} + ENVELOPE;

/// Whether `name` can be served and called.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN
}
