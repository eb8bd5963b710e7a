//! A persistent store on redb: one database file, a pair of tables per topic.
//!
//! Per topic `T` (hex):
//! - `weft-sync/1/items/T`: item id (32 bytes) → item bytes (`timestamp || payload`);
//! - `weft-sync/1/keys/T`: `timestamp (8 bytes, big-endian) || id` → `()`. Big-endian makes the
//!   byte order of the key the (timestamp, id) order, so `keys()` is one range scan, no sort.
//!
//! Both tables change in the same transaction, so they never disagree.

use std::{
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
    sync::Arc,
};

use redb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};

use super::{DEFAULT_MAX_ITEMS, Store, StoreError};
use crate::proto::{Item, ItemId, ItemKey, TIMESTAMP_LEN};

/// Bytes of a key-table key: the timestamp then the id.
const KEY_LEN: usize = TIMESTAMP_LEN + 32;

/// How much of the file redb caches in memory. redb's default is 1 GiB per database; a node
/// runs one database for all its topics, and the OS page cache sits behind this one.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

type ItemsTable<'a> = TableDefinition<'a, &'static [u8; 32], &'static [u8]>;
type KeysTable<'a> = TableDefinition<'a, &'static [u8; KEY_LEN], ()>;

/// A redb database file that holds the stores of many topics. Cheap to clone (an `Arc`).
///
/// ```no_run
/// use weft_sync::{Item, store::{RedbDatabase, Store}};
///
/// let db = RedbDatabase::open("sync.redb")?;
/// let mut store = db.store([7; 32])?;
/// store.insert(&Item::new(1, b"hello"))?; // on disk once this returns
/// # Ok::<(), weft_sync::store::StoreError>(())
/// ```
#[derive(Clone)]
pub struct RedbDatabase {
    db: Arc<Database>,
    path: Arc<Path>,
}

impl fmt::Debug for RedbDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbDatabase")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbDatabase {
    /// Opens the database file at `path`, creating it if it does not exist (or is empty).
    ///
    /// The whole file is checked on open (redb's integrity check: every page checksum of the
    /// committed trees), which costs a read of the file but turns a damaged or foreign file into
    /// [`StoreError::Open`] naming the path, where an unchecked open may panic. A file left by a
    /// crash is repaired to its last committed transaction.
    ///
    /// redb locks the file: a second open of the same file, in this process or another, fails
    /// until the first [`RedbDatabase`] and every clone and store of it are dropped.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let open_err = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        // redb documents that the checked open reports corruption as an error; the unwind
        // guard is for whatever it does not foresee, since the bytes may come from anywhere.
        let opened = catch_unwind(AssertUnwindSafe(|| {
            Builder::new()
                .set_check_integrity_on_open(true)
                .set_cache_size(CACHE_BYTES)
                .create(path)
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(err)) => return Err(open_err(err.to_string())),
            Err(_) => return Err(open_err("the database panicked while opening it".into())),
        };
        Ok(Self {
            db: Arc::new(db),
            path: path.into(),
        })
    }

    /// The file this database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store of `topic`, holding at most [`DEFAULT_MAX_ITEMS`]; created empty if the topic
    /// has none yet.
    pub fn store(&self, topic: [u8; 32]) -> Result<RedbStore, StoreError> {
        self.store_with_max_items(topic, DEFAULT_MAX_ITEMS)
    }

    /// The store of `topic`, holding at most `max_items`.
    ///
    /// The limit is not stored in the file: a store reopened with a lower limit than it holds
    /// keeps its items and refuses new ones.
    pub fn store_with_max_items(
        &self,
        topic: [u8; 32],
        max_items: u64,
    ) -> Result<RedbStore, StoreError> {
        let hex = hex::encode(topic);
        let store = RedbStore {
            db: self.clone(),
            topic,
            items_table: format!("weft-sync/1/items/{hex}"),
            keys_table: format!("weft-sync/1/keys/{hex}"),
            max_items,
        };
        // Create both tables now, so reads never meet a missing table.
        let txn = store.begin_write()?;
        txn.open_table(store.items())
            .map_err(|e| store.db_err("opening the items table", e))?;
        txn.open_table(store.keys_def())
            .map_err(|e| store.db_err("opening the keys table", e))?;
        txn.commit().map_err(|e| store.db_err("commit", e))?;
        Ok(store)
    }
}

