//! The Kademlia routing table: 256 k-buckets by XOR distance.
//!
//! Each bucket holds up to `k` peers, least recently seen first. A newcomer to a full bucket does
//! not evict anyone by itself: the table asks the caller to check the liveness of the least
//! recently seen peer ([`Insert::CheckLiveness`]). If that peer answers it moves to the back and
//! the newcomer is dropped (long-lived peers are the ones most likely to stay, and an attacker
//! cannot flush a bucket by making up peers); if it fails, it is removed and the newcomer takes
//! its place. While one check per bucket is under way, further newcomers to that bucket are
//! dropped: they will be offered again when they next talk to us.

use std::time::Duration;

use weft_transport::{PeerAddr, PeerId};

use super::id::{DhtId, Distance};

const BUCKETS: usize = 256;

#[derive(Debug, Clone)]
struct Entry {
    addr: PeerAddr,
    id: DhtId,
    last_seen: Duration,
    /// Requests failed in a row.
    failures: u32,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    /// A newcomer waiting for the liveness check of `entries[0]`.
    pending: Option<PeerAddr>,
    /// When a lookup last targeted this bucket's range (or a peer in it was inserted).
    last_active: Duration,
}

/// What inserting a peer did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Insert {
    /// A new peer in the table.
    Inserted,
    /// A known peer, now most recently seen (its address updated).
    Refreshed,
    /// The bucket is full: ping this least recently seen peer; call [`RoutingTable::failed`] if
    /// it does not answer (the newcomer then takes its place) or [`RoutingTable::seen`] if it
    /// does (the newcomer is dropped).
    CheckLiveness(PeerAddr),
    /// The bucket is full and a liveness check is under way: the newcomer is dropped.
    Dropped,
    /// The peer is this node.
    Myself,
}

/// A k-bucket routing table around one local id.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    local: DhtId,
    k: usize,
    max_failures: u32,
    buckets: Vec<Bucket>,
    len: usize,
}

impl RoutingTable {
    /// An empty table around `local` with buckets of `k` peers, created at `now` (buckets count
    /// as fresh until a refresh interval after it).
    pub fn new(local: DhtId, k: usize, now: Duration) -> Self {
        let bucket = Bucket {
            last_active: now,
            ..Bucket::default()
        };
        Self {
            local,
            k: k.max(1),
            max_failures: 1,
            buckets: vec![bucket; BUCKETS],
            len: 0,
        }
    }

    /// Keeps a failing peer until it failed `max` requests in a row (default 1), unless a
    /// newcomer waits for its bucket. A peer that answers starts from zero again.
    pub fn with_max_failures(mut self, max: u32) -> Self {
        self.max_failures = max.max(1);
        self
    }

    /// The local id.
    pub fn local(&self) -> DhtId {
        self.local
    }

    /// Peers in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `peer` is in the table.
    pub fn contains(&self, peer: &PeerId) -> bool {
        let id = DhtId::of_peer(peer);
        self.bucket_of(&id)
            .is_some_and(|b| self.buckets[b].entries.iter().any(|e| e.id == id))
    }

    fn bucket_of(&self, id: &DhtId) -> Option<usize> {
        self.local.distance(id).bucket()
    }

    /// Offers a peer we heard from (or were told about) at `now`. See [`Insert`].
    pub fn insert(&mut self, addr: PeerAddr, now: Duration) -> Insert {
        let id = DhtId::of_peer(&addr.id);
        let Some(index) = self.bucket_of(&id) else {
            return Insert::Myself;
        };
        let k = self.k;
        let bucket = &mut self.buckets[index];
        if let Some(pos) = bucket.entries.iter().position(|e| e.id == id) {
            let mut entry = bucket.entries.remove(pos);
            entry.last_seen = now;
            entry.failures = 0;
            merge_addr(&mut entry.addr, addr);
            bucket.entries.push(entry);
            return Insert::Refreshed;
        }
        if bucket.entries.len() < k {
            bucket.entries.push(Entry {
                addr,
                id,
                last_seen: now,
                failures: 0,
            });
            bucket.last_active = bucket.last_active.max(now);
            self.len += 1;
            return Insert::Inserted;
        }
        if bucket.pending.is_some() {
            return Insert::Dropped;
        }
        bucket.pending = Some(addr);
        Insert::CheckLiveness(bucket.entries[0].addr.clone())
    }

    /// Records that `peer` answered at `now`: it becomes most recently seen, and a pending
    /// newcomer waiting on its liveness check is dropped. Unknown peers are ignored (use
    /// [`RoutingTable::insert`] to add them).
    pub fn seen(&mut self, peer: &PeerId, now: Duration) {
        let id = DhtId::of_peer(peer);
        let Some(index) = self.bucket_of(&id) else {
            return;
        };
        let bucket = &mut self.buckets[index];
        if let Some(pos) = bucket.entries.iter().position(|e| e.id == id) {
            let mut entry = bucket.entries.remove(pos);
            entry.last_seen = now;
            entry.failures = 0;
            bucket.entries.push(entry);
            if pos == 0 {
                bucket.pending = None;
            }
        }
    }

