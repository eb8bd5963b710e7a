//! The `weft` binary against a data directory with no node, and against an admin server over
//! an in-memory node: exit codes, one-line errors, text and `--json` output.

mod admin_node;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use weft_node::admin::{Client, ServerConfig};

use admin_node::{NODE_ID, start, within};

fn weft_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        // The test's own environment must not point the binary elsewhere.
        .env_remove("WEFT_DATA_DIR")
        .env_remove("WEFT_CONFIG");
    command
}

/// Runs `weft --data-dir <data_dir> <args>` off the runtime, so the server in this process
/// keeps answering while the binary waits for it.
async fn weft(data_dir: &Path, args: &[&str]) -> Output {
    let mut command = weft_command(data_dir, args);
    within(tokio::task::spawn_blocking(move || {
        command.output().unwrap()
    }))
    .await
    .unwrap()
}

fn stderr_line(output: &Output) -> String {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.ends_with('\n'));
    stderr.trim_end().to_owned()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "not one JSON document: {stdout:?}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout:?}"))
}

#[tokio::test]
async fn with_no_running_node_every_command_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let commands: &[&[&str]] = &[
        &["id"],
        &["ticket"],
        &["status"],
        &["status", "--json"],
        &["peers"],
        &["gossip", "publish", "t", "hi"],
        &["gossip", "subscribe", "t"],
        &["registry", "provide", "n"],
        &["registry", "find", "n"],
        &["call", "n"],
        &["sync", "add", "t"],
        &["sync", "list", "t"],
        &["sync", "status", "t"],
        &["shutdown"],
    ];
    for args in commands {
        let output = weft(dir.path(), args).await;
        assert_eq!(output.status.code(), Some(3), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let line = stderr_line(&output);
        assert!(
            line.starts_with("weft: no running node for data directory"),
            "{line}"
        );
        assert!(line.contains("weft run"), "{line}");
    }
}

#[tokio::test]
async fn a_stale_address_file_is_no_running_node_too() {
    let running = start(ServerConfig::default()).await;
    let dir = running.dir;
    let addr_file = std::fs::read(running.server.addr_path()).unwrap();
    let token_file = std::fs::read(running.server.token_path()).unwrap();
    running.server.shutdown().await;
    std::fs::write(dir.path().join("admin.addr"), addr_file).unwrap();
    std::fs::write(dir.path().join("admin.token"), token_file).unwrap();

    let output = weft(dir.path(), &["status"]).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(stderr_line(&output).contains("nothing listens at"));
}

#[tokio::test]
async fn json_output_parses() {
    let running = start(ServerConfig::default()).await;
    let dir = running.dir.path();

    let status = json(&weft(dir, &["status", "--json"]).await);
    assert_eq!(status["id"], NODE_ID);
    assert_eq!(status["layers"].as_array().unwrap().len(), 5);
    assert_eq!(json(&weft(dir, &["--json", "id"]).await)["id"], NODE_ID);
    assert_eq!(
        json(&weft(dir, &["ticket", "--json"]).await)["ticket"],
        format!("weft1{NODE_ID}")
    );
    assert_eq!(
        json(&weft(dir, &["peers", "--json"]).await)["peers"][0]["rtt_us"],
        1250
    );

    let published = json(&weft(dir, &["gossip", "publish", "t", "hi", "--json"]).await);
    assert!(published["message_id"].is_string());

    let provided = json(
        &weft(
            dir,
            &["registry", "provide", "svc", "--metadata", "m", "--json"],
        )
        .await,
    );
    assert_eq!(provided["holders"], 1);
    let found = json(&weft(dir, &["registry", "find", "svc", "--json"]).await);
    assert_eq!(found["providers"][0]["id"], NODE_ID);
    assert_eq!(found["providers"][0]["metadata"], "bQ==");

    let reply = json(&weft(dir, &["call", "echo", "ping", "--json"]).await);
    assert_eq!(reply["provider"], NODE_ID);
    assert_eq!(reply["response"], "cGluZw==");

    let added = json(&weft(dir, &["sync", "add", "docs", "first", "--json"]).await);
    assert!(added["item"].is_string());
    let items = json(&weft(dir, &["sync", "list", "docs", "--json"]).await);
    assert_eq!(items["items"][0]["content"], "Zmlyc3Q=");
    assert_eq!(items["more"], false);
    let sync = json(&weft(dir, &["sync", "status", "docs", "--json"]).await);
    assert_eq!(
        (sync["joined"].clone(), sync["items"].clone()),
        (true.into(), 1.into())
    );

    let shutdown = json(&weft(dir, &["shutdown", "--json"]).await);
    assert!(shutdown.is_object());
    assert!(running.node.shut_down.is_cancelled());
}

