//! The signed records discovery spreads: a peer's [`PeerEntry`] and its [`Departure`].

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
};

use serde::{Deserialize, Serialize};
use weft_transport::{
    DomainTag, NetworkId, PeerAddr, PeerId, RelayUrl, Signed, SignedPayload, cbor_encode,
};

use super::{config::Limits, time::Time};

/// The version of the entry format, written into every entry (its `protocol` field).
pub const ENTRY_VERSION: u32 = 1;

/// Which copy of a peer's entry is newer.
///
/// `started` is the wall-clock millisecond at which the owner's process started, `seq` counts
/// content changes (addresses, tags, metadata) within that process. A restart therefore always
/// wins over anything the previous run signed, and no counter has to survive a restart.
/// Re-announcing unchanged content keeps the version and only moves the entry's `timestamp`,
/// so two catalogs that hold the same content agree on versions, and delta sync sees no
/// difference between them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Version {
    /// Process start, wall-clock milliseconds.
    pub started: u64,
    /// Content changes since the start.
    pub seq: u64,
}

impl Version {
    /// The version `(started, seq)`.
    pub const fn new(started: u64, seq: u64) -> Self {
        Self { started, seq }
    }

    /// The next content version.
    pub fn next(self) -> Self {
        Self {
            started: self.started,
            seq: self.seq.saturating_add(1),
        }
    }
}

/// A peer's self-description: how to reach it and what it offers.
///
/// Always travels as `Signed<PeerEntry>`, signed by `peer` in the domain
/// `weft/discovery/entry/1`; an entry signed by any other key does not decode. The signed bytes
/// are the canonical CBOR of this struct (fields in declaration order, sets and maps sorted),
/// and a receiver refuses an entry whose bytes are not canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// The peer this entry describes, and the only key that may sign it.
    pub peer: PeerId,
    /// The network the peer belongs to.
    pub network: NetworkId,
    /// Direct UDP addresses.
    pub direct: BTreeSet<SocketAddr>,
    /// A relay the peer is reachable through.
    pub relay: Option<RelayUrl>,
    /// Content version: newer wins.
    pub version: Version,
    /// When the owner signed this copy (its wall clock). Moves with every announcement; a newer
    /// timestamp at the same version refreshes the entry without changing it.
    pub timestamp: Time,
    /// Free-form labels (roles, capabilities), bounded by [`Limits`].
    pub tags: BTreeSet<String>,
    /// Free-form key/values, bounded by [`Limits`].
    pub metadata: BTreeMap<String, String>,
    /// The discovery protocol version the peer speaks.
    pub protocol: u32,
}

impl PeerEntry {
    /// The address to dial this peer at.
    pub fn addr(&self) -> PeerAddr {
        PeerAddr {
            id: self.peer,
            direct: self.direct.clone(),
            relay: self.relay.clone(),
        }
    }

    /// `(version, timestamp)`: the order in which copies of one peer's entry supersede each other.
    pub fn freshness(&self) -> (Version, Time) {
        (self.version, self.timestamp)
    }

    /// Whether the two copies say the same thing (everything but the timestamp is equal).
    pub fn same_content(&self, other: &PeerEntry) -> bool {
        self.peer == other.peer
            && self.network == other.network
            && self.direct == other.direct
            && self.relay == other.relay
            && self.version == other.version
            && self.tags == other.tags
            && self.metadata == other.metadata
            && self.protocol == other.protocol
    }

    /// Checks the entry against `limits`.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), EntryError> {
        if self.tags.len() > limits.max_tags {
            return Err(EntryError::TooManyTags(self.tags.len()));
        }
        if let Some(tag) = self.tags.iter().find(|t| t.len() > limits.max_tag_len) {
            return Err(EntryError::TagTooLong(tag.len()));
        }
        if self.metadata.len() > limits.max_metadata_entries {
            return Err(EntryError::TooManyMetadataEntries(self.metadata.len()));
        }
        if let Some(key) = self
            .metadata
            .keys()
            .find(|k| k.len() > limits.max_metadata_key_len)
        {
            return Err(EntryError::MetadataKeyTooLong(key.len()));
        }
        let metadata_bytes: usize = self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if metadata_bytes > limits.max_metadata_bytes {
            return Err(EntryError::MetadataTooLarge(metadata_bytes));
        }
        if self.direct.len() > limits.max_direct_addrs {
            return Err(EntryError::TooManyAddresses(self.direct.len()));
        }
        Ok(())
    }
}

impl SignedPayload for PeerEntry {
    const DOMAIN: DomainTag = DomainTag::new("weft/discovery/entry/1");

    fn required_signer(&self) -> Option<PeerId> {
        Some(self.peer)
    }
}

/// A peer's signed notice that it is leaving: receivers drop its entry at once instead of
/// waiting for the purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    /// The departing peer, and the only key that may sign the notice.
    pub peer: PeerId,
    /// Its network.
    pub network: NetworkId,
    /// The last version it announced. Receivers holding a newer version (a restart) ignore it.
    pub version: Version,
    /// When it left (its wall clock). Notices older than the allowed drift are ignored, so an
    /// old notice replayed later cannot remove the peer.
    pub timestamp: Time,
}

impl SignedPayload for Departure {
    const DOMAIN: DomainTag = DomainTag::new("weft/discovery/departure/1");

    fn required_signer(&self) -> Option<PeerId> {
        Some(self.peer)
    }
}

/// Why an entry that verified is still refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// More tags than allowed.
    #[error("{0} tags is more than allowed")]
    TooManyTags(usize),
    /// A tag is too long.
    #[error("tag of {0} bytes is longer than allowed")]
    TagTooLong(usize),
    /// More metadata keys than allowed.
    #[error("{0} metadata entries is more than allowed")]
    TooManyMetadataEntries(usize),
    /// A metadata key is too long.
    #[error("metadata key of {0} bytes is longer than allowed")]
    MetadataKeyTooLong(usize),
    /// Metadata keys and values together are too large.
    #[error("{0} bytes of metadata is more than allowed")]
    MetadataTooLarge(usize),
    /// More direct addresses than allowed.
    #[error("{0} direct addresses is more than allowed")]
    TooManyAddresses(usize),
    /// The signed payload is too large.
    #[error("entry of {0} bytes is larger than allowed")]
    TooLarge(usize),
    /// The signed bytes are not the canonical encoding of the entry they decode to.
    #[error("entry bytes are not canonical CBOR")]
    NotCanonical,
}

/// Whether the signed bytes are the canonical encoding of the entry they decode to.
pub(crate) fn is_canonical(entry: &Signed<PeerEntry>) -> bool {
    matches!(cbor_encode(entry.payload()), Ok(canonical) if canonical == entry.payload_bytes())
}
