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
    endpoint::HandlerRegistration,
};

/// A protocol's handler as the accept loop calls it.
pub(crate) type Handler = Arc<Box<dyn DynProtocolHandler>>;

/// Handlers by ALPN.
pub(crate) type HandlerTable = Arc<RwLock<BTreeMap<Vec<u8>, (HandlerRegistration, Handler)>>>;

/// What the accept loop needs besides the iroh endpoint.
pub(crate) struct AcceptConfig {
    pub(crate) handlers: HandlerTable,
    pub(crate) cancel: CancellationToken,
    pub(crate) inbound: InboundTable,
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
    serve_admitted(&handler, conn, &config.inbound).await;
}

/// Admits `conn` ([`crate::admission`]), then lets `handler` serve it, holding the slot until the
/// connection is gone; closes a connection that sends nothing within the first-data deadline.
/// Shared by the endpoint's own accept loop and by [`crate::MountedProtocol`] under an iroh
/// `Router`.
pub(crate) async fn serve_admitted(handler: &Handler, conn: Connection, inbound: &InboundTable) {
    let peer = PeerId::from(conn.remote_id());
    let link: Arc<dyn Link> = Arc::new(conn.clone());
    let slot = match inbound.admit(peer, link, Instant::now()) {
        Ok(slot) => slot,
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
    }
    drop(slot);
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
