//! The byte movers: one task per session stream, and the handler that accepts `sync/1`
//! connections.
//!
//! A session's task writes the frames the actor queues for it and reads the peer's frames,
//! both on one bidirectional stream. When the actor drops the session's queue, the writer
//! finishes the stream; the reader goes on until the peer finishes its side too (bounded by
//! `LINGER`), so both ends see a clean close.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;
use weft_transport::{
    ActorLink, Endpoint, FrameError, FramedRecv, FramedSend, Handoff, PeerAddr, PeerId, WhenFull,
    iroh::{AcceptError, Connection, ProtocolHandler, RecvStream, SendStream},
};

use super::actor::ToActor;
use crate::proto::{Frame, SessionId};

/// How long a finished session's reader waits for the peer to finish its side.
const LINGER: Duration = Duration::from_secs(5);

/// From stream tasks to the actor.
#[derive(Debug)]
pub(super) enum FromStream {
    /// A frame arrived on a session.
    Frame(SessionId, Frame),
    /// A session's stream ended (`None`: the peer finished it).
    Closed(SessionId, Option<String>),
}

/// A peer opened a stream: its id and both halves.
#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) peer: PeerId,
    pub(super) send: SendStream,
    pub(super) recv: RecvStream,
}

/// Bytes queued to one session and to all sessions of the actor: the writer takes off what
/// it wrote.
#[derive(Debug, Clone)]
pub(super) struct QueuedBytes {
    session: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl QueuedBytes {
    fn written(&self, size: usize) {
        self.session.fetch_sub(size, Ordering::Relaxed);
        self.total.fetch_sub(size, Ordering::Relaxed);
    }
}

/// The actor's end of a session's stream: a queue of encoded frames and its size in bytes.
#[derive(Debug)]
pub(super) struct SessionQueue {
    pub(super) frames: mpsc::Sender<Vec<u8>>,
    pub(super) queued: QueuedBytes,
}

/// Frames a session may queue (each also counts against the byte limits).
pub(super) const QUEUE_FRAMES: usize = 4096;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QueueFull {
    /// This session's queue is over its byte or frame limit: its peer reads too slowly.
    Session,
    /// All sessions together are over the actor's byte limit.
    Total,
}

impl SessionQueue {
    /// A queue counting into `total`, the bytes queued to all sessions.
    pub(super) fn new(total: &Arc<AtomicUsize>) -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (frames, rx) = mpsc::channel(QUEUE_FRAMES);
        let queue = Self {
            frames,
            queued: QueuedBytes {
                session: Arc::new(AtomicUsize::new(0)),
                total: total.clone(),
            },
        };
        (queue, rx)
    }

    /// Queues a frame, or says which limit it would break: the session then fails, and a later
    /// one reconciles what was not sent.
    pub(super) fn push(
        &self,
        frame: Vec<u8>,
        max_session: usize,
        max_total: usize,
    ) -> Result<(), QueueFull> {
        let size = frame.len();
        if self.queued.session.load(Ordering::Relaxed) + size > max_session {
            return Err(QueueFull::Session);
        }
        if self.queued.total.load(Ordering::Relaxed) + size > max_total {
            return Err(QueueFull::Total);
        }
        self.frames
            .try_send(frame)
            .map_err(|_| QueueFull::Session)?;
        self.queued.session.fetch_add(size, Ordering::Relaxed);
        self.queued.total.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }
}

/// Largest coalesced write of queued frames.
const WRITE_BATCH: usize = 64 * 1024;

/// Runs an outbound session: dials (reusing the connection), opens a stream, then moves bytes.
pub(super) async fn outbound(
    endpoint: Endpoint,
    peer: PeerId,
    session: SessionId,
    frames: mpsc::Receiver<Vec<u8>>,
    queued: QueuedBytes,
    max_frame_size: usize,
    to_actor: mpsc::Sender<FromStream>,
) {
    let opened = async {
        let conn = endpoint
            .connect(&PeerAddr::new(peer), crate::PROTOCOL)
            .await
            .map_err(|err| err.to_string())?;
        conn.open_bi().await.map_err(|err| err.to_string())
    }
    .await;
    match opened {
        Ok((send, recv)) => {
            run_stream(
                session,
                send,
                recv,
                frames,
                queued,
                max_frame_size,
                to_actor,
            )
            .await
        }
        Err(err) => {
            let _ = to_actor.send(FromStream::Closed(session, Some(err))).await;
        }
    }
}

