//! The node-level state machine: one discovery instance, driven by `handle(input, now)`.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::SocketAddr,
    time::Duration,
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weft_transport::{NetworkId, PeerId, RelayUrl, SecretKey, Signed, StepDetector};

use super::{
    catalog::{Catalog, DepartureOutcome, Source, UpsertOutcome},
    config::Config,
    entry::{Departure, ENTRY_VERSION, EntryError, PeerEntry, Version},
    io::{Command, DepartReason, Event, Input, Output, Timer, Violation},
    message::{Announcement, Message},
    shared::SharedEntry,
    time::{Now, Time},
};

/// What the local entry says at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalInfo {
    /// Direct addresses.
    pub direct: BTreeSet<SocketAddr>,
    /// Relay URL.
    pub relay: Option<RelayUrl>,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Counters a node keeps about itself (exported as metrics by the runtime).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Announcements broadcast.
    pub announcements: u64,
    /// Entries accepted as new.
    pub new: u64,
    /// Entries accepted as updated.
    pub updated: u64,
    /// Entries accepted as refreshed.
    pub refreshed: u64,
    /// Entries ignored as duplicates, replays or outdated.
    pub ignored: u64,
    /// Entries refused as faulty or hostile (see [`Event::EntryRefused`]).
    pub refused: u64,
    /// Sync sessions started by us.
    pub syncs_started: u64,
    /// Sync sessions that ended normally (either side).
    pub syncs_finished: u64,
    /// Sync sessions abandoned.
    pub syncs_failed: u64,
    /// Protocol violations seen.
    pub violations: u64,
}

/// A sync session in progress with one peer.
#[derive(Debug, Clone)]
pub(super) enum Session {
    /// We sent an offer and wait for the digest.
    Offered {
        session: u64,
        buckets: u16,
        /// Buckets our offer reported empty: the responder may push its entries in them.
        empty: Vec<u16>,
    },
    /// We sent our entries and wants, and wait for the wanted entries.
    Wanting {
        session: u64,
        wanted: BTreeSet<PeerId>,
        /// Peers already learnt from the digest, for the cascade.
        learnt: Vec<PeerId>,
    },
    /// We answered an offer with a digest and wait for the exchange.
    Serving {
        session: u64,
        buckets: u16,
        differing: Vec<u16>,
    },
}

impl Session {
    pub(super) fn id(&self) -> u64 {
        match self {
            Self::Offered { session, .. }
            | Self::Wanting { session, .. }
            | Self::Serving { session, .. } => *session,
        }
    }
}

/// One discovery instance as a deterministic state machine (sans-IO).
///
/// Feed it [`Input`]s with the current time through [`Node::handle`]; take the [`Output`]s it
/// queued with [`Node::drain`] after each call and carry them out. It reads no clock, does no IO, and draws randomness only from the
/// seeded RNG it was built with, so a run replays exactly.
///
/// ```
/// use weft_discovery::{Config, Input, LocalInfo, Node, Now, Output, Timer};
/// use weft_transport::{NetworkId, SecretKey};
///
/// let key = SecretKey::from_bytes(&[1; 32]);
/// let now = Now::virtual_millis(1_000);
/// let mut node = Node::new(key, NetworkId::from_name("demo"), LocalInfo::default(),
///     Config::for_tests(), 7, now).unwrap();
/// node.start(now);
/// let outputs = node.drain();
/// assert!(outputs.iter().any(|o| matches!(o, Output::Broadcast(_))));
/// assert!(outputs.iter().any(|o| matches!(o, Output::ArmTimer { timer: Timer::Announce, .. })));
/// ```
#[derive(Debug)]
pub struct Node {
    pub(super) key: SecretKey,
    pub(super) config: Config,
    pub(super) catalog: Catalog,
    pub(super) rng: ChaCha8Rng,
    pub(super) neighbours: BTreeSet<PeerId>,
    /// Peers synced (or being synced) in the current connection run.
    pub(super) synced: BTreeSet<PeerId>,
    pub(super) sessions: BTreeMap<PeerId, Session>,
    pub(super) queue: VecDeque<PeerId>,
    /// Peers that answered `Busy` and will be offered again (at most `max_sync_queue`).
    pub(super) retries: BTreeSet<PeerId>,
    /// Whether a sync session has finished yet. Until then the node imports from one peer at a
    /// time: its catalog is empty, and parallel sessions would each send it everything.
    pub(super) bootstrapped: bool,
    /// Pending pings: nonce and monotonic send time.
    pings: BTreeMap<PeerId, (u64, Duration)>,
    // Monotonic: the announce and purge schedules, and the re-signing rate limit.
    next_announce: Duration,
    next_purge: Option<Duration>,
    last_purge: Duration,
    last_signed: Duration,
    /// Notices wall-clock steps, after which the local entry is re-signed at once.
    steps: StepDetector,
    /// The last announcement went out while we had no neighbour, so probably nobody heard it.
    unheard: bool,
    departed: bool,
    pub(super) stats: Stats,
    pub(super) out: Vec<Output>,
}

