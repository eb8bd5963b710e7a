//! Service calls with failover on loopback QUIC: three nodes from one ticket, one caller and
//! one or two providers; crashed providers, failing, panicking and stuck handlers, and peers
//! that send garbage on `call/1`.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{catalogs_complete, shutdown_all, spawn, three_nodes, within};
use weft_node::{
    CallError, CallOptions, Node, ServeOptions, Service,
    service::{AttemptError, CallAnswer, CallFailure, CallRequest, MAX_REQUEST_SIZE, PROTOCOL},
};
use weft_transport::{FramedRecv, FramedSend, PeerId, encode_frame, iroh::Connection};

/// A short attempt timeout, so a dead provider costs the tests little.
fn quick() -> CallOptions {
    CallOptions {
        attempt_timeout: Duration::from_secs(3),
        // No pings: the tests set the order by pinging the provider meant to be tried first.
        max_pings: 0,
        ..CallOptions::default()
    }
}

async fn echo(request: Vec<u8>) -> Result<Vec<u8>, String> {
    Ok(request)
}

/// Waits until `caller` finds exactly `providers` under `name`, looking again on each tick of
/// a short interval (registration reaches its holders asynchronously).
async fn found_by(caller: &Node, name: &str, providers: &[&Node]) {
    let want: BTreeSet<PeerId> = providers.iter().map(|node| node.id()).collect();
    let registry = caller.registry().expect("registry");
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    within(
        &format!("{name} to be found with {} providers", want.len()),
        async {
            loop {
                tick.tick().await;
                let found: BTreeSet<PeerId> = registry
                    .lookup_all_refresh(name)
                    .await
                    .expect("lookup")
                    .iter()
                    .map(|record| record.provider)
                    .collect();
                if found == want {
                    return;
                }
            }
        },
    )
    .await;
}

