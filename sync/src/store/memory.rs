//! A bounded in-memory store.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{DEFAULT_MAX_ITEMS, Store, StoreError};
use crate::proto::{Item, ItemId, ItemKey};

/// A store in memory, bounded by an item count.
///
/// When full it refuses new items with [`StoreError::Full`] and keeps everything already stored;
/// an item already stored is still accepted (as `Ok(false)`), since it costs nothing.
///
/// ```
/// use weft_sync::{Item, store::{MemoryStore, Store}};
///
/// let mut store = MemoryStore::with_max_items(1);
/// assert!(store.insert(&Item::new(1, b"a")).unwrap());
/// assert!(store.insert(&Item::new(2, b"b")).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    items: HashMap<ItemId, Item>,
    // Kept beside `items` so `keys()` is a walk in order rather than a sort.
    keys: BTreeSet<ItemKey>,
    max_items: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store holding at most [`DEFAULT_MAX_ITEMS`].
    pub fn new() -> Self {
        Self::with_max_items(DEFAULT_MAX_ITEMS)
    }

    /// An empty store holding at most `max_items`.
    pub fn with_max_items(max_items: u64) -> Self {
        Self {
            items: HashMap::new(),
            keys: BTreeSet::new(),
            max_items,
        }
    }

    /// The configured maximum number of items.
    pub fn max_items(&self) -> u64 {
        self.max_items
    }

    fn count(&self) -> u64 {
        self.items.len() as u64
    }

    fn put(&mut self, item: &Item) {
        self.keys.insert(item.key());
        self.items.insert(item.id(), item.clone());
    }

    /// Replaces the record stored under `id` with `bytes`, as a failing memory or a bug would:
    /// lets the tests check that reads catch it.
    #[cfg(test)]
    pub(crate) fn tamper(&mut self, id: &ItemId, bytes: &[u8]) {
        let forged = Item::from_bytes(bytes.to_vec()).expect("tamper with item-shaped bytes");
        self.items.insert(*id, forged);
    }
}

impl Store for MemoryStore {
    fn insert(&mut self, item: &Item) -> Result<bool, StoreError> {
        if self.items.contains_key(&item.id()) {
            return Ok(false);
        }
        if self.count() >= self.max_items {
            return Err(StoreError::Full {
                limit: self.max_items,
            });
        }
        self.put(item);
        Ok(true)
    }

    fn insert_many(&mut self, items: &[Item]) -> Result<usize, StoreError> {
        // Check the whole batch fits first so a refused batch leaves the store untouched, like
        // the redb store's aborted transaction.
        let mut seen = HashSet::new();
        let new: Vec<&Item> = items
            .iter()
            .filter(|item| !self.items.contains_key(&item.id()) && seen.insert(item.id()))
            .collect();
        if self.count().saturating_add(new.len() as u64) > self.max_items {
            return Err(StoreError::Full {
                limit: self.max_items,
            });
        }
        for item in &new {
            self.put(item);
        }
        Ok(new.len())
    }

    fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        match self.items.get(id) {
            None => Ok(None),
            Some(item) if item.id() == *id => Ok(Some(item.clone())),
            Some(item) => Err(StoreError::Corrupt {
                id: *id,
                reason: format!("stored bytes hash to {}", item.id()),
            }),
        }
    }

    fn contains(&self, id: &ItemId) -> Result<bool, StoreError> {
        Ok(self.items.contains_key(id))
    }

    fn keys(&self) -> Result<Vec<ItemKey>, StoreError> {
        Ok(self.keys.iter().copied().collect())
    }

    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_refuses_new_items_when_full_and_keeps_the_rest() {
        let mut store = MemoryStore::with_max_items(2);
        let a = Item::new(1, b"a");
        let b = Item::new(2, b"b");
        let c = Item::new(3, b"c");
        assert!(store.insert(&a).unwrap());
        assert!(store.insert(&b).unwrap());
        assert!(matches!(
            store.insert(&c),
            Err(StoreError::Full { limit: 2 })
        ));
        // A duplicate costs nothing, so it is still accepted at the limit.
        assert!(!store.insert(&a).unwrap());
        assert_eq!(store.len().unwrap(), 2);
        assert_eq!(store.get(&a.id()).unwrap(), Some(a));
        assert_eq!(store.get(&c.id()).unwrap(), None);
    }
}
