//! Negentropy v1: range-based set reconciliation, wire-compatible with the reference
//! implementations (protocol byte 0x61).
//!
//! Two peers compare fingerprints of ranges of their (timestamp, id) keys, split the ranges
//! that differ into 16, and exchange id lists once ranges are small, until the initiator knows
//! which ids each side lacks.
//!
//! ```text
//! message = version:u8 range*
//! range   = bound mode:varint payload
//! bound   = timestamp:varint (delta from the previous bound + 1; 0 = infinity)
//!           prefix_len:varint id_prefix:[u8; prefix_len]
//! payload = ""                                  (mode 0, Skip)
//!         | fingerprint:[u8; 16]                (mode 1, Fingerprint)
//!         | count:varint id:[u8; 32]{count}     (mode 2, IdList)
//! ```

mod bound;
mod error;
mod message;
mod reconciler;
pub(crate) mod varint;

pub use error::{MessageError, ReconcileError};
pub use message::NEGENTROPY_V1;
pub use reconciler::{MIN_FRAME_SIZE_LIMIT, Reconciled, Reconciler};

#[cfg(test)]
mod tests;
