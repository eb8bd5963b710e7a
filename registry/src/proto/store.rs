//! The bounded store of provider records and removals a node holds for others.
//!
//! # Policy when full
//! The store keeps one entry per (key, provider): the provider's newest record, or the removal
//! that withdrew it. Three bounds apply to new entries (a newer version of an entry already held
//! replaces it in place and is always accepted, so a provider can always refresh or withdraw):
//!
//! - `max_per_key` providers per key: a new provider for a full key is refused
//!   ([`Refusal::KeyFull`]). Incumbents keep their slots and refresh them by republishing, so a
//!   flood of fresh identities cannot push live providers out; it can at most take free slots.
//! - `max_per_provider` entries per provider over all keys ([`Refusal::ProviderQuota`]): one peer
//!   cannot fill the store.
//! - `max_total` entries ([`Refusal::StoreFull`]).
//!
//! Expired entries are swept before a bound is enforced, so a bound only ever counts live data.
//! Nothing is evicted to make room: refusing is visible to the sender (it is in the answer),
//! evicting would silently drop someone else's record.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};
use weft_transport::PeerId;

use super::{
    config::{RecordLimits, StoreConfig},
    id::{DhtId, Time},
    record::{RecordError, SignedRecord, SignedRemoval},
};

/// One (key, provider) slot.
#[derive(Debug, Clone)]
enum Entry {
    Live(SignedRecord),
    Removed(SignedRemoval),
}

impl Entry {
    fn expires_at(&self) -> Time {
        match self {
            Entry::Live(record) => record.payload().expires_at(),
            Entry::Removed(removal) => removal.payload().expires_at(),
        }
    }

    fn issued_at(&self) -> Time {
        match self {
            Entry::Live(record) => record.payload().issued_at,
            Entry::Removed(removal) => removal.payload().issued_at,
        }
    }
}

/// What storing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Stored {
    /// A new entry.
    New,
    /// A newer version replaced the one held.
    Updated,
    /// The same version was already held.
    Unchanged,
}

/// Why the store refused an entry. Sent back to whoever tried to store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The record or removal is invalid.
    #[error("invalid: {0}")]
    Invalid(RecordError),
    /// A newer entry from this provider is held.
    #[error("a newer entry is held")]
    Outdated,
    /// The provider withdrew this record (a removal at least as new is held).
    #[error("withdrawn by its provider")]
    Withdrawn,
    /// The key has `max_per_key` providers.
    #[error("key is full")]
    KeyFull,
    /// The provider has `max_per_provider` entries here.
    #[error("provider quota reached")]
    ProviderQuota,
    /// The store has `max_total` entries.
    #[error("store is full")]
    StoreFull,
}

/// Records and removals held for others, bounded (see the module docs for the policy).
#[derive(Debug)]
pub struct Store {
    config: StoreConfig,
    limits: RecordLimits,
    entries: BTreeMap<DhtId, BTreeMap<PeerId, Entry>>,
    per_provider: BTreeMap<PeerId, usize>,
    total: usize,
}

impl Store {
    /// An empty store.
    pub fn new(config: StoreConfig, limits: RecordLimits) -> Self {
        Self {
            config,
            limits,
            entries: BTreeMap::new(),
            per_provider: BTreeMap::new(),
            total: 0,
        }
    }

    /// Entries held (records and removals).
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Validates and stores a record.
    pub fn put_record(&mut self, record: SignedRecord, now: Time) -> Result<Stored, Refusal> {
        let payload = record.payload();
        payload
            .validate(now, &self.limits)
            .map_err(Refusal::Invalid)?;
        let (key, provider, issued_at) = (payload.key, payload.provider, payload.issued_at);
        match self.get(&key, &provider, now) {
            Some(held) if self.issued_in_the_future(held, now) => {
                self.replace(key, provider, Entry::Live(record));
                Ok(Stored::Updated)
            }
            Some(Entry::Live(old)) => {
                let old_issued = old.payload().issued_at;
                if issued_at > old_issued {
                    self.replace(key, provider, Entry::Live(record));
                    Ok(Stored::Updated)
                } else if issued_at == old_issued {
                    Ok(Stored::Unchanged)
                } else {
                    Err(Refusal::Outdated)
                }
            }
            Some(Entry::Removed(removal)) => {
                if issued_at > removal.payload().issued_at {
                    self.replace(key, provider, Entry::Live(record));
                    Ok(Stored::Updated)
                } else {
                    Err(Refusal::Withdrawn)
                }
            }
            None => {
                self.make_room(&key, &provider, now)?;
                self.insert_new(key, provider, Entry::Live(record));
                Ok(Stored::New)
            }
        }
    }

