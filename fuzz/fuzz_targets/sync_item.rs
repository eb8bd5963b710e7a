//! `Item::from_bytes`: items as read from a peer or from the store.
//!
//! Checks: the id is the hash of the bytes; timestamp and payload split the bytes; building the
//! item from its parts gives the same item; `verified` accepts its own id only; the timestamp
//! `u64::MAX` is refused.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_sync::{Item, ItemError, ItemId, proto::TIMESTAMP_LEN};

fuzz_target!(|data: &[u8]| {
    match Item::from_bytes(data.to_vec()) {
        Ok(item) => {
            assert_eq!(item.as_bytes(), data);
            assert_eq!(item.len(), data.len());
            assert!(!item.is_empty());
            assert_eq!(item.id(), ItemId::of(data));
            let (timestamp, payload) = data.split_at(TIMESTAMP_LEN);
            assert_eq!(
                item.timestamp(),
                u64::from_be_bytes(timestamp.try_into().unwrap())
            );
            assert_eq!(item.payload(), payload);
            assert_eq!(item.key().timestamp, item.timestamp());
            assert_eq!(item.key().id, item.id());
            assert_eq!(Item::new(item.timestamp(), item.payload()), item);
            assert_eq!(Item::verified(data.to_vec(), item.id()).unwrap(), item);
            let other = ItemId::of(b"another item");
            if other != item.id() {
                assert!(matches!(
                    Item::verified(data.to_vec(), other),
                    Err(ItemError::IdMismatch { .. })
                ));
            }
        }
        Err(ItemError::TooShort(len)) => assert!(len == data.len() && len < TIMESTAMP_LEN),
        // Negentropy's "infinity": never an item.
        Err(ItemError::ReservedTimestamp) => {
            assert!(data.len() >= TIMESTAMP_LEN && data[..TIMESTAMP_LEN] == [0xff; TIMESTAMP_LEN]);
        }
        Err(other) => panic!("unexpected error {other}"),
    }
});
