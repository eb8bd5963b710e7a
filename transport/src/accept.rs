//! The endpoint's accept loop: handshakes bounded in number and time, then admission
//! ([`crate::admission`]), then the protocol's handler, with the connection's slot held until
//! the connection closes.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use iroh::{endpoint::Connection, protocol::DynProtocolHandler};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug};

use crate::{
    PeerId,
    admission::{InboundTable, Link},
    cache::SharedCache,
    endpoint::HandlerRegistration,
};

/// A protocol's handler as the accept loop calls it.
pub(crate) type Handler = Arc<Box<dyn DynProtocolHandler>>;

/// How long a connection to a peer that connected again may stay silent before it is taken
/// for dead: iroh sends a keep-alive every 5 s on an idle connection and the peer acknowledges
/// it within a round trip, so a live connection receives something within this window.
pub(crate) const LIVENESS_WINDOW: Duration = Duration::from_secs(7);

/// Handlers by ALPN.
pub(crate) type HandlerTable = Arc<RwLock<BTreeMap<Vec<u8>, (HandlerRegistration, Handler)>>>;

/// What the accept loop needs besides the iroh endpoint.
pub(crate) struct AcceptConfig {
    pub(crate) handlers: HandlerTable,
    pub(crate) cancel: CancellationToken,
    pub(crate) inbound: InboundTable,
    /// The endpoint's outbound connections, closed when their peer supersedes them.
    pub(crate) connections: SharedCache,
    /// Handshakes in progress at once; a further incoming connection is refused.
    pub(crate) handshakes: Arc<Semaphore>,
    /// Longest a handshake may take.
    pub(crate) handshake_timeout: Duration,
}

pub(crate) async fn accept_loop(endpoint: iroh::Endpoint, config: AcceptConfig) {
    let mut tasks = JoinSet::new();
    let config = Arc::new(config);
    loop {
        tokio::select! {
            biased;
            _ = config.cancel.cancelled() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let Ok(handshake) = config.handshakes.clone().try_acquire_owned() else {
                    debug!("refusing an inbound connection: too many handshakes in progress");
                    config.inbound.metrics().handshakes_refused.inc();
                    incoming.refuse();
                    continue;
                };
                let config = config.clone();
                tasks.spawn(async move {
                    let cancel = config.cancel.clone();
                    cancel
                        .run_until_cancelled(handle_incoming(incoming, handshake, &config))
                        .await;
                }.in_current_span());
            }
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

async fn handle_incoming(
    incoming: iroh::endpoint::Incoming,
    handshake: tokio::sync::OwnedSemaphorePermit,
    config: &AcceptConfig,
) {
    let shaken = tokio::time::timeout(config.handshake_timeout, handshake_of(incoming, config));
    let Ok(Some((handler, conn))) = shaken.await else {
        debug!("inbound handshake failed or timed out");
        return;
    };
    drop(handshake);
    serve_admitted(&handler, conn, &config.inbound, &config.connections).await;
}

/// Admits `conn` ([`crate::admission`]), then lets `handler` serve it, holding the slot until the
/// connection is gone; closes a connection that sends nothing within the first-data deadline.
/// When it supersedes the peer's older connections for its protocol, the cached outbound one
/// to the peer for that protocol is closed too: a peer that dials again has lost its side of
/// both (it restarted), and replies sent on the old one would reach nobody. Shared by the
/// endpoint's own accept loop and by [`crate::MountedProtocol`] under an iroh `Router`.
pub(crate) async fn serve_admitted(
    handler: &Handler,
    conn: Connection,
    inbound: &InboundTable,
    connections: &SharedCache,
) {
    let peer = PeerId::from(conn.remote_id());
    let link: Arc<dyn Link> = Arc::new(conn.clone());
    let mut others = Vec::new();
    let slot = match inbound.admit(peer, conn.alpn(), link, Instant::now()) {
        Ok(slot) => {
            if slot.superseded > 0 {
                let mut cache = connections
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let outbound = cache.close_superseded(peer, conn.alpn());
                others = cache.to_peer(peer);
                debug!(
                    peer = %peer.fmt_short(),
                    inbound = slot.superseded,
                    outbound,
                    "the peer connected again: its older connections are closed"
                );
            }
            slot
        }
        Err(refused) => {
            debug!(peer = %peer.fmt_short(), ?refused, "inbound connection refused");
            Link::close(&conn, refused.reason());
            return;
        }
    };
    let deadline = inbound.config().first_data_deadline;
    let silent_check = {
        let conn = conn.clone();
        async move {
            tokio::time::sleep(deadline).await;
            if conn.stream_frames_received() == 0 {
                debug!(peer = %peer.fmt_short(), "closing an inbound connection that sent nothing");
                Link::close(&conn, b"no data within the deadline");
            }
            std::future::pending::<()>().await;
        }
    };
    let serve = async {
        if let Err(err) = handler.accept(conn.clone()).await {
            debug!("protocol handler ended with an error: {err:#}");
        }
        // Handlers that hand the connection to an actor return at once: the slot is held
        // until the connection itself is gone.
        conn.closed().await;
    };
    tokio::select! {
        () = serve => {}
        () = silent_check => {}
        () = close_silent(peer, others) => {}
    }
    drop(slot);
}

/// Our cached connections to a peer that has just superseded one of its connections (it
/// restarted, most likely): those for other protocols may be dead too, but may as well be live
/// (a peer also dials again when only its side of one connection failed), so each is closed
/// only if it receives nothing within [`LIVENESS_WINDOW`]. Then waits forever (it runs beside
/// the new connection's service and ends with it). At most one check per admitted connection
/// and one per cached protocol: bounded by the inbound limits.
async fn close_silent(peer: PeerId, conns: Vec<Connection>) {
    if !conns.is_empty() {
        let before: Vec<u64> = conns
            .iter()
            .map(|conn| conn.stats().udp_rx.datagrams)
            .collect();
        tokio::time::sleep(LIVENESS_WINDOW).await;
        for (conn, before) in conns.iter().zip(before) {
            if conn.close_reason().is_none() && conn.stats().udp_rx.datagrams == before {
                debug!(peer = %peer.fmt_short(), "closing a silent connection to a peer that connected again");
                conn.close(
                    crate::admission::CLOSE_ADMISSION.into(),
                    b"silent after the peer connected again",
                );
            }
        }
    }
    std::future::pending::<()>().await;
}

/// Runs the handshake and finds the ALPN's handler.
async fn handshake_of(
    incoming: iroh::endpoint::Incoming,
    config: &AcceptConfig,
) -> Option<(Handler, Connection)> {
    let mut accepting = match incoming.accept() {
        Ok(accepting) => accepting,
        Err(err) => {
            debug!("inbound connection failed before the handshake: {err:#}");
            return None;
        }
    };
    let alpn = match accepting.alpn().await {
        Ok(alpn) => alpn,
        Err(err) => {
            debug!("inbound handshake failed: {err:#}");
            return None;
        }
    };
    let handler = config
        .handlers
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&alpn)
        .map(|(_, handler)| handler.clone());
    let Some(handler) = handler else {
        // The ALPN was negotiated, so it was offered, but its handler has since unregistered.
        debug!("no handler for ALPN {}", String::from_utf8_lossy(&alpn));
        return None;
    };
    match handler.on_accepting(accepting).await {
        Ok(connection) => Some((handler, connection)),
        Err(err) => {
            debug!("accepting failed: {err:#}");
            None
        }
    }
}