/// The items of one topic in a [`RedbDatabase`]. Every write is durable when it returns.
///
/// When full it refuses new items with [`StoreError::Full`] (a batch all or nothing) and keeps
/// everything already stored.
pub struct RedbStore {
    db: RedbDatabase,
    topic: [u8; 32],
    items_table: String,
    keys_table: String,
    max_items: u64,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.db.path)
            .field("topic", &hex::encode(self.topic))
            .field("max_items", &self.max_items)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// The topic whose items this store holds.
    pub fn topic(&self) -> [u8; 32] {
        self.topic
    }

    /// The configured maximum number of items.
    pub fn max_items(&self) -> u64 {
        self.max_items
    }

    /// The database this store lives in.
    pub fn database(&self) -> &RedbDatabase {
        &self.db
    }

    fn items(&self) -> ItemsTable<'_> {
        TableDefinition::new(&self.items_table)
    }

    fn keys_def(&self) -> KeysTable<'_> {
        TableDefinition::new(&self.keys_table)
    }

    fn db_err(&self, what: &str, err: impl fmt::Display) -> StoreError {
        StoreError::Database(format!("{} ({what}): {err}", self.db.path.display()))
    }

    fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self
            .db
            .db
            .begin_write()
            .map_err(|e| self.db_err("begin write", e))?;
        // Immediate is redb's default; set it anyway, since the store's promise rests on it.
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.db_err("set durability", e))?;
        Ok(txn)
    }

    /// Stores `items` in one transaction and returns how many were new; nothing is stored if
    /// they do not all fit.
    fn write(&mut self, items: &[Item]) -> Result<usize, StoreError> {
        let txn = self.begin_write()?;
        let new = {
            let mut by_id = txn
                .open_table(self.items())
                .map_err(|e| self.db_err("open items", e))?;
            let mut by_key = txn
                .open_table(self.keys_def())
                .map_err(|e| self.db_err("open keys", e))?;
            let mut count = by_id.len().map_err(|e| self.db_err("len", e))?;
            let mut new = 0;
            for item in items {
                let id = item.id();
                let present = by_id
                    .get(id.as_bytes())
                    .map_err(|e| self.db_err("get", e))?
                    .is_some();
                if present {
                    continue;
                }
                if count >= self.max_items {
                    // Dropping the tables and the transaction uncommitted rolls the batch back.
                    return Err(StoreError::Full {
                        limit: self.max_items,
                    });
                }
                by_id
                    .insert(id.as_bytes(), item.as_bytes())
                    .map_err(|e| self.db_err("insert item", e))?;
                by_key
                    .insert(&key_bytes(&item.key()), ())
                    .map_err(|e| self.db_err("insert key", e))?;
                count += 1;
                new += 1;
            }
            new
        };
        if new == 0 {
            // Nothing changed: no commit, no fsync.
            txn.abort().map_err(|e| self.db_err("abort", e))?;
        } else {
            txn.commit().map_err(|e| self.db_err("commit", e))?;
        }
        Ok(new)
    }

    /// Overwrites the bytes stored under `id` behind the store's back, as a damaged disk or a
    /// bug would: lets the tests check that reads catch it.
    #[cfg(test)]
    pub(crate) fn tamper(&mut self, id: &ItemId, bytes: &[u8]) {
        let txn = self.begin_write().unwrap();
        txn.open_table(self.items())
            .unwrap()
            .insert(id.as_bytes(), bytes)
            .unwrap();
        txn.commit().unwrap();
    }
}

fn key_bytes(key: &ItemKey) -> [u8; KEY_LEN] {
    let mut bytes = [0u8; KEY_LEN];
    bytes[..TIMESTAMP_LEN].copy_from_slice(&key.timestamp.to_be_bytes());
    bytes[TIMESTAMP_LEN..].copy_from_slice(key.id.as_bytes());
    bytes
}

fn key_from_bytes(bytes: &[u8; KEY_LEN]) -> ItemKey {
    let mut timestamp = [0u8; TIMESTAMP_LEN];
    timestamp.copy_from_slice(&bytes[..TIMESTAMP_LEN]);
    let mut id = [0u8; 32];
    id.copy_from_slice(&bytes[TIMESTAMP_LEN..]);
    ItemKey::new(u64::from_be_bytes(timestamp), ItemId(id))
}

/// Rebuilds an item from stored bytes, refusing bytes that are not the item stored under `id`.
fn checked_item(id: ItemId, bytes: &[u8]) -> Result<Item, StoreError> {
    let item = Item::from_bytes(bytes.to_vec()).map_err(|err| StoreError::Corrupt {
        id,
        reason: err.to_string(),
    })?;
    if item.id() != id {
        return Err(StoreError::Corrupt {
            id,
            reason: format!("stored bytes hash to {}", item.id()),
        });
    }
    Ok(item)
}

impl Store for RedbStore {
    fn insert(&mut self, item: &Item) -> Result<bool, StoreError> {
        Ok(self.write(std::slice::from_ref(item))? == 1)
    }

    fn insert_many(&mut self, items: &[Item]) -> Result<usize, StoreError> {
        self.write(items)
    }

    fn get(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        let txn = self
            .db
            .db
            .begin_read()
            .map_err(|e| self.db_err("begin read", e))?;
        let table = txn
            .open_table(self.items())
            .map_err(|e| self.db_err("open items", e))?;
        let Some(bytes) = table
            .get(id.as_bytes())
            .map_err(|e| self.db_err("get", e))?
        else {
            return Ok(None);
        };
        checked_item(*id, bytes.value()).map(Some)
    }

