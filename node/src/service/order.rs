//! In which order a call tries a name's providers: nearest first by measured round trip.
//!
//! - Providers whose attempt failed in the last [`FAILED_RECENTLY`] come last, whatever their
//!   round trip: a provider that died keeps its record (and its last measured round trip) until
//!   the record expires, and without this every call after a failover would try it first again.
//! - This node, when it provides the name, comes first (no network at all).
//! - Then providers with a round trip measured by discovery's ping, fastest first.
//! - Then providers without a measurement.
//! - Ties (and the unmeasured) in peer-id order, so the order is stable from call to call.
//!
//! Measurements come from discovery's catalog, which keeps the last ping's round trip per
//! peer. A call does not ping every provider: at most `max_pings` unmeasured ones (the first in
//! the order above), all at once, waiting at most `ping_wait`; a pong that comes later is
//! still recorded in the catalog and orders the next call.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use tokio::{task::JoinSet, time::Instant};
use weft_discovery::Discovery;
use weft_registry::ProviderRecord;
use weft_transport::{Endpoint, PeerAddr, PeerId};

/// A provider to try, with what is known of its distance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) addr: PeerAddr,
    /// The round trip discovery measured; zero for this node.
    pub(crate) rtt: Option<Duration>,
    /// An attempt at it failed lately ([`RecentFailures`]).
    pub(crate) failed_recently: bool,
}

/// Sorts `candidates` by the policy above (this node has an `rtt` of zero).
pub(crate) fn sort(candidates: &mut [Candidate]) {
    candidates.sort_by_key(|candidate| {
        (
            candidate.failed_recently,
            candidate.rtt.is_none(),
            candidate.rtt,
            candidate.addr.id,
        )
    });
}

/// How long a provider whose attempt failed is tried after the others.
pub(crate) const FAILED_RECENTLY: Duration = Duration::from_secs(60);

/// Providers remembered as failed, at most; the oldest failure is forgotten first (a provider
/// can only get itself remembered, by failing).
const MAX_RECENT_FAILURES: usize = 256;

/// The providers whose attempts failed lately, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RecentFailures {
    failed: Mutex<VecDeque<(PeerId, Instant)>>,
}

impl RecentFailures {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(PeerId, Instant)>> {
        // A plain list: a panic elsewhere leaves it usable.
        self.failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An attempt at `peer` failed at `now`.
    pub(crate) fn failed(&self, peer: PeerId, now: Instant) {
        let mut failed = self.lock();
        failed.retain(|(known, _)| *known != peer);
        failed.push_back((peer, now));
        while failed.len() > MAX_RECENT_FAILURES {
            failed.pop_front();
        }
    }

    /// An attempt at `peer` succeeded: it is no longer tried last.
    pub(crate) fn answered(&self, peer: PeerId) {
        self.lock().retain(|(known, _)| *known != peer);
    }

