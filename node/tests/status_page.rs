//! The status page: the topology query between real nodes, and the page itself in headless
//! Chromium, drawing the overlay of three nodes.
//!
//! The browser test needs Debian's `chromium` (`.ci/run` installs it). Without it the test says
//! so and passes, unless `WEFT_REQUIRE_CHROMIUM` is set, as CI sets it, so a missing browser
//! cannot pass unnoticed there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{joined, spawn, test_config, within};
use tokio_util::sync::CancellationToken;
use weft_gossip::TopicId;
use weft_node::admin::{Client, EventStream, GossipEvent, Server, ServerConfig};
use weft_node::{Node, NodeApi, Topology};

/// Polls `node`'s topology of `topic` until `done` says it is complete, waiting for a gossip
/// event of `topic` (a neighbour change) between two polls.
async fn topology_until(
    node: &Node,
    topic: &mut weft_gossip::Topic,
    done: impl Fn(&Topology) -> bool,
) -> Topology {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let topology = node.topology(topic_id()).await.expect("topic joined");
        if done(&topology) {
            return topology;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the topology never completed; the last one: {topology:#?}"
        );
        // A poll of the crawl is cheap; the next neighbour change (or a quiet 100 ms, for
        // links whose far end settles without an event here) is worth another look.
        let _ = tokio::time::timeout(Duration::from_millis(100), topic.recv()).await;
    }
}

fn topic_id() -> TopicId {
    TopicId::from_name("chat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_is_crawled_through_peers_and_a_silent_node_shows_unanswered() {
    let first = spawn(None, None).await;
    let second = spawn(None, Some(&first.ticket())).await;
    // The third keeps its neighbours to itself.
    let mut quiet = test_config();
    quiet.topology.answer = false;
    let third = Node::builder()
        .config(quiet)
        .bootstrap([first.addr()])
        .spawn()
        .await
        .unwrap();
    let mut topics = Vec::new();
    for node in [&first, &second, &third] {
        topics.push(node.subscribe_gossip(topic_id()).await.unwrap());
    }
    for (topic, who) in topics.iter_mut().zip(["first", "second", "third"]) {
        joined(topic, who).await;
    }
    let all_linked = |t: &Topology| t.nodes.len() == 3 && t.edges.len() == 3;
    let topology = topology_until(&first, &mut topics[0], all_linked).await;
    // The link between the second and the third is known only from the second's answer.
    let (second_id, third_id) = (second.id(), third.id());
    let linked = |a, b| topology.edges.contains(&(a, b)) || topology.edges.contains(&(b, a));
    assert!(linked(second_id, third_id), "{topology:?}");
    let reply = |id| {
        topology
            .nodes
            .iter()
            .find(|(n, _)| *n == id)
            .unwrap()
            .1
            .reply
    };
    assert_eq!(reply(second_id), weft_node::topology::Reply::Answered);
    assert_eq!(reply(third_id), weft_node::topology::Reply::Failed);
    assert_eq!((topology.asked, topology.unanswered), (2, 1));
    assert!(!topology.truncated);

    // A topic this node has not joined has no topology.
    let err = first.topology(TopicId::from_name("elsewhere")).await;
    assert_eq!(err.unwrap_err(), weft_node::TopologyError::NotJoined);
    common::shutdown_all(&[first, second, third]).await;
}

/// A node with its admin server, as `weft run` starts it.
struct Served {
    node: Node,
    server: Server,
    _dir: tempfile::TempDir,
    client: Client,
}

async fn served(node: Node) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(NodeApi::new(node.clone(), CancellationToken::new()))
        .serve(ServerConfig::default(), dir.path())
        .await
        .unwrap();
    let client = Client::from_data_dir(dir.path()).unwrap();
    Served {
        node,
        server,
        _dir: dir,
        client,
    }
}

/// Waits on a `weft gossip subscribe` stream until a neighbour is up.
async fn neighbour_up(stream: &mut EventStream<GossipEvent>, who: &str) {
    within(&format!("{who} to get a neighbour"), async {
        while let Some(event) = stream.next().await {
            if matches!(event, Ok(GossipEvent::NeighborUp { .. })) {
                return;
            }
        }
        panic!("the subscription ended");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // says why it skipped, and where the screenshot went
async fn the_status_page_draws_three_nodes_in_a_browser() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("WEFT_REQUIRE_CHROMIUM").is_none(),
            "WEFT_REQUIRE_CHROMIUM is set but no chromium is installed"
        );
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let nodes = common::three_nodes(None).await;
    let mut served_nodes = Vec::new();
    for node in nodes {
        served_nodes.push(served(node).await);
    }
    // Every node joins "chat" through its admin API, as `weft gossip subscribe chat` does.
    let mut streams = Vec::new();
    for served in &served_nodes {
        streams.push(served.client.gossip_subscribe("chat").await.unwrap());
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        neighbour_up(stream, &format!("node {i}")).await;
    }
    // Something in the registry panel too.
    let first = &served_nodes[0];
    first
        .client
        .registry_provide("status/demo", b"".to_vec())
        .await
        .unwrap();
    let url = first.server.page_url();
    let out = output_dir();

    // The page polls; the browser is started again until the graph shows all three.
    let dom = within("the page to draw three nodes and two edges", async {
        loop {
            let dom = run(&chromium, &out, &url, "--dump-dom").await;
            let text = String::from_utf8_lossy(&dom.stdout).into_owned();
            if let (Some(nodes), Some(edges)) = (
                attribute(&text, "data-nodes"),
                attribute(&text, "data-edges"),
            ) && nodes == 3
                && edges >= 2
            {
                return text;
            }
            // Each browser run takes a second or two: the overlay links up meanwhile.
        }
    })
    .await;
    assert!(dom.contains("data-state=\"ok\""), "the page's data arrived");
    assert!(
        dom.contains(&first.node.id().to_string()[..12]),
        "the node's id is shown"
    );
    let shot = out.join("status-page.png");
    run(
        &chromium,
        &out,
        &url,
        &format!("--screenshot={}", shot.display()),
    )
    .await;
    let png = std::fs::read(&shot).expect("a screenshot was saved");
    assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", shot.display());
    eprintln!("status page screenshot: {}", shot.display());

    for served in served_nodes {
        served.server.shutdown().await;
        served.node.shutdown().await;
    }
}

/// The browser, if installed.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|path| path.is_file())
            })
        })
}

/// Where the screenshot goes: the test's own output directory under `target/`.
fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One headless run of the page with a fresh profile: `mode` is `--dump-dom` or
/// `--screenshot=<path>`. Virtual time lets the page's first polls and drawing finish.
async fn run(chromium: &Path, out: &Path, url: &str, mode: &str) -> Output {
    let profile = tempfile::tempdir_in(out).unwrap();
    let output = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {output:?}");
    output
}

/// The number in the first `name="<n>"` of `html`.
fn attribute(html: &str, name: &str) -> Option<usize> {
    let start = html.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + html[start..].find('"')?;
    html[start..end].parse().ok()
}
