//! The probe protocol the demo and the transport benchmark measure with.
//!
//! On each bidirectional stream the server answers `Echo` frames with the same frame, counts
//! `Sink` frames silently, and when the client finishes the stream it replies `Done` with the
//! count. `raw/1` does the same work without framing, as the baseline: it counts bytes and
//! replies with an 8-byte count.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use weft_transport::{
    FrameError, FramedRecv, FramedSend, Protocol,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

/// The framed probe protocol.
pub(crate) const PROBE: Protocol = Protocol::new("probe", 1);
/// The unframed baseline.
pub(crate) const RAW: Protocol = Protocol::new("raw", 1);
/// Frames up to 2 MiB, so 1 MiB payloads fit with their envelope.
pub(crate) const PROBE_MAX_FRAME: usize = 2 * 1024 * 1024;

/// One probe frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ProbeMsg {
    /// Answered with the same frame.
    Echo(ByteBuf),
    /// Counted, not answered.
    Sink(ByteBuf),
    /// The server's answer when the client finishes a stream: how many frames it counted.
    Done { received: u64 },
}

/// Serves [`PROBE`].
#[derive(Debug, Clone)]
pub(crate) struct ProbeServer;

impl ProtocolHandler for ProbeServer {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((send, recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut recv = FramedRecv::<ProbeMsg>::new(recv, PROBE_MAX_FRAME);
                let mut send = FramedSend::<ProbeMsg>::new(send, PROBE_MAX_FRAME);
                let mut received = 0u64;
                loop {
                    match recv.recv().await {
                        Ok(ProbeMsg::Echo(body)) => {
                            if send.send(&ProbeMsg::Echo(body)).await.is_err() {
                                return;
                            }
                        }
                        Ok(ProbeMsg::Sink(_)) => received += 1,
                        Ok(ProbeMsg::Done { .. }) => {}
                        Err(FrameError::Closed) => {
                            let _ = send.send(&ProbeMsg::Done { received }).await;
                            let _ = send.finish();
                            return;
                        }
                        Err(_) => return,
                    }
                }
            });
        }
        Ok(())
    }
}

/// Serves [`RAW`]: counts bytes until the stream finishes, then replies with the count.
#[derive(Debug, Clone)]
pub(crate) struct RawServer;

impl ProtocolHandler for RawServer {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut total = 0u64;
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(Some(n)) = recv.read(&mut buf).await {
                    total += n as u64;
                }
                let _ = send.write_all(&total.to_be_bytes()).await;
                let _ = send.finish();
            });
        }
        Ok(())
    }
}
