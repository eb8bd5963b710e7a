//! Where a topic's items live.
//!
//! A [`Store`] holds the items of one sync topic. Its API is synchronous: the sync actor calls
//! it from its loop and the sans-IO code calls it directly, so neither needs a runtime.
//!
//! - [`MemoryStore`]: in memory, bounded by an item count; for tests, simulations and topics
//!   that need not survive a restart.
//! - `RedbStore` (feature `redb`): one table pair per topic in a redb database file that many
//!   topics share; every write is durable when it returns.
//!
//! Every store checks what it reads: bytes that no longer hash to the id they are stored under
//! are reported as [`StoreError::Corrupt`], never handed out as an item.

use std::path::PathBuf;

use crate::proto::{Item, ItemId, ItemKey};

mod memory;
#[cfg(feature = "redb")]
mod redb;

pub use memory::MemoryStore;
#[cfg(feature = "redb")]
pub use redb::{RedbDatabase, RedbStore};

/// The most items a store holds unless configured otherwise.
///
/// A store refuses new items with [`StoreError::Full`] at its limit rather than evicting: what a
/// topic holds is what its peers reconcile against, and silently dropping items would make them
/// fetch the same items again on every sync.
pub const DEFAULT_MAX_ITEMS: u64 = 1_000_000;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store holds its maximum number of items; the item (or batch) was not stored and
    /// everything stored before is kept.
    #[error("store is full: it already holds its limit of {limit} items")]
    Full {
        /// The configured maximum number of items.
        limit: u64,
    },
    /// A database file could not be opened: missing permissions, not a database, corrupt.
    #[error("cannot open the database file {}: {message}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the database or the OS said.
        message: String,
    },
    /// The database failed a read or a write (I/O, storage, transaction errors).
    #[error("database error: {0}")]
    Database(String),
    /// A stored record is not what was written: its bytes do not hash to the id it is stored
    /// under, or they are too short to be an item.
    #[error("corrupt record for item {id}: {reason}")]
    Corrupt {
        /// The id the record is stored under.
        id: ItemId,
        /// What is wrong with it.
        reason: String,
    },
}

/// The items of one sync topic.
///
/// Ids are content hashes, so an item is never updated: it is either present or not, and
/// inserting it again is a no-op that returns `Ok(false)`.
///
/// Stores are bounded (see [`DEFAULT_MAX_ITEMS`]): at the limit, inserting a new item fails with
/// [`StoreError::Full`] and nothing already stored is evicted.
pub trait Store: Send + 'static {
    /// Inserts an item; `Ok(true)` if it was new, `Ok(false)` if it was already stored.
    ///
    /// A persistent store has made the item durable once this returns.
    fn insert(&mut self, item: &Item) -> Result<bool, StoreError>;

    /// Inserts many items and returns how many of them were new (an item given twice counts
    /// once).
    ///
    /// A persistent store does it in one transaction (one fsync) and has made every item durable
    /// once this returns. The stores of this crate are atomic: if the batch fails (for example
    /// with [`StoreError::Full`] because its new items do not all fit), none of it is stored.
    /// This default loops over [`insert`](Store::insert), so a store that keeps it stores the
    /// items before the one that failed.
    fn insert_many(&mut self, items: &[Item]) -> Result<usize, StoreError> {
        let mut new = 0;
        for item in items {
            if self.insert(item)? {
                new += 1;
            }
        }
        Ok(new)
    }

    /// The item with this id, if stored. A stored record whose bytes do not hash to `id` is
    /// [`StoreError::Corrupt`].
    fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError>;

    /// Whether an item with this id is stored (without reading or checking its bytes).
    fn contains(&self, id: &ItemId) -> Result<bool, StoreError>;

    /// Every key, in (timestamp, id) order: what the sync layer builds its index from at start.
    fn keys(&self) -> Result<Vec<ItemKey>, StoreError>;

    /// How many items are stored.
    fn len(&self) -> Result<u64, StoreError>;

    /// Whether no item is stored.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

impl Store for Box<dyn Store> {
    fn insert(&mut self, item: &Item) -> Result<bool, StoreError> {
        (**self).insert(item)
    }

    fn insert_many(&mut self, items: &[Item]) -> Result<usize, StoreError> {
        (**self).insert_many(items)
    }

    fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        (**self).get(id)
    }

    fn contains(&self, id: &ItemId) -> Result<bool, StoreError> {
        (**self).contains(id)
    }

    fn keys(&self) -> Result<Vec<ItemKey>, StoreError> {
        (**self).keys()
    }

    fn len(&self) -> Result<u64, StoreError> {
        (**self).len()
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        (**self).is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests;
