//! A topic's items: its store (where the bytes live) and its index (the aggregate tree that
//! reconciliation reads), kept in step.

use std::fmt;

use super::{Index, Item, ItemId};
use crate::store::{Store, StoreError};

/// The items of one topic: a [`Store`] and the [`Index`] of its keys.
///
/// Inserts go to the store first, so an item is in the index only once the store holds it
/// (for a persistent store: durably).
pub struct TopicItems {
    store: Box<dyn Store>,
    index: Index,
}

impl TopicItems {
    /// Opens a store: reads every key once to build the index.
    pub fn open(store: Box<dyn Store>) -> Result<Self, StoreError> {
        let index = Index::from_keys(store.keys()?);
        Ok(Self { store, index })
    }

    /// Inserts an item; `Ok(true)` if it was new.
    pub fn insert(&mut self, item: &Item) -> Result<bool, StoreError> {
        if self.index.contains(&item.key()) {
            return Ok(false);
        }
        let new = self.store.insert(item)?;
        self.index.insert(item.key());
        Ok(new)
    }

    /// Inserts a batch in one store transaction; returns the items that were new, in order.
    pub fn insert_many(&mut self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut fresh: Vec<Item> = items
            .into_iter()
            .filter(|item| !self.index.contains(&item.key()))
            .collect();
        fresh.sort_by_key(Item::key);
        fresh.dedup_by_key(|item| item.id());
        if fresh.is_empty() {
            return Ok(fresh);
        }
        self.store.insert_many(&fresh)?;
        for item in &fresh {
            self.index.insert(item.key());
        }
        Ok(fresh)
    }

    /// The item with this id, from the store.
    pub fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        self.store.get(id)
    }

    /// The index of every key, for reconciliation.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// How many items the topic holds.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the topic holds no item.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

impl fmt::Debug for TopicItems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicItems")
            .field("len", &self.index.len())
            .finish()
    }
}
