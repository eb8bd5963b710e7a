//! Items: what a sync topic holds. Content-addressed, ordered by (timestamp, id).
//!
//! An item is a timestamp and a payload. Its bytes are `timestamp (8 bytes, big-endian) ||
//! payload` and its id is `blake3` of those bytes, so the id covers the timestamp too: a peer
//! cannot re-date an item without changing its id, and every honest peer orders an item the
//! same way.

use std::{cmp::Ordering, fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// Bytes of the timestamp prefix of an item's encoding.
pub const TIMESTAMP_LEN: usize = 8;

/// The 32-byte id of an item: `blake3` of its bytes. On the wire: a 32-byte CBOR byte string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ItemId(#[serde(with = "bytes32")] pub [u8; 32]);

/// `[u8; 32]` as one byte string (34 bytes in CBOR), not as an array of 32 integers (up to 64).
mod bytes32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        Ok(serde_bytes::ByteArray::<32>::deserialize(d)?.into_array())
    }
}

impl ItemId {
    /// The id of an item's bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemId({})", &hex::encode(self.0)[..10])
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// What reconciliation orders and compares: an item's timestamp and id, ordered by timestamp,
/// then by id (Negentropy's order).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ItemKey {
    /// The item's timestamp (any unit the application chooses; Nostr uses seconds).
    pub timestamp: u64,
    /// The item's id.
    pub id: ItemId,
}

impl ItemKey {
    /// A key from its parts.
    pub fn new(timestamp: u64, id: ItemId) -> Self {
        Self { timestamp, id }
    }
}

impl Ord for ItemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.timestamp
            .cmp(&other.timestamp)
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for ItemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Why bytes are not an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// Shorter than the 8-byte timestamp prefix.
    #[error("item of {0} bytes is shorter than its 8-byte timestamp")]
    TooShort(usize),
    /// The timestamp is `u64::MAX`, which Negentropy reserves for "infinity": such an item
    /// could never be reconciled.
    #[error("the timestamp u64::MAX is reserved")]
    ReservedTimestamp,
    /// The bytes do not hash to the id they were sent under.
    #[error("item bytes hash to {actual}, not to the requested id {expected}")]
    IdMismatch {
        /// The id the item was requested or announced under.
        expected: ItemId,
        /// What its bytes hash to.
        actual: ItemId,
    },
}

/// An item: `timestamp || payload`, identified by the `blake3` of those bytes. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Item {
    bytes: Arc<[u8]>,
    id: ItemId,
}

impl Item {
    /// An item from a timestamp and a payload. The timestamp `u64::MAX` is reserved (see
    /// [`ItemError::ReservedTimestamp`]): such an item is refused by every insert.
    pub fn new(timestamp: u64, payload: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(TIMESTAMP_LEN + payload.len());
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(payload);
        let id = ItemId::of(&bytes);
        Self {
            bytes: bytes.into(),
            id,
        }
    }

    /// An item from its encoded bytes (`timestamp || payload`); its id is computed.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Result<Self, ItemError> {
        let bytes = bytes.into();
        if bytes.len() < TIMESTAMP_LEN {
            return Err(ItemError::TooShort(bytes.len()));
        }
        if bytes[..TIMESTAMP_LEN] == [0xff; TIMESTAMP_LEN] {
            return Err(ItemError::ReservedTimestamp);
        }
        let id = ItemId::of(&bytes);
        Ok(Self { bytes, id })
    }

    /// An item from bytes that must hash to `expected` (what a peer sends for a requested id).
    pub fn verified(bytes: impl Into<Arc<[u8]>>, expected: ItemId) -> Result<Self, ItemError> {
        let item = Self::from_bytes(bytes)?;
        if item.id != expected {
            return Err(ItemError::IdMismatch {
                expected,
                actual: item.id,
            });
        }
        Ok(item)
    }

    /// The id: `blake3(bytes)`.
    pub fn id(&self) -> ItemId {
        self.id
    }

    /// The timestamp (the first 8 bytes, big-endian).
    pub fn timestamp(&self) -> u64 {
        let mut ts = [0u8; TIMESTAMP_LEN];
        ts.copy_from_slice(&self.bytes[..TIMESTAMP_LEN]);
        u64::from_be_bytes(ts)
    }

    /// The reconciliation key: (timestamp, id).
    pub fn key(&self) -> ItemKey {
        ItemKey::new(self.timestamp(), self.id)
    }

    /// The application's payload (the bytes after the timestamp).
    pub fn payload(&self) -> &[u8] {
        &self.bytes[TIMESTAMP_LEN..]
    }

    /// The encoded bytes: `timestamp || payload`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: an item holds at least its timestamp. Here for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("id", &self.id)
            .field("timestamp", &self.timestamp())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_covers_timestamp_and_payload() {
        let a = Item::new(1, b"hello");
        let b = Item::new(2, b"hello");
        assert_ne!(a.id(), b.id());
        assert_eq!(a.timestamp(), 1);
        assert_eq!(a.payload(), b"hello");
        assert_eq!(a.id(), ItemId::of(a.as_bytes()));
        let again = Item::from_bytes(a.as_bytes().to_vec()).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn verified_refuses_bytes_of_another_id() {
        let a = Item::new(1, b"x");
        let b = Item::new(1, b"y");
        let err = Item::verified(b.as_bytes().to_vec(), a.id()).unwrap_err();
        assert_eq!(
            err,
            ItemError::IdMismatch {
                expected: a.id(),
                actual: b.id()
            }
        );
        assert_eq!(Item::from_bytes(vec![0u8; 7]), Err(ItemError::TooShort(7)));
        let reserved = Item::new(u64::MAX, b"never reconciled");
        assert_eq!(
            Item::from_bytes(reserved.as_bytes().to_vec()),
            Err(ItemError::ReservedTimestamp)
        );
    }

    #[test]
    fn keys_order_by_timestamp_then_id() {
        let low = ItemKey::new(1, ItemId([9; 32]));
        let high = ItemKey::new(2, ItemId([0; 32]));
        assert!(low < high);
        assert!(ItemKey::new(1, ItemId([0; 32])) < low);
    }
}
