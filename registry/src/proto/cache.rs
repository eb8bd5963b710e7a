//! The lookup cache: what the last network lookup of a name found, served again for a while.
//!
//! Policy: a name's entry is served while its network lookup is younger than
//! [`Config::cache_ttl_ms`] (monotonic time), and only the records still live by the wall clock;
//! at most [`Config::max_cache_entries`] names, the oldest fetch dropped first when full;
//! registering or withdrawing a name here drops its entry. A cached answer can therefore name a
//! provider that withdrew up to the TTL ago; a network lookup ([`Node::lookup`]) never can once
//! the withdrawal completed.

use std::{collections::BTreeMap, time::Duration};

use super::{
    config::Config,
    id::Now,
    io::{CommandError, Event, OpId},
    lookup::LookupStats,
    node::Node,
    record::{SignedRecord, check_name_len},
};

/// One name's last network lookup.
#[derive(Debug)]
struct Entry {
    /// Monotonic: when the lookup ended.
    fetched: Duration,
    records: Vec<SignedRecord>,
}

/// Names and what their last network lookup found, bounded (see the module docs).
#[derive(Debug)]
pub(super) struct LookupCache {
    entries: BTreeMap<String, Entry>,
    ttl: Duration,
    max: usize,
}

impl LookupCache {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            entries: BTreeMap::new(),
            ttl: Duration::from_millis(config.cache_ttl_ms),
            max: config.max_cache_entries,
        }
    }

    /// The records of `name`'s last lookup, if it is younger than the TTL.
    fn fresh(&self, name: &str, now: Now) -> Option<&[SignedRecord]> {
        let entry = self.entries.get(name)?;
        (now.mono.saturating_sub(entry.fetched) < self.ttl).then_some(entry.records.as_slice())
    }

    /// Keeps what a lookup of `name` found at `now`, dropping the oldest entry when full.
    pub(super) fn insert(&mut self, name: String, records: Vec<SignedRecord>, now: Now) {
        if self.max == 0 || self.ttl.is_zero() {
            return;
        }
        if !self.entries.contains_key(&name) && self.entries.len() >= self.max {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.fetched)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        let fetched = now.mono;
        self.entries.insert(name, Entry { fetched, records });
    }

    /// Forgets `name` (it was registered or withdrawn here).
    pub(super) fn remove(&mut self, name: &str) {
        self.entries.remove(name);
    }

    /// Names cached.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Node {
    /// Looks `name` up like [`Node::lookup`], but answers from the cache when a network lookup
    /// of it ended less than [`Config::cache_ttl_ms`] ago: then the operation's
    /// [`Event::Providers`] (the records still live) and [`Event::LookupDone`] (with no request
    /// in its stats) are among the outputs at once.
    pub fn lookup_cached(&mut self, name: &str, now: Now) -> Result<OpId, CommandError> {
        check_name_len(name, &self.config.limits)?;
        let Some(records) = self.cache.fresh(name, now) else {
            return self.lookup(name, now);
        };
        let live: Vec<SignedRecord> = records
            .iter()
            .filter(|r| r.payload().expires_at() > now.wall)
            .cloned()
            .collect();
        let op = self.new_op_id();
        if !live.is_empty() {
            self.emit(Event::Providers { op, records: live });
        }
        let stats = LookupStats::default();
        self.emit(Event::LookupDone { op, stats });
        Ok(op)
    }

    /// Names in the lookup cache.
    pub fn cached_names(&self) -> usize {
        self.cache.len()
    }
}
