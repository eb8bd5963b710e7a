//! The catalog: every peer entry a node knows, with explicit upsert outcomes, a purge order and
//! a bound that a flood of fake entries cannot use to push out live peers.
//!
//! # Policy when full
//!
//! The catalog holds at most `max_entries` remote entries. Updates of entries already held never
//! need room. A *new* entry that finds the catalog full may take the place of one victim. Every
//! held entry is in one of four classes, judged on evidence this node gathered itself:
//!
//! - **proven**: its peer is a direct neighbour, or has answered us directly (a pong, or its
//!   own entry handed over in a sync with it) within `purge_after`;
//! - **live**: refreshed at a time when it had already been held for `stale_after` (it has
//!   kept itself fresh for a while under our own eyes);
//! - **on probation**: not live, refreshed within `stale_after`;
//! - **stale**: not live, not refreshed within `stale_after`.
//!
//! Proven and live entries are never evicted, whoever the newcomer: they leave when they
//! expire (`purge_after` after their last signature) or depart. A live peer that misses
//! announcements stays live, because a flood is exactly when gossip deliveries to us are late:
//! measured on the memory network, honest peers whose announcements were delayed by a flood
//! went stale and were evicted. A stale entry gives way to any newcomer. An entry on probation gives way only to a newcomer that came straight from
//! its peer (a direct hand-over), so strangers that reach us directly churn among themselves
//! and never past a peer that has stayed. Among the candidates, stale ones go first, then the
//! soonest to expire. Anything else is refused with [`UpsertOutcome::Full`]. A search that
//! finds no victim for a relayed newcomer is not repeated for other relayed newcomers within
//! `purge_tick`, so a flood costs one pass over the catalog per tick.
//!
//! Why: an attacker can mint any number of keys, sign fresh entries for them and run each as
//! a real node that talks to us directly, so freshness and direct contact *of a newcomer* are
//! free. What it cannot mint is time in our catalog: a peer becomes live only by holding its
//! slot and staying fresh for `stale_after`, which a stranger that was never admitted cannot
//! have. Honest peers re-announce every `announce_interval` (shorter than `stale_after`), so
//! once they have been held that long and announced again a flood of fresh strangers can only fill free room and
//! displace each other, then bounces off. Per-source rate limits would not help here: every
//! throwaway identity is its own source. The price: a catalog that strangers filled, and that
//! they keep fresh, refuses honest newcomers until the strangers fall silent, and a newly
//! admitted honest peer is on probation (displaceable by a direct stranger) until its first
//! refresh after `stale_after`; and a live peer that went silent holds its slot until it
//! expires rather than until it turns stale.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use weft_transport::{NetworkId, PeerId, SignatureError, Signed};

use super::{
    config::Config,
    entry::{Departure, EntryError, PeerEntry, Version},
    shared::{SharedEntry, check_signed_entry},
    table::{Key, PeerHashKeys, Table},
    time::{Now, Time, millis},
};

mod admission;

/// How far down the expiry order the eviction search looks past proven entries before it gives
/// up and refuses the newcomer. Proven entries are few (neighbours, recently pinged peers), so
/// this is rarely reached. The search still passes over the whole catalog once to find these
/// soonest-to-expire candidates; it bounds the candidates checked and sorted, not that pass.
const EVICTION_SCAN: usize = 256;

/// What [`Catalog::upsert`] did with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpsertOutcome {
    /// A peer we did not know: added.
    New,
    /// A newer version of a known peer: its content changed.
    Updated,
    /// The same version with a newer timestamp: the entry was refreshed, its content is the same.
    Refreshed,
    /// Signed `purge_after` ago or more: past the purge horizon, ignored (it would expire at
    /// once, and accepting it would let a relay bring a crashed peer back).
    Outdated,
    /// Not newer than the copy held (a duplicate or a replay), or from a run that departed.
    Rejected,
    /// The entry belongs to another network.
    DifferentNetwork,
    /// The signature does not verify, or the entry is signed by a key other than its peer's.
    InvalidSignature(SignatureError),
    /// Stamped further in the future than the allowed clock drift.
    TooFarInFuture,
    /// Verified, but over a size bound or not canonically encoded.
    Invalid(EntryError),
    /// The catalog is full and no entry may be evicted for this one (see the module docs).
    Full,
    /// An entry for the local peer: the local entry is never replaced from outside.
    LocalPeer,
}