    /// Validates and stores a removal, deleting the record it covers.
    pub fn put_removal(&mut self, removal: SignedRemoval, now: Time) -> Result<Stored, Refusal> {
        let payload = removal.payload();
        payload
            .validate(now, &self.limits)
            .map_err(Refusal::Invalid)?;
        let (key, provider, issued_at) = (payload.key, payload.provider, payload.issued_at);
        match self.get(&key, &provider, now) {
            Some(held) if self.issued_in_the_future(held, now) => {
                self.replace(key, provider, Entry::Removed(removal));
                Ok(Stored::Updated)
            }
            Some(Entry::Live(record)) => {
                if record.payload().issued_at <= issued_at {
                    self.replace(key, provider, Entry::Removed(removal));
                    Ok(Stored::Updated)
                } else {
                    // The provider registered again after withdrawing.
                    Err(Refusal::Outdated)
                }
            }
            Some(Entry::Removed(old)) => {
                let old_issued = old.payload().issued_at;
                if issued_at > old_issued {
                    self.replace(key, provider, Entry::Removed(removal));
                    Ok(Stored::Updated)
                } else if issued_at == old_issued {
                    Ok(Stored::Unchanged)
                } else {
                    Err(Refusal::Outdated)
                }
            }
            None => {
                self.make_room(&key, &provider, now)?;
                self.insert_new(key, provider, Entry::Removed(removal));
                Ok(Stored::New)
            }
        }
    }

    /// The live records under `key` at `now`, at most `max_per_key`.
    pub fn providers(&self, key: &DhtId, now: Time) -> Vec<SignedRecord> {
        let Some(slots) = self.entries.get(key) else {
            return Vec::new();
        };
        slots
            .values()
            .filter_map(|entry| match entry {
                Entry::Live(record)
                    if record.payload().expires_at() > now
                        && !self.issued_in_the_future(entry, now) =>
                {
                    Some(record.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Every live record and removal held under `key`, for hand-over to a closer node.
    pub fn entries_for(&self, key: &DhtId, now: Time) -> (Vec<SignedRecord>, Vec<SignedRemoval>) {
        let mut records = Vec::new();
        let mut removals = Vec::new();
        for entry in self
            .entries
            .get(key)
            .into_iter()
            .flat_map(|slots| slots.values())
        {
            if entry.expires_at() <= now || self.issued_in_the_future(entry, now) {
                continue;
            }
            match entry {
                Entry::Live(record) => records.push(record.clone()),
                Entry::Removed(removal) => removals.push(removal.clone()),
            }
        }
        (records, removals)
    }

    /// The keys held, in order.
    pub fn keys(&self) -> impl Iterator<Item = &DhtId> {
        self.entries.keys()
    }

    /// Drops every entry that has expired at `now`.
    pub fn expire(&mut self, now: Time) {
        let keys: Vec<DhtId> = self.entries.keys().copied().collect();
        for key in keys {
            self.expire_key(&key, now);
        }
    }

    fn expire_key(&mut self, key: &DhtId, now: Time) {
        let Some(slots) = self.entries.get_mut(key) else {
            return;
        };
        let dead: Vec<PeerId> = slots
            .iter()
            .filter(|(_, entry)| entry.expires_at() <= now)
            .map(|(provider, _)| *provider)
            .collect();
        for provider in dead {
            slots.remove(&provider);
            self.total -= 1;
            if let Some(count) = self.per_provider.get_mut(&provider) {
                *count -= 1;
                if *count == 0 {
                    self.per_provider.remove(&provider);
                }
            }
        }
        if slots.is_empty() {
            self.entries.remove(key);
        }
    }

    /// Whether `entry` was issued further in the future than the allowed skew: our wall clock
    /// stepped back since it arrived (or its provider's did, and stepped back since). Such an
    /// entry no longer validates here, so any valid entry of its provider replaces it, and it
    /// is not handed out. Otherwise a provider whose clock stepped back could not replace its
    /// own record until the clock caught up.
    fn issued_in_the_future(&self, entry: &Entry, now: Time) -> bool {
        entry.issued_at() > now + Duration::from_millis(self.limits.max_clock_skew_ms)
    }

    /// The unexpired entry for (key, provider).
    fn get(&self, key: &DhtId, provider: &PeerId, now: Time) -> Option<&Entry> {
        self.entries
            .get(key)?
            .get(provider)
            .filter(|entry| entry.expires_at() > now)
    }

    fn replace(&mut self, key: DhtId, provider: PeerId, entry: Entry) {
        if let Some(slot) = self
            .entries
            .get_mut(&key)
            .and_then(|s| s.get_mut(&provider))
        {
            *slot = entry;
        }
    }

    /// Enforces the bounds for a new (key, provider) entry, sweeping expired entries first.
    fn make_room(&mut self, key: &DhtId, provider: &PeerId, now: Time) -> Result<(), Refusal> {
        // An expired entry for this very slot still counts until swept.
        self.expire_key(key, now);
        let key_len = self.entries.get(key).map_or(0, BTreeMap::len);
        if key_len >= self.config.max_per_key {
            return Err(Refusal::KeyFull);
        }
        if self.count_of(provider) >= self.config.max_per_provider
            || self.total >= self.config.max_total
        {
            // Rare: sweep everything once before refusing.
            self.expire(now);
        }
        if self.count_of(provider) >= self.config.max_per_provider {
            return Err(Refusal::ProviderQuota);
        }
        if self.total >= self.config.max_total {
            return Err(Refusal::StoreFull);
        }
        Ok(())
    }

    fn count_of(&self, provider: &PeerId) -> usize {
        self.per_provider.get(provider).copied().unwrap_or(0)
    }

    fn insert_new(&mut self, key: DhtId, provider: PeerId, entry: Entry) {
        self.entries.entry(key).or_default().insert(provider, entry);
        *self.per_provider.entry(provider).or_insert(0) += 1;
        self.total += 1;
    }
}
