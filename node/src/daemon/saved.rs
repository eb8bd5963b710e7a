//! What the admin API joined and provided, kept in `joined.toml` so that `weft run` on the same
//! data directory comes back to it: sync topics re-synced, gossip topics re-joined, names
//! provided again.
//!
//! The file is rewritten (write-then-rename, fsynced) each time one of those changes, not at
//! shutdown, so it survives a SIGKILL. Like `state.toml` it is a cache of the operator's
//! commands: damaged, from another version, or too large, it is ignored with a warning and
//! the node starts with nothing joined; an entry past a list's limit (the limits of the
//! admin API's maps) is dropped with a warning.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::admin::Payload;
use crate::atomic_file::write_atomic;
use crate::daemon::{MAX_GOSSIP_TOPICS, MAX_PROVIDED_NAMES, MAX_SYNC_TOPICS};

/// The file in a `weft run` data directory that lists what its admin API joined and provided,
/// restored by the next `weft run` there.
pub const JOINED_FILE: &str = "joined.toml";

/// The format version written; another version is ignored like a damaged file.
const VERSION: u32 = 1;

/// Largest file read: 64 names with 1 KiB of metadata each (base64) and 128 topic names fit
/// many times over; a larger file is not one this node wrote.
const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// What `joined.toml` holds: names, not ids, so an operator can read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Joined {
    version: u32,
    /// Gossip topics joined (by `weft gossip publish` or `subscribe`), by name.
    #[serde(default)]
    pub(crate) gossip: Vec<String>,
    /// Sync topics synced (`weft sync add`), by name.
    #[serde(default)]
    pub(crate) sync: Vec<String>,
    /// Names provided in the registry (`weft registry provide`), with their metadata.
    #[serde(default)]
    pub(crate) provided: Vec<ProvidedName>,
}

/// One provided name and the metadata it was provided with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProvidedName {
    pub(crate) name: String,
    /// Base64, as in the admin API's JSON.
    pub(crate) metadata: Payload,
}

impl Joined {
    /// A state of these lists, each cut to its limit.
    pub(crate) fn new(
        mut gossip: Vec<String>,
        mut sync: Vec<String>,
        mut provided: Vec<ProvidedName>,
    ) -> Self {
        gossip.truncate(MAX_GOSSIP_TOPICS);
        sync.truncate(MAX_SYNC_TOPICS);
        provided.truncate(MAX_PROVIDED_NAMES);
        Self {
            version: VERSION,
            gossip,
            sync,
            provided,
        }
    }

    /// The state at `path`: empty when there is none, and when it is damaged (with a warning).
    pub(crate) fn read(path: &Path) -> Self {
        let cold = |why: &dyn std::fmt::Display| {
            warn!(path = %path.display(), "{why}; nothing joined is restored");
            Self::default()
        };
        match std::fs::metadata(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(err) => return cold(&format_args!("cannot read the joined-topics file: {err}")),
            Ok(meta) if meta.len() > MAX_FILE_SIZE => {
                return cold(&format_args!(
                    "the joined-topics file is larger than {MAX_FILE_SIZE} bytes"
                ));
            }
            Ok(_) => {}
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => return cold(&format_args!("cannot read the joined-topics file: {err}")),
        };
        let state = match toml::from_str::<Self>(&text) {
            Ok(state) if state.version == VERSION => state,
            Ok(state) => {
                return cold(&format_args!(
                    "joined-topics file version {} is not {VERSION}",
                    state.version
                ));
            }
            Err(err) => {
                return cold(&format_args!(
                    "the joined-topics file is damaged: {}",
                    err.message()
                ));
            }
        };
        let (gossip, sync, provided) = (state.gossip.len(), state.sync.len(), state.provided.len());
        let state = Self::new(state.gossip, state.sync, state.provided);
        if (gossip, sync, provided) != (state.gossip.len(), state.sync.len(), state.provided.len())
        {
            warn!(
                path = %path.display(),
                "the joined-topics file lists more than the admin API keeps \
                 ({MAX_GOSSIP_TOPICS} gossip topics, {MAX_SYNC_TOPICS} sync topics, \
                 {MAX_PROVIDED_NAMES} names); the first of each are restored"
            );
        }
        state
    }

