//! Weft layers under a user's own iroh `Router` (see [`Builder::wrap_iroh`](crate::EndpointBuilder::wrap_iroh)).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use iroh::protocol::Router;
//! use weft_transport::{Endpoint, NetworkId, Protocol};
//!
//! // Your iroh endpoint and router, as you run them today.
//! let iroh_endpoint = iroh::Endpoint::bind(iroh::endpoint::presets::Minimal).await?;
//! // A weft endpoint on top of it, without an accept loop of its own.
//! let weft = Endpoint::builder()
//!     .network(NetworkId::from_name("my-app"))
//!     .wrap_iroh(iroh_endpoint.clone());
//! // Spawn weft layers on `weft` as usual, e.g. `Gossip::builder().spawn(&weft).await?`,
//! // then mount each layer's protocol on your router next to your own protocols.
//! let gossip = Protocol::new("gossip", 1); // `weft_gossip::PROTOCOL`
//! let router = Router::builder(iroh_endpoint)
//!     .accept(weft.alpn(gossip), weft.mount(gossip))
//!     .spawn();
//! // ...
//! router.shutdown().await?; // shuts the mounted layers down, then closes the endpoint
//! # Ok(()) }
//! ```

use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};

use iroh::address_lookup::memory::MemoryLookup;

use crate::{
    Endpoint, EndpointBuilder as Builder, Protocol,
    accept::{Handler, HandlerTable, serve_admitted},
    admission::InboundTable,
};

/// One weft protocol as an iroh [`ProtocolHandler`], for a router you run
/// ([`Endpoint::mount`](crate::Endpoint::mount)).
///
/// It serves each connection the way weft's own accept loop would: through inbound admission
/// (the connection holds a slot for its whole life, is closed if it sends nothing within the
/// first-data deadline, and may be displaced when it has gone quiet), then by the handler the
/// layer registered for this protocol. It finds that handler per connection, so it may be
/// mounted before the layer is spawned; until then, connections are closed. Its `shutdown`
/// shuts the layer down.
#[derive(Debug, Clone)]
pub struct MountedProtocol {
    pub(crate) protocol: Protocol,
    pub(crate) alpn: Vec<u8>,
    pub(crate) handlers: HandlerTable,
    pub(crate) inbound: InboundTable,
    pub(crate) connections: crate::cache::SharedCache,
}

impl MountedProtocol {
    /// The weft protocol this serves.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn handler(&self) -> Option<Handler> {
        self.handlers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&self.alpn)
            .map(|(_, handler)| handler.clone())
    }
}

impl ProtocolHandler for MountedProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        match self.handler() {
            Some(handler) => {
                serve_admitted(&handler, connection, &self.inbound, &self.connections).await
            }
            None => connection.close(0u32.into(), b"protocol not running"),
        }
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(handler) = self.handler() {
            handler.shutdown().await;
        }
    }
}

impl Builder {
    /// Wraps an iroh endpoint you already run, whose iroh `Router` accepts connections: weft's
    /// layers then spawn on the returned [`Endpoint`] as usual, and you mount each of them on
    /// your router with [`Endpoint::mount`]. Only the network, the connect timeout, the
    /// connection cache and the inbound admission settings of this builder apply (the key,
    /// addresses and relays are the iroh endpoint's). Shutting the returned endpoint down shuts
    /// the layers down but leaves the iroh endpoint open: it is yours (your router's
    /// `shutdown` closes it).
    pub fn wrap_iroh(self, endpoint: iroh::Endpoint) -> Endpoint {
        let known_addrs = MemoryLookup::new();
        if let Ok(lookup) = endpoint.address_lookup() {
            lookup.add(known_addrs.clone());
        }
        Endpoint::new(endpoint, &self, known_addrs, false)
    }
}