impl UpsertOutcome {
    /// Whether the entry was stored.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::New | Self::Updated | Self::Refreshed)
    }
}

/// What [`Catalog::depart`] did with a departure notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DepartureOutcome {
    /// The peer's entry was removed.
    Removed,
    /// No entry was held; the departure is remembered so late copies of the entry are refused.
    Unknown,
    /// We hold a newer version than the one departing (the peer restarted since): ignored.
    Stale,
    /// Older than the allowed drift: ignored, so a replayed notice cannot remove a peer.
    TooOld,
    /// Stamped further in the future than the allowed drift: ignored.
    TooFarInFuture,
    /// From another network.
    DifferentNetwork,
    /// About the local peer: ignored.
    LocalPeer,
}

/// Where an entry handed to [`Catalog::upsert`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Relayed by someone (gossip, or a sync with another peer): says nothing about liveness.
    Relayed,
    /// Handed over by the peer itself on a direct exchange (pong, or its own entry in a sync
    /// with it): evidence that it is alive and reachable.
    Direct,
}

/// A remote entry and what we know about its peer.
///
/// Kept small: a catalog of 10,000 entries holds 10,000 of these, and a simulated network of
/// 10,000 nodes 10^8. The entry itself is shared (one allocation per announcement, however
/// many catalogs hold it), and evidence of direct contact, which only neighbours and peers we
/// synced with or pinged have, lives in a separate allocation.
#[derive(Debug, Clone)]
pub struct Record {
    entry: SharedEntry,
    /// Monotonic milliseconds (`Now::mono`), like every local age here; whole milliseconds
    /// keep a record within one cache line.
    refreshed: u64,
    /// Milliseconds from `refreshed` to the purge: the entry's signed life left on receipt
    /// (at most `purge_after`, saturating at `u32::MAX`, 49 days).
    life: u32,
    /// Milliseconds the entry had been held when it was last refreshed (saturating at
    /// `u32::MAX`): how long it has held its slot is this plus the time since `refreshed`.
    held: u32,
    contact: Option<Box<Contact>>,
}

/// Milliseconds as a `u32`, saturating (ages and lives longer than 49 days compare as 49 days).
fn saturating_u32(ms: u64) -> u32 {
    u32::try_from(ms).unwrap_or(u32::MAX)
}

/// Evidence that a peer is alive, from direct contact with it.
#[derive(Debug, Clone, Default)]
struct Contact {
    last_contact: Option<Duration>,
    neighbour: bool,
    rtt: Option<Duration>,
}

impl Record {
    /// The verified entry.
    pub fn entry(&self) -> &PeerEntry {
        self.entry.payload()
    }

    /// The entry with its signature, as it travels.
    pub fn signed(&self) -> &Signed<PeerEntry> {
        &self.entry
    }

    /// The entry as catalogs and messages share it.
    pub fn shared(&self) -> &SharedEntry {
        &self.entry
    }

    /// When the entry was last refreshed, on the monotonic clock ([`Now::mono`]).
    pub fn refreshed(&self) -> Duration {
        Duration::from_millis(self.refreshed)
    }

    /// When the entry will be purged unless refreshed, on the monotonic clock: the life its
    /// signed timestamp had left when it arrived, counted from then, so that a step of the wall
    /// clock neither purges it early nor keeps it late.
    pub fn expires(&self) -> Duration {
        Duration::from_millis(self.expires_ms())
    }

    /// How long the entry has been held in the catalog at `now` (monotonic): its age here, the
    /// evidence of liveness that no stranger can mint (see the module docs).
    pub fn held(&self, now: Duration) -> Duration {
        Duration::from_millis(self.held_ms(millis(now)))
    }

