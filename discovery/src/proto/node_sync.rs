//! The node's side of delta catalog sync: starting, serving and finishing sessions, the queue
//! and the cascade. The message formats and set arithmetic live in `sync.rs`.

use std::collections::BTreeSet;

use rand::{Rng, seq::SliceRandom};
use weft_transport::PeerId;

use super::{
    catalog::{Source, UpsertOutcome},
    io::{Event, Output, Timer, Violation},
    message::Message,
    node::{Node, Session},
    shared::SharedEntry,
    sync::{
        self, BUCKET_BYTES, DigestItem, SyncMessage, bucket_of, buckets_for, differing_buckets,
        items_in,
    },
    time::Now,
};

impl Node {
    /// Syncs with `peer` unless already synced in this run: at once when a session slot is
    /// free, else through the bounded queue.
    pub(super) fn request_sync(&mut self, peer: PeerId, now: Now) {
        if peer == self.id() || self.synced.contains(&peer) || self.sessions.contains_key(&peer) {
            return;
        }
        if self.sessions.len() < self.session_limit() {
            self.start_sync(peer, now);
        } else if self.queue.len() < self.config.max_sync_queue && !self.queue.contains(&peer) {
            self.queue.push_back(peer);
        }
        // Queue full: dropped. The peer's entry still reaches us by announcement.
    }

    /// How many sessions may run at once: one until the first has finished.
    fn session_limit(&self) -> usize {
        if self.bootstrapped {
            self.config.max_sync_sessions
        } else {
            1
        }
    }

    /// Remembers that `peer` was synced in this run. The set is bounded by `max_entries`: when
    /// full (only peers that offer without ever entering the catalog can fill it), the peer is
    /// not remembered and may be synced again, which costs a fingerprint table.
    fn mark_synced(&mut self, peer: PeerId) {
        if self.synced.len() < self.config.max_entries {
            self.synced.insert(peer);
        }
    }

    pub(super) fn on_sync_retry(&mut self, peer: PeerId, now: Now) {
        if self.retries.remove(&peer) && !self.sessions.contains_key(&peer) {
            self.synced.remove(&peer);
            self.request_sync(peer, now);
        }
    }

    fn start_sync(&mut self, peer: PeerId, now: Now) {
        let session = self.rng.random();
        let buckets = buckets_for(self.catalog.len() + 1, self.config.max_sync_buckets);
        let fingerprints = sync::fingerprints(&self.catalog, buckets);
        let empty = sync::empty_buckets(&fingerprints);
        self.mark_synced(peer);
        self.sessions.insert(
            peer,
            Session::Offered {
                session,
                buckets,
                empty,
            },
        );
        self.stats.syncs_started += 1;
        self.send(
            peer,
            Message::Sync(SyncMessage::Offer {
                session,
                buckets,
                fingerprints: fingerprints.into(),
            }),
        );
        self.arm_sync_timeout(peer, session, now);
    }

    fn arm_sync_timeout(&mut self, peer: PeerId, session: u64, now: Now) {
        self.out.push(Output::ArmTimer {
            at: now.mono.saturating_add(self.config.sync_timeout),
            timer: Timer::SyncTimeout { peer, session },
        });
    }

    pub(super) fn on_sync_timeout(&mut self, peer: PeerId, session: u64, now: Now) {
        if self.sessions.get(&peer).is_some_and(|s| s.id() == session) {
            self.sessions.remove(&peer);
            self.stats.syncs_failed += 1;
            self.emit(Event::SyncFailed { peer });
            self.drain_queue(now);
        }
    }

    /// Ends the session with `peer` and starts syncing with up to `sync_cascade` of the peers
    /// it taught us, then with queued peers.
    fn finish_session(&mut self, peer: PeerId, learnt: Vec<PeerId>, now: Now) {
        self.sessions.remove(&peer);
        self.stats.syncs_finished += 1;
        self.bootstrapped = true;
        self.emit(Event::SyncFinished {
            peer,
            learnt: learnt.len(),
        });
        let mut fresh: Vec<PeerId> = learnt
            .into_iter()
            .filter(|p| !self.synced.contains(p) && self.catalog.contains(p))
            .collect();
        fresh.shuffle(&mut self.rng);
        for next in fresh.into_iter().take(self.config.sync_cascade) {
            self.request_sync(next, now);
        }
        self.drain_queue(now);
    }

