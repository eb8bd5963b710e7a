//! weft's transport layer.
//!
//! - Identity: [`SecretKey`], [`PeerId`], domain-separated signatures and the [`Signed`]
//!   envelope that can only be decoded when its signature verifies.
//! - Isolation: a [`NetworkId`] namespaces every ALPN (`weft/<network>/<protocol>/<version>`).
//! - Addresses: [`PeerAddr`] and its copy-and-paste [`Ticket`] (`weft1...`).
//! - Framing: length-prefixed CBOR frames with a maximum size checked before allocation.
//! - Time: [`Now`] (monotonic time for timers and measured durations, [`WallTime`] for what
//!   signatures cover) and a bounded monotonic [`TimerQueue`] for the actors that drive protos.
//! - With the default feature `net`: an [`Endpoint`] on iroh QUIC that routes protocols by ALPN
//!   and reuses connections, framed streams, request/response, and a [`MemoryNetwork`] for tests
//!   with injectable latency, loss and partitions.
//! - With `net`, the pieces every layer's runtime shares: [`WriterPool`] (writers per peer),
//!   [`Subscribers`] (event delivery), [`Handoff`] (a protocol handler's bounded channel to its
//!   actor, with a [`WhenFull`] policy) and [`ActorLink`] (a handler's shutdown of its actor).
//!
//! With default features off, this crate is identity, ids, signatures and framing types only
//! (no iroh, no tokio), so the sans-IO `proto` halves of the layers above can use it.

mod addr;
mod frame;
mod identity;
mod network;
mod signing;
mod time;
mod timers;

#[cfg(feature = "net")]
mod accept;
#[cfg(feature = "net")]
mod actor_link;
#[cfg(feature = "net")]
mod admission;
#[cfg(feature = "net")]
mod cache;
#[cfg(feature = "net")]
mod endpoint;
#[cfg(feature = "net")]
mod errors;
#[cfg(feature = "net")]
mod events;
#[cfg(feature = "net")]
mod handoff;
#[cfg(feature = "net")]
mod idle;
#[cfg(feature = "net")]
mod memory;
#[cfg(feature = "net")]
mod metrics;
#[cfg(feature = "net")]
mod mount;
#[cfg(feature = "net")]
mod stream;
#[cfg(feature = "net")]
mod writers;

pub use addr::{PeerAddr, RelayUrl, Ticket, TicketError};
pub use frame::{
    DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, FrameDecoder, FrameError, cbor_decode,
    cbor_decode_with_scratch, cbor_encode, decode_header, encode_frame, encode_frame_into,
    frame_overhead,
};
pub use identity::{PeerId, PeerIdError, SecretKey};
pub use network::{NetworkId, Protocol};
pub use signing::{DomainTag, Signature, SignatureError, Signed, SignedPayload};
pub use time::{Now, StepDetector, WallTime};
pub use timers::{Full, TimerQueue};

#[cfg(feature = "net")]
pub use actor_link::{ActorGuard, ActorLink};
#[cfg(feature = "net")]
pub use admission::InboundStats;
#[cfg(feature = "net")]
pub use endpoint::{
    Builder as EndpointBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DISPLACE_AFTER_IDLE,
    DEFAULT_FIRST_DATA_DEADLINE, DEFAULT_MAX_CACHED_CONNECTIONS, DEFAULT_MAX_HANDSHAKES,
    DEFAULT_MAX_INBOUND, DEFAULT_MAX_INBOUND_PER_PEER, DEFAULT_MAX_KNOWN_ADDRS,
    DEFAULT_MAX_STREAMS_PER_CONNECTION, Endpoint, HandlerRegistration, RelayChoice,
};
#[cfg(feature = "net")]
pub use errors::{BindError, ConnectError, RegisterError};
#[cfg(feature = "net")]
pub use events::{Delivery, EventSender, Events, LayerEvent, Subscribers};
#[cfg(feature = "net")]
pub use handoff::{Handed, Handoff, WhenFull};
#[cfg(feature = "net")]
pub use idle::CLOSE_IDLE;
#[cfg(feature = "net")]
pub use memory::{
    DELAY_LINE_CAPACITY, INBOX_CAPACITY, LinkConfig, MEMORY_TRANSPORT_ID, MemoryNetwork,
    MemoryStats,
};
#[cfg(feature = "net")]
pub use metrics::Metrics;
#[cfg(feature = "net")]
pub use mount::MountedProtocol;
#[cfg(feature = "net")]
pub use stream::{FramedRecv, FramedSend, RequestError, Responder, accept_request, request};
#[cfg(feature = "net")]
pub use time::{Clock, OffsetWallClock, SystemWallClock, WallClock};
#[cfg(feature = "net")]
pub use writers::{Sent, WriterPool};

/// Re-exports of the iroh types that appear in this crate's API, so users need not depend on
/// iroh directly.
#[cfg(feature = "net")]
pub mod iroh {
    pub use iroh::endpoint::{Connection, ConnectionError, RecvStream, SendStream};
    pub use iroh::protocol::{AcceptError, ProtocolHandler, Router};
    pub use iroh::{Endpoint, RelayMode, endpoint::presets};
}
