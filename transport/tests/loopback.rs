//! The endpoint on real QUIC over 127.0.0.1.

mod common;

use common::*;
use weft_transport::{ConnectError, FrameError, FramedRecv, FramedSend, Protocol};

#[tokio::test]
async fn framed_messages_round_trip() {
    let server = loopback_echo("loopback-test").await;
    let client = loopback("loopback-test").await;
    let conn = client.connect(&server.endpoint.addr(), ECHO).await.unwrap();
    echo_round_trip(&conn, 50).await;
    // Several streams on one connection, one after another.
    echo_round_trip(&conn, 3).await;
    assert_eq!(conn.remote_id(), server.endpoint.id().to_iroh());
}

#[tokio::test]
async fn connections_are_reused_per_peer_and_protocol() {
    let mut server = loopback_echo("reuse-test").await;
    let client = loopback("reuse-test").await;
    let addr = server.endpoint.addr();
    let (a, b) = tokio::join!(client.connect(&addr, ECHO), client.connect(&addr, ECHO));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.stable_id(),
        b.stable_id(),
        "concurrent dials share one connection"
    );
    let c = client.connect(&addr, ECHO).await.unwrap();
    assert_eq!(a.stable_id(), c.stable_id());
    echo_round_trip(&c, 1).await;
    // The server saw exactly one connection.
    assert!(server.connections.recv().await.is_some());
    assert!(server.connections.try_recv().is_err());

    // A closed connection is replaced by a fresh dial.
    a.close(0u32.into(), b"test");
    let d = client.connect(&addr, ECHO).await.unwrap();
    assert_ne!(a.stable_id(), d.stable_id());
    echo_round_trip(&d, 1).await;
}

#[tokio::test]
async fn peer_of_another_network_fails_at_the_handshake() {
    let mut server = loopback_echo("network-a").await;
    let stranger = loopback("network-b").await;
    let err = stranger
        .connect(&server.endpoint.addr(), ECHO)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Failed { .. }), "{err}");
    // The server's handler never saw a connection: no payload was read.
    assert!(server.connections.try_recv().is_err());
}

#[tokio::test]
async fn unregistered_protocol_is_refused() {
    let server = loopback_echo("unregistered").await;
    let client = loopback("unregistered").await;
    let err = client
        .connect(&server.endpoint.addr(), Protocol::new("nothing", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Failed { .. }), "{err}");
}

#[tokio::test]
async fn frame_announcing_4_gib_is_rejected_without_allocating() {
    let mut server = loopback_echo("huge-frame").await;
    let client = loopback("huge-frame").await;
    let conn = client.connect(&server.endpoint.addr(), ECHO).await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    // A header announcing u32::MAX bytes, and no body at all.
    send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let outcome = server.outcomes.recv().await.unwrap();
    assert!(
        matches!(outcome, StreamOutcome::Failed(FrameError::TooLarge { len, .. }) if len == u64::from(u32::MAX)),
        "{outcome:?}"
    );
    // The connection still serves other streams.
    echo_round_trip(&conn, 2).await;
}

#[tokio::test]
async fn malformed_cbor_is_an_error_and_other_streams_go_on() {
    let mut server = loopback_echo("malformed").await;
    let client = loopback("malformed").await;
    let conn = client.connect(&server.endpoint.addr(), ECHO).await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let garbage = b"\xff\xfe not cbor";
    send.write_all(&u32::try_from(garbage.len()).unwrap().to_be_bytes())
        .await
        .unwrap();
    send.write_all(garbage).await.unwrap();
    let outcome = server.outcomes.recv().await.unwrap();
    assert!(
        matches!(outcome, StreamOutcome::Failed(FrameError::Malformed(_))),
        "{outcome:?}"
    );
    echo_round_trip(&conn, 5).await;
    // A second client is served as well.
    let other = loopback("malformed").await;
    let conn = other.connect(&server.endpoint.addr(), ECHO).await.unwrap();
    echo_round_trip(&conn, 1).await;
}

#[tokio::test]
async fn oversized_message_is_refused_by_the_sender() {
    let server = loopback_echo("oversized").await;
    let client = loopback("oversized").await;
    let conn = client.connect(&server.endpoint.addr(), ECHO).await.unwrap();
    let (send, recv) = conn.open_bi().await.unwrap();
    let mut send = FramedSend::<Msg>::new(send, MAX_FRAME);
    let mut recv = FramedRecv::<Msg>::new(recv, MAX_FRAME);
    let too_big = Msg {
        seq: 0,
        body: vec![0; MAX_FRAME + 1],
    };
    assert!(matches!(
        send.send(&too_big).await,
        Err(FrameError::TooLarge { .. })
    ));
    // Nothing was written: the stream carries on.
    let ok = Msg {
        seq: 1,
        body: vec![1; 10],
    };
    send.send(&ok).await.unwrap();
    assert_eq!(recv.recv().await.unwrap(), ok);
}

#[tokio::test]
async fn shutdown_closes_connections_and_refuses_dials() {
    let server = loopback_echo("shutdown").await;
    let client = loopback("shutdown").await;
    let conn = client.connect(&server.endpoint.addr(), ECHO).await.unwrap();
    server.endpoint.shutdown().await;
    conn.closed().await;
    client.shutdown().await;
    assert!(matches!(
        client.connect(&server.endpoint.addr(), ECHO).await,
        Err(ConnectError::Shutdown)
    ));
}

#[tokio::test]
async fn an_old_registration_does_not_remove_a_newer_handler() {
    let server = loopback_echo("reregister").await;
    let client = loopback("reregister").await;
    let endpoint = &server.endpoint;
    let handler = || {
        let (outcomes, _) = tokio::sync::mpsc::channel(1);
        let (connections, _) = tokio::sync::mpsc::channel(1);
        Echo {
            outcomes,
            connections,
        }
    };
    let old = endpoint
        .register(Protocol::new("layer", 1), handler())
        .unwrap();
    // The old instance shuts down; a new one registers the same protocol.
    assert!(endpoint.unregister_exact(old));
    let new = endpoint
        .register(Protocol::new("layer", 1), handler())
        .unwrap();
    assert_ne!(old, new);
    // The old instance's late clean-up leaves the new handler in place...
    assert!(!endpoint.unregister_exact(old));
    client
        .connect(&endpoint.addr(), Protocol::new("layer", 1))
        .await
        .expect("the new handler still routes the protocol");
    // ...and the new one's own clean-up removes it.
    assert!(endpoint.unregister_exact(new));
    assert!(!endpoint.unregister(Protocol::new("layer", 1)));
}

#[tokio::test]
async fn secret_seeds_differ_per_call_and_per_purpose() {
    let a = loopback("seeds-a").await;
    let seeds = [a.secret_seed("x"), a.secret_seed("x"), a.secret_seed("y")];
    assert_ne!(seeds[0], seeds[1]);
    assert_ne!(seeds[0], seeds[2]);
    assert_ne!(seeds[1], seeds[2]);
}