/// Makes `caller` measure its round trip to `first`, so `first` is tried before providers
/// without a measurement.
async fn measure(caller: &Node, first: &Node) {
    let discovery = caller.discovery().expect("discovery");
    within("a ping", discovery.ping(first.id()))
        .await
        .expect("ping answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_reaches_a_provider_and_says_which_answered() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    let (caller, provider) = (&nodes[0], &nodes[2]);
    let service = provider.serve("svc/echo", echo).await.expect("serve");
    assert_eq!(service.name(), "svc/echo");
    found_by(caller, "svc/echo", &[provider]).await;

    let reply = within("the call", caller.call("svc/echo", b"hello".to_vec()))
        .await
        .expect("answered");
    assert_eq!(reply.provider, provider.id());
    assert_eq!(reply.response, b"hello");
    assert!(reply.failed.is_empty(), "{:?}", reply.failed);

    // A provider calling its own service answers itself, without the network.
    let local = within("the local call", provider.call("svc/echo", b"me".to_vec()))
        .await
        .expect("answered");
    assert_eq!(local.provider, provider.id());
    assert_eq!(local.response, b"me");

    // Serving a name twice on one node is refused.
    let twice = provider.serve("svc/echo", echo).await;
    assert!(
        matches!(twice, Err(weft_node::ServeError::AlreadyServed(_))),
        "{twice:?}"
    );
    drop(service);
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_fails_over_from_a_crashed_provider_and_reports_it() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    let (caller, crashed, alive) = (&nodes[0], &nodes[1], &nodes[2]);
    let _on_crashed = crashed.serve("svc/failover", echo).await.expect("serve");
    let _on_alive = alive.serve("svc/failover", echo).await.expect("serve");
    found_by(caller, "svc/failover", &[crashed, alive]).await;
    measure(caller, crashed).await;

    // A crash: the endpoint goes away without withdrawing the registration.
    crashed.endpoint().iroh().close().await;

    let reply = within(
        "the call",
        caller.call_with("svc/failover", b"still there?".to_vec(), &quick()),
    )
    .await
    .expect("the live provider answered");
    assert_eq!(reply.provider, alive.id());
    assert_eq!(reply.response, b"still there?");
    assert_eq!(reply.failed.len(), 1, "{:?}", reply.failed);
    assert_eq!(reply.failed[0].provider, crashed.id());
    assert!(
        matches!(
            reply.failed[0].error,
            AttemptError::Connect(_) | AttemptError::Timeout(_) | AttemptError::Stream(_)
        ),
        "{:?}",
        reply.failed[0]
    );
    // The next call goes to the live provider first: the crashed one failed lately, so it is
    // tried last although its record and its measured round trip are still there.
    let next = within(
        "the next call",
        caller.call_with("svc/failover", b"again".to_vec(), &quick()),
    )
    .await
    .expect("the live provider answered");
    assert_eq!(next.provider, alive.id());
    assert!(next.failed.is_empty(), "{:?}", next.failed);
    // The crashed node's shutdown would wait on its dead endpoint: dropping it is enough.
    shutdown_all(&[nodes[0].clone(), nodes[2].clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_is_that_providers_failure_and_failover_goes_on() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    let (caller, failing, working) = (&nodes[0], &nodes[1], &nodes[2]);
    let failing_handler = |_: Vec<u8>| async { Err::<Vec<u8>, _>("out of widgets".to_string()) };
    let _failing = failing
        .serve("svc/widgets", failing_handler)
        .await
        .expect("serve");
    let _working = working.serve("svc/widgets", echo).await.expect("serve");
    found_by(caller, "svc/widgets", &[failing, working]).await;
    measure(caller, failing).await;

    let reply = within(
        "the call",
        caller.call_with("svc/widgets", b"one".to_vec(), &quick()),
    )
    .await
    .expect("the working provider answered");
    assert_eq!(reply.provider, working.id());
    assert_eq!(reply.failed.len(), 1, "{:?}", reply.failed);
    assert_eq!(reply.failed[0].provider, failing.id());
    assert_eq!(
        reply.failed[0].error,
        AttemptError::Failed(CallFailure::Handler("out of widgets".into()))
    );

    // With the failing provider alone, the call's error lists what it said.
    let _only = failing
        .serve("svc/only-failing", failing_handler)
        .await
        .expect("serve");
    found_by(caller, "svc/only-failing", &[failing]).await;
    let err = within(
        "the call",
        caller.call_with("svc/only-failing", b"x".to_vec(), &quick()),
    )
    .await
    .expect_err("nobody answers");
    let CallError::AllFailed { attempts, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(attempts.len(), 1);
    assert!(err.to_string().contains("out of widgets"), "{err}");
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_nobody_provides_is_a_clear_error() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    let err = within("the call", nodes[0].call("svc/nobody", b"?".to_vec()))
        .await
        .expect_err("no provider");
    assert_eq!(
        err,
        CallError::NoProvider {
            name: "svc/nobody".into()
        }
    );
    assert_eq!(err.to_string(), "no provider of \"svc/nobody\" found");
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_before_anything_is_sent() {
    let node = spawn(None, None).await;
    let err = node
        .call("svc/any", vec![0; MAX_REQUEST_SIZE + 1])
        .await
        .expect_err("too large");
    assert_eq!(
        err,
        CallError::RequestTooLarge {
            size: MAX_REQUEST_SIZE + 1,
            max: MAX_REQUEST_SIZE
        }
    );
    let err = node.call("", b"x".to_vec()).await.expect_err("no name");
    assert!(matches!(err, CallError::InvalidName(_)), "{err:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_failure_and_the_provider_stays_up() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    let (caller, provider) = (&nodes[0], &nodes[2]);
    let _panics = provider
        .serve("svc/panics", |_: Vec<u8>| async {
            panic!("a handler bug");
            #[allow(unreachable_code)]
            Ok(Vec::new())
        })
        .await
        .expect("serve");
    let _fine = provider.serve("svc/fine", echo).await.expect("serve");
    found_by(caller, "svc/panics", &[provider]).await;
    found_by(caller, "svc/fine", &[provider]).await;

    let err = within(
        "the call",
        caller.call_with("svc/panics", b"x".to_vec(), &quick()),
    )
    .await
    .expect_err("the handler panicked");
    assert_only_failure(&err, provider, &AttemptError::Failed(CallFailure::Panicked));
    let reply = within("the next call", caller.call("svc/fine", b"y".to_vec()))
        .await
        .expect("the provider still answers");
    assert_eq!(reply.response, b"y");
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_never_returns_is_bounded_by_a_timeout() {
    let nodes = three_nodes(None).await;
    catalogs_complete(&nodes).await;
    let (caller, provider) = (&nodes[0], &nodes[2]);
    let stuck = |_: Vec<u8>| std::future::pending::<Result<Vec<u8>, String>>();
    // The provider's own bound: it answers that the handler timed out.
    let short = ServeOptions {
        handler_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let _cut = provider
        .serve_with("svc/stuck-cut", short, stuck)
        .await
        .expect("serve");
    // The caller's bound: the provider would wait its default 10 s.
    let _waits = provider.serve("svc/stuck", stuck).await.expect("serve");
    found_by(caller, "svc/stuck-cut", &[provider]).await;
    found_by(caller, "svc/stuck", &[provider]).await;

    let err = within(
        "the call",
        caller.call_with("svc/stuck-cut", b"x".to_vec(), &quick()),
    )
    .await
    .expect_err("timed out");
    assert_only_failure(&err, provider, &AttemptError::Failed(CallFailure::TimedOut));

    let attempt_timeout = Duration::from_millis(300);
    let options = CallOptions {
        attempt_timeout,
        ..quick()
    };
    let err = within(
        "the call",
        caller.call_with("svc/stuck", b"x".to_vec(), &options),
    )
    .await
    .expect_err("timed out");
    assert_only_failure(&err, provider, &AttemptError::Timeout(attempt_timeout));

    // A whole-call timeout shorter than the attempt's ends the call.
    let options = CallOptions {
        timeout: Duration::from_millis(400),
        ..quick()
    };
    let err = within(
        "the call",
        caller.call_with("svc/stuck", b"x".to_vec(), &options),
    )
    .await
    .expect_err("timed out");
    assert!(matches!(err, CallError::TimedOut { .. }), "{err:?}");
    shutdown_all(&nodes).await;
}

/// A peer speaking `call/1` badly: a body that is not a request, a frame announced over the
/// limit, a name nobody serves. Each is answered with its reason, and the provider goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_frames_and_unknown_names_get_clear_answers() {
    let nodes = three_nodes(None).await;
    let (hostile, provider) = (&nodes[0], &nodes[2]);
    let _service: Service = provider.serve("svc/echo", echo).await.expect("serve");
    let connection = within(
        "a connection",
        hostile.endpoint().connect(&provider.addr(), PROTOCOL),
    )
    .await
    .expect("connected");

    let garbage = encode_frame(&"not a call request", 1024).expect("encodes");
    assert_eq!(
        raw(&connection, &garbage).await,
        CallAnswer::Failed(CallFailure::Malformed)
    );
    let oversized = u32::try_from(MAX_REQUEST_SIZE * 2)
        .expect("fits")
        .to_be_bytes();
    assert_eq!(
        raw(&connection, &oversized).await,
        CallAnswer::Failed(CallFailure::RequestTooLarge)
    );
    let unknown = CallRequest {
        name: "svc/unknown".into(),
        body: b"?".to_vec(),
    };
    let unknown = encode_frame(&unknown, 1024).expect("encodes");
    assert_eq!(
        raw(&connection, &unknown).await,
        CallAnswer::Failed(CallFailure::UnknownService)
    );
    let fine = CallRequest {
        name: "svc/echo".into(),
        body: b"ok".to_vec(),
    };
    let fine = encode_frame(&fine, 1024).expect("encodes");
    assert_eq!(
        raw(&connection, &fine).await,
        CallAnswer::Ok(b"ok".to_vec())
    );
    shutdown_all(&nodes).await;
}

/// Writes `bytes` on a new stream of `connection`, finishes it, and reads the one answer.
async fn raw(connection: &Connection, bytes: &[u8]) -> CallAnswer {
    within("a raw answer", async {
        let (send, recv) = connection.open_bi().await.expect("stream");
        let mut send = FramedSend::<()>::new(send, 1024);
        send.send_encoded(bytes).await.expect("written");
        send.finish().expect("finished");
        FramedRecv::<CallAnswer>::new(recv, 1024 * 1024)
            .recv()
            .await
            .expect("an answer")
    })
    .await
}

/// Asserts that `err` says the one provider tried failed with `want`.
fn assert_only_failure(err: &CallError, provider: &Node, want: &AttemptError) {
    let CallError::AllFailed { attempts, .. } = err else {
        panic!("{err:?}");
    };
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].provider, provider.id());
    assert_eq!(&attempts[0].error, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_from_the_config_runs_its_program_per_call() {
    let mut config = common::test_config();
    config.services.push(weft_node::ServiceConfig::new(
        "svc/upper",
        ["tr", "a-z", "A-Z"],
    ));
    config.services.push(weft_node::ServiceConfig::new(
        "svc/fails",
        ["sh", "-c", "exit 7"],
    ));
    let provider = Node::builder().config(config).spawn().await.expect("spawn");
    assert_eq!(provider.served(), ["svc/fails", "svc/upper"]);
    let caller = spawn(None, Some(&provider.ticket())).await;
    found_by(&caller, "svc/upper", &[&provider]).await;

    let reply = within(
        "the call",
        caller.call_with("svc/upper", b"shout".to_vec(), &quick()),
    )
    .await
    .expect("answered");
    assert_eq!(reply.provider, provider.id());
    assert_eq!(reply.response, b"SHOUT");

    found_by(&caller, "svc/fails", &[&provider]).await;
    let err = within(
        "the call",
        caller.call_with("svc/fails", Vec::new(), &quick()),
    )
    .await
    .expect_err("the program fails");
    match &err {
        CallError::AllFailed { attempts, .. } => match &attempts[..] {
            [attempt] => assert!(
                matches!(&attempt.error, AttemptError::Failed(CallFailure::Handler(m)) if m.contains("exit status: 7")),
                "{attempt}"
            ),
            other => panic!("{other:?}"),
        },
        other => panic!("{other}"),
    }
    // Shutting down stops serving them.
    provider.shutdown().await;
    assert!(provider.served().is_empty(), "{:?}", provider.served());
    caller.shutdown().await;
}
