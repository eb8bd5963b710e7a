//! Delta catalog sync: what the two sides exchange, and how each side computes its part.
//!
//! ```text
//! initiator                                   responder
//!   Offer { buckets, fingerprints }      ─▶        compare fingerprints bucket by bucket
//!                                        ◀─   Digest { differing buckets, (peer, version) in them,
//!                                                      entries in buckets the offer had empty }
//!   compare digests in those buckets
//!   Exchange { entries it lacks/has older,
//!              ids we lack/hold older }  ─▶
//!                                        ◀─   Entries { the wanted entries }
//! ```
//!
//! Entries are spread over `buckets` by the first two bytes of the peer id; a bucket's
//! fingerprint is its count and the XOR of `blake3(peer, version)` over its entries. Two
//! catalogs holding the same `(peer, version)` pairs send one fingerprint table (12 bytes a
//! bucket, about one bucket per 16 entries) and nothing else; when they differ, only the
//! differing buckets are listed, so the cost follows the difference, not the catalog size.
//! Versions change only when content changes, so refreshes alone never make buckets differ.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use weft_transport::PeerId;

use super::{catalog::Catalog, entry::Version, shared::SharedEntry};

/// Bytes per bucket in a fingerprint table: a `u32` count and a `u64` XOR of hashes.
pub(crate) const BUCKET_BYTES: usize = 12;

/// Entries per bucket the initiator aims for when it sizes the fingerprint table.
const ENTRIES_PER_BUCKET: usize = 16;

/// A `(peer, version)` pair in a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestItem(pub PeerId, pub Version);

/// The messages of one sync session, tagged with the session id the initiator chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SyncMessage {
    /// Initiator → responder: fingerprints of everything the initiator holds.
    Offer {
        /// Session id.
        session: u64,
        /// Number of buckets (1 to `max_sync_buckets`).
        buckets: u16,
        /// `buckets × 12` bytes: per bucket, the big-endian count and XOR of hashes.
        fingerprints: ByteBuf,
    },
    /// Responder → initiator: which buckets differ, the responder's pairs in them, and its
    /// entries in the buckets the initiator reported empty (it lacks all of those, so listing
    /// them first would only cost a round trip).
    Digest {
        /// Session id.
        session: u64,
        /// Differing bucket indices, strictly increasing, other than the pushed ones.
        differing: Vec<u16>,
        /// The responder's `(peer, version)` pairs in the `differing` buckets.
        items: Vec<DigestItem>,
        /// The responder's entries in buckets the initiator reported empty.
        entries: Vec<SharedEntry>,
    },
    /// Initiator → responder: entries the responder lacks or holds older, and the peers whose
    /// entries the initiator lacks or holds older.
    Exchange {
        /// Session id.
        session: u64,
        /// Entries for the responder.
        entries: Vec<SharedEntry>,
        /// Peers whose entries the initiator wants.
        wants: Vec<PeerId>,
    },
    /// Responder → initiator: the wanted entries. Ends the session.
    Entries {
        /// Session id.
        session: u64,
        /// The wanted entries the responder still holds.
        entries: Vec<SharedEntry>,
    },
    /// Responder → initiator: too many sessions in progress; the session ends unsynced.
    Busy {
        /// Session id.
        session: u64,
    },
}

impl SyncMessage {
    /// The session this message belongs to.
    pub fn session(&self) -> u64 {
        match self {
            Self::Offer { session, .. }
            | Self::Digest { session, .. }
            | Self::Exchange { session, .. }
            | Self::Entries { session, .. }
            | Self::Busy { session } => *session,
        }
    }
}

/// The bucket a peer falls into.
pub(crate) fn bucket_of(peer: &PeerId, buckets: u16) -> u16 {
    let bytes = peer.as_bytes();
    u16::from_be_bytes([bytes[0], bytes[1]]) % buckets.max(1)
}

/// Fewest buckets in an offer. A node that has just started holds one entry; with a single
/// bucket its offer could not say which buckets are empty, and the responder would have to
/// list its whole catalog before sending it. Sixteen buckets (192 bytes) let it push 15/16 at
/// once.
const MIN_BUCKETS: usize = 16;

/// How many buckets to use for a catalog of `entries` entries.
pub(crate) fn buckets_for(entries: usize, max: u16) -> u16 {
    let wanted = (entries / ENTRIES_PER_BUCKET)
        .max(MIN_BUCKETS)
        .next_power_of_two();
    u16::try_from(wanted)
        .unwrap_or(u16::MAX)
        .clamp(1, max.max(1))
}

