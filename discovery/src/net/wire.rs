//! Direct messages on the wire: the protocol handler that reads them from accepted connections,
//! and the per-peer writers that send them.
//!
//! Each message is one CBOR frame on its own unidirectional stream. A connection's streams are
//! read one after another, so a peer's messages reach the actor in the order it sent them.

use std::{num::NonZeroUsize, time::Duration};

use tokio::sync::mpsc;
use tracing::debug;
use weft_transport::{
    ActorLink, Endpoint, FrameError, FramedRecv, Handoff, PeerAddr, PeerId, Protocol, Sent,
    WhenFull, WriterPool,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

use super::{MAX_WRITERS, SEND_QUEUE_CAPACITY, handle::Command};
use crate::proto::{Message, PING_PROTOCOL};

/// How long a peer may take to deliver one message on a stream it opened. A stream that stalls
/// longer is dropped, so a silent peer cannot hold its connection's reader.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A writer with nothing to send for this long closes; the next message opens a new one.
const WRITER_IDLE: Duration = Duration::from_secs(30);

/// QUIC application error code for a connection closed over a bad frame.
const BAD_FRAME: u32 = 1;

/// A message from a peer, for the actor.
pub(super) type Inbound = (PeerId, Message);

/// Messages from peers waiting for the actor.
const INBOUND_CAPACITY: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// The channel both discovery handlers hand their messages to the actor through.
///
/// Policy when full: wait ([`WhenFull::Wait`]). The handler then reads no further stream on
/// that connection, so QUIC flow control holds its peer back and nothing is lost: the catalog
/// sync and ping are conversations whose next step is the answer to this message, and a
/// dropped message would stall them until a time-out. Only that peer's connection waits; the
/// endpoint's inbound admission bounds how many do.
pub(super) fn inbound() -> (Handoff<Inbound>, mpsc::Receiver<Inbound>) {
    Handoff::channel(INBOUND_CAPACITY, WhenFull::Wait)
}

/// Accepts connections for one discovery protocol and hands their messages to the actor.
#[derive(Debug, Clone)]
pub(super) struct Handler {
    protocol: Protocol,
    inbound: Handoff<Inbound>,
    max_message: usize,
    /// Shuts the layer down when the endpoint (or an iroh `Router`) does: the same command as
    /// `Discovery::shutdown`.
    actor: ActorLink<Command>,
}

impl Handler {
    pub(super) fn new(
        protocol: Protocol,
        inbound: Handoff<Inbound>,
        max_message: usize,
        actor: ActorLink<Command>,
    ) -> Self {
        Self {
            protocol,
            inbound,
            max_message,
            actor,
        }
    }

    /// Whether `message` belongs on this handler's protocol.
    fn fits(&self, message: &Message) -> bool {
        let ping = matches!(message, Message::Ping { .. } | Message::Pong { .. });
        ping == (self.protocol == PING_PROTOCOL)
    }
}

impl ProtocolHandler for Handler {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = PeerId::from(connection.remote_id());
        while let Ok(stream) = connection.accept_uni().await {
            let mut recv = FramedRecv::<Message, _>::new(stream, self.max_message);
            let message = match tokio::time::timeout(READ_TIMEOUT, recv.recv()).await {
                Ok(Ok(message)) if self.fits(&message) => message,
                Ok(Ok(_)) => {
                    debug!(peer = %peer.fmt_short(), protocol = %self.protocol, "discovery: message on the wrong protocol, closing");
                    connection.close(BAD_FRAME.into(), b"wrong protocol");
                    break;
                }
                // An empty stream, or one that stalled: nothing to do.
                Ok(Err(FrameError::Closed)) | Err(_) => continue,
                Ok(Err(err)) => {
                    // Malformed, oversized, or a bad signature inside: this peer is broken or
                    // hostile. Drop the connection; the node itself is untouched.
                    debug!(peer = %peer.fmt_short(), %err, "discovery: bad frame, closing");
                    connection.close(BAD_FRAME.into(), b"bad frame");
                    break;
                }
            };
            if self.inbound.hand((peer, message)).await.is_closed() {
                break;
            }
        }
        Ok(())
    }

    /// Called by `Endpoint::shutdown` (or iroh's `Router::shutdown`): departs as
    /// `Discovery::shutdown` does, and returns once the actor has ended.
    async fn shutdown(&self) {
        self.actor.shutdown(Command::Shutdown).await;
    }
}

/// An encoded frame and the protocol it goes on.
type Outgoing = (Protocol, Vec<u8>);

/// The writers of one actor: a task per peer with a bounded queue of encoded frames
/// ([`WriterPool`]: at most `MAX_WRITERS`, the least recently used closed first; a frame that
/// finds its peer's queue full is dropped).
#[derive(Debug)]
pub(super) struct Writers {
    endpoint: Endpoint,
    pool: WriterPool<Outgoing>,
}

impl Writers {
    pub(super) fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            pool: WriterPool::new(MAX_WRITERS, SEND_QUEUE_CAPACITY),
        }
    }

    /// Queues `frame` for `to` on `protocol`; drops it when that peer's queue is full (the
    /// proto's time-outs and retries, and the announcements, make up for it).
    pub(super) fn send(&mut self, to: PeerId, protocol: Protocol, frame: Vec<u8>) {
        let endpoint = self.endpoint.clone();
        let sent = self.pool.send(to, (protocol, frame), move |rx| {
            write_loop(endpoint, to, rx)
        });
        if sent == Sent::Full {
            debug!(peer = %to.fmt_short(), "discovery: send queue full, message dropped");
        }
    }
}

async fn write_loop(endpoint: Endpoint, peer: PeerId, mut rx: mpsc::Receiver<Outgoing>) {
    while let Ok(Some((protocol, frame))) = tokio::time::timeout(WRITER_IDLE, rx.recv()).await {
        if let Err(err) = send_one(&endpoint, peer, protocol, &frame).await {
            // Lost: the proto's timeouts and retries, and the announcements, make up for it.
            debug!(peer = %peer.fmt_short(), %protocol, %err, "discovery: message not sent");
        }
    }
}

async fn send_one(
    endpoint: &Endpoint,
    peer: PeerId,
    protocol: Protocol,
    frame: &[u8],
) -> Result<(), String> {
    let conn = endpoint
        .connect(&PeerAddr::new(peer), protocol)
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = conn.open_uni().await.map_err(|e| e.to_string())?;
    stream.write_all(frame).await.map_err(|e| e.to_string())?;
    stream.finish().map_err(|e| e.to_string())
}
