//! A weft protocol under a user's own iroh `Router`: the user keeps their iroh endpoint and
//! router, wraps the endpoint, and mounts the weft protocol next to their own.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{ECHO, Echo, echo_round_trip, loopback};
use tokio::sync::mpsc;
use weft_transport::{
    Endpoint, NetworkId, Protocol,
    iroh::{AcceptError, Connection, ProtocolHandler, Router},
};

const NETWORK: &str = "iroh-router";

/// The user's own iroh endpoint on 127.0.0.1 (no relays, no address lookup beyond weft's).
async fn iroh_endpoint() -> weft_transport::iroh::Endpoint {
    weft_transport::iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .relay_mode(iroh::RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap()
        .bind()
        .await
        .unwrap()
}

/// An echo whose shutdown is counted, standing in for a weft layer.
#[derive(Debug, Clone)]
struct CountedEcho {
    echo: Echo,
    shutdowns: Arc<AtomicUsize>,
}

impl ProtocolHandler for CountedEcho {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        self.echo.accept(conn).await
    }

    async fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

/// A protocol of the user's own, served by the same router.
#[derive(Debug, Clone)]
struct Hello;

const HELLO_ALPN: &[u8] = b"my-app/hello/1";

impl ProtocolHandler for Hello {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let mut send = conn.open_uni().await.map_err(AcceptError::from_err)?;
        send.write_all(b"hello")
            .await
            .map_err(AcceptError::from_err)?;
        send.finish().map_err(AcceptError::from_err)?;
        conn.closed().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_weft_protocol_mounted_on_a_plain_iroh_router_serves_weft_peers() {
    let iroh_endpoint = iroh_endpoint().await;
    let weft = Endpoint::builder()
        .network(NetworkId::from_name(NETWORK))
        .wrap_iroh(iroh_endpoint.clone());
    // Mounted before the layer registers: the handler is found per connection.
    let router = Router::builder(iroh_endpoint.clone())
        .accept(weft.alpn(ECHO), weft.mount(ECHO))
        .accept(HELLO_ALPN, Hello)
        .spawn();
    let (outcomes_tx, mut outcomes) = mpsc::channel(8);
    let (conns_tx, _conns) = mpsc::channel(8);
    let shutdowns = Arc::new(AtomicUsize::new(0));
    weft.register(
        ECHO,
        CountedEcho {
            echo: Echo {
                outcomes: outcomes_tx,
                connections: conns_tx,
            },
            shutdowns: shutdowns.clone(),
        },
    )
    .unwrap();
    assert_eq!(weft.id(), iroh_endpoint.id().into());

    // A weft peer dials it like any weft node.
    let peer = loopback(NETWORK).await;
    let addr = weft.addr();
    let conn = peer.connect(&addr, ECHO).await.unwrap();
    echo_round_trip(&conn, 5).await;
    assert!(matches!(
        outcomes.recv().await,
        Some(common::StreamOutcome::Echoed(5))
    ));
    // Admission counted the connection: it holds a slot while open.
    assert_eq!(weft.inbound_stats().held, 1);

    // The user's own protocol on the same router still works.
    let plain = peer
        .iroh()
        .connect(iroh_endpoint.addr(), HELLO_ALPN)
        .await
        .unwrap();
    let mut recv = plain.accept_uni().await.unwrap();
    assert_eq!(recv.read_to_end(64).await.unwrap(), b"hello");

    // The router's shutdown shuts the weft protocol down.
    router.shutdown().await.unwrap();
    assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
    peer.shutdown().await;
}

#[tokio::test]
async fn a_mounted_protocol_of_another_network_or_not_running_is_refused() {
    let iroh_endpoint = iroh_endpoint().await;
    let weft = Endpoint::builder()
        .network(NetworkId::from_name(NETWORK))
        .connect_timeout(Duration::from_secs(5))
        .wrap_iroh(iroh_endpoint.clone());
    let idle = Protocol::new("idle", 1);
    let router = Router::builder(iroh_endpoint.clone())
        .accept(weft.alpn(idle), weft.mount(idle))
        .spawn();
    let addr = weft.addr();

    // Mounted, but no layer registered for it: the connection is closed at once.
    let peer = loopback(NETWORK).await;
    let conn = peer.connect(&addr, idle).await.unwrap();
    conn.closed().await;
    assert_eq!(weft.inbound_stats().held, 0);

    // A peer of another network fails at the handshake.
    let stranger = loopback("another-network").await;
    assert!(stranger.connect(&addr, idle).await.is_err());

    router.shutdown().await.unwrap();
    peer.shutdown().await;
    stranger.shutdown().await;
}