/// The fingerprint table of a catalog.
pub(crate) fn fingerprints(catalog: &Catalog, buckets: u16) -> Vec<u8> {
    let mut table = vec![(0u32, 0u64); usize::from(buckets)];
    for (peer, _, hash) in catalog.digest_items() {
        let slot = &mut table[usize::from(bucket_of(&peer, buckets))];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 ^= hash;
    }
    let mut out = Vec::with_capacity(table.len() * BUCKET_BYTES);
    for (count, hash) in table {
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&hash.to_be_bytes());
    }
    out
}

/// The buckets whose fingerprints differ from `theirs` (which has the right length).
pub(crate) fn differing_buckets(catalog: &Catalog, buckets: u16, theirs: &[u8]) -> Vec<u16> {
    let ours = fingerprints(catalog, buckets);
    ours.chunks_exact(BUCKET_BYTES)
        .zip(theirs.chunks_exact(BUCKET_BYTES))
        .zip(0u16..)
        .filter(|((a, b), _)| a != b)
        .map(|(_, index)| index)
        .collect()
}

/// The buckets a fingerprint table (of the right length) reports empty.
pub(crate) fn empty_buckets(table: &[u8]) -> Vec<u16> {
    table
        .chunks_exact(BUCKET_BYTES)
        .zip(0u16..)
        .filter(|(bucket, _)| bucket[..4] == [0, 0, 0, 0])
        .map(|(_, index)| index)
        .collect()
}

/// The peers we hold (the local one included) in the given buckets, in peer id order.
pub(crate) fn peers_in(catalog: &Catalog, buckets: u16, which: &[u16]) -> Vec<PeerId> {
    let mut peers: Vec<PeerId> = catalog
        .digest_items()
        .filter(|(peer, _, _)| which.binary_search(&bucket_of(peer, buckets)).is_ok())
        .map(|(peer, _, _)| peer)
        .collect();
    peers.sort_unstable();
    peers
}

/// Our `(peer, version)` pairs in the given buckets, in peer id order.
pub(crate) fn items_in(catalog: &Catalog, buckets: u16, differing: &[u16]) -> Vec<DigestItem> {
    let mut items: Vec<DigestItem> = catalog
        .digest_items()
        .filter(|(peer, _, _)| differing.binary_search(&bucket_of(peer, buckets)).is_ok())
        .map(|(peer, version, _)| DigestItem(peer, version))
        .collect();
    items.sort_unstable_by_key(|DigestItem(peer, _)| *peer);
    items
}

/// Compares our pairs in the differing buckets with theirs: which peers to send them (they lack
/// the entry or hold it older) and which to ask for (we lack it or hold it older).
pub(crate) fn compare(
    catalog: &Catalog,
    buckets: u16,
    differing: &[u16],
    theirs: &[DigestItem],
) -> (Vec<PeerId>, Vec<PeerId>) {
    let their_versions: std::collections::BTreeMap<PeerId, Version> =
        theirs.iter().map(|DigestItem(p, v)| (*p, *v)).collect();
    let send = items_in(catalog, buckets, differing)
        .into_iter()
        .filter(|DigestItem(peer, version)| {
            their_versions
                .get(peer)
                .is_none_or(|theirs| theirs < version)
        })
        .map(|DigestItem(peer, _)| peer)
        .collect();
    let want = their_versions
        .iter()
        .filter(|(peer, version)| catalog.version_of(peer).is_none_or(|ours| ours < **version))
        .map(|(peer, _)| *peer)
        .collect();
    (send, want)
}

/// The signed entries for `peers` that we hold, in the order given, stopping before the total
/// would exceed `budget` bytes (entries left out arrive by announcement instead).
pub(crate) fn entries_for(catalog: &Catalog, peers: &[PeerId], budget: usize) -> Vec<SharedEntry> {
    let mut used = 0usize;
    let mut out = Vec::new();
    for peer in peers {
        let Some(entry) = catalog.signed_entry(peer) else {
            continue;
        };
        // Envelope overhead: signer, signature and CBOR headers, about 120 bytes.
        let size = entry.payload_bytes().len() + 128;
        if used + size > budget {
            break;
        }
        used += size;
        out.push(entry.clone());
    }
    out
}
