//! Warm-restart state: the peers a node saw recently, written at shutdown and read at the
//! next start, so a restarted node rejoins through them even with no bootstrap configured.
//!
//! The file is a cache, so a damaged one is ignored with a warning and the node starts cold
//! (from its `[bootstrap]` peers). Refusing to start would make an operator delete a file
//! whose loss costs nothing but a slower join; the key file, whose loss costs the identity,
//! is the one read strictly.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tracing::warn;
use weft_transport::PeerAddr;

use crate::atomic_file::write_atomic;

/// The format version written; another version is ignored like a damaged file.
const VERSION: u32 = 1;

/// Peers remembered at most: enough to rejoin through, small enough to read at once.
pub(crate) const MAX_PEERS: usize = 64;

/// What the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WarmState {
    version: u32,
    /// Recently seen peers, most recently refreshed first.
    #[serde(with = "crate::config::peer_strings")]
    pub(crate) peers: Vec<PeerAddr>,
}

impl WarmState {
    pub(crate) fn new(mut peers: Vec<PeerAddr>) -> Self {
        peers.truncate(MAX_PEERS);
        Self {
            version: VERSION,
            peers,
        }
    }

    /// The state at `path`: empty when there is none, and when it is damaged (with a warning).
    pub(crate) fn read(path: &Path) -> Self {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(err) => {
                warn!(path = %path.display(), "cannot read the state file, starting cold: {err}");
                return Self::default();
            }
        };
        match toml::from_str::<Self>(&text) {
            Ok(state) if state.version == VERSION => state,
            Ok(state) => {
                warn!(
                    path = %path.display(),
                    "state file version {} is not {VERSION}, starting cold",
                    state.version
                );
                Self::default()
            }
            Err(err) => {
                warn!(
                    path = %path.display(),
                    "the state file is damaged, starting cold: {}",
                    err.message()
                );
                Self::default()
            }
        }
    }

    /// Writes the state to `path` (write-then-rename: a crash leaves the old state or the new).
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let body = toml::to_string(self).map_err(std::io::Error::other)?;
        let text = format!(
            "# weft-node warm-restart state, rewritten at every shutdown; safe to delete.\n{body}"
        );
        write_atomic(path, text.as_bytes(), 0o600)
    }
}

#[cfg(test)]
mod tests {
    use weft_transport::SecretKey;

    use super::*;

    #[test]
    fn round_trips_and_ignores_damage() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.toml");
        assert_eq!(WarmState::read(&path), WarmState::default());
        let peer = PeerAddr::new(SecretKey::generate().peer_id())
            .with_direct("127.0.0.1:1".parse().expect("addr"));
        let state = WarmState::new(vec![peer]);
        state.write(&path).expect("write");
        assert_eq!(WarmState::read(&path), state);
        std::fs::write(&path, "version = 1\npeers = [\"weft1garbage\"]\n").expect("write");
        assert_eq!(WarmState::read(&path), WarmState::default());
        std::fs::write(&path, [0xff, 0x00, 0x13]).expect("write");
        assert_eq!(WarmState::read(&path), WarmState::default());
    }
}