    /// Whether an attempt at `peer` failed within [`FAILED_RECENTLY`] of `now`.
    pub(crate) fn is_recent(&self, peer: PeerId, now: Instant) -> bool {
        self.lock().iter().any(|(known, at)| {
            *known == peer && now.saturating_duration_since(*at) < FAILED_RECENTLY
        })
    }
}

/// One candidate per provider: the newest record when a provider appears twice.
pub(crate) fn candidates(records: Vec<ProviderRecord>) -> Vec<Candidate> {
    let mut newest: BTreeMap<PeerId, ProviderRecord> = BTreeMap::new();
    for record in records {
        match newest.get(&record.provider) {
            Some(held) if held.issued_at >= record.issued_at => {}
            _ => {
                newest.insert(record.provider, record);
            }
        }
    }
    newest
        .into_values()
        .map(|record| Candidate {
            addr: record.provider_addr(),
            rtt: None,
            failed_recently: false,
        })
        .collect()
}

/// Fills in the round trips discovery knows (and pings up to `max_pings` unmeasured
/// providers, waiting `ping_wait` at most) and the recent failures, then sorts.
pub(crate) async fn order(
    me: PeerId,
    mut candidates: Vec<Candidate>,
    endpoint: &Endpoint,
    discovery: Option<&Discovery>,
    failures: &RecentFailures,
    max_pings: usize,
    ping_wait: Duration,
) -> Vec<Candidate> {
    let now = Instant::now();
    for candidate in &mut candidates {
        if candidate.addr.id == me {
            candidate.rtt = Some(Duration::ZERO);
        }
        candidate.failed_recently = failures.is_recent(candidate.addr.id, now);
    }
    if let Some(discovery) = discovery {
        if let Ok(catalog) = discovery.catalog().await {
            for candidate in &mut candidates {
                if candidate.rtt.is_none() {
                    candidate.rtt = catalog
                        .peers
                        .get(&candidate.addr.id)
                        .and_then(|record| record.rtt());
                }
            }
        }
        ping_unmeasured(&mut candidates, endpoint, discovery, max_pings, ping_wait).await;
    }
    sort(&mut candidates);
    candidates
}

async fn ping_unmeasured(
    candidates: &mut [Candidate],
    endpoint: &Endpoint,
    discovery: &Discovery,
    max_pings: usize,
    ping_wait: Duration,
) {
    // The unmeasured come in peer-id order after sorting: ping the ones tried first.
    sort(candidates);
    let mut pings = JoinSet::new();
    for candidate in candidates
        .iter()
        .filter(|candidate| candidate.rtt.is_none())
        .take(max_pings)
    {
        // Discovery pings by id: the record's address makes the provider dialable.
        endpoint.add_peer_addr(&candidate.addr);
        let (discovery, peer) = (discovery.clone(), candidate.addr.id);
        pings.spawn(async move { (peer, discovery.ping(peer).await) });
    }
    let deadline = tokio::time::Instant::now() + ping_wait;
    while let Ok(Some(Ok((peer, result)))) =
        tokio::time::timeout_at(deadline, pings.join_next()).await
    {
        if let Ok(rtt) = result
            && let Some(candidate) = candidates.iter_mut().find(|c| c.addr.id == peer)
        {
            candidate.rtt = Some(rtt);
        }
    }
    // The pings still out keep running on discovery's side and land in the catalog; the
    // tasks waiting for them are not needed.
    pings.detach_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_transport::SecretKey;

    fn candidate(rtt_ms: Option<u64>) -> Candidate {
        Candidate {
            addr: PeerAddr::from(SecretKey::generate().peer_id()),
            rtt: rtt_ms.map(Duration::from_millis),
            failed_recently: false,
        }
    }

    #[test]
    fn a_provider_that_failed_lately_is_tried_last() {
        let mut all = vec![candidate(Some(1)), candidate(Some(50)), candidate(None)];
        let dead = all[0].addr.id;
        let failures = RecentFailures::default();
        let at = Instant::now();
        failures.failed(dead, at);
        for candidate in &mut all {
            candidate.failed_recently = failures.is_recent(candidate.addr.id, at);
        }
        sort(&mut all);
        assert_eq!(all[2].addr.id, dead);
        // Forgotten after a while, or at once when it answers again.
        assert!(!failures.is_recent(dead, at + FAILED_RECENTLY));
        failures.answered(dead);
        assert!(!failures.is_recent(dead, at));
    }

    #[test]
    fn failures_remembered_are_bounded() {
        let failures = RecentFailures::default();
        let at = Instant::now();
        let first = SecretKey::generate().peer_id();
        failures.failed(first, at);
        for _ in 0..MAX_RECENT_FAILURES {
            failures.failed(SecretKey::generate().peer_id(), at);
        }
        assert_eq!(failures.lock().len(), MAX_RECENT_FAILURES);
        assert!(
            !failures.is_recent(first, at),
            "the oldest is forgotten first"
        );
    }

    #[test]
    fn measured_first_by_rtt_then_unmeasured_by_id() {
        let mut all = vec![
            candidate(None),
            candidate(Some(30)),
            candidate(None),
            candidate(Some(0)),
            candidate(Some(5)),
        ];
        sort(&mut all);
        let rtts: Vec<_> = all.iter().map(|c| c.rtt.map(|d| d.as_millis())).collect();
        assert_eq!(rtts, [Some(0), Some(5), Some(30), None, None]);
        assert!(all[3].addr.id < all[4].addr.id, "ties in peer-id order");
    }

    #[test]
    fn ties_are_stable_by_id() {
        let mut all: Vec<_> = (0..6).map(|_| candidate(Some(7))).collect();
        let mut again = all.clone();
        again.reverse();
        sort(&mut all);
        sort(&mut again);
        assert_eq!(all, again);
    }
}
