//! Signed provider records and signed removals.
//!
//! Both travel inside a [`Signed`] envelope whose `required_signer` is the provider, so a record
//! can only be made by the provider it names, and a decoder never hands out one whose signature
//! fails. What the envelope cannot know (expiry, sizes, key and name agreeing) is checked by
//! [`ProviderRecord::validate`] and [`Removal::validate`] before anything is stored or returned.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};
use weft_transport::{DomainTag, PeerAddr, PeerId, RelayUrl, Signed, SignedPayload};

use super::{
    config::RecordLimits,
    id::{DhtId, Time},
};

/// A provider's statement "I provide `name`, reach me here, until `issued_at + ttl`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecord {
    /// `blake3(name)`: where the record lives in the DHT.
    pub key: DhtId,
    /// The human-readable name (bounded by [`RecordLimits::max_name_len`]).
    pub name: String,
    /// The provider; it must be the signer.
    pub provider: PeerId,
    /// Direct addresses of the provider.
    pub addresses: BTreeSet<SocketAddr>,
    /// The provider's relay, if any.
    pub relay: Option<RelayUrl>,
    /// Application metadata (bounded by [`RecordLimits::max_metadata_len`]).
    #[serde(with = "serde_bytes")]
    pub metadata: Vec<u8>,
    /// When the provider signed it. A newer record from the same provider replaces an older one.
    pub issued_at: Time,
    /// How long after `issued_at` the record is valid, in milliseconds.
    pub ttl_ms: u64,
}

impl SignedPayload for ProviderRecord {
    const DOMAIN: DomainTag = DomainTag::new("weft/registry/provider/1");

    fn required_signer(&self) -> Option<PeerId> {
        Some(self.provider)
    }
}

/// Why a record or a removal was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The name is longer than allowed.
    #[error("name is {0} bytes, over the limit")]
    NameTooLong(usize),
    /// The key is not `blake3(name)`.
    #[error("key does not match the name")]
    KeyMismatch,
    /// The metadata is larger than allowed.
    #[error("metadata is {0} bytes, over the limit")]
    MetadataTooLarge(usize),
    /// More direct addresses than allowed.
    #[error("{0} addresses, over the limit")]
    TooManyAddresses(usize),
    /// The time to live is zero or above the maximum.
    #[error("ttl of {0} ms is out of range")]
    BadTtl(u64),
    /// The record's time has passed.
    #[error("record expired")]
    Expired,
    /// The record was issued further in the future than clock skew explains.
    #[error("record issued in the future")]
    FromTheFuture,
}

impl ProviderRecord {
    /// When the record stops being valid.
    pub fn expires_at(&self) -> Time {
        self.issued_at + Duration::from_millis(self.ttl_ms)
    }

    /// The provider's address, for dialling it.
    pub fn provider_addr(&self) -> PeerAddr {
        PeerAddr {
            id: self.provider,
            direct: self.addresses.clone(),
            relay: self.relay.clone(),
        }
    }

    /// Checks everything the signature does not: sizes, key, ttl, and that the record is live at
    /// `now`.
    pub fn validate(&self, now: Time, limits: &RecordLimits) -> Result<(), RecordError> {
        check_name(&self.name, &self.key, limits)?;
        if self.metadata.len() > limits.max_metadata_len {
            return Err(RecordError::MetadataTooLarge(self.metadata.len()));
        }
        if self.addresses.len() > limits.max_addresses {
            return Err(RecordError::TooManyAddresses(self.addresses.len()));
        }
        if self.ttl_ms == 0 || self.ttl_ms > limits.max_ttl_ms {
            return Err(RecordError::BadTtl(self.ttl_ms));
        }
        check_time(self.issued_at, now, limits)?;
        if self.expires_at() <= now {
            return Err(RecordError::Expired);
        }
        Ok(())
    }
}

/// A provider's signed statement "I no longer provide `name`": it deletes every record of
/// this provider under this key issued at or before `issued_at`, and keeps such a record from
/// being stored again until `until`, when every such record has expired anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// `blake3(name)`.
    pub key: DhtId,
    /// The name withdrawn.
    pub name: String,
    /// The provider withdrawing; it must be the signer.
    pub provider: PeerId,
    /// When the provider withdrew.
    pub issued_at: Time,
    /// When the last record it removes expires; holders keep the removal until then. At most
    /// `issued_at + max_ttl`.
    pub until: Time,
}

impl SignedPayload for Removal {
    const DOMAIN: DomainTag = DomainTag::new("weft/registry/removal/1");

    fn required_signer(&self) -> Option<PeerId> {
        Some(self.provider)
    }
}

impl Removal {
    /// How long holders keep the removal: until every record it can cover has expired.
    pub fn expires_at(&self) -> Time {
        self.until
    }

    /// Checks the name, key and times of a removal.
    pub fn validate(&self, now: Time, limits: &RecordLimits) -> Result<(), RecordError> {
        check_name(&self.name, &self.key, limits)?;
        check_time(self.issued_at, now, limits)?;
        let span = self.until.since(self.issued_at);
        if self.until < self.issued_at || span > Duration::from_millis(limits.max_ttl_ms) {
            return Err(RecordError::BadTtl(
                u64::try_from(span.as_millis()).unwrap_or(u64::MAX),
            ));
        }
        if self.until <= now {
            return Err(RecordError::Expired);
        }
        Ok(())
    }
}

/// Checks a name against the limits (used before lookups and registrations too).
pub(crate) fn check_name_len(name: &str, limits: &RecordLimits) -> Result<(), RecordError> {
    if name.len() > limits.max_name_len {
        return Err(RecordError::NameTooLong(name.len()));
    }
    Ok(())
}

fn check_name(name: &str, key: &DhtId, limits: &RecordLimits) -> Result<(), RecordError> {
    check_name_len(name, limits)?;
    if DhtId::of_name(name) != *key {
        return Err(RecordError::KeyMismatch);
    }
    Ok(())
}

fn check_time(issued_at: Time, now: Time, limits: &RecordLimits) -> Result<(), RecordError> {
    if issued_at > now + Duration::from_millis(limits.max_clock_skew_ms) {
        return Err(RecordError::FromTheFuture);
    }
    Ok(())
}

/// A provider record with its verified signature.
pub type SignedRecord = Signed<ProviderRecord>;
/// A removal with its verified signature.
pub type SignedRemoval = Signed<Removal>;
