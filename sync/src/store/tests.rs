//! Behaviour every store shares: one generic function per property, run against each store.

use super::{MemoryStore, Store, StoreError};
use crate::proto::{Item, ItemId, ItemKey};

/// What the shared tests need beyond [`Store`]: a way to damage a stored record.
pub(crate) trait Tamper: Store {
    /// Replaces the bytes stored under `id` with `bytes`.
    fn tamper_with(&mut self, id: &ItemId, bytes: &[u8]);
}

impl Tamper for MemoryStore {
    fn tamper_with(&mut self, id: &ItemId, bytes: &[u8]) {
        self.tamper(id, bytes);
    }
}

fn items(n: u64) -> Vec<Item> {
    // Timestamps repeat and run backwards so the order (timestamp, id) is not insertion order.
    (0..n)
        .map(|i| Item::new((n - i) / 2, &i.to_le_bytes()))
        .collect()
}

fn insert_get_contains(mut store: impl Store) {
    let item = Item::new(5, b"hello");
    assert!(store.is_empty().unwrap());
    assert!(!store.contains(&item.id()).unwrap());
    assert_eq!(store.get(&item.id()).unwrap(), None);
    assert!(store.insert(&item).unwrap());
    assert!(!store.insert(&item).unwrap(), "a second insert is not new");
    assert!(store.contains(&item.id()).unwrap());
    let got = store.get(&item.id()).unwrap().unwrap();
    assert_eq!(got, item);
    assert_eq!(got.payload(), b"hello");
    assert_eq!(store.len().unwrap(), 1);
    assert!(!store.is_empty().unwrap());
}

fn insert_many_counts_new_items(mut store: impl Store) {
    let all = items(10);
    assert!(store.insert(&all[0]).unwrap());
    // all[1] twice: counted once.
    let mut batch = all.clone();
    batch.push(all[1].clone());
    assert_eq!(store.insert_many(&batch).unwrap(), 9);
    assert_eq!(store.insert_many(&all).unwrap(), 0);
    assert_eq!(store.insert_many(&[]).unwrap(), 0);
    assert_eq!(store.len().unwrap(), 10);
    for item in &all {
        assert_eq!(store.get(&item.id()).unwrap().as_ref(), Some(item));
    }
}

fn keys_are_in_timestamp_then_id_order(mut store: impl Store) {
    let all = items(50);
    for item in &all {
        store.insert(item).unwrap();
    }
    let mut expected: Vec<ItemKey> = all.iter().map(Item::key).collect();
    expected.sort();
    assert_eq!(store.keys().unwrap(), expected);
}

fn tampered_record_is_corrupt(mut store: impl Tamper) {
    let item = Item::new(1, b"original");
    let other = Item::new(1, b"forgery!");
    store.insert(&item).unwrap();
    store.tamper_with(&item.id(), other.as_bytes());
    match store.get(&item.id()) {
        Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, item.id()),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

fn full_store_refuses_new_items(mut store: impl Store, limit: u64) {
    let all = items(limit + 1);
    assert_eq!(
        store
            .insert_many(&all[..usize::try_from(limit).unwrap()])
            .unwrap() as u64,
        limit
    );
    let last = all.last().unwrap();
    assert!(matches!(
        store.insert(last),
        Err(StoreError::Full { limit: l }) if l == limit
    ));
    assert!(matches!(
        store.insert_many(&all),
        Err(StoreError::Full { .. })
    ));
    assert!(
        !store.insert(&all[0]).unwrap(),
        "a stored item is still accepted"
    );
    assert_eq!(store.len().unwrap(), limit);
    assert!(!store.contains(&last.id()).unwrap());
}

fn boxed_store_forwards(store: impl Store) {
    let boxed: Box<dyn Store> = Box::new(store);
    insert_many_counts_new_items(boxed);
}

/// One `#[test]` per shared property for a store: `$new` makes an empty store, `$limited` one
/// holding at most the given number of items.
macro_rules! shared_tests {
    ($name:ident, new: $new:expr, limited: $limited:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn insert_get_contains() {
                super::insert_get_contains($new());
            }

            #[test]
            fn insert_many_counts_new_items() {
                super::insert_many_counts_new_items($new());
            }

            #[test]
            fn keys_are_in_timestamp_then_id_order() {
                super::keys_are_in_timestamp_then_id_order($new());
            }

            #[test]
            fn tampered_record_is_corrupt() {
                super::tampered_record_is_corrupt($new());
            }

            #[test]
            fn full_store_refuses_new_items() {
                super::full_store_refuses_new_items($limited(5), 5);
            }

            #[test]
            fn boxed_store_forwards() {
                super::boxed_store_forwards($new());
            }
        }
    };
}

shared_tests!(memory, new: MemoryStore::new, limited: MemoryStore::with_max_items);

#[cfg(feature = "redb")]
mod redb_store {
    use tempfile::TempDir;

    use super::*;
    use crate::store::{RedbDatabase, RedbStore};

    /// A redb store in a temporary directory that lives as long as the store.
    pub(super) struct TempRedb {
        // Declared first so it is dropped (and the file closed) before the directory goes.
        store: RedbStore,
        _dir: TempDir,
    }

    pub(super) fn new() -> TempRedb {
        limited(crate::store::DEFAULT_MAX_ITEMS)
    }

    pub(super) fn limited(max_items: u64) -> TempRedb {
        let dir = tempfile::tempdir().unwrap();
        let db = RedbDatabase::open(dir.path().join("sync.redb")).unwrap();
        let store = db.store_with_max_items([9; 32], max_items).unwrap();
        TempRedb { store, _dir: dir }
    }

    impl Store for TempRedb {
        fn insert(&mut self, item: &Item) -> Result<bool, StoreError> {
            self.store.insert(item)
        }
        fn insert_many(&mut self, items: &[Item]) -> Result<usize, StoreError> {
            self.store.insert_many(items)
        }
        fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
            self.store.get(id)
        }
        fn contains(&self, id: &ItemId) -> Result<bool, StoreError> {
            self.store.contains(id)
        }
        fn keys(&self) -> Result<Vec<ItemKey>, StoreError> {
            self.store.keys()
        }
        fn len(&self) -> Result<u64, StoreError> {
            self.store.len()
        }
    }

    impl Tamper for TempRedb {
        fn tamper_with(&mut self, id: &ItemId, bytes: &[u8]) {
            self.store.tamper(id, bytes);
        }
    }
}

#[cfg(feature = "redb")]
shared_tests!(redb, new: redb_store::new, limited: redb_store::limited);