impl Node {
    /// A node for `key` in `network`, whose entry starts as `info`. `seed` seeds its RNG; `now`
    /// is its start time, which becomes the `started` part of every version it signs.
    pub fn new(
        key: SecretKey,
        network: NetworkId,
        info: LocalInfo,
        config: Config,
        seed: u64,
        now: Now,
    ) -> Result<Self, EntryError> {
        let entry = PeerEntry {
            peer: key.peer_id(),
            network,
            direct: info.direct,
            relay: info.relay,
            version: Version::new(now.wall.as_millis(), 0),
            timestamp: now.wall,
            tags: info.tags,
            metadata: info.metadata,
            protocol: ENTRY_VERSION,
        };
        entry.check_limits(&config.limits)?;
        let local = SharedEntry::new(sign(&key, entry));
        super::shared::check_signed_entry(&local, &config.limits)?;
        Ok(Self {
            // The catalog derives its hash keys from the seed (it draws nothing from `rng`).
            catalog: Catalog::new(config.clone(), local, seed),
            key,
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            neighbours: BTreeSet::new(),
            synced: BTreeSet::new(),
            sessions: BTreeMap::new(),
            queue: VecDeque::new(),
            retries: BTreeSet::new(),
            bootstrapped: false,
            pings: BTreeMap::new(),
            next_announce: now.mono,
            next_purge: None,
            last_purge: now.mono,
            last_signed: now.mono,
            steps: {
                let mut steps = StepDetector::default();
                steps.observe(now, Duration::MAX);
                steps
            },
            unheard: false,
            departed: false,
            stats: Stats::default(),
            out: Vec::new(),
        })
    }

