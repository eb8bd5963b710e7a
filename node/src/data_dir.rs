//! The data directory: where a node keeps what outlives it.
//!
//! ```text
//! <data dir>/            created with mode 0700
//!   secret.key           the node's identity: 64 hex characters, mode 0600
//!   node.lock            held with an exclusive lock while a node runs (holds its pid)
//!   sync.redb            the sync store: every synced topic's items
//!   state.toml           warm-restart state (recently seen peers), rewritten at shutdown
//! ```
//!
//! The lock is an OS file lock (`File::try_lock`), which the kernel drops when the process
//! ends however it ends: a lock file left by a killed node is simply locked again, with no
//! staleness guess.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

use weft_transport::SecretKey;

use crate::key_file;

/// The secret key's file name.
pub const KEY_FILE: &str = "secret.key";
/// The lock file's name.
pub const LOCK_FILE: &str = "node.lock";
/// The sync store's file name.
pub const SYNC_STORE_FILE: &str = "sync.redb";
/// The warm-restart state's file name.
pub const STATE_FILE: &str = "state.toml";

/// Why a data directory could not be used. Every case names the file or directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// The directory could not be created or opened.
    #[error("cannot create data directory {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another running node holds the directory's lock.
    #[error("data directory {path} is in use by another running node{}", holder_suffix(.holder))]
    Locked {
        /// The directory.
        path: PathBuf,
        /// What the lock file says about its holder (its process id), if readable.
        holder: Option<String>,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock data directory {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The key file is missing from a directory a node has used before: generating a new one
    /// would silently change the node's identity.
    #[error(
        "key file {path} is missing, but {evidence} shows a node used this directory before; restore the key from a backup, or start a new identity in a new data directory"
    )]
    KeyMissing {
        /// The key file.
        path: PathBuf,
        /// The file that shows the directory was used.
        evidence: PathBuf,
    },
    /// The key file exists but could not be read.
    #[error("cannot read key file {path}: {source}")]
    KeyUnreadable {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Group or others may read the key file.
    #[error(
        "key file {path} has mode {mode:o}; it must be readable by its owner only (chmod 600 {path})"
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file holds fewer hex characters than a key: a write cut short.
    #[error("key file {path} is truncated: {found} of 64 hex characters")]
    KeyTruncated {
        /// The key file.
        path: PathBuf,
        /// Hex characters found.
        found: usize,
    },
    /// The key file does not hold a key.
    #[error("key file {path} is corrupt: {reason}")]
    KeyCorrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file could not be written.
    #[error("cannot write key file {path}: {source}")]
    KeyWrite {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `weft init` found a key already: a new one would replace the node's identity.
    #[error("key file {path} exists already; this data directory has an identity")]
    KeyExists {
        /// The key file.
        path: PathBuf,
    },
    /// A key was given to the builder, but the directory holds a different one.
    #[error(
        "key file {path} holds the identity {on_disk}, not the key given to the builder ({given})"
    )]
    KeyConflict {
        /// The key file.
        path: PathBuf,
        /// The peer id of the key on disk.
        on_disk: weft_transport::PeerId,
        /// The peer id of the key given.
        given: weft_transport::PeerId,
    },
}

fn holder_suffix(holder: &Option<String>) -> String {
    holder
        .as_ref()
        .map(|pid| format!(" (pid {pid})"))
        .unwrap_or_default()
}

/// Creates the data directory at `path` (mode 0700) and a new key in it, and returns the new
/// identity: what `weft init` does. Refuses a directory that has a key already
/// ([`DataDirError::KeyExists`]), or one a running node holds ([`DataDirError::Locked`]).
pub fn init_data_dir(path: &Path) -> Result<weft_transport::PeerId, DataDirError> {
    let dir = DataDir::open(path)?;
    let key_path = dir.key_path();
    if key_path.exists() {
        return Err(DataDirError::KeyExists { path: key_path });
    }
    Ok(dir.key(None)?.peer_id())
}

/// An open, locked data directory. The lock is held until this is dropped.
#[derive(Debug)]
pub(crate) struct DataDir {
    path: PathBuf,
    /// Held for the lock; the kernel releases it when the file is closed or the process dies.
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed (mode 0700) and takes its lock.
    pub(crate) fn open(path: &Path) -> Result<Self, DataDirError> {
        let create = |source| DataDirError::Create {
            path: path.to_path_buf(),
            source,
        };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(path).map_err(create)?;
        let lock_path = path.join(LOCK_FILE);
        let lock_err = |source| DataDirError::Lock {
            path: lock_path.clone(),
            source,
        };
        let mut lock = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(lock_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&lock_path)
                    .ok()
                    .map(|text| text.trim().to_owned())
                    .filter(|text| !text.is_empty() && text.len() < 32);
                return Err(DataDirError::Locked {
                    path: path.to_path_buf(),
                    holder,
                });
            }
            Err(fs::TryLockError::Error(source)) => return Err(lock_err(source)),
        }
        // Who holds it, for the error the next node would print. Diagnostics only: the lock is
        // what counts, so a failed write is ignored.
        let _ = lock
            .set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()));
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn key_path(&self) -> PathBuf {
        self.path.join(KEY_FILE)
    }

    pub(crate) fn store_path(&self) -> PathBuf {
        self.path.join(SYNC_STORE_FILE)
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }

    /// The node's key: the one on disk; else `given`, or a new one, saved first.
    ///
    /// A missing key in a directory that a node has used before (its sync store or state file
    /// is there) is an error: a new key would be a new identity nobody asked for.
    pub(crate) fn key(&self, given: Option<SecretKey>) -> Result<SecretKey, DataDirError> {
        let path = self.key_path();
        if let Some(on_disk) = key_file::load(&path)? {
            if let Some(given) = given
                && given.peer_id() != on_disk.peer_id()
            {
                return Err(DataDirError::KeyConflict {
                    path,
                    on_disk: on_disk.peer_id(),
                    given: given.peer_id(),
                });
            }
            return Ok(on_disk);
        }
        for evidence in [self.store_path(), self.state_path()] {
            if evidence.exists() {
                return Err(DataDirError::KeyMissing { path, evidence });
            }
        }
        let key = given.unwrap_or_else(SecretKey::generate);
        key_file::save(&path, &key)?;
        Ok(key)
    }
}
