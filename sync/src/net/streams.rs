//! The byte movers: one task per session stream, and the handler that accepts `sync/1`
//! connections.
//!
//! A session's task writes the frames the actor queues for it and reads the peer's frames,
//! both on one bidirectional stream. When the actor drops the session's queue, the writer
//! finishes the stream; the reader goes on until the peer finishes its side too (bounded by
//! `LINGER`), so both ends see a clean close.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;
use weft_transport::{
    Endpoint, FrameError, FramedRecv, FramedSend, PeerAddr, PeerId,
    iroh::{AcceptError, Connection, ProtocolHandler, RecvStream, SendStream},
};

use super::{SYNC, actor::ToActor};
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

/// The actor's end of a session's stream: a queue of encoded frames and its size in bytes.
#[derive(Debug)]
pub(super) struct SessionQueue {
    pub(super) frames: mpsc::Sender<Vec<u8>>,
    pub(super) queued_bytes: Arc<AtomicUsize>,
}

/// Frames a session may queue (each also counts against the byte limit).
pub(super) const QUEUE_FRAMES: usize = 4096;

impl SessionQueue {
    pub(super) fn new() -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (frames, rx) = mpsc::channel(QUEUE_FRAMES);
        let queue = Self {
            frames,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
        };
        (queue, rx)
    }

    /// Queues a frame; `false` when the queue is over `max_bytes` or full: the peer reads too
    /// slowly, and the session fails (a later one reconciles what was not sent).
    pub(super) fn push(&self, frame: Vec<u8>, max_bytes: usize) -> bool {
        let size = frame.len();
        if self.queued_bytes.load(Ordering::Relaxed) + size > max_bytes {
            return false;
        }
        self.queued_bytes.fetch_add(size, Ordering::Relaxed);
        self.frames.try_send(frame).is_ok()
    }
}

/// Runs an outbound session: dials (reusing the connection), opens a stream, then moves bytes.
pub(super) async fn outbound(
    endpoint: Endpoint,
    peer: PeerId,
    session: SessionId,
    frames: mpsc::Receiver<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    max_frame_size: usize,
    to_actor: mpsc::Sender<FromStream>,
) {
    let opened = async {
        let conn = endpoint
            .connect(&PeerAddr::new(peer), SYNC)
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
                queued_bytes,
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
    queued_bytes: Arc<AtomicUsize>,
    max_frame_size: usize,
    to_actor: mpsc::Sender<FromStream>,
) {
    let writer = async {
        let mut send = FramedSend::<Frame, _>::new(send, max_frame_size);
        while let Some(frame) = frames.recv().await {
            queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
            send.send_encoded(&frame).await?;
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

/// Accepts `sync/1` connections and hands every stream the peer opens to the actor.
#[derive(Debug, Clone)]
pub(super) struct Handler {
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) commands: mpsc::WeakSender<ToActor>,
}

impl ProtocolHandler for Handler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let peer = PeerId::from(conn.remote_id());
        while let Ok((send, recv)) = conn.accept_bi().await {
            // Full: wait. QUIC flow control holds the peer's further streams meanwhile.
            if self
                .inbound
                .send(Inbound { peer, send, recv })
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(commands) = self.commands.upgrade() {
            let (reply, done) = tokio::sync::oneshot::channel();
            if commands.send(ToActor::Shutdown { reply }).await.is_ok() {
                let _ = done.await;
            }
        }
    }
}
