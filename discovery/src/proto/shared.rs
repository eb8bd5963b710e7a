//! [`SharedEntry`]: a verified signed entry behind one allocation, with the facts that depend
//! on its bytes alone worked out once.
//!
//! One announcement reaches every node of a network. In a real node each copy is decoded from
//! its own bytes, so each is checked once anyway; in the simulator one copy is handed to 10,000
//! catalogs, and re-encoding it 10,000 times to prove it canonical would dominate the run. The
//! facts cached here (canonical or not, wire size, sync fingerprint) are pure functions of the
//! signed bytes, computed when the value is made and never skipped: every `SharedEntry` carries
//! the result of its own check, however it was made.

use std::{fmt, ops::Deref, sync::Arc};

use serde::{Deserialize, Serialize};
use weft_transport::{PeerId, Signed};

use super::{
    config::Limits,
    entry::{EntryError, PeerEntry, Version, is_canonical},
};

/// A verified `Signed<PeerEntry>`, cheap to clone and share, with its canonical-encoding check,
/// wire size and sync fingerprint computed once when it is made.
///
/// It dereferences to the [`Signed`] envelope and travels exactly as one (same serde form).
#[derive(Clone, PartialEq, Eq)]
pub struct SharedEntry(Arc<Inner>);

#[derive(PartialEq, Eq)]
struct Inner {
    signed: Signed<PeerEntry>,
    /// Whether the signed bytes are the canonical encoding of the entry they decode to.
    canonical: bool,
    /// Bytes of the envelope on the wire.
    wire_size: usize,
    /// `fingerprint(peer, version)`, what delta sync's buckets are built from.
    fingerprint: u64,
}

impl SharedEntry {
    /// Wraps a verified entry, checking its encoding and measuring it.
    pub fn new(signed: Signed<PeerEntry>) -> Self {
        let payload = signed.payload();
        let canonical = is_canonical(&signed);
        let fingerprint = fingerprint(&payload.peer, payload.version);
        let wire_size = signed.to_bytes().len();
        Self(Arc::new(Inner {
            signed,
            canonical,
            wire_size,
            fingerprint,
        }))
    }

    /// The signed envelope.
    pub fn signed(&self) -> &Signed<PeerEntry> {
        &self.0.signed
    }

    /// Whether the signed bytes are the canonical encoding of the entry (checked when made).
    pub fn is_canonical(&self) -> bool {
        self.0.canonical
    }

    /// Bytes of the envelope on the wire.
    pub fn wire_size(&self) -> usize {
        self.0.wire_size
    }

    /// The sync fingerprint of `(peer, version)`.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.0.fingerprint
    }
}

impl Deref for SharedEntry {
    type Target = Signed<PeerEntry>;

    fn deref(&self) -> &Signed<PeerEntry> {
        &self.0.signed
    }
}

impl From<Signed<PeerEntry>> for SharedEntry {
    fn from(signed: Signed<PeerEntry>) -> Self {
        Self::new(signed)
    }
}

impl fmt::Debug for SharedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.signed.fmt(f)
    }
}

/// The same wire form as [`Signed`].
impl Serialize for SharedEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.signed.serialize(serializer)
    }
}

/// Decodes and verifies like [`Signed`], then checks and measures like [`SharedEntry::new`].
impl<'de> Deserialize<'de> for SharedEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Signed::<PeerEntry>::deserialize(deserializer).map(Self::new)
    }
}

/// Checks a verified entry's size, canonical encoding (checked once, when the [`SharedEntry`]
/// was made) and content limits.
pub(crate) fn check_signed_entry(entry: &SharedEntry, limits: &Limits) -> Result<(), EntryError> {
    let bytes = entry.payload_bytes();
    if bytes.len() > limits.max_entry_bytes {
        return Err(EntryError::TooLarge(bytes.len()));
    }
    entry.payload().check_limits(limits)?;
    // Canonical form: one content has one encoding, so equal entries have equal bytes and a
    // relay cannot re-encode an entry into a variant (duplicate keys, other integer widths).
    if entry.is_canonical() {
        Ok(())
    } else {
        Err(EntryError::NotCanonical)
    }
}

/// The hash of `(peer, version)` that sync fingerprints are built from.
pub(crate) fn fingerprint(peer: &PeerId, version: Version) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"weft/discovery/digest/1\0");
    hasher.update(peer.as_bytes());
    hasher.update(&version.started.to_be_bytes());
    hasher.update(&version.seq.to_be_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_be_bytes(first)
}
