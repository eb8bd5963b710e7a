//! Accepts `gossip/1` connections for the actor, and shuts it down with the endpoint.

use std::num::NonZeroUsize;

use tokio::sync::mpsc;
use weft_transport::{
    ActorLink, Handoff, WhenFull,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

use super::actor::ToActor;

/// Accepted connections waiting for the actor to start their readers.
const WAITING: NonZeroUsize = NonZeroUsize::new(64).unwrap();

/// The `gossip/1` protocol handler: hands every accepted connection to the actor.
#[derive(Debug, Clone)]
pub(super) struct Handler {
    conns: Handoff<Connection>,
    actor: ActorLink<ToActor>,
}

impl Handler {
    /// A handler for the actor behind `actor`, and the receiver of the connections it accepts.
    ///
    /// Policy when full: wait ([`WhenFull::Wait`]). A connection is a neighbour's whole link
    /// to us, so it is never turned away for a busy actor; the endpoint runs one task per
    /// connection, so waiting delays only this one, and its inbound admission bounds how many
    /// connections there are.
    pub(super) fn new(actor: ActorLink<ToActor>) -> (Self, mpsc::Receiver<Connection>) {
        let (conns, receiver) = Handoff::channel(WAITING, WhenFull::Wait);
        (Self { conns, actor }, receiver)
    }
}

impl ProtocolHandler for Handler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        // Closed: the actor has ended, and the connection goes with it.
        let _ = self.conns.hand(conn).await;
        Ok(())
    }

    /// Called by `Endpoint::shutdown` (and iroh's `Router::shutdown`) before the connections
    /// close: the topics' goodbyes go out first.
    async fn shutdown(&self) {
        self.actor.shutdown(ToActor::Shutdown).await;
    }
}