    fn drain_queue(&mut self, now: Now) {
        while self.sessions.len() < self.session_limit() {
            let Some(peer) = self.queue.pop_front() else {
                break;
            };
            self.request_sync(peer, now);
        }
    }

    /// Upserts entries received in a sync with `from`; returns the peers that were new or newer.
    fn apply_sync_entries(
        &mut self,
        from: PeerId,
        entries: Vec<SharedEntry>,
        now: Now,
    ) -> Vec<PeerId> {
        let mut learnt = Vec::new();
        for entry in entries {
            let peer = entry.payload().peer;
            let source = if peer == from {
                Source::Direct
            } else {
                Source::Relayed
            };
            let outcome = self.apply_entry(entry, source, Some(from), now);
            if matches!(outcome, UpsertOutcome::New | UpsertOutcome::Updated) && peer != from {
                learnt.push(peer);
            }
        }
        learnt
    }

    /// The shuffled entries for `peers` within the message budget. Shuffled so that when the
    /// budget cuts the list, different sessions deliver different parts of it.
    fn budgeted_entries(&mut self, mut peers: Vec<PeerId>) -> Vec<SharedEntry> {
        peers.shuffle(&mut self.rng);
        // Leave room for the message's own framing.
        let budget = self.config.max_sync_message_bytes.saturating_sub(1024);
        sync::entries_for(&self.catalog, &peers, budget)
    }

    pub(super) fn on_sync(&mut self, from: PeerId, message: SyncMessage, now: Now) {
        match message {
            SyncMessage::Offer {
                session,
                buckets,
                fingerprints,
            } => self.on_offer(from, session, buckets, &fingerprints, now),
            SyncMessage::Digest {
                session,
                differing,
                items,
                entries,
            } => self.on_digest(from, session, &differing, &items, entries, now),
            SyncMessage::Exchange {
                session,
                entries,
                wants,
            } => self.on_exchange(from, session, entries, wants, now),
            SyncMessage::Entries { session, entries } => {
                let Some(Session::Wanting {
                    session: expected,
                    wanted,
                    learnt: earlier,
                }) = self.sessions.get(&from)
                else {
                    return self.violation(from, Violation::UnexpectedSyncMessage);
                };
                if *expected != session {
                    return self.violation(from, Violation::UnexpectedSyncMessage);
                }
                if entries.iter().any(|e| !wanted.contains(&e.payload().peer)) {
                    return self.violation(from, Violation::UnwantedEntries);
                }
                let mut learnt = earlier.clone();
                learnt.extend(self.apply_sync_entries(from, entries, now));
                self.finish_session(from, learnt, now);
            }
            SyncMessage::Busy { session } => {
                if !matches!(self.sessions.get(&from), Some(Session::Offered { session: s, .. }) if *s == session)
                {
                    return self.violation(from, Violation::UnexpectedSyncMessage);
                }
                self.sessions.remove(&from);
                self.stats.syncs_failed += 1;
                self.emit(Event::SyncFailed { peer: from });
                // Offer again later, unless too many retries are pending (then the next
                // neighbour-up, or announcements, will do).
                if self.retries.len() < self.config.max_sync_queue {
                    self.retries.insert(from);
                    let base = super::time::millis(self.config.sync_retry).max(2);
                    let delay = self.rng.random_range(base / 2..=base + base / 2);
                    self.out.push(Output::ArmTimer {
                        at: now
                            .mono
                            .saturating_add(std::time::Duration::from_millis(delay)),
                        timer: Timer::SyncRetry { peer: from },
                    });
                } else {
                    self.synced.remove(&from);
                }
                self.drain_queue(now);
            }
        }
    }

    fn on_offer(&mut self, from: PeerId, session: u64, buckets: u16, theirs: &[u8], now: Now) {
        if buckets == 0
            || buckets > self.config.max_sync_buckets
            || theirs.len() != usize::from(buckets) * BUCKET_BYTES
        {
            return self.violation(from, Violation::BadOffer);
        }
        if let Some(ours) = self.sessions.get(&from) {
            // Both sides offered at once: the smaller id's offer wins, the other side serves it.
            if matches!(ours, Session::Offered { .. }) && self.id() < from {
                return;
            }
            self.sessions.remove(&from);
        }
        if self.sessions.len() >= self.session_limit() {
            self.send(from, Message::Sync(SyncMessage::Busy { session }));
            return;
        }
        self.mark_synced(from);
        self.retries.remove(&from);
        let empty = sync::empty_buckets(theirs);
        let (pushed, differing): (Vec<u16>, Vec<u16>) =
            differing_buckets(&self.catalog, buckets, theirs)
                .into_iter()
                .partition(|b| empty.binary_search(b).is_ok());
        let items = items_in(&self.catalog, buckets, &differing);
        let pushed = sync::peers_in(&self.catalog, buckets, &pushed);
        let entries = self.budgeted_entries(pushed);
        let done = differing.is_empty();
        if !done {
            self.sessions.insert(
                from,
                Session::Serving {
                    session,
                    buckets,
                    differing: differing.clone(),
                },
            );
            self.arm_sync_timeout(from, session, now);
        }
        self.send(
            from,
            Message::Sync(SyncMessage::Digest {
                session,
                differing,
                items,
                entries,
            }),
        );
        if done {
            self.stats.syncs_finished += 1;
            self.bootstrapped = true;
        }
    }

