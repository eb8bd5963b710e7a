//! Accepts `registry/1` connections and hands each request to the actor; shuts the registry
//! down with the endpoint.

use std::{num::NonZeroUsize, time::Duration};

use tokio::sync::{mpsc, oneshot};
use weft_transport::{
    ActorLink, Handed, Handoff, PeerId, RequestError, WhenFull, accept_request,
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
    inbound: Handoff<Inbound>,
    timeout: Duration,
    actor: ActorLink<Command>,
}

impl Handler {
    /// A handler for the actor behind `actor`, and the receiver of the requests it accepts (at
    /// most `capacity` waiting); each answer waits at most `timeout`.
    ///
    /// Policy when full: refuse ([`WhenFull::Refuse`]). The request is dropped, which resets
    /// its stream, and the asker counts us as failed for it and goes on with the other nodes
    /// of its lookup at once. A request queued behind a backlog would be answered after the
    /// asker's own time-out, work for nobody; and waiting would also hold up the requests
    /// behind it on the same connection.
    pub(super) fn new(
        capacity: NonZeroUsize,
        timeout: Duration,
        actor: ActorLink<Command>,
    ) -> (Self, mpsc::Receiver<Inbound>) {
        let (inbound, receiver) = Handoff::channel(capacity, WhenFull::Refuse);
        let handler = Self {
            inbound,
            timeout,
            actor,
        };
        (handler, receiver)
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
            match self.inbound.hand(inbound).await {
                Handed::Queued => {}
                // Dropping the responder resets the stream (see `Handler::new`).
                Handed::Refused(_) => continue,
                // The registry has ended: nothing here will be answered again.
                _ => break,
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
        self.actor.shutdown(Command::Shutdown).await;
    }
}
