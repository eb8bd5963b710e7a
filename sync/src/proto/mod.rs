//! The sans-IO half: no clocks, no sockets, no OS randomness. Time and seeds are passed in.

mod fingerprint;
mod index;
mod item;
mod negentropy;

pub use fingerprint::{FINGERPRINT_LEN, Fingerprint, IdSum};
pub use index::{Index, Keys};
pub use item::{Item, ItemError, ItemId, ItemKey, TIMESTAMP_LEN};
pub use negentropy::{
    MIN_FRAME_SIZE_LIMIT, MessageError, PROTOCOL_VERSION_V1, ReconcileError, Reconciled, Reconciler,
};
