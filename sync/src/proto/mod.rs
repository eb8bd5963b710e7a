//! The sans-IO half: no clocks, no sockets, no OS randomness. Time and seeds are passed in.

mod item;

pub use item::{Item, ItemError, ItemId, ItemKey, TIMESTAMP_LEN};
