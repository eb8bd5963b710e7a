//! Bad files in the data directory: each a clear error naming the file, never a panic and
//! never a silently new identity.

mod common;

use std::path::Path;

use common::spawn;
use weft_node::{DataDirError, KEY_FILE, Node, SpawnError};
use weft_transport::SecretKey;

async fn spawn_err(dir: &Path) -> SpawnError {
    match Node::builder()
        .config(common::test_config())
        .data_dir(dir)
        .spawn()
        .await
    {
        Ok(node) => {
            node.shutdown().await;
            panic!("the node started on {}", dir.display());
        }
        Err(err) => err,
    }
}

fn write_key(dir: &Path, contents: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(KEY_FILE);
    std::fs::write(&path, contents).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_file_is_created_on_the_first_start_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let node = spawn(Some(dir.path()), None).await;
    let path = dir.path().join(KEY_FILE);
    let mode = std::fs::metadata(&path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).expect("read");
    let hex = text.trim();
    assert_eq!(hex.len(), 64);
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    assert_eq!(SecretKey::from_bytes(&bytes).peer_id(), node.id());
    // No temporary file is left behind by the write-then-rename.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(
        !names
            .iter()
            .any(|name| name.to_string_lossy().ends_with(".tmp")),
        "{names:?}"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_key_is_saved_and_a_different_one_refused_later() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = SecretKey::generate();
    let node = Node::builder()
        .config(common::test_config())
        .data_dir(dir.path())
        .secret_key(key.clone())
        .spawn()
        .await
        .expect("spawn");
    assert_eq!(node.id(), key.peer_id());
    node.shutdown().await;
    let err = Node::builder()
        .config(common::test_config())
        .data_dir(dir.path())
        .secret_key(SecretKey::generate())
        .spawn()
        .await
        .expect_err("another key");
    assert!(
        matches!(err, SpawnError::DataDir(DataDirError::KeyConflict { .. })),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_key_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_key(dir.path(), b"this is not a key at all\n", 0o600);
    let err = spawn_err(dir.path()).await;
    assert!(
        matches!(err, SpawnError::DataDir(DataDirError::KeyCorrupt { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&dir.path().join(KEY_FILE).display().to_string()),
        "{err}"
    );
    // The bad file is left as it was: never replaced by a new identity.
    assert_eq!(
        std::fs::read(dir.path().join(KEY_FILE)).expect("read"),
        b"this is not a key at all\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_key_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_key(dir.path(), &[b'a'; 40], 0o600);
    let err = spawn_err(dir.path()).await;
    assert!(
        matches!(
            err,
            SpawnError::DataDir(DataDirError::KeyTruncated { found: 40, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains(KEY_FILE), "{err}");
    write_key(dir.path(), b"", 0o600);
    let err = spawn_err(dir.path()).await;
    assert!(
        matches!(
            err,
            SpawnError::DataDir(DataDirError::KeyTruncated { found: 0, .. })
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = spawn(Some(dir.path()), None).await;
    node.shutdown().await;
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join(KEY_FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = spawn_err(dir.path()).await;
    assert!(
        matches!(
            err,
            SpawnError::DataDir(DataDirError::KeyPermissions { mode: 0o644, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_deleted_from_a_used_directory_is_not_silently_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = spawn(Some(dir.path()), None).await;
    node.shutdown().await;
    std::fs::remove_file(dir.path().join(KEY_FILE)).expect("remove");
    let err = spawn_err(dir.path()).await;
    assert!(
        matches!(err, SpawnError::DataDir(DataDirError::KeyMissing { .. })),
        "{err}"
    );
    assert!(
        !dir.path().join(KEY_FILE).exists(),
        "no new key was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_a_locked_directory_gets_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = spawn(Some(dir.path()), None).await;
    let err = spawn_err(dir.path()).await;
    assert!(
        matches!(err, SpawnError::DataDir(DataDirError::Locked { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert!(
        err.to_string().contains(&std::process::id().to_string()),
        "{err}"
    );
    // The first node keeps running, and once it has shut down the directory is free again.
    assert!(!first.is_shut_down());
    first.shutdown().await;
    let second = spawn(Some(dir.path()), None).await;
    assert_eq!(second.id(), first.id());
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_state_file_is_ignored_and_the_node_starts_cold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = spawn(Some(dir.path()), None).await;
    let id = node.id();
    node.shutdown().await;
    std::fs::write(
        dir.path().join(weft_node::STATE_FILE),
        b"\xff\xfe not toml [[[",
    )
    .expect("write");
    let again = spawn(Some(dir.path()), None).await;
    assert_eq!(again.id(), id);
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_sync_store_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = spawn(Some(dir.path()), None).await;
    node.shutdown().await;
    let store = dir.path().join(weft_node::SYNC_STORE_FILE);
    std::fs::write(&store, vec![7u8; 10_000]).expect("write");
    let err = spawn_err(dir.path()).await;
    assert!(matches!(err, SpawnError::Store(_)), "{err}");
    assert!(
        err.to_string().contains(&store.display().to_string()),
        "{err}"
    );
}
