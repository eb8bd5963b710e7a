//! Admission to a full catalog: which held entry, if any, gives way to a newcomer (the policy
//! is in the catalog's module docs). Only what this node saw itself counts as evidence of
//! liveness, so throwaway identities cannot mint it.

use std::time::Duration;

use weft_transport::PeerId;

use super::{Catalog, EVICTION_SCAN, Record, Source};
use crate::proto::{table::Key, time::millis};

/// How much evidence of liveness this node holds for an entry: what decides whether it may be
/// evicted for a newcomer when the catalog is full (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// A neighbour, or answered us directly within `purge_after`: never evicted.
    Proven,
    /// Refreshed after it had been held for `stale_after`: never evicted (it leaves when it
    /// expires or departs).
    Live,
    /// Not live, refreshed within `stale_after`: evicted only for a direct newcomer.
    OnProbation,
    /// Not live, not refreshed within `stale_after`: evicted for any newcomer.
    Stale,
}

impl Catalog {
    /// Makes room for one new entry, following the policy in the module docs. One pass over
    /// the catalog, only when it is full, and for relayed newcomers at most once per
    /// `purge_tick` while it finds nothing.
    pub(super) fn evict_for(&mut self, source: Source, now: Duration) -> bool {
        let direct = source == Source::Direct;
        if !direct && now < self.relayed_refused_until {
            return false;
        }
        let found = self.find_victim(direct, now);
        if !found && !direct {
            self.relayed_refused_until = now.saturating_add(self.config.purge_tick);
        }
        found
    }

    /// Evicts one victim among the `EVICTION_SCAN` entries soonest to expire (ties by peer id):
    /// the first stale one, else (for a direct newcomer only) the first on probation.
    fn find_victim(&mut self, direct: bool, now: Duration) -> bool {
        let mut soonest: Vec<(u64, PeerId)> = self
            .iter_unordered()
            .map(|(p, r)| (r.expires_ms(), *p))
            .collect();
        if soonest.len() > EVICTION_SCAN {
            soonest.select_nth_unstable(EVICTION_SCAN - 1);
            soonest.truncate(EVICTION_SCAN);
        }
        soonest.sort_unstable();
        let mut on_probation = None;
        let mut stale = None;
        for (_, peer) in &soonest {
            let Some(record) = self.entries.get(&Key::of(peer)) else {
                continue;
            };
            match self.standing(record, now) {
                Standing::Stale => {
                    stale = Some(*peer);
                    break;
                }
                Standing::OnProbation if on_probation.is_none() => on_probation = Some(*peer),
                _ => {}
            }
        }
        let Some(victim) = stale.or(on_probation.filter(|_| direct)) else {
            return false;
        };
        self.remove(&victim);
        self.evicted = Some(victim);
        true
    }

    /// The class of a held entry at `now` (see the module docs).
    fn standing(&self, record: &Record, now: Duration) -> Standing {
        if record.is_proven(now, self.config.purge_after) {
            return Standing::Proven;
        }
        let now_ms = millis(now);
        let stale_after = millis(self.config.stale_after);
        if u64::from(record.held) >= stale_after {
            Standing::Live
        } else if now_ms.saturating_sub(record.refreshed) >= stale_after {
            Standing::Stale
        } else {
            Standing::OnProbation
        }
    }
}
