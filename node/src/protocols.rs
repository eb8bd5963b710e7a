//! Protocols of the application's own, served on the node's endpoint next to the layers
//! ([`crate::Builder::protocol`]).
//!
//! They are registered on the weft [`Endpoint`] like the layers' handlers, so every inbound
//! connection goes through the endpoint's one accept loop: the same handshake bounds and the
//! same inbound admission (per-peer and total limits, displacement of idle connections, the
//! first-data deadline) as gossip or the registry, and the same network-namespaced ALPN
//! (`weft/<network>/<name>/<version>`), so peers of another network fail at the handshake.
//!
//! At [`crate::Node::shutdown`] they go first, newest first: each is unregistered (new
//! connections for it are refused) and its `shutdown` awaited, while every layer still runs,
//! so a protocol built on the registry or on gossip can still say goodbye through them.

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use weft_transport::{
    Endpoint, HandlerRegistration, Protocol, RegisterError, iroh::ProtocolHandler,
};

/// A user's handler with its type erased, so the builder can hold any number of them.
trait Mount: Send + Sync + fmt::Debug + 'static {
    fn register(
        &self,
        endpoint: &Endpoint,
        protocol: Protocol,
    ) -> Result<HandlerRegistration, RegisterError>;

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The handler shared between the endpoint's table and the node (for its shutdown).
#[derive(Debug)]
struct Mounted<H>(Arc<H>);

impl<H: ProtocolHandler> Mount for Mounted<H> {
    fn register(
        &self,
        endpoint: &Endpoint,
        protocol: Protocol,
    ) -> Result<HandlerRegistration, RegisterError> {
        endpoint.register(protocol, self.0.clone())
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.0.shutdown())
    }
}

/// A protocol the builder was given, not registered yet. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct UserProtocol {
    protocol: Protocol,
    handler: Arc<dyn Mount>,
}

impl UserProtocol {
    pub(crate) fn new(protocol: Protocol, handler: impl ProtocolHandler) -> Self {
        Self {
            protocol,
            handler: Arc::new(Mounted(Arc::new(handler))),
        }
    }

    /// Routes the protocol's connections to its handler, through the endpoint's admission.
    pub(crate) fn register(&self, endpoint: &Endpoint) -> Result<Registered, RegisterError> {
        let registration = self.handler.register(endpoint, self.protocol)?;
        Ok(Registered {
            registration,
            handler: self.handler.clone(),
        })
    }
}

/// A user protocol the endpoint serves.
#[derive(Debug)]
pub(crate) struct Registered {
    registration: HandlerRegistration,
    handler: Arc<dyn Mount>,
}

/// Shuts the user protocols down, newest first: each stops being routed (so the endpoint's own
/// shutdown does not run its handler a second time), then its handler's `shutdown` runs.
pub(crate) async fn shutdown(endpoint: &Endpoint, protocols: &[Registered]) {
    for registered in protocols.iter().rev() {
        endpoint.unregister_exact(registered.registration);
        registered.handler.shutdown().await;
        tracing::debug!(protocol = %registered.registration.protocol(), "protocol shut down");
    }
}
