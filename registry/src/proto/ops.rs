//! Operations a node runs: a lookup first, then, for publishes and withdrawals, a store round
//! to the closest nodes found.

use std::collections::{BTreeMap, BTreeSet};

use weft_transport::{PeerAddr, PeerId};

use super::{
    id::{DhtId, Now},
    io::{Event, OpId, Output},
    lookup::Lookup,
    node::{Node, Purpose},
    record::{SignedRecord, SignedRemoval},
    wire::{Request, Response},
};

/// An operation in progress.
#[derive(Debug)]
pub(super) struct Op {
    pub(super) kind: OpKind,
    pub(super) lookup: Lookup,
    /// Whether the lookup is still running.
    pub(super) looking: bool,
    /// The store round of a publish or withdrawal.
    pub(super) round: StoreRound,
}

/// Store requests of a publish or withdrawal: who was sent one, how many are unanswered, how
/// many acknowledged.
#[derive(Debug, Default)]
pub(super) struct StoreRound {
    sent: BTreeSet<PeerId>,
    waiting: usize,
    acked: usize,
    /// Failed attempts per peer, for retries.
    failures: BTreeMap<PeerId, u32>,
}

#[derive(Debug)]
pub(super) enum OpKind {
    /// A user lookup of providers of `name` under `key`; `found` holds the newest record
    /// reported per provider (kept in the lookup cache at the end), bounded by four times
    /// `max_per_key` (further providers are not reported).
    Lookup {
        key: DhtId,
        name: String,
        found: BTreeMap<PeerId, SignedRecord>,
    },
    /// Publishing one of our records.
    Publish { record: SignedRecord },
    /// Withdrawing one of our records.
    Withdraw { removal: SignedRemoval },
    /// Refreshing a bucket.
    Refresh,
    /// The self-lookup of a joining node.
    Bootstrap,
}

impl Node {
    /// Moves operation `id` along: sends the next lookup requests, or finishes the lookup.
    pub(super) fn drive(&mut self, id: OpId, now: Now) {
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        if !op.looking {
            return;
        }
        if op.lookup.is_done() {
            self.finish_lookup(id, now);
            return;
        }
        let peers = op.lookup.next_requests();
        let request = match &op.kind {
            OpKind::Lookup { key, .. } => Request::GetProviders { key: *key },
            _ => Request::FindNode {
                target: op.lookup.target(),
            },
        };
        for peer in peers {
            self.send(peer, request.clone(), Purpose::Lookup(id), now);
        }
    }

    fn finish_lookup(&mut self, id: OpId, now: Now) {
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        let stats = op.lookup.finish_stats();
        let closest = op.lookup.closest_answered();
        let (targets, request) = match &op.kind {
            OpKind::Lookup { .. } => {
                if let Some(Op {
                    kind: OpKind::Lookup { name, found, .. },
                    ..
                }) = self.ops.remove(&id)
                {
                    self.cache.insert(name, found.into_values().collect(), now);
                }
                self.emit(Event::LookupDone { op: id, stats });
                return;
            }
            OpKind::Refresh => {
                self.ops.remove(&id);
                return;
            }
            OpKind::Bootstrap => {
                self.ops.remove(&id);
                self.after_bootstrap(now);
                return;
            }
            OpKind::Publish { record } => {
                let request = Request::AddProvider {
                    record: record.clone(),
                };
                (closest, request)
            }
            OpKind::Withdraw { removal, .. } => {
                // Known holders were sent the removal when the withdrawal started.
                let request = Request::RemoveProvider {
                    removal: removal.clone(),
                };
                (closest, request)
            }
        };
        op.looking = false;
        self.send_stores(id, targets, &request, now);
        self.finish_if_stored(id);
    }

    /// Sends `request` to every target not sent one yet by operation `id`.
    pub(super) fn send_stores(
        &mut self,
        id: OpId,
        targets: Vec<PeerAddr>,
        request: &Request,
        now: Now,
    ) {
        let me = self.addr.id;
        for target in targets {
            let Some(op) = self.ops.get_mut(&id) else {
                return;
            };
            if target.id == me || !op.round.sent.insert(target.id) {
                continue;
            }
            op.round.waiting += 1;
            self.send(target, request.clone(), Purpose::Store(id), now);
        }
    }