    /// The local peer id.
    pub fn id(&self) -> PeerId {
        self.catalog.local_id()
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The node's counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the node has departed.
    pub fn has_departed(&self) -> bool {
        self.departed
    }

    /// Starts the loops: announces the local entry and arms the announce timer (the outputs
    /// are queued for [`Node::drain`]).
    pub fn start(&mut self, now: Now) {
        self.announce(now);
    }

    /// Takes the outputs queued by [`Node::start`] and [`Node::handle`] since the last drain,
    /// in order. The runtime and the simulator call it after each call.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Handles one input at time `now`; what to do is queued for [`Node::drain`].
    pub fn handle(&mut self, input: Input, now: Now) {
        self.notice_clock_step(now);
        match input {
            Input::Timer(timer) => self.on_timer(timer, now),
            Input::NeighborUp(peer) => self.on_neighbour_up(peer, now),
            Input::NeighborDown(peer) => {
                self.neighbours.remove(&peer);
                self.catalog.set_neighbour(&peer, false);
                self.synced.remove(&peer);
            }
            Input::Gossip(bytes) => {
                // Gossip bounds its messages; an entry plus envelope fits in the entry bound
                // and a few hundred bytes more.
                let max = self.config.limits.max_entry_bytes + 1024;
                match Announcement::decode(&bytes, max) {
                    Ok(announcement) => self.on_announcement(announcement, now),
                    Err(err) => {
                        self.stats.refused += 1;
                        self.emit(Event::BadAnnouncement(err.to_string()));
                    }
                }
            }
            Input::Announcement(announcement) => self.on_announcement(announcement, now),
            Input::Message { from, message } => self.on_message(from, message, now),
            Input::Command(command) => self.on_command(command, now),
        }
    }

    /// After a step of the wall clock (detected as a jump between the two clocks of `now`
    /// bigger than half the allowed drift), the local entry is re-signed and announced at once:
    /// a copy stamped by the old clock looks outdated (step ahead) or from the future (step
    /// back) to peers whose clocks agree with the new one. Timers are unaffected: they run on
    /// monotonic time.
    fn notice_clock_step(&mut self, now: Now) {
        if self.steps.observe(now, self.config.max_drift / 2).is_some() && !self.departed {
            self.announce(now);
        }
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.out.push(Output::Event(event));
    }

    pub(super) fn send(&mut self, to: PeerId, message: Message) {
        self.out.push(Output::Send { to, message });
    }

    fn on_timer(&mut self, timer: Timer, now: Now) {
        match timer {
            Timer::Announce if !self.departed && now.mono >= self.next_announce => {
                self.announce(now);
            }
            Timer::Announce => {}
            Timer::Purge if self.next_purge.is_some_and(|t| now.mono >= t) => self.purge(now),
            Timer::Purge => {}
            Timer::SyncTimeout { peer, session } => self.on_sync_timeout(peer, session, now),
            Timer::SyncRetry { peer } => self.on_sync_retry(peer, now),
            Timer::PingTimeout { peer, nonce } => {
                if self.pings.get(&peer).is_some_and(|(n, _)| *n == nonce) {
                    self.pings.remove(&peer);
                    self.emit(Event::PingFailed { peer });
                }
            }
        }
    }

    fn on_neighbour_up(&mut self, peer: PeerId, now: Now) {
        if peer == self.id() {
            return;
        }
        let first = self.neighbours.is_empty();
        self.neighbours.insert(peer);
        self.catalog.set_neighbour(&peer, true);
        if first && self.unheard && !self.departed {
            // Our last announcement went into an empty topic: say it again now that someone
            // listens, rather than a whole interval later.
            self.announce(now);
        }
        self.request_sync(peer, now);
    }

    /// Re-signs the local entry with a fresh timestamp, broadcasts it, and arms the next round.
    fn announce(&mut self, now: Now) {
        let entry = self.fresh_local(now, true);
        self.stats.announcements += 1;
        self.unheard = self.neighbours.is_empty();
        self.out.push(Output::Broadcast(Announcement::Entry(entry)));
        let interval = self.config.announce_interval;
        let jitter = super::time::millis(self.config.announce_jitter);
        let offset = if jitter == 0 {
            0
        } else {
            self.rng.random_range(0..=2 * jitter)
        };
        // interval ± jitter, never less than a millisecond.
        let next = now
            .mono
            .saturating_add(interval)
            .saturating_add(Duration::from_millis(offset))
            .saturating_sub(Duration::from_millis(jitter))
            .max(now.mono.saturating_add(Duration::from_millis(1)));
        self.next_announce = next;
        self.out.push(Output::ArmTimer {
            at: next,
            timer: Timer::Announce,
        });
    }

    /// The local entry signed no longer ago than `min_resign_interval` (or now, if `force`).
    fn fresh_local(&mut self, now: Now, force: bool) -> SharedEntry {
        if !force && now.mono.saturating_sub(self.last_signed) < self.config.min_resign_interval {
            return self.catalog.local().clone();
        }
        let mut entry = self.catalog.local().payload().clone();
        // Timestamps only grow, so that peers take the new copy for a refresh of the old one.
        let next = now
            .wall
            .max(Time::from_millis(entry.timestamp.as_millis() + 1));
        if next.since(now.wall) < self.config.max_drift / 2 {
            entry.timestamp = next;
        } else {
            // The wall clock stepped back: a timestamp above the last one would look like it
            // came from the future, and peers would refuse it until it expired. A new version
            // makes the copy newer whatever its timestamp, so it is stamped with the clock.
            entry.version = entry.version.next();
            entry.timestamp = now.wall;
        }
        let signed = SharedEntry::new(sign(&self.key, entry));
        self.last_signed = now.mono;
        self.catalog.set_local(signed.clone());
        signed
    }

    fn on_command(&mut self, command: Command, now: Now) {
        match command {
            Command::SetAddresses { direct, relay } => self.update_local(now, |e| {
                e.direct = direct;
                e.relay = relay;
            }),
            Command::SetTags(tags) => self.update_local(now, |e| e.tags = tags),
            Command::SetMetadata(metadata) => self.update_local(now, |e| e.metadata = metadata),
            Command::SetContent { tags, metadata } => self.update_local(now, |e| {
                e.tags = tags;
                e.metadata = metadata;
            }),
            Command::SyncWith(peer) => {
                self.synced.remove(&peer);
                self.request_sync(peer, now);
            }
            Command::Ping(peer) => self.ping(peer, now),
            Command::Depart => self.depart(now),
        }
    }

    fn update_local(&mut self, now: Now, change: impl FnOnce(&mut PeerEntry)) {
        if self.departed {
            return;
        }
        let mut entry = self.catalog.local().payload().clone();
        change(&mut entry);
        if entry.same_content(self.catalog.local().payload()) {
            return;
        }
        entry.version = entry.version.next();
        if let Err(err) = entry.check_limits(&self.config.limits) {
            self.emit(Event::LocalUpdateRefused(err));
            return;
        }
        let signed = SharedEntry::new(sign(&self.key, entry));
        if let Err(err) = super::shared::check_signed_entry(&signed, &self.config.limits) {
            self.emit(Event::LocalUpdateRefused(err));
            return;
        }
        self.catalog.set_local(signed);
        self.announce(now);
    }

    fn depart(&mut self, now: Now) {
        if self.departed {
            return;
        }
        self.departed = true;
        let local = self.catalog.local().payload();
        let departure = Departure {
            peer: local.peer,
            network: local.network,
            version: local.version,
            timestamp: now.wall.max(local.timestamp),
        };
        let signed = Signed::sign(&self.key, departure)
            .expect("the departure names the local key, and plain values always encode");
        self.out
            .push(Output::Broadcast(Announcement::Departure(signed)));
    }

    fn ping(&mut self, peer: PeerId, now: Now) {
        if self.pings.contains_key(&peer) {
            return;
        }
        if self.pings.len() >= self.config.max_pending_pings {
            self.emit(Event::PingFailed { peer });
            return;
        }
        let nonce = self.rng.random();
        self.pings.insert(peer, (nonce, now.mono));
        self.send(peer, Message::Ping { nonce });
        self.out.push(Output::ArmTimer {
            at: now.mono.saturating_add(self.config.ping_timeout),
            timer: Timer::PingTimeout { peer, nonce },
        });
    }

    fn on_announcement(&mut self, announcement: Announcement, now: Now) {
        match announcement {
            Announcement::Entry(entry) => {
                self.apply_entry(entry, Source::Relayed, None, now);
            }
            Announcement::Departure(departure) => {
                let peer = departure.payload().peer;
                match self.catalog.depart(departure.payload(), now) {
                    DepartureOutcome::Removed => {
                        self.forget(&peer);
                        self.emit(Event::PeerDeparted {
                            peer,
                            reason: DepartReason::Departed,
                        });
                        self.schedule_purge(now);
                    }
                    DepartureOutcome::Unknown
                    | DepartureOutcome::Stale
                    | DepartureOutcome::LocalPeer => {}
                    _ => self.stats.refused += 1,
                }
            }
        }
    }

    fn on_message(&mut self, from: PeerId, message: Message, now: Now) {
        match message {
            Message::Sync(sync) => self.on_sync(from, sync, now),
            Message::Ping { nonce } => {
                let entry = self.fresh_local(now, false);
                self.send(from, Message::Pong { nonce, entry });
            }
            Message::Pong { nonce, entry } => {
                let Some((expected, sent)) = self.pings.get(&from).copied() else {
                    return;
                };
                if expected != nonce {
                    return;
                }
                if entry.payload().peer != from {
                    self.violation(from, Violation::BadPong);
                    return;
                }
                self.pings.remove(&from);
                // Monotonic, and as fine as the runtime's clock (nanoseconds).
                let rtt = now.mono.saturating_sub(sent);
                self.apply_entry(entry, Source::Direct, Some(from), now);
                self.catalog.record_rtt(&from, rtt, now);
                self.emit(Event::Pong { peer: from, rtt });
            }
        }
    }

    pub(super) fn violation(&mut self, peer: PeerId, violation: Violation) {
        self.stats.violations += 1;
        self.sessions.remove(&peer);
        self.emit(Event::Violation { peer, violation });
    }

    /// Offers an entry to the catalog and reports what changed.
    pub(super) fn apply_entry(
        &mut self,
        entry: impl Into<SharedEntry>,
        source: Source,
        from: Option<PeerId>,
        now: Now,
    ) -> UpsertOutcome {
        let entry = entry.into();
        let peer = entry.payload().peer;
        let outcome = self.catalog.upsert(entry, source, now);
        match &outcome {
            UpsertOutcome::New => {
                self.stats.new += 1;
                if let Some(evicted) = self.catalog.take_evicted() {
                    self.forget(&evicted);
                    self.emit(Event::PeerDeparted {
                        peer: evicted,
                        reason: DepartReason::Evicted,
                    });
                }
                if self.neighbours.contains(&peer) {
                    self.catalog.set_neighbour(&peer, true);
                }
                if let Some(record) = self.catalog.get(&peer) {
                    let entry = record.shared().clone();
                    self.emit(Event::PeerDiscovered(entry));
                }
            }
            UpsertOutcome::Updated => {
                self.stats.updated += 1;
                if let Some(record) = self.catalog.get(&peer) {
                    let entry = record.shared().clone();
                    self.emit(Event::PeerUpdated(entry));
                }
            }
            UpsertOutcome::Refreshed => self.stats.refreshed += 1,
            UpsertOutcome::Rejected | UpsertOutcome::Outdated | UpsertOutcome::LocalPeer => {
                self.stats.ignored += 1;
            }
            _ => {
                self.stats.refused += 1;
                self.emit(Event::EntryRefused {
                    from,
                    outcome: outcome.clone(),
                });
            }
        }
        if outcome.is_accepted() {
            self.schedule_purge(now);
        }
        outcome
    }

    /// Forgets per-peer state when a peer leaves the catalog.
    fn forget(&mut self, peer: &PeerId) {
        self.synced.remove(peer);
        self.retries.remove(peer);
        self.sessions.remove(peer);
        self.pings.remove(peer);
    }

    /// Arms the purge timer at the soonest expiry, but no sooner than `purge_tick` after the
    /// previous purge.
    pub(super) fn schedule_purge(&mut self, _now: Now) {
        let Some(expiry) = self.catalog.next_expiry() else {
            return;
        };
        let at = expiry.max(self.last_purge.saturating_add(self.config.purge_tick));
        // (Both monotonic: the catalog turns each entry's signed life into a monotonic expiry.)
        if self.next_purge.is_some_and(|armed| armed <= at) {
            return;
        }
        self.next_purge = Some(at);
        self.out.push(Output::ArmTimer {
            at,
            timer: Timer::Purge,
        });
    }

    fn purge(&mut self, now: Now) {
        self.next_purge = None;
        self.last_purge = now.mono;
        for peer in self.catalog.purge(now) {
            self.forget(&peer);
            self.emit(Event::PeerDeparted {
                peer,
                reason: DepartReason::Purged,
            });
        }
        self.schedule_purge(now);
    }
}

/// Signs an entry or departure made by the local node for the local key.
fn sign(key: &SecretKey, entry: PeerEntry) -> Signed<PeerEntry> {
    Signed::sign(key, entry)
        .expect("the local entry names the local key, and its fields always encode")
}
