//! Real `weft run` processes on 127.0.0.1 in temporary data directories, driven by the `weft`
//! command as a user would. Every wait is bounded; every child is killed when its guard drops,
//! so a failing test leaves nothing running.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one wait may take before the test fails. Generous: CI machines are slow.
const PATIENCE: Duration = Duration::from_secs(60);
/// Between two polls of a running node.
const POLL: Duration = Duration::from_millis(200);

/// Fast timings for tests: discovery announces and syncs often.
const TEST_CONFIG: &str = r#"
[node]
network = "weft-process-tests"
shutdown_grace = "3s"

[discovery]
announce_interval_ms = 500
"#;

fn weft(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .arg("--data-dir")
        .arg(dir)
        .env_remove("WEFT_DATA_DIR")
        .env_remove("WEFT_CONFIG")
        .env("RUST_LOG", "warn");
    command
}

/// Runs a `weft` command to the end.
fn run(dir: &Path, args: &[&str]) -> Output {
    weft(dir).args(args).output().expect("weft runs")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn json(dir: &Path, args: &[&str]) -> Option<serde_json::Value> {
    let output = weft(dir)
        .args(args)
        .arg("--json")
        .output()
        .expect("weft runs");
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// A one-line error on stderr and a non-zero exit.
fn one_line_error(output: &Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr.clone()).expect("utf-8");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    lines[0].to_owned()
}

/// Polls `check` until it returns `Some`, failing after [`PATIENCE`].
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// A running `weft run`, killed on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
    id: String,
    ticket: String,
}

impl Daemon {
    /// Starts `weft run` on `dir` (with the test config written there first if missing) and
    /// waits for its id and ticket lines.
    fn start(dir: &Path, bootstrap: Option<&str>) -> Self {
        Self::start_with(dir, bootstrap, &[])
    }

    /// [`Daemon::start`] with more `weft run` flags.
    fn start_with(dir: &Path, bootstrap: Option<&str>, flags: &[&str]) -> Self {
        let config = dir.join("config.toml");
        if !config.exists() {
            std::fs::create_dir_all(dir).expect("dir");
            std::fs::write(&config, TEST_CONFIG).expect("config");
        }
        let mut command = weft(dir);
        command.arg("run");
        if let Some(ticket) = bootstrap {
            command.args(["--bootstrap", ticket]);
        }
        command.args(flags);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("weft run starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut daemon = Self {
            child,
            dir: dir.to_owned(),
            id: String::new(),
            ticket: String::new(),
        };
        let lines = read_lines(stdout);
        daemon.id = lines.recv_timeout(PATIENCE).expect("the id line");
        daemon.ticket = lines.recv_timeout(PATIENCE).expect("the ticket line");
        assert_eq!(daemon.id.len(), 64, "{}", daemon.id);
        assert!(daemon.ticket.starts_with("weft1"), "{}", daemon.ticket);
        daemon
    }

