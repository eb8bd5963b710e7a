//! Accepts `registry/1` connections and hands each request to the actor; shuts the registry
//! down with the endpoint.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use weft_transport::{
    PeerId, RequestError, accept_request,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

use super::Command;
use crate::proto::{MAX_MESSAGE_SIZE, Request, Response};

/// A request on its way to the actor, with where to put the answer.
#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) from: PeerId,
    pub(super) request: Request,
    pub(super) reply: oneshot::Sender<Response>,
}

/// The protocol handler registered on the endpoint.
#[derive(Debug, Clone)]
pub(super) struct Handler {
    inbound: mpsc::Sender<Inbound>,
    timeout: Duration,
    commands: mpsc::WeakSender<Command>,
    done: CancellationToken,
}

impl Handler {
    pub(super) fn new(
        inbound: mpsc::Sender<Inbound>,
        timeout: Duration,
        commands: mpsc::WeakSender<Command>,
        done: CancellationToken,
    ) -> Self {
        Self {
            inbound,
            timeout,
            commands,
            done,
        }
    }
}

impl ProtocolHandler for Handler {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let from = PeerId::from(connection.remote_id());
        loop {
            let (request, responder) =
                match accept_request::<Request, Response>(&connection, MAX_MESSAGE_SIZE).await {
                    Ok(pair) => pair,
                    // A stream that did not decode: drop it (resetting it), keep the connection.
                    Err(RequestError::Frame(_)) => continue,
                    Err(_) => break,
                };
            let (reply, answer) = oneshot::channel();
            let inbound = Inbound {
                from,
                request,
                reply,
            };
            // Full: the actor is behind; dropping the request resets its stream and the asker
            // treats us as failed for this request.
            if self.inbound.try_send(inbound).is_err() {
                continue;
            }
            let timeout = self.timeout;
            tokio::spawn(async move {
                if let Ok(Ok(response)) = tokio::time::timeout(timeout, answer).await {
                    let _ = responder.respond(&response).await;
                }
            });
        }
        Ok(())
    }

    /// Called by `Endpoint::shutdown` (and iroh's `Router::shutdown`) while dials still work:
    /// the withdrawals go out before the connections close.
    async fn shutdown(&self) {
        match self.commands.upgrade() {
            Some(commands) => super::shutdown(&commands, &self.done).await,
            // Every handle is gone: the actor is finishing on its own; wait for it.
            None => self.done.cancelled().await,
        }
    }
}
