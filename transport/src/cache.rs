//! The endpoint's outbound connection cache: one live connection per (peer, protocol), shared
//! by concurrent dials, least recently used first out.

use std::{collections::HashMap, sync::Arc};

use iroh::endpoint::Connection;
use tokio::sync::OnceCell;

use crate::{PeerId, Protocol};

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

    pub(crate) fn forget_failed(&mut self, key: &ConnKey, cell: &Arc<OnceCell<Connection>>) {
        if let Some(entry) = self.entries.get(key)
            && Arc::ptr_eq(&entry.cell, cell)
            && cell.get().is_none()
        {
            self.entries.remove(key);
        }
    }
}
