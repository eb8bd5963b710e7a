//! A node restarted on its data directory keeps its identity and comes back warm.

mod common;

use common::{catalogs_complete, shutdown_all, spawn};
use weft_node::{KEY_FILE, LOCK_FILE, Node, STATE_FILE, SYNC_STORE_FILE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_id_and_its_synced_items() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = weft_gossip::TopicId::from_name("node-tests/restart");
    let node = spawn(Some(dir.path()), None).await;
    let id = node.id();
    assert_eq!(node.data_dir(), Some(dir.path()));
    let synced = node.subscribe_sync(topic).await.expect("subscribe");
    let item = synced.insert(1, b"kept").await.expect("insert");
    drop(synced);
    node.shutdown().await;
    for file in [KEY_FILE, LOCK_FILE, STATE_FILE, SYNC_STORE_FILE] {
        assert!(dir.path().join(file).exists(), "{file} is missing");
    }

    let again = spawn(Some(dir.path()), None).await;
    assert_eq!(again.id(), id, "a restart keeps the identity");
    let synced = again.subscribe_sync(topic).await.expect("subscribe");
    assert!(
        synced.get(item).await.expect("get").is_some(),
        "the store kept the item"
    );
    drop(synced);
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_rejoins_through_the_peers_it_remembered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = spawn(None, None).await;
    let second = spawn(Some(dir.path()), Some(&first.ticket())).await;
    catalogs_complete(&[first.clone(), second.clone()]).await;
    second.shutdown().await;
    let state = std::fs::read_to_string(dir.path().join(STATE_FILE)).expect("state file");
    assert!(state.contains(&first.ticket().to_string()), "{state}");

    // No bootstrap peer this time: the state file is the only way back.
    let again = Node::builder()
        .config(common::test_config())
        .data_dir(dir.path())
        .spawn()
        .await
        .expect("restart");
    catalogs_complete(&[first.clone(), again.clone()]).await;
    shutdown_all(&[again, first]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_file_left_by_a_killed_node_does_not_block_a_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    // What a killed node leaves: the file, with its pid, but no lock (the kernel dropped it).
    std::fs::write(dir.path().join(LOCK_FILE), "4242\n").expect("write");
    let node = spawn(Some(dir.path()), None).await;
    node.shutdown().await;
}
