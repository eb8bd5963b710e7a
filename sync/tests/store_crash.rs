//! A writer killed with SIGKILL loses no insert it was told had succeeded.
//!
//! The parent test runs this same test binary again as a child, filtered to the child "test",
//! which inserts items one by one and prints each id once `insert` has returned. The parent
//! kills the child mid-stream, reopens the database and checks every printed id is there.
//!
//! SIGKILL ends the process, not the machine: what the kernel accepted survives in the page
//! cache, so this proves the store commits before it returns and that redb recovers a file
//! abandoned mid-transaction. Surviving power loss rests on the fsync of an immediate-durability
//! commit, which a test cannot observe.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

use weft_sync::{
    Item, ItemId,
    store::{RedbDatabase, Store},
};

/// Set in the child's environment to the database path; the child test does nothing without it.
const DB_ENV: &str = "WEFT_SYNC_STORE_CRASH_DB";
/// The child test's name, for `--exact`.
const CHILD: &str = "crash_child_inserts_until_killed";
/// Marks the child's id lines among the test harness's own output.
const PREFIX: &str = "inserted ";
const TOPIC: [u8; 32] = [42; 32];
/// Acknowledged inserts the parent waits for before it kills the child.
const KILL_AFTER: usize = 300;
/// Where the child stops if nobody kills it, so a lost parent cannot leave it running forever.
const CHILD_MAX_INSERTS: u64 = 1_000_000;

#[test]
fn crash_child_inserts_until_killed() {
    let Some(path) = std::env::var_os(DB_ENV) else {
        return;
    };
    let db = RedbDatabase::open(&path).unwrap();
    let mut store = db.store(TOPIC).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..CHILD_MAX_INSERTS {
        let item = Item::new(i, &i.to_le_bytes());
        assert!(store.insert(&item).unwrap());
        // Printed only after insert returned: every line is a promise the parent checks. A
        // write error means the parent is gone, so the child stops.
        writeln!(out, "{PREFIX}{}", item.id()).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn killed_writer_loses_no_acknowledged_insert() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD, "--nocapture", "--test-threads=1"])
        .env(DB_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = Vec::new();
    let mut killed = false;
    // Lines the child wrote before it died are still in the pipe after the kill: read to EOF,
    // which comes when the child is gone, and count them too.
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let Some(hex_id) = line.strip_prefix(PREFIX) else {
            continue;
        };
        acknowledged.push(parse_id(hex_id));
        if acknowledged.len() == KILL_AFTER && !killed {
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "the child stopped by itself: {status}");
    assert!(!status.success(), "the child was not killed: {status}");

    let db = RedbDatabase::open(&path).unwrap();
    let store = db.store(TOPIC).unwrap();
    for id in &acknowledged {
        let item = store.get(id).unwrap();
        assert!(item.is_some(), "acknowledged item {id} lost");
    }
    // At most one insert was in flight when the child died; it may or may not have landed.
    let len = store.len().unwrap();
    let acked = acknowledged.len() as u64;
    assert!(
        len == acked || len == acked + 1,
        "{len} items after {acked} acknowledged inserts"
    );
    assert_eq!(store.keys().unwrap().len() as u64, len);
}

fn parse_id(hex_id: &str) -> ItemId {
    let bytes = hex::decode(hex_id).unwrap();
    ItemId(bytes.try_into().unwrap())
}