    /// Records that `peer` failed to answer. It is removed when a newcomer waits for its bucket
    /// (the newcomer takes its place) or when it failed `max_failures` times in a row; otherwise
    /// it becomes least recently seen, first in line for the next liveness check. Keeping a
    /// peer through a short outage keeps a node from emptying its table when its own link
    /// hiccups. Returns the newcomer when one was inserted.
    pub fn failed(&mut self, peer: &PeerId, now: Duration) -> Option<PeerAddr> {
        let id = DhtId::of_peer(peer);
        let index = self.bucket_of(&id)?;
        let max_failures = self.max_failures;
        let bucket = &mut self.buckets[index];
        let pos = bucket.entries.iter().position(|e| e.id == id)?;
        let mut entry = bucket.entries.remove(pos);
        entry.failures += 1;
        if bucket.pending.is_none() && entry.failures < max_failures {
            bucket.entries.insert(0, entry);
            return None;
        }
        self.len -= 1;
        let newcomer = bucket.pending.take()?;
        bucket.entries.push(Entry {
            id: DhtId::of_peer(&newcomer.id),
            addr: newcomer.clone(),
            last_seen: now,
            failures: 0,
        });
        self.len += 1;
        Some(newcomer)
    }

    /// Removes `peer` outright (it left, or misbehaved).
    pub fn remove(&mut self, peer: &PeerId) {
        let id = DhtId::of_peer(peer);
        if let Some(index) = self.bucket_of(&id) {
            let bucket = &mut self.buckets[index];
            if let Some(pos) = bucket.entries.iter().position(|e| e.id == id) {
                bucket.entries.remove(pos);
                self.len -= 1;
            }
        }
    }

    /// Up to `count` known peers closest to `target`, closest first, leaving out `exclude`.
    ///
    /// Visits buckets in distance order instead of sorting the whole table. With `target` in
    /// bucket `i`: peers of bucket `i` are closest (they share bit `i` with the target), then
    /// every peer of the deeper buckets (their distance to the target has exactly `i` leading
    /// zeros), then buckets `i - 1` down to 0, each one wholly farther than the one before.
    pub fn closest(&self, target: &DhtId, count: usize, exclude: Option<&PeerId>) -> Vec<PeerAddr> {
        let exclude = exclude.map(DhtId::of_peer);
        let mut out = Vec::with_capacity(count);
        let mut group: Vec<(Distance, usize, usize)> = Vec::new();
        let mut take = |buckets: &[Bucket], out: &mut Vec<PeerAddr>| {
            take_closest(buckets, target, exclude, count, &mut group, out);
        };
        match self.local.distance(target).bucket() {
            Some(i) => {
                take(&self.buckets[i..=i], &mut out);
                take(&self.buckets[i + 1..], &mut out);
                for j in (0..i).rev() {
                    take(&self.buckets[j..=j], &mut out);
                }
            }
            None => {
                for j in (0..BUCKETS).rev() {
                    take(&self.buckets[j..=j], &mut out);
                }
            }
        }
        out
    }

    /// Notes that a lookup for `target` ran at `now`, so its bucket needs no refresh for a while.
    pub fn touch(&mut self, target: &DhtId, now: Duration) {
        if let Some(index) = self.bucket_of(target) {
            let bucket = &mut self.buckets[index];
            bucket.last_active = bucket.last_active.max(now);
        }
    }

    /// Buckets to refresh at `now`: those idle since `now - interval`, from bucket 0 up to one
    /// past the deepest non-empty bucket (deeper buckets are empty in any network of realistic
    /// size, and refreshing them would find nothing).
    pub fn buckets_to_refresh(&self, now: Duration, interval: std::time::Duration) -> Vec<usize> {
        let Some(deepest) = self.buckets.iter().rposition(|b| !b.entries.is_empty()) else {
            return Vec::new();
        };
        (0..=(deepest + 1).min(BUCKETS - 1))
            .filter(|&i| self.buckets[i].last_active + interval <= now)
            .collect()
    }

    /// The index of the deepest non-empty bucket: the bucket of the closest known peer.
    pub fn deepest_bucket(&self) -> Option<usize> {
        self.buckets.iter().rposition(|b| !b.entries.is_empty())
    }

    /// Every peer, bucket by bucket.
    pub fn peers(&self) -> impl Iterator<Item = &PeerAddr> {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| &e.addr))
    }
}

/// Appends to `out`, closest first, the peers of `buckets` (which must be one distance class, see
/// [`RoutingTable::closest`]) until it holds `count`. `group` is scratch space.
fn take_closest(
    buckets: &[Bucket],
    target: &DhtId,
    exclude: Option<DhtId>,
    count: usize,
    group: &mut Vec<(Distance, usize, usize)>,
    out: &mut Vec<PeerAddr>,
) {
    if out.len() >= count {
        return;
    }
    group.clear();
    for (b, bucket) in buckets.iter().enumerate() {
        for (e, entry) in bucket.entries.iter().enumerate() {
            if Some(entry.id) != exclude {
                group.push((entry.id.distance(target), b, e));
            }
        }
    }
    group.sort_unstable_by_key(|(distance, _, _)| *distance);
    let room = count - out.len();
    out.extend(
        group
            .iter()
            .take(room)
            .map(|&(_, b, e)| buckets[b].entries[e].addr.clone()),
    );
}

/// Keeps the address we know and adds what the newer one says.
fn merge_addr(known: &mut PeerAddr, newer: PeerAddr) {
    if !newer.direct.is_empty() {
        known.direct = newer.direct;
    }
    if newer.relay.is_some() {
        known.relay = newer.relay;
    }
}