    fn on_digest(
        &mut self,
        from: PeerId,
        session: u64,
        differing: &[u16],
        items: &[DigestItem],
        entries: Vec<SharedEntry>,
        now: Now,
    ) {
        let Some(Session::Offered {
            session: expected,
            buckets,
            empty,
        }) = self.sessions.get(&from)
        else {
            return self.violation(from, Violation::UnexpectedSyncMessage);
        };
        let (expected, buckets) = (*expected, *buckets);
        let pushed_fit = entries.iter().all(|e| {
            empty
                .binary_search(&bucket_of(&e.payload().peer, buckets))
                .is_ok()
        });
        if expected != session {
            return self.violation(from, Violation::UnexpectedSyncMessage);
        }
        let ordered = differing.windows(2).all(|w| w[0] < w[1]);
        let in_range = differing.last().is_none_or(|last| *last < buckets);
        let items_fit = items.len() <= self.config.max_entries + 1
            && items
                .iter()
                .all(|DigestItem(p, _)| differing.binary_search(&bucket_of(p, buckets)).is_ok());
        if !(ordered && in_range && items_fit) {
            return self.violation(from, Violation::BadDigest);
        }
        if !pushed_fit {
            return self.violation(from, Violation::UnwantedEntries);
        }
        let learnt = self.apply_sync_entries(from, entries, now);
        if differing.is_empty() {
            return self.finish_session(from, learnt, now);
        }
        let (send, mut want) = sync::compare(&self.catalog, buckets, differing, items);
        // Entries another session of ours is already fetching are not asked for twice (after a
        // heal, several neighbours offer the same missing half at once).
        want.retain(|peer| {
            !self
                .sessions
                .values()
                .any(|s| matches!(s, Session::Wanting { wanted, .. } if wanted.contains(peer)))
        });
        let entries = self.budgeted_entries(send);
        self.send(
            from,
            Message::Sync(SyncMessage::Exchange {
                session,
                entries,
                wants: want.clone(),
            }),
        );
        if want.is_empty() {
            return self.finish_session(from, learnt, now);
        }
        self.sessions.insert(
            from,
            Session::Wanting {
                session,
                wanted: want.into_iter().collect::<BTreeSet<_>>(),
                learnt,
            },
        );
    }

    fn on_exchange(
        &mut self,
        from: PeerId,
        session: u64,
        entries: Vec<SharedEntry>,
        wants: Vec<PeerId>,
        now: Now,
    ) {
        let Some(Session::Serving {
            session: expected,
            buckets,
            differing,
        }) = self.sessions.get(&from)
        else {
            return self.violation(from, Violation::UnexpectedSyncMessage);
        };
        if *expected != session {
            return self.violation(from, Violation::UnexpectedSyncMessage);
        }
        let (buckets, differing) = (*buckets, differing.clone());
        if wants.len() > self.config.max_entries + 1 {
            return self.violation(from, Violation::BadDigest);
        }
        let in_differing =
            |peer: &PeerId| differing.binary_search(&bucket_of(peer, buckets)).is_ok();
        if !entries.iter().all(|e| in_differing(&e.payload().peer)) {
            return self.violation(from, Violation::UnwantedEntries);
        }
        let learnt = self.apply_sync_entries(from, entries, now);
        // Only what lies in the differing buckets was asked about; ignore anything else.
        let wants: Vec<PeerId> = wants.into_iter().filter(|p| in_differing(p)).collect();
        if !wants.is_empty() {
            let entries = self.budgeted_entries(wants);
            self.send(
                from,
                Message::Sync(SyncMessage::Entries { session, entries }),
            );
        }
        self.finish_session(from, learnt, now);
    }
}