    fn after_bootstrap(&mut self, now: Now) {
        // Refresh every bucket farther than the closest neighbour: they are the ones a
        // self-lookup leaves thin.
        if let Some(deepest) = self.table.deepest_bucket() {
            for index in 0..deepest {
                if self.ops.len() >= self.config.max_lookups {
                    break;
                }
                let target = self.table.local().random_in_bucket(index, &mut self.rng);
                self.start_op(OpKind::Refresh, target, now);
            }
        }
        let peers = self.table.len();
        self.emit(Event::Bootstrapped { peers });
        self.publish_unheld(now);
    }

    /// A store request of operation `id` to `peer` ended: `answered` when the peer answered at
    /// all, `stored` when it acknowledged storing. One that got no answer is sent again, up to
    /// `store_attempts` in all: a removal that does not arrive leaves the record live at that
    /// holder until it expires.
    pub(super) fn on_store_answer(
        &mut self,
        id: OpId,
        peer: &PeerAddr,
        answered: bool,
        stored: bool,
        now: Now,
    ) {
        let attempts = self.config.store_attempts.max(1);
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        if !answered {
            let failures = op.round.failures.entry(peer.id).or_insert(0);
            *failures += 1;
            if *failures < attempts {
                let request = match &op.kind {
                    OpKind::Publish { record } => Request::AddProvider {
                        record: record.clone(),
                    },
                    OpKind::Withdraw { removal } => Request::RemoveProvider {
                        removal: removal.clone(),
                    },
                    _ => return,
                };
                self.send(peer.clone(), request, Purpose::Store(id), now);
                return;
            }
        }
        op.round.waiting = op.round.waiting.saturating_sub(1);
        if stored {
            op.round.acked += 1;
            if let OpKind::Publish { record } = &op.kind {
                let name = record.payload().name.clone();
                self.record_holder(&name, peer);
            }
        }
        self.finish_if_stored(id);
    }

    /// Ends operation `id` once its lookup is over and every store request is answered.
    fn finish_if_stored(&mut self, id: OpId) {
        let Some(op) = self.ops.get(&id) else {
            return;
        };
        if op.looking || op.round.waiting > 0 {
            return;
        }
        let Some(op) = self.ops.remove(&id) else {
            return;
        };
        let holders = op.round.acked;
        match op.kind {
            OpKind::Publish { record } => self.emit(Event::Published {
                op: id,
                name: record.into_payload().name,
                holders,
            }),
            OpKind::Withdraw { removal, .. } => self.emit(Event::Withdrawn {
                op: id,
                name: removal.into_payload().name,
                holders,
            }),
            _ => {}
        }
    }

    /// A lookup step of operation `id` was answered by `peer`.
    pub(super) fn on_lookup_response(
        &mut self,
        id: OpId,
        peer: &PeerAddr,
        response: Response,
        now: Now,
    ) {
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        if !op.looking {
            return;
        }
        let is_provider_lookup = matches!(op.kind, OpKind::Lookup { .. });
        match response {
            Response::Providers { providers, closer } if is_provider_lookup => {
                let Some(hop) = op.lookup.on_response(&peer.id, closer) else {
                    return;
                };
                let max = self.config.store.max_per_key;
                let records: Vec<SignedRecord> = providers.into_iter().take(max).collect();
                self.report_providers(id, records, hop, now);
            }
            Response::Nodes { closer } if !is_provider_lookup => {
                op.lookup.on_response(&peer.id, closer);
            }
            _ => {
                // The wrong kind of answer: garbage. Go on without this peer.
                op.lookup.on_failure(&peer.id);
                self.table.remove(&peer.id);
            }
        }
        self.drive(id, now);
    }

    /// Reports the valid, live, not yet reported records among `records`, found at `hop`.
    pub(super) fn report_providers(
        &mut self,
        id: OpId,
        records: Vec<SignedRecord>,
        hop: u32,
        now: Now,
    ) {
        let limits = &self.config.limits;
        let bound = 4 * self.config.store.max_per_key;
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        let OpKind::Lookup { key, found, .. } = &mut op.kind else {
            return;
        };
        let mut fresh = Vec::new();
        for record in records {
            let payload = record.payload();
            if payload.key != *key || payload.validate(now.wall, limits).is_err() {
                continue; // A holder returned a record for another key, or a dead one.
            }
            match found.get(&payload.provider) {
                Some(seen) if seen.payload().issued_at >= payload.issued_at => continue,
                None if found.len() >= bound => continue,
                _ => {}
            }
            found.insert(payload.provider, record.clone());
            fresh.push(record);
        }
        if !fresh.is_empty() {
            op.lookup.on_result(hop);
            self.emit(Event::Providers {
                op: id,
                records: fresh,
            });
        }
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.out.push(Output::Event(event));
    }
}