    /// How long the entry had been held in the catalog when it was last refreshed. Once this
    /// reaches `stale_after` the peer is live: it has kept itself fresh for that long under
    /// our own eyes, and no stranger displaces it (see the module docs).
    pub fn held_at_refresh(&self) -> Duration {
        Duration::from_millis(u64::from(self.held))
    }

    fn expires_ms(&self) -> u64 {
        self.refreshed + u64::from(self.life)
    }

    fn held_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.refreshed) + u64::from(self.held)
    }

    /// Stores a refresh at `now_ms` that lives `life` milliseconds.
    fn refresh(&mut self, now_ms: u64, life: u32) {
        self.held = saturating_u32(self.held_ms(now_ms));
        self.refreshed = now_ms;
        self.life = life;
    }

    /// The last round-trip time measured by a ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.contact.as_ref().and_then(|c| c.rtt)
    }

    /// Whether the peer is currently a direct neighbour.
    pub fn is_neighbour(&self) -> bool {
        self.contact.as_ref().is_some_and(|c| c.neighbour)
    }

    /// Bytes of the signed entry on the wire.
    pub fn wire_size(&self) -> usize {
        self.entry.wire_size()
    }

    fn contact_mut(&mut self) -> &mut Contact {
        self.contact.get_or_insert_with(Box::default)
    }

    fn is_proven(&self, now: Duration, purge_after: Duration) -> bool {
        self.contact.as_ref().is_some_and(|c| {
            c.neighbour
                || c.last_contact
                    .is_some_and(|t| now.saturating_sub(t) < purge_after)
        })
    }
}

/// The peers a node knows: the local entry plus at most `max_entries` verified remote entries.
///
/// See the module documentation for the policy when full.
///
/// Entries are kept in one hash table by peer id (see `table.rs`), and no second
/// index by expiry: a delivery that refreshes an entry (the common case, once per peer per
/// announce interval) then costs one lookup that usually touches one cache line, where an
/// ordered map of 10,000 entries touches a dozen. What needs peer id order ([`Catalog::iter`],
/// the digests of a sync) sorts. Expiry order is needed only to purge and to pick an eviction victim, and both scan
/// the map: the purge runs at most once per `purge_tick`, and usually once per
/// `purge_after - announce_interval` as the oldest entry gets refreshed before it expires;
/// eviction runs only when the catalog is full. [`Catalog::next_expiry`] is kept as a bound
/// that is exact after every purge and lowered by every upsert.
#[derive(Debug)]
pub struct Catalog {
    config: Config,
    network: NetworkId,
    local: SharedEntry,
    entries: Table<Record>,
    /// No later than the soonest expiry (exact after a purge; see [`Catalog::next_expiry`]).
    /// Monotonic milliseconds.
    next_expiry: Option<u64>,
    tombstones: BTreeMap<PeerId, (Version, Time)>,
    tombstones_by_time: BTreeSet<(Time, PeerId)>,
    wire_bytes: usize,
    evicted: Option<PeerId>,
    /// Until then a relayed newcomer to a full catalog is refused without a search: the last
    /// search found no victim, and one per `purge_tick` is enough (a refused honest peer is
    /// offered again at its next announcement). Without it, every entry of a flood against a
    /// full catalog would cost a pass over the whole catalog.
    relayed_refused_until: Duration,
}

impl Catalog {
    /// A catalog holding only the local entry. Its hash table is keyed by a derivation of
    /// `seed`, which must be secret: whoever knows it can mint peer ids that collide in the
    /// table and make every lookup slow. A [`Node`](crate::Node) passes its own seed, which the
    /// runtime takes from `Endpoint::secret_seed` (derived from the node's secret key).
    pub fn new(config: Config, local: impl Into<SharedEntry>, seed: u64) -> Self {
        let local = local.into();
        Self {
            network: local.payload().network,
            local,
            config,
            entries: Table::new(PeerHashKeys::from_seed(seed)),
            next_expiry: None,
            tombstones: BTreeMap::new(),
            tombstones_by_time: BTreeSet::new(),
            wire_bytes: 0,
            evicted: None,
            relayed_refused_until: Duration::ZERO,
        }
    }

