//! The admin server and client on loopback, over an in-memory node: authentication, bounds,
//! the admin files, streaming and shutdown.

mod admin_node;

use std::net::SocketAddr;
use std::time::Duration;

use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use weft_node::admin::{
    self, Call, Client, ClientError, ErrorKind, GossipEvent, Server, ServerConfig, StartError,
    SyncAdd, SyncList,
};

use admin_node::{MemoryNode, NODE_ID, raw, start, token, within};

fn error_kind(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    value["error"]["kind"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_without_a_token_is_refused_and_does_nothing() {
    let running = start(ServerConfig::default()).await;
    let addr = running.server.addr();
    let publish = br#"{"topic":"t","content":"aGk="}"#.to_vec();

    let (status, body) = raw(
        addr,
        Method::POST,
        "/v1/gossip/publish",
        None,
        publish.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_kind(&body), "unauthorized");

    // Another scheme, or the token without its scheme, is no better.
    let token = token(&running);
    for value in [
        format!("Basic {token}"),
        token.clone(),
        "Bearer ".to_owned(),
    ] {
        let (status, _) = raw(
            addr,
            Method::POST,
            "/v1/gossip/publish",
            Some(&value),
            publish.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
    }
    // Unknown routes do not tell an unauthenticated caller which routes exist.
    let (status, _) = raw(addr, Method::GET, "/nope", None, Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(running.node.published(), 0);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_does_nothing() {
    let running = start(ServerConfig::default()).await;
    let addr = running.server.addr();
    let mut wrong = token(&running).into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = format!("Bearer {}", String::from_utf8(wrong).unwrap());
    let publish = br#"{"topic":"t","content":"aGk="}"#.to_vec();
    let (status, body) = raw(
        addr,
        Method::POST,
        "/v1/gossip/publish",
        Some(&wrong),
        publish,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_kind(&body), "unauthorized");
    assert_eq!(running.node.published(), 0);

    // The typed client says which file held the refused token.
    std::fs::write(running.server.token_path(), "0".repeat(64)).unwrap();
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let err = client.status().await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("admin.token"), "{err}");
}

#[tokio::test]
async fn the_right_token_works_for_every_route() {
    let running = start(ServerConfig::default()).await;
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    assert_eq!(client.addr(), running.server.addr());

    // The scheme is case-insensitive (RFC 9110).
    let bearer = format!("bEaReR {}", token(&running));
    let (status, _) = raw(
        running.server.addr(),
        Method::GET,
        "/v1/status",
        Some(&bearer),
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let status = client.status().await.unwrap();
    assert_eq!(status.id, NODE_ID);
    assert_eq!(status.layers.len(), 5);
    assert_eq!(client.peers().await.unwrap().peers[0].rtt_us, Some(1_250));

    let published = client.gossip_publish("t", "hello").await.unwrap();
    assert_eq!(published.message_id, format!("{:016x}", 1));
    assert_eq!(running.node.published(), 1);

    let provided = client.registry_provide("svc", "meta").await.unwrap();
    assert_eq!(provided.holders, 1);
    let found = client.registry_find("svc").await.unwrap();
    assert_eq!(found.providers.len(), 1);
    assert_eq!(found.providers[0].metadata.as_bytes(), b"meta");
    assert!(
        client
            .registry_find("other")
            .await
            .unwrap()
            .providers
            .is_empty()
    );

    let reply = client
        .call(&Call {
            name: "echo".to_owned(),
            request: "ping".into(),
            timeout_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(reply.response.as_bytes(), b"ping");

    let joined = client
        .sync_add(&SyncAdd {
            topic: "docs".to_owned(),
            content: None,
            timestamp: None,
        })
        .await
        .unwrap();
    assert_eq!(joined.item, None);
    for (timestamp, text) in [(10, "a"), (20, "b"), (30, "c")] {
        let added = client
            .sync_add(&SyncAdd {
                topic: "docs".to_owned(),
                content: Some(text.into()),
                timestamp: Some(timestamp),
            })
            .await
            .unwrap();
        assert!(added.item.is_some());
    }
    let page = client
        .sync_list(&SyncList {
            topic: "docs".to_owned(),
            since: 15,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].content.as_bytes(), b"b");
    assert!(page.more);
    let sync = client.sync_status("docs").await.unwrap();
    assert!(sync.joined);
    assert_eq!(sync.items, 3);

    client.shutdown().await.unwrap();
    assert!(running.node.shut_down.is_cancelled());
}

#[tokio::test]
async fn api_errors_arrive_with_their_kind() {
    let running = start(ServerConfig::default()).await;
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let err = client
        .call(&Call {
            name: "nobody".to_owned(),
            request: "x".into(),
            timeout_ms: None,
        })
        .await
        .unwrap_err();
    match err {
        ClientError::Api(err) => {
            assert_eq!(err.kind, ErrorKind::NotFound);
            assert_eq!(err.message, "no provider of nobody answered");
        }
        other => panic!("{other:?}"),
    }

    let bearer = format!("Bearer {}", token(&running));
    let addr = running.server.addr();
    let (status, body) = raw(addr, Method::GET, "/v1/nope", Some(&bearer), Vec::new()).await;
    assert_eq!(
        (status, error_kind(&body).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, _) = raw(
        addr,
        Method::DELETE,
        "/v1/status",
        Some(&bearer),
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, body) = raw(
        addr,
        Method::POST,
        "/v1/registry/find",
        Some(&bearer),
        b"{".to_vec(),
    )
    .await;
    assert_eq!(
        (status, error_kind(&body).as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
}

#[tokio::test]
async fn a_non_loopback_bind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bind in [
        "0.0.0.0:0",
        "[::]:0",
        "192.0.2.1:7000",
        "[::ffff:127.0.0.1]:0",
    ] {
        let bind: SocketAddr = bind.parse().unwrap();
        let config = ServerConfig {
            bind,
            ..ServerConfig::default()
        };
        let err = Server::spawn(
            config,
            dir.path(),
            MemoryNode::default().into(),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, StartError::NotLoopback { addr } if addr == bind),
            "{err:?}"
        );
        assert!(err.to_string().contains("loopback"), "{err}");
    }
    // Refused before anything was written.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // And `::1` is loopback.
    let config = ServerConfig {
        bind: "[::1]:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    match Server::spawn(
        config,
        dir.path(),
        MemoryNode::default().into(),
        &CancellationToken::new(),
    )
    .await
    {
        Ok(server) => server.shutdown().await,
        // A machine without IPv6 on loopback cannot bind it; that is not what this tests.
        Err(StartError::Bind { .. }) => {}
        Err(err) => panic!("{err:?}"),
    }
}

#[tokio::test]
async fn the_admin_files_are_written_private_and_removed_on_shutdown() {
    let running = start(ServerConfig::default()).await;
    let token_path = running.dir.path().join(admin::TOKEN_FILE);
    let addr_path = running.dir.path().join(admin::ADDR_FILE);
    assert_eq!(running.server.token_path(), token_path);
    assert_eq!(running.server.addr_path(), addr_path);

    let token = token(&running);
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let addr: SocketAddr = std::fs::read_to_string(&addr_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(addr, running.server.addr());
    assert!(addr.ip().is_loopback());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Nothing but the two files (no temporary left behind).
    let mut names: Vec<_> = std::fs::read_dir(running.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [admin::ADDR_FILE, admin::TOKEN_FILE]);

    // A second start writes a fresh token.
    let second = start(ServerConfig::default()).await;
    assert_ne!(admin_node::token(&second), token);

    running.server.shutdown().await;
    assert!(!token_path.exists());
    assert!(!addr_path.exists());
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_stopping_server_leaves_the_files_of_a_newer_one() {
    let first = start(ServerConfig::default()).await;
    let dir = first.dir.path();
    let second = Server::spawn(
        ServerConfig::default(),
        dir,
        first.node.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    first.server.shutdown().await;
    let client = Client::from_data_dir(dir).unwrap();
    assert_eq!(client.addr(), second.addr());
    client.status().await.unwrap();
    second.shutdown().await;
    assert!(!dir.join(admin::ADDR_FILE).exists());
    assert!(!dir.join(admin::TOKEN_FILE).exists());
}

#[tokio::test]
async fn cancelling_the_callers_token_stops_the_server_and_dropping_it_does_not_cancel_the_caller()
{
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let server = Server::spawn(
        ServerConfig::default(),
        dir.path(),
        MemoryNode::default().into(),
        &cancel,
    )
    .await
    .unwrap();
    let addr_path = server.addr_path().to_owned();
    cancel.cancel();
    server.shutdown().await;
    assert!(!addr_path.exists());

    let caller = CancellationToken::new();
    let server = Server::spawn(
        ServerConfig::default(),
        dir.path(),
        MemoryNode::default().into(),
        &caller,
    )
    .await
    .unwrap();
    drop(server);
    assert!(!caller.is_cancelled());
}

#[tokio::test]
async fn an_oversize_body_gets_413() {
    let config = ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    };
    let running = start(config).await;
    let bearer = format!("Bearer {}", token(&running));
    let big = format!(r#"{{"topic":"t","content":"{}"}}"#, "A".repeat(2048)).into_bytes();
    let (status, body) = raw(
        running.server.addr(),
        Method::POST,
        "/v1/gossip/publish",
        Some(&bearer),
        big,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_kind(&body), "payload_too_large");
    assert_eq!(running.node.published(), 0);

    // Without a declared length (chunked), the limit holds while reading.
    let mut stream = TcpStream::connect(running.server.addr()).await.unwrap();
    let chunk = "A".repeat(2048);
    let request = format!(
        "POST /v1/gossip/publish HTTP/1.1\r\nhost: x\r\nauthorization: {bearer}\r\n\
         transfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // The server may close with a reset after answering; what was read is what counts.
    let _ = within(stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");

    // The client turns it into an API error.
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let err = client
        .gossip_publish("t", vec![0u8; 2048])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Api(err) if err.kind == ErrorKind::PayloadTooLarge),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_body_up_to_the_limit_is_read_whole() {
    // Far larger than the server's 16 KiB head buffer: the body is read in many pieces.
    let running = start(ServerConfig::default()).await;
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let mut events = client.gossip_subscribe("big").await.unwrap();
    running.node.wait_for_subscribers("big", 1).await;
    let content: Vec<u8> = (0..700 * 1024).map(|i| (i % 251) as u8).collect();
    client.gossip_publish("big", content.clone()).await.unwrap();
    match within(events.next()).await.unwrap().unwrap() {
        GossipEvent::Message {
            content: received, ..
        } => assert!(received.as_bytes() == content),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let config = ServerConfig {
        header_read_timeout: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let running = start(config).await;
    let mut stream = TcpStream::connect(running.server.addr()).await.unwrap();
    // The server closes on its own (a 408 or nothing, then end of stream).
    let mut rest = Vec::new();
    let _ = within(stream.read_to_end(&mut rest)).await;
}

#[tokio::test]
async fn a_slow_answer_gets_504() {
    let config = ServerConfig {
        request_timeout: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let running = start(config).await;
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let err = within(client.call(&Call {
        name: "hang".to_owned(),
        request: Default::default(),
        timeout_ms: None,
    }))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ClientError::Api(err) if err.kind == ErrorKind::Timeout),
        "{err:?}"
    );
}

#[tokio::test]
async fn past_the_connection_limit_a_client_is_told_busy() {
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let running = start(config).await;
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    // A subscription holds the only connection.
    let subscription = client.gossip_subscribe("t").await.unwrap();
    let err = client.status().await.unwrap_err();
    match &err {
        ClientError::Api(err) => {
            assert_eq!(err.kind, ErrorKind::Unavailable);
            assert!(
                err.message.contains("limit of 1 connections"),
                "{}",
                err.message
            );
        }
        other => panic!("{other:?}"),
    }
    // The slot is free again once the subscriber leaves.
    drop(subscription);
    within(async {
        loop {
            match client.status().await {
                Ok(_) => break,
                // The server notices the closed connection a moment after the drop; until
                // then, a busy answer, or (when the busy answers are all taken) a closed one.
                Err(ClientError::Api(err)) if err.kind == ErrorKind::Unavailable => {
                    tokio::task::yield_now().await;
                }
                Err(ClientError::Connection(_)) => tokio::task::yield_now().await,
                Err(err) => panic!("{err:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_subscription_streams_events_and_ends_when_the_server_stops() {
    let running = start(ServerConfig::default()).await;
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let mut events = client.gossip_subscribe("news").await.unwrap();
    running.node.wait_for_subscribers("news", 1).await;
    client.gossip_publish("news", "one").await.unwrap();
    client.gossip_publish("other", "not for us").await.unwrap();
    client.gossip_publish("news", "two").await.unwrap();
    for expected in ["one", "two"] {
        match within(events.next()).await.unwrap().unwrap() {
            GossipEvent::Message { from, content } => {
                assert_eq!(from, NODE_ID);
                assert_eq!(content.as_bytes(), expected.as_bytes());
            }
            other => panic!("{other:?}"),
        }
    }
    // Shutdown does not wait out the grace period for an open stream: it ends it.
    within(running.server.shutdown()).await;
    assert!(within(events.next()).await.is_none());
}

#[tokio::test]
async fn with_no_running_node_the_client_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::from_data_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ClientError::NoRunningNode { .. }), "{err:?}");
    assert!(err.to_string().starts_with("no running node"), "{err}");

    // A data directory that does not exist is the same answer.
    let err = Client::from_data_dir(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, ClientError::NoRunningNode { .. }), "{err:?}");

    // A stale address file (a killed node): nothing listens there.
    let running = start(ServerConfig::default()).await;
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let addr_file = std::fs::read(running.server.addr_path()).unwrap();
    let token_file = std::fs::read(running.server.token_path()).unwrap();
    let data_dir = running.dir.path().to_owned();
    running.server.shutdown().await;
    std::fs::write(data_dir.join(admin::ADDR_FILE), addr_file).unwrap();
    std::fs::write(data_dir.join(admin::TOKEN_FILE), token_file).unwrap();
    let err = client.status().await.unwrap_err();
    assert!(matches!(err, ClientError::NoRunningNode { .. }), "{err:?}");
    assert!(!err.to_string().contains('\n'));

    // A garbled address file is named.
    std::fs::write(data_dir.join(admin::ADDR_FILE), "not an address").unwrap();
    let err = Client::from_data_dir(&data_dir).unwrap_err();
    assert!(err.to_string().contains("admin.addr"), "{err}");
}

#[tokio::test]
async fn metrics_need_the_token_unless_the_config_opens_them() {
    // Closed (the default): `/metrics` is like any route.
    let running = start(ServerConfig::default()).await;
    let addr = running.server.addr();
    let (status, _) = raw(addr, Method::GET, "/metrics", None, Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {}", token(&running));
    let (status, body) = raw(addr, Method::GET, "/metrics", Some(&bearer), Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body.to_vec())
            .unwrap()
            .ends_with("# EOF\n")
    );
    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let text = client.metrics().await.unwrap();
    assert!(text.contains("weft_test_requests_total 1"), "{text}");
    running.server.shutdown().await;

    // Opened: a scraper reads `/metrics` without the token, and nothing else.
    let running = start(ServerConfig {
        open_metrics: true,
        ..ServerConfig::default()
    })
    .await;
    let addr = running.server.addr();
    let (status, body) = raw(addr, Method::GET, "/metrics", None, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body.to_vec())
            .unwrap()
            .contains("weft_test_requests_total")
    );
    let (status, _) = raw(addr, Method::GET, "/v1/status", None, Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = raw(addr, Method::POST, "/metrics", None, Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    running.server.shutdown().await;
}

#[tokio::test]
async fn the_status_page_is_served_without_the_token_and_its_data_only_with_it() {
    let running = start(ServerConfig::default()).await;
    let addr = running.server.addr();
    let files = [
        ("/", "text/html"),
        ("/page/app.js", "text/javascript"),
        ("/page/style.css", "text/css"),
    ];
    for (path, kind) in files {
        let (status, headers, body) =
            admin_node::raw_response(addr, Method::GET, path, None, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert!(header("content-type").starts_with(kind), "{path}");
        let policy = header("content-security-policy");
        assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
        assert!(!body.is_empty());
    }
    let (_, _, index) = admin_node::raw_response(addr, Method::GET, "/", None, Vec::new()).await;
    let index = String::from_utf8(index.to_vec()).unwrap();
    assert!(index.contains("/page/app.js") && index.contains("/page/style.css"));
    assert!(
        !index.contains("<script>"),
        "no inline script: the policy forbids it"
    );

    // The data behind the page needs the token like every other route; so does any other
    // method on the page's paths.
    for path in ["/v1/overview", "/v1/topology?topic=chat"] {
        let (status, _) = raw(addr, Method::GET, path, None, Vec::new()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, _) = raw(addr, Method::POST, "/", None, Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let client = Client::from_data_dir(running.dir.path()).unwrap();
    let expected = format!("http://{addr}/#token={}", token(&running));
    assert_eq!(
        client.page_url(),
        expected,
        "the token rides in the fragment"
    );
    assert_eq!(running.server.page_url(), expected);
    client.gossip_publish("chat", b"hi".to_vec()).await.unwrap();
    let overview = client.overview().await.unwrap();
    assert_eq!(overview.status.id, NODE_ID);
    assert_eq!(overview.gossip[0].name.as_deref(), Some("chat"));
    assert_eq!(overview.peers.len(), 1);
    let graph = client.topology("chat").await.unwrap();
    assert_eq!(graph.nodes.len(), 1);
    assert!(graph.nodes[0].me);
    match client.topology("never joined").await {
        Err(ClientError::Api(err)) => assert_eq!(err.kind, ErrorKind::NotFound),
        other => panic!("expected not found, got {other:?}"),
    }
    running.server.shutdown().await;
}
