//! weft-gossip under a user's own iroh `Router`, the way iroh-gossip is mounted: a node that
//! keeps its plain iroh endpoint and router (with a protocol of its own beside gossip) and a
//! weft node broadcast to each other; the router's shutdown sends gossip's goodbye.

mod common;

use std::time::Duration;

use common::{fast_config, init_tracing, spawn_gossip};
use tokio::time::timeout;
use weft_gossip::{Event, Gossip, PROTOCOL, TopicEvents, TopicId};
use weft_transport::{
    Endpoint, NetworkId, PeerId,
    iroh::{self, AcceptError, Connection, ProtocolHandler, Router},
};

const NETWORK: &str = "gossip-iroh-router";
const SOON: Duration = Duration::from_secs(10);

/// The user's own protocol, served by the same router.
#[derive(Debug, Clone)]
struct Hello;

impl ProtocolHandler for Hello {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        conn.closed().await;
        Ok(())
    }
}

async fn wait_for(
    events: &mut TopicEvents,
    what: &str,
    mut matches: impl FnMut(&Event<PeerId>) -> bool,
) {
    timeout(SOON, async {
        loop {
            match events.recv().await {
                Some(event) if matches(&event) => return,
                Some(_) => {}
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {SOON:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_mounted_on_a_plain_iroh_router_talks_to_a_weft_node() {
    init_tracing();
    let topic = TopicId::from_name("iroh-router");

    // The iroh user's node: their endpoint, their router, weft only wrapped around it.
    let iroh_endpoint = iroh::Endpoint::builder(iroh::presets::Minimal)
        .relay_mode(iroh::RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap()
        .bind()
        .await
        .unwrap();
    let wrapped = Endpoint::builder()
        .network(NetworkId::from_name(NETWORK))
        .wrap_iroh(iroh_endpoint.clone());
    let mounted = Gossip::builder()
        .config(fast_config())
        .spawn(&wrapped)
        .await
        .unwrap();
    let router = Router::builder(iroh_endpoint)
        .accept(wrapped.alpn(PROTOCOL), wrapped.mount(PROTOCOL))
        .accept(b"my-app/hello/1", Hello)
        .spawn();

    // A plain weft node joins the topic through it.
    let weft = Endpoint::builder()
        .network(NetworkId::from_name(NETWORK))
        .bind_addr("127.0.0.1:0".parse().unwrap())
        .bind()
        .await
        .unwrap();
    let gossip = spawn_gossip(&weft).await;
    let (mounted_sender, mut mounted_events) =
        mounted.subscribe(topic, vec![]).await.unwrap().split();
    let (sender, mut events) = gossip
        .subscribe(topic, vec![wrapped.addr()])
        .await
        .unwrap()
        .split();
    wait_for(&mut events, "Joined", |e| *e == Event::Joined).await;
    wait_for(&mut mounted_events, "Joined", |e| *e == Event::Joined).await;

    // Both ways.
    sender.broadcast(b"from weft".to_vec()).await.unwrap();
    wait_for(
        &mut mounted_events,
        "the weft node's broadcast",
        |e| matches!(e, Event::Received { content, .. } if content.as_bytes() == b"from weft"),
    )
    .await;
    mounted_sender
        .broadcast(b"from the iroh router".to_vec())
        .await
        .unwrap();
    wait_for(&mut events, "the mounted node's broadcast", |e| {
        matches!(e, Event::Received { content, .. } if content.as_bytes() == b"from the iroh router")
    })
    .await;
    // The mounted connection went through weft's admission.
    assert!(wrapped.inbound_stats().held >= 1);

    // The router's shutdown shuts the mounted gossip down: the weft node hears the goodbye.
    let mounted_id = wrapped.id();
    router.shutdown().await.unwrap();
    wait_for(&mut events, "the mounted node's goodbye", |e| {
        *e == Event::NeighborDown(mounted_id)
    })
    .await;
    assert!(matches!(
        mounted_sender.broadcast(b"late".to_vec()).await,
        Err(weft_gossip::Error::Closed)
    ));
    weft.shutdown().await;
}