#[tokio::test]
async fn text_output_is_for_people() {
    let running = start(ServerConfig::default()).await;
    let dir = running.dir.path();

    let output = weft(dir, &["id"]).await;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("{NODE_ID}\n")
    );

    let output = weft(dir, &["status"]).await;
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("uptime    1h 2m 3s"), "{text}");
    assert!(
        text.contains("layers    transport gossip discovery registry sync"),
        "{text}"
    );
    assert!(text.contains("services  echo"), "{text}");

    let output = weft(dir, &["peers"]).await;
    assert!(String::from_utf8(output.stdout).unwrap().contains("1.2 ms"));

    // A service's answer is stdout as it is; who answered is a note on stderr.
    let output = weft(dir, &["call", "echo", "hello"]).await;
    assert!(output.status.success());
    assert_eq!(output.stdout, b"hello\n");
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains(&format!("answered by {NODE_ID}"))
    );

    let output = weft(dir, &["shutdown"]).await;
    assert!(output.status.success());
    assert_eq!(output.stdout, b"the node is shutting down\n");
}

#[tokio::test]
async fn failures_are_one_line_and_exit_1_or_2() {
    let running = start(ServerConfig::default()).await;
    let dir = running.dir.path();

    // An error from the node.
    let output = weft(dir, &["call", "nobody"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_line(&output),
        "weft: the node says: no provider of nobody answered"
    );

    // A wrong token.
    std::fs::write(running.server.token_path(), "0".repeat(64)).unwrap();
    let output = weft(dir, &["status"]).await;
    assert_eq!(output.status.code(), Some(1));
    let line = stderr_line(&output);
    assert!(
        line.starts_with("weft: the node refused the admin token in"),
        "{line}"
    );

    // Bad usage is clap's: exit 2.
    let output = weft(dir, &["gossip", "publish"]).await;
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test]
async fn the_data_dir_comes_from_the_environment_or_the_config_file() {
    let running = start(ServerConfig::default()).await;
    let dir = running.dir.path().to_owned();

    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .args(["id"])
        .env("WEFT_DATA_DIR", &dir)
        .env_remove("WEFT_CONFIG");
    let output = within(tokio::task::spawn_blocking(move || {
        command.output().unwrap()
    }))
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");

    // `[node] data_dir`, relative to the config file.
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("weft.toml");
    std::os::unix::fs::symlink(&dir, config_dir.path().join("data")).unwrap();
    std::fs::write(&config, "[node]\ndata_dir = \"data\"\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .arg("--config")
        .arg(&config)
        .arg("id")
        .env_remove("WEFT_DATA_DIR")
        .env_remove("WEFT_CONFIG");
    let output = within(tokio::task::spawn_blocking(move || {
        command.output().unwrap()
    }))
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("{NODE_ID}\n")
    );

    // A broken config file is named.
    std::fs::write(&config, "[node\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .arg("--config")
        .arg(&config)
        .arg("id")
        .env_remove("WEFT_DATA_DIR")
        .env_remove("WEFT_CONFIG");
    let output = within(tokio::task::spawn_blocking(move || {
        command.output().unwrap()
    }))
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_line(&output).contains("weft.toml"));
}

#[tokio::test]
async fn subscribe_prints_a_json_line_per_event_until_the_node_stops() {
    let running = start(ServerConfig::default()).await;
    let mut child = weft_command(
        running.dir.path(),
        &["gossip", "subscribe", "news", "--json"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    within(running.node.wait_for_subscribers("news", 1)).await;

    let client = Client::from_data_dir(running.dir.path()).unwrap();
    client.gossip_publish("news", "hello").await.unwrap();
    let (line, stdout) = within(tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        (line, reader)
    }))
    .await
    .unwrap();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["event"], "message");
    assert_eq!(event["from"], NODE_ID);
    assert_eq!(event["content"], "aGVsbG8=");

    // The node stopping ends the stream, and the command with it.
    running.server.shutdown().await;
    let status = within(tokio::task::spawn_blocking(move || {
        drop(stdout);
        child.wait().unwrap()
    }))
    .await
    .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_needing_a_layer_that_is_off_says_so_in_one_line() {
    let mut config = weft_node::Config::default();
    config.node.network = "weft-cli-tests".into();
    config.layers = weft_node::LayersConfig {
        discovery: false,
        registry: false,
        sync: false,
    };
    let node = weft_node::Node::builder()
        .config(config)
        .spawn()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let api = std::sync::Arc::new(weft_node::NodeApi::new(
        node.clone(),
        tokio_util::sync::CancellationToken::new(),
    ));
    let server = weft_node::admin::Server::spawn(
        ServerConfig::default(),
        dir.path(),
        api,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();

    let cases: &[(&[&str], &str)] = &[
        (&["registry", "find", "svc"], "registry"),
        (&["registry", "provide", "svc"], "registry"),
        (&["call", "svc"], "registry"),
        (&["sync", "add", "t", "item"], "sync"),
        (&["sync", "list", "t"], "sync"),
        (&["peers"], "discovery"),
    ];
    for (args, layer) in cases {
        let output = weft(dir.path(), args).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let line = stderr_line(&output);
        assert!(
            line.contains(&format!(
                "the {layer} layer is off on this node ([layers] {layer} = false)"
            )),
            "{args:?}: {line}"
        );
    }
    // The status shows what is off, not stopped.
    let output = weft(dir.path(), &["status"]).await;
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("layers    transport gossip discovery(off) registry(off) sync(off)"),
        "{text}"
    );
    // What still runs answers: gossip is the base.
    let output = weft(dir.path(), &["gossip", "publish", "t", "hi"]).await;
    assert!(output.status.success(), "{output:?}");

    node.shutdown().await;
    server.shutdown().await;
}