/// Moves one session's bytes both ways until both sides finished or one failed.
pub(super) async fn run_stream(
    session: SessionId,
    send: SendStream,
    recv: RecvStream,
    mut frames: mpsc::Receiver<Vec<u8>>,
    queued: QueuedBytes,
    max_frame_size: usize,
    to_actor: mpsc::Sender<FromStream>,
) {
    let writer = async {
        let mut send = FramedSend::<Frame, _>::new(send, max_frame_size);
        let mut batch = Vec::new();
        while let Some(frame) = frames.recv().await {
            // Coalesce what is queued into one write: fewer packets when items flow.
            batch.clear();
            batch.extend_from_slice(&frame);
            while batch.len() < WRITE_BATCH
                && let Ok(more) = frames.try_recv()
            {
                batch.extend_from_slice(&more);
            }
            queued.written(batch.len());
            send.send_encoded(&batch).await?;
        }
        send.finish()
    };
    let reader = async {
        let mut recv = FramedRecv::<Frame, _>::new(recv, max_frame_size);
        loop {
            match recv.recv().await {
                Ok(frame) => {
                    if to_actor
                        .send(FromStream::Frame(session, frame))
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
                Err(FrameError::Closed) => return None,
                Err(err) => return Some(err.to_string()),
            }
        }
    };
    tokio::pin!(writer, reader);
    let mut written = false;
    let outcome = loop {
        tokio::select! {
            result = &mut writer, if !written => match result {
                Ok(()) => written = true,
                Err(err) => break Some(err.to_string()),
            },
            outcome = &mut reader => break outcome,
            // We finished: the peer's side ends soon; do not wait for it forever.
            () = tokio::time::sleep(LINGER), if written => break None,
        }
    };
    let _ = to_actor.send(FromStream::Closed(session, outcome)).await;
}

/// Streams opened by peers waiting for the actor to start their sessions.
const WAITING: NonZeroUsize = NonZeroUsize::new(64).unwrap();

/// Accepts `sync/1` connections and hands every stream the peer opens to the actor.
#[derive(Debug, Clone)]
pub(super) struct Handler {
    inbound: Handoff<Inbound>,
    actor: ActorLink<ToActor>,
}

impl Handler {
    /// A handler for the actor behind `actor`, and the receiver of the streams it accepts.
    ///
    /// Policy when full: wait ([`WhenFull::Wait`]). A stream is a whole session, which the
    /// peer opened because gossip made us neighbours; refusing it would only make the peer
    /// retry later. While the handler waits it accepts no further stream on that connection,
    /// so QUIC flow control holds the peer's next ones; the endpoint's stream and connection
    /// limits bound the rest.
    pub(super) fn new(actor: ActorLink<ToActor>) -> (Self, mpsc::Receiver<Inbound>) {
        let (inbound, receiver) = Handoff::channel(WAITING, WhenFull::Wait);
        (Self { inbound, actor }, receiver)
    }
}

impl ProtocolHandler for Handler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let peer = PeerId::from(conn.remote_id());
        while let Ok((send, recv)) = conn.accept_bi().await {
            let inbound = Inbound { peer, send, recv };
            if self.inbound.hand(inbound).await.is_closed() {
                break;
            }
        }
        Ok(())
    }

    /// Called by `Endpoint::shutdown` (and iroh's `Router::shutdown`): ends every session as
    /// `SyncManager::shutdown` does, and returns once the actor has ended.
    async fn shutdown(&self) {
        self.actor.shutdown(ToActor::Shutdown).await;
    }
}