    fn peers(&self) -> Vec<String> {
        json(&self.dir, &["peers"])
            .and_then(|peers| {
                peers["peers"].as_array().map(|peers| {
                    peers
                        .iter()
                        .filter_map(|p| p["id"].as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Waits for the process to exit by itself; its exit status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the node did not exit");
            std::thread::sleep(POLL);
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The process's stdout lines, read on a thread so a wait for one can time out. Bounded: `weft
/// run` prints two lines (id, ticket); a dropped receiver ends the thread.
fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::sync_channel(16);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// A UDP port on 127.0.0.1 free a moment ago, as `127.0.0.1:PORT`.
fn free_udp_port() -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").to_string()
}

/// Three nodes: the first, and two bootstrapping from its ticket; all in one catalog.
fn three(root: &Path) -> Vec<Daemon> {
    let first = Daemon::start(&root.join("a"), None);
    let ticket = first.ticket.clone();
    let nodes = vec![
        first,
        Daemon::start(&root.join("b"), Some(&ticket)),
        Daemon::start(&root.join("c"), Some(&ticket)),
    ];
    for node in &nodes {
        eventually("every node to see the other two in `weft peers`", || {
            let peers = node.peers();
            nodes
                .iter()
                .filter(|other| other.id != node.id)
                .all(|other| peers.contains(&other.id))
                .then_some(())
        });
    }
    nodes
}

#[test]
fn three_nodes_see_each_other_publish_provide_and_sync() {
    let root = tempfile::tempdir().expect("temp dir");
    let nodes = three(root.path());
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // Gossip: a subscriber on c, a publisher on b, retried until the message arrives (the
    // first publish may go out before b's topic has linked up with c's).
    let mut subscriber = weft(&c.dir)
        .args(["gossip", "subscribe", "chat", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("subscribe starts");
    let events = read_lines(subscriber.stdout.take().expect("stdout"));
    let deadline = Instant::now() + PATIENCE;
    let received = loop {
        assert!(Instant::now() < deadline, "the message never arrived");
        let published = run(&b.dir, &["gossip", "publish", "chat", "hello weft"]);
        assert!(published.status.success(), "{published:?}");
        let got = events
            .recv_timeout(Duration::from_secs(2))
            .ok()
            .into_iter()
            .chain(std::iter::from_fn(|| {
                events.recv_timeout(Duration::from_millis(100)).ok()
            }));
        let messages: Vec<serde_json::Value> = got
            .filter_map(|line| serde_json::from_str(&line).ok())
            .filter(|event: &serde_json::Value| event["event"] == "message")
            .collect();
        if let Some(message) = messages.into_iter().next() {
            break message;
        }
    };
    assert_eq!(received["content"], "aGVsbG8gd2VmdA==", "{received}");
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    // The running node's counters, scraped through the admin API and parsed.
    let counters = json(&c.dir, &["metrics"]).expect("weft metrics");
    assert!(
        counters["weft_gossip_delivered_total"].as_f64() >= Some(1.0),
        "{counters}"
    );
    assert_eq!(counters["weft_discovery_catalog_size"].as_f64(), Some(2.0));

    // Registry: provide on a, find from c.
    stdout(&run(
        &a.dir,
        &["registry", "provide", "echo", "--metadata", "v1"],
    ));
    eventually("c to find a as the provider of echo", || {
        let found = json(&c.dir, &["registry", "find", "echo"])?;
        found["providers"]
            .as_array()?
            .iter()
            .any(|p| p["id"] == a.id.as_str())
            .then_some(())
    });

    // Sync: b joins, a adds, b lists the item.
    stdout(&run(&b.dir, &["sync", "add", "notes"]));
    stdout(&run(&a.dir, &["sync", "add", "notes", "first note"]));
    eventually("b to hold a's sync item", || {
        let items = json(&b.dir, &["sync", "list", "notes"])?;
        (items["items"].as_array()?.len() == 1).then_some(())
    });
}

#[test]
fn a_killed_node_keeps_its_id_catches_up_and_rejoins_its_topics() {
    let root = tempfile::tempdir().expect("temp dir");
    let a = Daemon::start(&root.path().join("a"), None);
    let b_dir = root.path().join("b");
    // b keeps its port across the restart, as a node with a configured `bind` does: `a` can
    // reach it again at the address it knows.
    let bind = free_udp_port();
    let flags = ["--bind", bind.as_str()];
    let mut b = Daemon::start_with(&b_dir, Some(&a.ticket), &flags);
    let b_id = b.id.clone();
    stdout(&run(&b_dir, &["sync", "add", "log"]));
    stdout(&run(
        &b_dir,
        &["registry", "provide", "b-svc", "--metadata", "v1"],
    ));
    stdout(&run(&a.dir, &["sync", "add", "log", "before"]));
    eventually("b to hold the first item", || {
        let items = json(&b_dir, &["sync", "list", "log"])?;
        (items["items"].as_array()?.len() == 1).then_some(())
    });
    // Written when it changed, not at shutdown: there will be none.
    let joined = std::fs::read_to_string(b_dir.join("joined.toml")).expect("joined.toml");
    assert!(
        joined.contains("\"log\"") && joined.contains("b-svc"),
        "{joined}"
    );

    // SIGKILL: no shutdown, a stale lock and stale admin files; `a` still holds its side of
    // every connection with b.
    b.kill();
    drop(b);
    stdout(&run(&a.dir, &["sync", "add", "log", "while b was down"]));

    let mut b = Daemon::start_with(&b_dir, Some(&a.ticket), &flags);
    assert_eq!(b.id, b_id, "a restarted node keeps its id");
    assert_eq!(stdout(&run(&b_dir, &["id"])).trim(), b_id);
    // Back in its sync topic without a `weft sync add`, holding the item stored before the
    // crash, and catching up on the one added while it was down.
    eventually("the restarted b to catch up on log", || {
        let items = json(&b_dir, &["sync", "list", "log"])?;
        (items["items"].as_array()?.len() == 2).then_some(())
    });
    eventually("a to find b providing b-svc", || {
        let found = json(&a.dir, &["registry", "find", "b-svc"])?;
        found["providers"]
            .as_array()?
            .iter()
            .any(|p| p["id"] == b_id.as_str() && p["metadata"] == "djE=")
            .then_some(())
    });
    // The record a finds may be the one stored before the crash; only a registration the
    // restarted b holds is withdrawn by its graceful shutdown.
    stdout(&run(&b_dir, &["shutdown"]));
    assert!(b.wait_exit().success());
    eventually("b-svc withdrawn with the restarted b's shutdown", || {
        let found = json(&a.dir, &["registry", "find", "b-svc"])?;
        let providers = found["providers"].as_array()?;
        (!providers.iter().any(|p| p["id"] == b_id.as_str())).then_some(())
    });
}

#[test]
fn shutdown_ends_the_node_and_a_second_run_is_refused() {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("a");
    let mut node = Daemon::start(&dir, None);

    let second = weft(&dir).arg("run").output().expect("weft runs");
    let line = one_line_error(&second);
    assert!(line.contains("in use by another running node"), "{line}");

    stdout(&run(&dir, &["shutdown"]));
    let status = node.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(!dir.join("admin.addr").exists());
    assert!(!dir.join("admin.token").exists());
}

#[test]
fn a_wrong_admin_token_is_refused_in_one_line() {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("a");
    let _node = Daemon::start(&dir, None);
    std::fs::write(dir.join("admin.token"), format!("{}\n", "0".repeat(64))).expect("write");
    let line = one_line_error(&run(&dir, &["status"]));
    assert!(line.contains("refused the admin token"), "{line}");
}

#[test]
fn bad_config_and_key_files_are_one_line_errors() {
    let root = tempfile::tempdir().expect("temp dir");
    // Each error names the file; the unknown key is named too, the others by line.
    let cases = [
        ("[node]\nnetwrok = \"x\"\n", "netwrok"),
        ("[node]\nnetwork = 7\n", "line 2"),
        ("[node]\nshutdown_grace = \"soon\"\n", "line 2"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let dir = root.path().join(format!("config{i}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("config.toml"), text).expect("write");
        let line = one_line_error(&run(&dir, &["config", "check"]));
        assert!(line.contains(key) && line.contains("config.toml"), "{line}");
        let line = one_line_error(&run(&dir, &["run"]));
        assert!(line.contains(key), "{line}");
    }

    // `weft init` writes a config that checks, and refuses to run twice.
    let dir = root.path().join("init");
    stdout(&run(&dir, &["init"]));
    stdout(&run(&dir, &["config", "check"]));
    assert!(stdout(&run(&dir, &["config", "show"])).contains("[node]"));
    let line = one_line_error(&run(&dir, &["init"]));
    assert!(line.contains("exists already"), "{line}");

    // A corrupt key file.
    std::fs::write(dir.join("secret.key"), "not a key\n").expect("write");
    let line = one_line_error(&run(&dir, &["run"]));
    assert!(line.contains("secret.key"), "{line}");
}

/// Writes `extra` after the test config into `dir`'s config file.
fn configure(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("config.toml"), format!("{TEST_CONFIG}\n{extra}")).expect("config");
}

#[test]
fn a_call_fails_over_from_a_killed_provider_to_the_survivor() {
    let root = tempfile::tempdir().expect("temp dir");
    // A dead provider costs a caller one attempt: keep it short.
    let calls = "[calls]\nattempt_timeout = \"2s\"\n";
    let serve =
        format!("{calls}\n[[service]]\nname = \"echo\"\nexec = [\"cat\"]\ntimeout = \"5s\"\n");
    let (a_dir, b_dir, c_dir) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    configure(&a_dir, calls);
    configure(&b_dir, &serve);
    configure(&c_dir, &serve);
    let caller = Daemon::start(&a_dir, None);
    let mut providers = vec![
        Daemon::start(&b_dir, Some(&caller.ticket)),
        Daemon::start(&c_dir, Some(&caller.ticket)),
    ];
    for provider in &providers {
        let status = json(&provider.dir, &["status"]).expect("status");
        assert_eq!(status["services"], serde_json::json!(["echo"]), "{status}");
    }
    eventually("the caller to find both providers of echo", || {
        let found = json(&caller.dir, &["registry", "find", "echo"])?;
        let ids: Vec<&str> = found["providers"]
            .as_array()?
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        providers
            .iter()
            .all(|p| ids.contains(&p.id.as_str()))
            .then_some(())
    });

    // Both alive: the one that answers is the one the caller tries first. Kill it.
    let first = eventually("a first answer", || {
        json(&caller.dir, &["call", "echo", "hello"])
    });
    assert_eq!(first["response"], "aGVsbG8=", "{first}");
    let dead = providers
        .iter()
        .position(|p| first["provider"] == p.id.as_str())
        .expect("a provider answered");
    let mut killed = providers.remove(dead);
    killed.kill();
    let survivor = &providers[0];

    // Every answer now is the survivor's; a provider tried and failed before it is the dead
    // one, and is reported.
    let reply = eventually("the survivor's answer", || {
        json(&caller.dir, &["call", "echo", "still there?"])
    });
    assert_eq!(reply["provider"], survivor.id.as_str(), "{reply}");
    assert_eq!(reply["response"], "c3RpbGwgdGhlcmU/", "{reply}");
    for failure in reply["failed"].as_array().expect("failed") {
        assert_eq!(failure["provider"], killed.id.as_str(), "{reply}");
        assert!(
            failure["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{reply}"
        );
    }
    // The text form names the one that answered, and the one that failed if it was tried.
    let output = eventually("a text answer", || {
        let output = run(&caller.dir, &["call", "echo", "text"]);
        output.status.success().then_some(output)
    });
    assert_eq!(stdout(&output), "text\n");
    let notes = String::from_utf8(output.stderr).expect("utf-8");
    assert!(
        notes.contains(&format!("answered by {}", survivor.id)),
        "{notes}"
    );
    assert!(
        notes
            .lines()
            .filter(|l| l.contains("failed"))
            .all(|l| l.contains(&killed.id)),
        "{notes}"
    );
}