    /// Writes the state to `path` (write-then-rename: a crash leaves the old state or the new).
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let body = toml::to_string(self).map_err(std::io::Error::other)?;
        let text = format!(
            "# What `weft run` joined and provided through the admin API, rewritten when it\n\
             # changes and restored by the next `weft run` on this directory; safe to delete.\n\
             {body}"
        );
        write_atomic(path, text.as_bytes(), 0o600)
    }
}

/// Where the state is saved, and what the file holds now.
#[derive(Debug)]
pub(crate) struct Saver {
    path: PathBuf,
    /// What the file holds; `None` until the restore is done (saving earlier would drop the
    /// entries not restored yet).
    written: tokio::sync::Mutex<Option<Joined>>,
}

impl Saver {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            written: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The restore is done; the file holds `on_disk`.
    pub(crate) async fn restored(&self, on_disk: Joined) {
        *self.written.lock().await = Some(on_disk);
    }

    /// What the file holds (`None` while restoring), locked until the guard is dropped.
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, Option<Joined>> {
        self.written.lock().await
    }

    /// Writes `now` if it differs from `written`, off the async threads (the write fsyncs).
    /// A failed write is logged; the next change tries again.
    pub(crate) async fn write(&self, written: &mut Option<Joined>, now: Joined) {
        if written.as_ref() == Some(&now) {
            return;
        }
        let (path, state) = (self.path.clone(), now.clone());
        match tokio::task::spawn_blocking(move || state.write(&path)).await {
            Ok(Ok(())) => *written = Some(now),
            Ok(Err(err)) => {
                warn!(path = %self.path.display(), "cannot write the joined-topics file: {err}");
            }
            Err(err) => warn!("the joined-topics write did not finish: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Joined {
        Joined::new(
            vec!["chat".to_owned()],
            vec!["notes".to_owned(), "log".to_owned()],
            vec![ProvidedName {
                name: "echo".to_owned(),
                metadata: Payload(vec![0, 1, 0xff]),
            }],
        )
    }

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(JOINED_FILE);
        assert_eq!(Joined::read(&path), Joined::default());
        let state = sample();
        state.write(&path).expect("write");
        assert_eq!(Joined::read(&path), state);
        // Rewritten in place: the newer state wins whole.
        let smaller = Joined::new(Vec::new(), vec!["log".to_owned()], Vec::new());
        smaller.write(&path).expect("write");
        assert_eq!(Joined::read(&path), smaller);
    }

    #[test]
    fn a_damaged_file_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(JOINED_FILE);
        for damaged in [
            &b"version = 1\nsync = [\"a\"\n"[..],
            b"version = 1\nsync = [7]\n",
            b"version = 2\nsync = [\"a\"]\n",
            b"version = 1\nsync = [\"a\"]\nextra = true\n",
            b"version = 1\n[[provided]]\nname = \"x\"\nmetadata = \"not base64!\"\n",
            &[0xff, 0x00, 0x13],
        ] {
            std::fs::write(&path, damaged).expect("write");
            assert_eq!(Joined::read(&path), Joined::default(), "{damaged:?}");
        }
        // Larger than any file this node writes: not read at all.
        let huge = format!(
            "version = 1\n# {}\n",
            "x".repeat(usize::try_from(MAX_FILE_SIZE).expect("small"))
        );
        std::fs::write(&path, huge).expect("write");
        assert_eq!(Joined::read(&path), Joined::default());
    }

    #[test]
    fn too_many_entries_are_cut_to_the_limits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(JOINED_FILE);
        let names = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
        let mut text = String::from("version = 1\n");
        text.push_str(&format!("gossip = {:?}\n", names(MAX_GOSSIP_TOPICS + 5)));
        text.push_str(&format!("sync = {:?}\n", names(MAX_SYNC_TOPICS + 1)));
        for i in 0..MAX_PROVIDED_NAMES + 3 {
            text.push_str(&format!("[[provided]]\nname = \"n{i}\"\nmetadata = \"\"\n"));
        }
        std::fs::write(&path, text).expect("write");
        let state = Joined::read(&path);
        assert_eq!(state.gossip, names(MAX_GOSSIP_TOPICS));
        assert_eq!(state.sync, names(MAX_SYNC_TOPICS));
        assert_eq!(state.provided.len(), MAX_PROVIDED_NAMES);
        assert_eq!(state.provided[0].name, "n0");
        // And a state built in memory is cut the same way before it is written.
        let built = Joined::new(names(MAX_GOSSIP_TOPICS * 2), Vec::new(), Vec::new());
        assert_eq!(built.gossip.len(), MAX_GOSSIP_TOPICS);
    }
}
