//! The endpoint's outbound connection cache: one live connection per (peer, protocol), shared
//! by concurrent dials, least recently used first out.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use iroh::endpoint::Connection;
use tokio::sync::OnceCell;

use crate::{PeerId, Protocol};

/// The cache as the endpoint and its accept paths share it.
pub(crate) type SharedCache = Arc<Mutex<ConnectionCache>>;

/// What the cache is keyed by.
pub(crate) type ConnKey = (PeerId, Protocol);

/// Live connections by (peer, protocol), least recently used first out.
#[derive(Debug)]
pub(crate) struct ConnectionCache {
    entries: HashMap<ConnKey, CacheEntry>,
    tick: u64,
    max: usize,
}

#[derive(Debug)]
struct CacheEntry {
    cell: Arc<OnceCell<Connection>>,
    last_used: u64,
    /// When `connect` last handed it out, or stream frames last moved on it (seen by
    /// [`ConnectionCache::take_idle`]).
    used_at: Instant,
    /// Stream frames sent and received, as of the last look.
    frames: u64,
}

impl ConnectionCache {
    /// An empty cache of at most `max` connections.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            tick: 0,
            max,
        }
    }

    /// The cell for `key`: the live cached one, or a fresh empty one to dial into.
    pub(crate) fn cell(&mut self, key: ConnKey) -> Arc<OnceCell<Connection>> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.entries.get_mut(&key) {
            let alive = entry
                .cell
                .get()
                .is_none_or(|conn| conn.close_reason().is_none());
            if alive {
                entry.last_used = tick;
                entry.used_at = Instant::now();
                return entry.cell.clone();
            }
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            self.make_room();
        }
        let cell = Arc::new(OnceCell::new());
        self.entries.insert(
            key,
            CacheEntry {
                cell: cell.clone(),
                last_used: tick,
                used_at: Instant::now(),
                frames: 0,
            },
        );
        cell
    }

    fn make_room(&mut self) {
        // Closed connections go first; then the least recently used entry.
        self.entries.retain(|_, entry| {
            entry
                .cell
                .get()
                .is_none_or(|conn| conn.close_reason().is_none())
        });
        if self.entries.len() >= self.max
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| *key)
        {
            self.entries.remove(&oldest);
        }
    }

    /// Removes and returns the connections of the protocols in `idle_after` that nobody used
    /// for that long: not handed out by `connect`, no stream frame sent or received. Activity
    /// is read from QUIC's counters, so an exchange still running keeps its connection as
    /// long as frames move (an exchange silent for longer than its protocol's idle time is
    /// cut: the protocol's setting must outlast its slowest answer).
    pub(crate) fn take_idle(
        &mut self,
        now: Instant,
        idle_after: &HashMap<Protocol, Duration>,
    ) -> Vec<Connection> {
        let mut idle = Vec::new();
        self.entries.retain(|(_, protocol), entry| {
            let Some(after) = idle_after.get(protocol) else {
                return true;
            };
            // A dial in progress is in use.
            let Some(conn) = entry.cell.get() else {
                return true;
            };
            let stats = conn.stats();
            let frames = stats.frame_tx.stream + stats.frame_rx.stream;
            if frames != entry.frames {
                entry.frames = frames;
                entry.used_at = now;
            }
            if now.saturating_duration_since(entry.used_at) < *after {
                return true;
            }
            idle.push(conn.clone());
            false
        });
        idle
    }

    /// Closes and forgets the cached connections to `peer` for `alpn`: the peer connected to
    /// us again for that protocol, so it lost its side of the old connections (see
    /// `admission`), and a dial must not reuse one whose other end is gone.
    pub(crate) fn close_superseded(&mut self, peer: PeerId, alpn: &[u8]) -> usize {
        let mut closed = 0;
        self.entries.retain(|(to, _), entry| {
            let Some(conn) = entry.cell.get() else {
                return true;
            };
            if *to != peer || conn.alpn() != alpn {
                return true;
            }
            conn.close(
                crate::admission::CLOSE_ADMISSION.into(),
                b"superseded: the peer connected again",
            );
            closed += 1;
            false
        });
        closed
    }

    /// The cached connections to `peer`, every protocol.
    pub(crate) fn to_peer(&self, peer: PeerId) -> Vec<Connection> {
        self.entries
            .iter()
            .filter(|((to, _), _)| *to == peer)
            .filter_map(|(_, entry)| entry.cell.get().cloned())
            .collect()
    }

    pub(crate) fn forget_failed(&mut self, key: &ConnKey, cell: &Arc<OnceCell<Connection>>) {
        if let Some(entry) = self.entries.get(key)
            && Arc::ptr_eq(&entry.cell, cell)
            && cell.get().is_none()
        {
            self.entries.remove(key);
        }
    }
}
