//! The same QUIC stack over the in-process memory network, with faults injected.

mod common;

use std::time::Duration;

use common::*;
use weft_transport::{ConnectError, LinkConfig, MemoryNetwork, PeerAddr};

#[tokio::test]
async fn dial_by_id_alone_over_memory() {
    let net = MemoryNetwork::new(1);
    let a = on_memory(&net, 1, Duration::from_secs(5)).await;
    let b = on_memory(&net, 2, Duration::from_secs(5)).await;
    let _server = attach_echo(&b);
    let conn = a.connect(&PeerAddr::new(b.id()), ECHO).await.unwrap();
    echo_round_trip(&conn, 20).await;
    assert!(net.stats().sent > 0);
}

#[tokio::test]
async fn latency_and_loss_are_survived_by_quic() {
    let net = MemoryNetwork::new(42);
    net.set_default_link(LinkConfig {
        latency_min: Duration::from_millis(1),
        latency_max: Duration::from_millis(5),
        loss: 0.05,
    });
    let a = on_memory(&net, 1, Duration::from_secs(10)).await;
    let b = on_memory(&net, 2, Duration::from_secs(10)).await;
    let _server = attach_echo(&b);
    let conn = a.connect(&PeerAddr::new(b.id()), ECHO).await.unwrap();
    echo_round_trip(&conn, 50).await;
    assert!(net.stats().dropped_loss > 0, "{:?}", net.stats());
}

#[tokio::test]
async fn partition_makes_dials_time_out_and_heal_restores_them() {
    let net = MemoryNetwork::new(3);
    let timeout = Duration::from_millis(300);
    let a = on_memory(&net, 1, timeout).await;
    let b = on_memory(&net, 2, timeout).await;
    let c = on_memory(&net, 3, timeout).await;
    let _server_b = attach_echo(&b);
    let _server_c = attach_echo(&c);

    net.partition(&[a.id()], &[b.id()]);
    let err = a.connect(&PeerAddr::new(b.id()), ECHO).await.unwrap_err();
    assert!(matches!(err, ConnectError::Timeout { .. }), "{err}");
    // Only the cut link is affected.
    let conn = a.connect(&PeerAddr::new(c.id()), ECHO).await.unwrap();
    echo_round_trip(&conn, 1).await;
    assert!(net.stats().dropped_partition > 0);

    net.heal();
    let conn = a.connect(&PeerAddr::new(b.id()), ECHO).await.unwrap();
    echo_round_trip(&conn, 1).await;
}

#[tokio::test]
async fn isolated_peer_is_unreachable_until_healed() {
    let net = MemoryNetwork::new(4);
    let timeout = Duration::from_millis(300);
    let a = on_memory(&net, 1, timeout).await;
    let b = on_memory(&net, 2, timeout).await;
    let _server = attach_echo(&b);
    net.isolate(b.id());
    assert!(matches!(
        a.connect(&PeerAddr::new(b.id()), ECHO).await,
        Err(ConnectError::Timeout { .. })
    ));
    net.heal();
    let conn = a.connect(&PeerAddr::new(b.id()), ECHO).await.unwrap();
    echo_round_trip(&conn, 1).await;
}

#[tokio::test]
async fn a_restarted_peer_rejoins_with_the_same_key() {
    let net = MemoryNetwork::new(5);
    let a = on_memory(&net, 1, Duration::from_secs(5)).await;
    let b = on_memory(&net, 2, Duration::from_secs(5)).await;
    // A second live endpoint with the same key is refused.
    assert!(
        weft_transport::Endpoint::builder()
            .secret_key(weft_transport::SecretKey::from_bytes(&[2; 32]))
            .memory(&net)
            .bind()
            .await
            .is_err()
    );
    b.shutdown().await;
    drop(b);
    let b = on_memory(&net, 2, Duration::from_secs(5)).await;
    let _server = attach_echo(&b);
    let conn = a.connect(&PeerAddr::new(b.id()), ECHO).await.unwrap();
    echo_round_trip(&conn, 1).await;
}