    fn contains(&self, id: &ItemId) -> Result<bool, StoreError> {
        let txn = self
            .db
            .db
            .begin_read()
            .map_err(|e| self.db_err("begin read", e))?;
        let table = txn
            .open_table(self.items())
            .map_err(|e| self.db_err("open items", e))?;
        let found = table
            .get(id.as_bytes())
            .map_err(|e| self.db_err("get", e))?
            .is_some();
        Ok(found)
    }

    fn keys(&self) -> Result<Vec<ItemKey>, StoreError> {
        let txn = self
            .db
            .db
            .begin_read()
            .map_err(|e| self.db_err("begin read", e))?;
        let table = txn
            .open_table(self.keys_def())
            .map_err(|e| self.db_err("open keys", e))?;
        let len = table.len().map_err(|e| self.db_err("len", e))?;
        let mut keys = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        for entry in table.iter().map_err(|e| self.db_err("scan keys", e))? {
            let (key, _) = entry.map_err(|e| self.db_err("scan keys", e))?;
            keys.push(key_from_bytes(key.value()));
        }
        Ok(keys)
    }

    fn len(&self) -> Result<u64, StoreError> {
        let txn = self
            .db
            .db
            .begin_read()
            .map_err(|e| self.db_err("begin read", e))?;
        let table = txn
            .open_table(self.items())
            .map_err(|e| self.db_err("open items", e))?;
        table.len().map_err(|e| self.db_err("len", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redb_store_keeps_items_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.redb");
        let items: Vec<Item> = (0..20)
            .map(|i| Item::new(20 - i, &i.to_le_bytes()))
            .collect();
        {
            let db = RedbDatabase::open(&path).unwrap();
            let mut store = db.store([1; 32]).unwrap();
            assert_eq!(store.insert_many(&items[..10]).unwrap(), 10);
            for item in &items[10..] {
                assert!(store.insert(item).unwrap());
            }
        }
        let db = RedbDatabase::open(&path).unwrap();
        let store = db.store([1; 32]).unwrap();
        assert_eq!(store.len().unwrap(), 20);
        for item in &items {
            assert_eq!(store.get(&item.id()).unwrap().as_ref(), Some(item));
        }
        let mut expected: Vec<ItemKey> = items.iter().map(Item::key).collect();
        expected.sort();
        assert_eq!(store.keys().unwrap(), expected);
    }

    #[test]
    fn redb_topics_in_one_file_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        let db = RedbDatabase::open(dir.path().join("sync.redb")).unwrap();
        let mut a = db.store([1; 32]).unwrap();
        let b = db.store([2; 32]).unwrap();
        let item = Item::new(1, b"only in a");
        assert!(a.insert(&item).unwrap());
        assert!(a.contains(&item.id()).unwrap());
        assert!(!b.contains(&item.id()).unwrap());
        assert_eq!(b.len().unwrap(), 0);
        assert!(b.keys().unwrap().is_empty());
    }

    #[test]
    fn redb_store_refuses_a_batch_that_does_not_fit_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let db = RedbDatabase::open(dir.path().join("sync.redb")).unwrap();
        let mut store = db.store_with_max_items([1; 32], 3).unwrap();
        let a = Item::new(1, b"a");
        assert!(store.insert(&a).unwrap());
        let batch: Vec<Item> = (2..5).map(|i| Item::new(i, b"x")).collect();
        assert!(matches!(
            store.insert_many(&batch),
            Err(StoreError::Full { limit: 3 })
        ));
        assert_eq!(store.len().unwrap(), 1);
        assert_eq!(store.keys().unwrap(), vec![a.key()]);
        assert_eq!(store.insert_many(&batch[..2]).unwrap(), 2);
        assert!(matches!(
            store.insert(&batch[2]),
            Err(StoreError::Full { limit: 3 })
        ));
        assert!(!store.insert(&a).unwrap());
        assert_eq!(store.len().unwrap(), 3);
    }

    #[test]
    fn redb_record_too_short_for_an_item_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let db = RedbDatabase::open(dir.path().join("sync.redb")).unwrap();
        let mut store = db.store([1; 32]).unwrap();
        let item = Item::new(1, b"a");
        store.insert(&item).unwrap();
        store.tamper(&item.id(), &[1, 2, 3]);
        assert!(matches!(
            store.get(&item.id()),
            Err(StoreError::Corrupt { id, .. }) if id == item.id()
        ));
    }

    #[test]
    fn redb_open_of_a_garbage_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.redb");
        let garbage: Vec<u8> = (0..64 * 1024u32)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
            .collect();
        std::fs::write(&path, garbage).unwrap();
        let err = RedbDatabase::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn redb_open_of_a_truncated_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.redb");
        {
            let db = RedbDatabase::open(&path).unwrap();
            let mut store = db.store([1; 32]).unwrap();
            let items: Vec<Item> = (0..500u64).map(|i| Item::new(i, &[7; 100])).collect();
            store.insert_many(&items).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
        let err = RedbDatabase::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
