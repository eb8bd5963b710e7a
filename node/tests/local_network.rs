//! Local-network discovery between real `weft run` processes, each in a network namespace of
//! its own, the two namespaces joined by a veth pair: nodes with no bootstrap peer find each
//! other by their beacons, and a node of another network on the same link is ignored.
//!
//! The namespaces, the link and its addresses (10.251.0.0/24, only inside them) are created by
//! the test and removed when it ends, whatever the outcome; nothing on the host changes. The
//! test needs root and `ip` (iproute2); without them it prints why and passes as skipped. A
//! loopback socket, which cannot reach the link, is refused at spawn.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// How long any one wait may take before the test fails. Generous: CI machines are slow.
const PATIENCE: Duration = Duration::from_secs(60);
/// Between two polls of a running node.
const POLL: Duration = Duration::from_millis(200);

/// Two namespaces and the veth pair between them; removed on drop.
struct Link {
    namespaces: [String; 2],
}

impl Link {
    /// The namespaces `weft-lan-<pid>-a` (10.251.0.1) and `-b` (10.251.0.2), or why not.
    fn create() -> Result<Self, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("id: {e}"))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not root: network namespaces need root".into());
        }
        if Command::new("ip").arg("-V").output().is_err() {
            return Err("`ip` (iproute2) is not installed".into());
        }
        let pid = std::process::id();
        let link = Self {
            namespaces: [format!("weft-lan-{pid}-a"), format!("weft-lan-{pid}-b")],
        };
        // Interface names are at most 15 bytes.
        let veth = [
            format!("wla{}", pid % 1_000_000),
            format!("wlb{}", pid % 1_000_000),
        ];
        let [a, b] = &link.namespaces;
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", a],
            vec!["netns", "add", b],
            vec![
                "link", "add", &veth[0], "type", "veth", "peer", "name", &veth[1],
            ],
            vec!["link", "set", &veth[0], "netns", a],
            vec!["link", "set", &veth[1], "netns", b],
            vec!["-n", a, "addr", "add", "10.251.0.1/24", "dev", &veth[0]],
            vec!["-n", b, "addr", "add", "10.251.0.2/24", "dev", &veth[1]],
            vec!["-n", a, "link", "set", &veth[0], "up"],
            vec!["-n", b, "link", "set", &veth[1], "up"],
            // The admin API listens on the namespace's own loopback.
            vec!["-n", a, "link", "set", "lo", "up"],
            vec!["-n", b, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let output = Command::new("ip")
                .args(&step)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if !output.status.success() {
                // `link` drops here and removes what was made.
                return Err(format!(
                    "`ip {}` failed: {}",
                    step.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
        Ok(link)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        for namespace in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .output();
        }
    }
}

/// A `weft` command run inside `namespace`.
fn weft(namespace: &str, dir: &Path) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", namespace, env!("CARGO_BIN_EXE_weft")])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("WEFT_DATA_DIR")
        .env_remove("WEFT_CONFIG")
        .env("RUST_LOG", "warn,weft_node=debug");
    command
}

/// A running `weft run` (`ip netns exec` execs it: the child is the node), killed on drop.
struct Daemon {
    child: Child,
    namespace: String,
    dir: PathBuf,
    id: String,
}

impl Daemon {
    /// Starts a node of `network` bound to `ip`, with local-network discovery and no
    /// bootstrap peer; its log goes to `<dir>/log`.
    fn start(namespace: &str, dir: &Path, network: &str, ip: &str) -> Self {
        std::fs::create_dir_all(dir).expect("dir");
        let config = format!(
            "[node]\nnetwork = \"{network}\"\nbind = \"{ip}:0\"\nshutdown_grace = \"2s\"\n\n\
             [bootstrap]\nlocal_network = true\n\n[discovery]\nannounce_interval_ms = 500\n"
        );
        std::fs::write(dir.join("config.toml"), config).expect("config");
        let log = std::fs::File::create(dir.join("log")).expect("log file");
        let mut child = weft(namespace, dir)
            .arg("run")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("weft run starts");
        let lines = read_lines(child.stdout.take().expect("stdout"));
        let id = lines.recv_timeout(PATIENCE).expect("the id line");
        assert_eq!(id.len(), 64, "{id}");
        Self {
            child,
            namespace: namespace.to_owned(),
            dir: dir.to_owned(),
            id,
        }
    }

    /// The ids in this node's discovery catalog (`weft peers`).
    fn peers(&self) -> Vec<String> {
        let output: Output = weft(&self.namespace, &self.dir)
            .args(["peers", "--json"])
            .output()
            .expect("weft runs");
        let Ok(peers) = serde_json::from_slice::<serde_json::Value>(&output.stdout) else {
            return Vec::new();
        };
        peers["peers"]
            .as_array()
            .map(|peers| {
                peers
                    .iter()
                    .filter_map(|p| p["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process's stdout lines, read on a thread so a wait for one can time out.
fn read_lines(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
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

/// Polls `check` until it holds, failing after [`PATIENCE`].
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

#[test]
#[allow(clippy::print_stderr)]
fn nodes_on_one_link_find_each_other_and_ignore_another_network() {
    let link = match Link::create() {
        Ok(link) => link,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let [ns_a, ns_b] = &link.namespaces;
    let root = tempfile::tempdir().expect("temp dir");
    // The stranger first: every beacon after it reaches it.
    let stranger = Daemon::start(ns_b, &root.path().join("c"), "lan-other", "10.251.0.2");
    let a = Daemon::start(ns_a, &root.path().join("a"), "lan-test", "10.251.0.1");
    let b = Daemon::start(ns_b, &root.path().join("b"), "lan-test", "10.251.0.2");

    eventually("a and b to see each other in `weft peers`", || {
        a.peers().contains(&b.id) && b.peers().contains(&a.id)
    });
    eventually("the stranger to ignore a beacon of lan-test", || {
        stranger
            .log()
            .contains("local network: ignored a beacon of another network")
    });
    assert!(
        a.log().contains("local network: found a peer"),
        "{}",
        a.log()
    );
    assert!(!a.peers().contains(&stranger.id));
    assert!(!b.peers().contains(&stranger.id));
    assert!(stranger.peers().is_empty(), "{:?}", stranger.peers());
    drop((a, b, stranger));
    drop(link);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_network_discovery_on_a_loopback_socket_is_refused_at_spawn() {
    let mut config = weft_node::Config::default();
    config.bootstrap.local_network = true;
    let err = weft_node::Node::builder()
        .config(config)
        .spawn()
        .await
        .expect_err("loopback cannot reach the link");
    assert!(
        matches!(err, weft_node::SpawnError::LocalNetwork(_)),
        "{err}"
    );
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}
