//! A topic's items: its store (where the bytes live) and its index (the aggregate tree that
//! reconciliation reads), kept in step.

use std::{collections::HashMap, fmt};

use super::{Index, Item, ItemId, SessionId};
use crate::store::{Store, StoreError};

/// Who fetches an item: [`TopicItems::claim`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The topic holds it already: nobody needs to fetch it.
    Stored,
    /// The asking session fetches it (and no other session will, until it is released).
    Claimed,
    /// Another session is fetching it.
    Elsewhere,
}

/// The items of one topic: a [`Store`] and the [`Index`] of its keys.
///
/// Inserts go to the store first, so an item is in the index only once the store holds it
/// (for a persistent store: durably).
pub struct TopicItems {
    store: Box<dyn Store>,
    index: Index,
    /// Items requested and not received yet, by the session fetching each: one fetch per item
    /// whatever the number of neighbours that offer it. Bounded by sessions × requests in
    /// flight per session.
    in_flight: HashMap<ItemId, SessionId>,
}

impl TopicItems {
    /// Opens a store: reads every key once to build the index.
    pub fn open(store: Box<dyn Store>) -> Result<Self, StoreError> {
        let index = Index::from_keys(store.keys()?);
        Ok(Self {
            store,
            index,
            in_flight: HashMap::new(),
        })
    }

    /// Decides which session fetches `id`: the first to ask, unless the topic holds it.
    pub fn claim(&mut self, id: ItemId, session: SessionId) -> Result<Claim, StoreError> {
        if let Some(owner) = self.in_flight.get(&id) {
            return Ok(if *owner == session {
                Claim::Claimed
            } else {
                Claim::Elsewhere
            });
        }
        if self.store.contains(&id)? {
            return Ok(Claim::Stored);
        }
        self.in_flight.insert(id, session);
        Ok(Claim::Claimed)
    }

    /// Gives up a claim (the item was not delivered).
    pub fn release(&mut self, id: &ItemId, session: SessionId) {
        if self.in_flight.get(id) == Some(&session) {
            self.in_flight.remove(id);
        }
    }

    /// Gives up every claim of a session that ended; returns how many there were.
    pub fn release_session(&mut self, session: SessionId) -> usize {
        let before = self.in_flight.len();
        self.in_flight.retain(|_, owner| *owner != session);
        before - self.in_flight.len()
    }

    /// Whether the topic holds an item with this id.
    pub fn contains(&self, id: &ItemId) -> Result<bool, StoreError> {
        self.store.contains(id)
    }

    /// Inserts an item; `Ok(true)` if it was new.
    pub fn insert(&mut self, item: &Item) -> Result<bool, StoreError> {
        self.in_flight.remove(&item.id());
        if self.index.contains(&item.key()) {
            return Ok(false);
        }
        let new = self.store.insert(item)?;
        self.index.insert(item.key());
        Ok(new)
    }

    /// Inserts a batch in one store transaction; returns the items that were new, in order.
    pub fn insert_many(&mut self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        for item in &items {
            self.in_flight.remove(&item.id());
        }
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
