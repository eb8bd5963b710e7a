//! Direct messages on the wire: the protocol handler that reads them from accepted connections,
//! and the per-peer writers that send them.
//!
//! Each message is one CBOR frame on its own unidirectional stream. A connection's streams are
//! read one after another, so a peer's messages reach the actor in the order it sent them.

use std::{collections::HashMap, time::Duration};

use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use tracing::debug;
use weft_transport::{
    Endpoint, FrameError, FramedRecv, PeerAddr, PeerId, Protocol,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

use super::{MAX_WRITERS, SEND_QUEUE_CAPACITY};
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

/// Accepts connections for one discovery protocol and hands their messages to the actor.
#[derive(Debug, Clone)]
pub(super) struct Handler {
    protocol: Protocol,
    inbound: mpsc::Sender<Inbound>,
    max_message: usize,
}

impl Handler {
    pub(super) fn new(
        protocol: Protocol,
        inbound: mpsc::Sender<Inbound>,
        max_message: usize,
    ) -> Self {
        Self {
            protocol,
            inbound,
            max_message,
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
            if self.inbound.send((peer, message)).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// An encoded frame and the protocol it goes on.
type Outgoing = (Protocol, Vec<u8>);

/// A writer: its queue, the tick of its last use, and its task (aborted when dropped, so no
/// writer outlives the actor).
#[derive(Debug)]
struct Writer {
    queue: mpsc::Sender<Outgoing>,
    used: u64,
    _task: AbortOnDropHandle<()>,
}

/// The writers of one actor: a task per peer with a bounded queue of encoded frames.
#[derive(Debug)]
pub(super) struct Writers {
    endpoint: Endpoint,
    writers: HashMap<PeerId, Writer>,
    tick: u64,
}

impl Writers {
    pub(super) fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            writers: HashMap::new(),
            tick: 0,
        }
    }

    /// Queues `frame` for `to` on `protocol`; drops it when that peer's queue is full.
    pub(super) fn send(&mut self, to: PeerId, protocol: Protocol, frame: Vec<u8>) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(writer) = self.writers.get_mut(&to)
            && !writer.queue.is_closed()
        {
            writer.used = tick;
            match writer.queue.try_send((protocol, frame)) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    debug!(peer = %to.fmt_short(), "discovery: send queue full, message dropped");
                    return;
                }
                // The writer just idled out: start a new one below.
                Err(mpsc::error::TrySendError::Closed((_, returned))) => {
                    return self.spawn(to, protocol, returned, tick);
                }
            }
        }
        self.spawn(to, protocol, frame, tick);
    }

    fn spawn(&mut self, to: PeerId, protocol: Protocol, frame: Vec<u8>, tick: u64) {
        self.writers.remove(&to);
        if self.writers.len() >= MAX_WRITERS
            && let Some(oldest) = self
                .writers
                .iter()
                .min_by_key(|(_, writer)| writer.used)
                .map(|(peer, _)| *peer)
        {
            // Its queued messages are lost; the proto's timeouts recover.
            self.writers.remove(&oldest);
        }
        let (queue, rx) = mpsc::channel(SEND_QUEUE_CAPACITY);
        let _ = queue.try_send((protocol, frame));
        let task = tokio::spawn(write_loop(self.endpoint.clone(), to, rx));
        self.writers.insert(
            to,
            Writer {
                queue,
                used: tick,
                _task: AbortOnDropHandle::new(task),
            },
        );
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