    /// The local entry.
    pub fn local(&self) -> &SharedEntry {
        &self.local
    }

    /// Replaces the local entry (only the owner of the catalog does this).
    pub(crate) fn set_local(&mut self, local: SharedEntry) {
        self.local = local;
    }

    /// The local peer.
    pub fn local_id(&self) -> PeerId {
        self.local.payload().peer
    }

    /// The network this catalog belongs to.
    pub fn network(&self) -> NetworkId {
        self.network
    }

    /// Number of remote entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no remote entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The record of a remote peer.
    pub fn get(&self, peer: &PeerId) -> Option<&Record> {
        self.entries.get(&Key::of(peer))
    }

    /// Whether a remote peer is known.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.entries.contains(&Key::of(peer))
    }

    /// Remote records in peer id order (sorted on each call).
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Record)> {
        let mut records: Vec<_> = self.iter_unordered().collect();
        records.sort_unstable_by_key(|(peer, _)| **peer);
        records.into_iter()
    }

    /// Remote records in no particular order (the hash table's).
    pub fn iter_unordered(&self) -> impl Iterator<Item = (&PeerId, &Record)> {
        self.entries.values().map(|r| (&r.entry().peer, r))
    }

    /// Total wire bytes of all remote entries: what sending the whole catalog would cost.
    pub fn wire_bytes(&self) -> usize {
        self.wire_bytes
    }

    /// Every `(peer, version, fingerprint)` held, the local entry included, in no particular
    /// order: callers that list them sort what they keep.
    pub(crate) fn digest_items(&self) -> impl Iterator<Item = (PeerId, Version, u64)> + '_ {
        let local = self.local.payload();
        let local_item = (local.peer, local.version, self.local.fingerprint());
        let remote = self
            .entries
            .values()
            .map(|r| (r.entry().peer, r.entry().version, r.entry.fingerprint()));
        std::iter::once(local_item).chain(remote)
    }

    /// The signed entry for `peer`, local or remote.
    pub(crate) fn signed_entry(&self, peer: &PeerId) -> Option<&SharedEntry> {
        if *peer == self.local_id() {
            Some(&self.local)
        } else {
            self.entries.get(&Key::of(peer)).map(|r| &r.entry)
        }
    }

    /// The version held for `peer`, local or remote.
    pub(crate) fn version_of(&self, peer: &PeerId) -> Option<Version> {
        self.signed_entry(peer).map(|e| e.payload().version)
    }

    /// Offers an entry to the catalog. See [`UpsertOutcome`] for the possible results and the
    /// module docs for the policy when full.
    pub fn upsert(
        &mut self,
        entry: impl Into<SharedEntry>,
        source: Source,
        now: Now,
    ) -> UpsertOutcome {
        let entry = entry.into();
        let payload = entry.payload();
        let peer = payload.peer;
        if payload.network != self.network {
            return UpsertOutcome::DifferentNetwork;
        }
        let key = Key::of(&peer);
        if key == Key::of(&self.local.payload().peer) {
            return UpsertOutcome::LocalPeer;
        }
        if let Err(err) = check_signed_entry(&entry, &self.config.limits) {
            return UpsertOutcome::Invalid(err);
        }
        if payload.timestamp > now.wall.saturating_add(self.config.max_drift) {
            return UpsertOutcome::TooFarInFuture;
        }
        // An entry lives `purge_after` from when its owner signed it (by the owner's clock, but
        // never from later than we got it). So a relay cannot extend a silent peer's life, a
        // crashed peer is gone `purge_after` after its last announcement wherever that copy
        // travelled, and an owner whose clock lags ours by `d` only loses `d` of lifetime,
        // which announcing several times per `purge_after` absorbs. The signed timestamp is
        // read against the wall clock once, here; the life left then runs on the monotonic
        // clock, so a later step of the wall clock does not purge every entry at once.
        let age = now.wall.since(payload.timestamp);
        let Some(left) = self
            .config
            .purge_after
            .checked_sub(age)
            .filter(|l| !l.is_zero())
        else {
            return UpsertOutcome::Outdated;
        };
        let now_ms = millis(now.mono);
        let life = saturating_u32(millis(now.mono.saturating_add(left)).saturating_sub(now_ms));
        let expires = now_ms.saturating_add(u64::from(life));
        if !self.tombstones.is_empty()
            && let Some((version, _)) = self.tombstones.get(&peer)
            && payload.version <= *version
        {
            return UpsertOutcome::Rejected;
        }
        let direct = source == Source::Direct;
        if let Some(record) = self.entries.get_mut(&key) {
            if payload.freshness() <= record.entry().freshness() {
                // Not newer, but a direct hand-over still proves the peer is alive.
                if direct {
                    record.contact_mut().last_contact = Some(now.mono);
                }
                return UpsertOutcome::Rejected;
            }
            let updated = payload.version != record.entry().version;
            self.wire_bytes = self.wire_bytes - record.entry.wire_size() + entry.wire_size();
            record.entry = entry;
            record.refresh(now_ms, life);
            if direct {
                record.contact_mut().last_contact = Some(now.mono);
            }
            self.lower_next_expiry(expires);
            return if updated {
                UpsertOutcome::Updated
            } else {
                UpsertOutcome::Refreshed
            };
        }
        if self.entries.len() >= self.config.max_entries && !self.evict_for(source, now.mono) {
            return UpsertOutcome::Full;
        }
        self.tombstones_remove(&peer);
        self.wire_bytes += entry.wire_size();
        self.lower_next_expiry(expires);
        self.entries.insert(
            key,
            Record {
                entry,
                refreshed: now_ms,
                life,
                held: 0,
                contact: direct.then(|| {
                    Box::new(Contact {
                        last_contact: Some(now.mono),
                        ..Contact::default()
                    })
                }),
            },
        );
        UpsertOutcome::New
    }

    fn lower_next_expiry(&mut self, expires: u64) {
        if self.next_expiry.is_none_or(|t| expires < t) {
            self.next_expiry = Some(expires);
        }
    }

    /// The peer evicted by the last upsert that made room, if it was not taken yet.
    pub fn take_evicted(&mut self) -> Option<PeerId> {
        self.evicted.take()
    }

    /// Decodes, verifies and offers an entry in its wire form.
    pub fn upsert_bytes(&mut self, bytes: &[u8], source: Source, now: Now) -> UpsertOutcome {
        match Signed::<PeerEntry>::from_bytes(bytes) {
            Ok(entry) => self.upsert(entry, source, now),
            Err(err) => UpsertOutcome::InvalidSignature(err),
        }
    }

    /// Applies a departure notice. See [`DepartureOutcome`].
    pub fn depart(&mut self, departure: &Departure, now: Now) -> DepartureOutcome {
        if departure.network != self.network {
            return DepartureOutcome::DifferentNetwork;
        }
        if departure.peer == self.local_id() {
            return DepartureOutcome::LocalPeer;
        }
        // Signed data: its freshness is a matter of wall clocks.
        if departure.timestamp > now.wall.saturating_add(self.config.max_drift) {
            return DepartureOutcome::TooFarInFuture;
        }
        if departure.timestamp.saturating_add(self.config.max_drift) < now.wall {
            return DepartureOutcome::TooOld;
        }
        let outcome = match self.entries.get(&Key::of(&departure.peer)) {
            Some(record) if record.entry().version > departure.version => {
                return DepartureOutcome::Stale;
            }
            Some(_) => {
                self.remove(&departure.peer);
                DepartureOutcome::Removed
            }
            None => DepartureOutcome::Unknown,
        };
        self.add_tombstone(departure.peer, departure.version, departure.timestamp);
        outcome
    }

    fn add_tombstone(&mut self, peer: PeerId, version: Version, timestamp: Time) {
        if let Some((held, _)) = self.tombstones.get(&peer)
            && *held >= version
        {
            return;
        }
        self.tombstones_remove(&peer);
        if self.config.max_tombstones == 0 {
            return;
        }
        // Full: forget the oldest departure. At worst a late copy of that peer's entry comes
        // back and lives until the purge; no honest state is lost.
        while self.tombstones.len() >= self.config.max_tombstones {
            let Some((_, oldest)) = self.tombstones_by_time.pop_first() else {
                break;
            };
            self.tombstones.remove(&oldest);
        }
        self.tombstones.insert(peer, (version, timestamp));
        self.tombstones_by_time.insert((timestamp, peer));
    }

    fn tombstones_remove(&mut self, peer: &PeerId) {
        if let Some((_, time)) = self.tombstones.remove(peer) {
            self.tombstones_by_time.remove(&(time, *peer));
        }
    }

    /// Removes a remote entry, returning it.
    pub fn remove(&mut self, peer: &PeerId) -> Option<Record> {
        let record = self.entries.remove(&Key::of(peer))?;
        self.wire_bytes -= record.entry.wire_size();
        if self.entries.is_empty() {
            self.next_expiry = None;
        }
        Some(record)
    }

    /// A time no later than the soonest expiry, `None` when the catalog is empty. Exact after
    /// [`Catalog::purge`]; between purges it only moves earlier (an upsert that expires sooner
    /// lowers it, a refresh of the soonest entry does not raise it), so a purge timer armed at
    /// it may find nothing to purge yet, never finds it missed an expiry.
    pub fn next_expiry(&self) -> Option<Duration> {
        self.next_expiry.map(Duration::from_millis)
    }

    /// Removes every entry that expired by `now` and returns their peers, soonest first (ties
    /// by peer id). Also forgets tombstones old enough that the entries they guard are past the
    /// purge horizon. One pass over the catalog.
    pub fn purge(&mut self, now: Now) -> Vec<PeerId> {
        // Read first: most purges find nothing expired and only need the soonest expiry.
        let mut purged = Vec::new();
        let mut next: Option<u64> = None;
        let now_ms = millis(now.mono);
        for record in self.entries.values() {
            let expires = record.expires_ms();
            if expires <= now_ms {
                purged.push((expires, record.entry().peer));
            } else if next.is_none_or(|t| expires < t) {
                next = Some(expires);
            }
        }
        for (_, peer) in &purged {
            if let Some(record) = self.entries.remove(&Key::of(peer)) {
                self.wire_bytes -= record.entry.wire_size();
            }
        }
        self.next_expiry = next;
        purged.sort_unstable();
        // Tombstones guard against late copies of signed entries, whose own freshness is
        // checked on the wall clock: they age on it too.
        let horizon = self.config.purge_after + self.config.max_drift;
        while let Some(&(time, peer)) = self.tombstones_by_time.first() {
            if time.saturating_add(horizon) > now.wall {
                break;
            }
            self.tombstones_by_time.pop_first();
            self.tombstones.remove(&peer);
        }
        purged.into_iter().map(|(_, peer)| peer).collect()
    }

    /// Marks whether `peer` is a direct neighbour (liveness evidence for the eviction policy).
    pub fn set_neighbour(&mut self, peer: &PeerId, neighbour: bool) {
        if let Some(record) = self.entries.get_mut(&Key::of(peer))
            && (neighbour || record.contact.is_some())
        {
            record.contact_mut().neighbour = neighbour;
        }
    }

    /// Records a measured round-trip time (and so a direct contact) for `peer`.
    pub fn record_rtt(&mut self, peer: &PeerId, rtt: Duration, now: Now) {
        if let Some(record) = self.entries.get_mut(&Key::of(peer)) {
            let contact = record.contact_mut();
            contact.rtt = Some(rtt);
            contact.last_contact = Some(now.mono);
        }
    }
}
