//! HyParView membership for one topic (Leitão, Pereira, Rodrigues, DSN 2007).
//!
//! A small symmetric *active view* of peers we gossip with, a larger *passive view* of
//! replacements, random-walk joins, periodic shuffles that keep the passive view fresh, and
//! promotion from the passive view when an active peer fails. Two additions:
//! - every link comes up through an explicit `Neighbor`/`NeighborReply` exchange, so both ends
//!   agree the link is active before either reports `NeighborUp`;
//! - peers lost to failures are remembered (bounded) and probed once per shuffle period, so a
//!   partition that heals reconnects instead of leaving two overlays side by side.

use std::{collections::VecDeque, time::Duration};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{config::HyparviewConfig, types::PeerIdentity, view::View};

/// Membership messages, on the wire inside a topic envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message<PI> {
    /// "Let me in": the receiver makes the sender an active peer and starts forward-joins.
    Join,
    /// A random walk advertising a joining peer.
    ForwardJoin {
        /// The joining peer.
        peer: PI,
        /// Remaining walk length.
        ttl: u16,
    },
    /// A request to become active peers. High priority requests are never refused.
    Neighbor {
        /// Whether the receiver must accept (the requester has no active peer left, or is
        /// reconnecting after a failure).
        high: bool,
    },
    /// A request to become active peers from a peer with at least two free slots. A full
    /// receiver accepts by handing one of its links over: it drops a neighbour and tells it
    /// (`Replace`) to link with the sender. Every other degree stays; the sender's grows by
    /// two, so peers left with few links among full ones fill up instead of staying on the
    /// overlay's rim. Answered by `NeighborReply`.
    Split,
    /// The answer to `Neighbor`, `Split` and `Join`.
    NeighborReply {
        /// Whether the link is now active on the replier's side.
        accepted: bool,
    },
    /// A random walk carrying a sample of the origin's views.
    Shuffle {
        /// Who started the shuffle (and gets the reply).
        origin: PI,
        /// The origin itself, some active and some passive peers.
        peers: Vec<PI>,
        /// Remaining walk length.
        ttl: u16,
    },
    /// The end of a shuffle walk answers with a sample of its passive view.
    ShuffleReply {
        /// The sample.
        peers: Vec<PI>,
    },
    /// The sender drops the link.
    Disconnect {
        /// Whether the sender stays around (it then goes to the passive view).
        alive: bool,
    },
    /// A degree-preserving link swap: "link with me; I drop `drop`, you drop one of yours,
    /// and the two dropped peers link with each other". Breaks closed islands and keeps the
    /// overlay close to a random graph.
    Swap {
        /// The active peer the sender will drop.
        drop: PI,
    },
    /// The answer to `Swap`.
    SwapReply {
        /// Whether the link is now active on the replier's side.
        accepted: bool,
        /// The peer the replier dropped for it (when it was full).
        dropped: Option<PI>,
    },
    /// The sender dropped the link in a swap; the receiver should link with `with`, which lost
    /// a link in the same swap.
    Replace {
        /// The peer to link with.
        with: Option<PI>,
    },
}

/// Membership timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer<PI> {
    Shuffle,
    NeighborRequest(PI),
    Rejoin,
    /// Retry filling free active slots with passive peers asked before.
    Refill,
}

/// What membership asks of the layers around it.
#[derive(Debug)]
pub(crate) enum Out<PI> {
    Send(PI, Message<PI>),
    Timer(Duration, Timer<PI>),
    NeighborUp(PI),
    NeighborDown(PI),
    /// The link is no longer needed by this topic.
    Disconnect(PI),
}

/// Longest list of bootstrap peers kept for rejoins.
const MAX_BOOTSTRAP: usize = 16;

/// HyParView state of one topic.
#[derive(Debug)]
pub(crate) struct Hyparview<PI> {
    me: PI,
    config: HyparviewConfig,
    active: View<PI>,
    passive: View<PI>,
    /// Outstanding neighbour requests (and joins), at most the active capacity.
    pending: View<PI>,
    /// Passive peers asked since the last shuffle tick; not asked again until the next one, so a
    /// node whose passive peers are all full does not ask them in a loop.
    tried: View<PI>,
    /// Peers lost to failures, with probes left. Oldest forgotten when full.
    failed: VecDeque<(PI, u8)>,
    bootstrap: Vec<PI>,
    shuffle_armed: bool,
    rejoin_armed: bool,
    refill_armed: bool,
    /// The swap in flight: the peer asked and the peer we will drop.
    swapping: Option<PI>,
    swap_drop: Option<PI>,
}

impl<PI: PeerIdentity> Hyparview<PI> {
    pub(crate) fn new(me: PI, config: HyparviewConfig) -> Self {
        Self {
            me,
            active: View::new(config.active_view_capacity),
            passive: View::new(config.passive_view_capacity),
            pending: View::new(config.active_view_capacity),
            tried: View::new(config.passive_view_capacity),
            failed: VecDeque::new(),
            bootstrap: Vec::new(),
            shuffle_armed: false,
            rejoin_armed: false,
            refill_armed: false,
            swapping: None,
            swap_drop: None,
            config,
        }
    }

    pub(crate) fn active(&self) -> impl Iterator<Item = &PI> + '_ {
        self.active.iter()
    }

    pub(crate) fn passive(&self) -> impl Iterator<Item = &PI> + '_ {
        self.passive.iter()
    }

    pub(crate) fn is_active(&self, peer: &PI) -> bool {
        self.active.contains(peer)
    }

    /// Joins through the given peers (and remembers them for rejoins).
    pub(crate) fn join<R: Rng>(&mut self, peers: &[PI], rng: &mut R, out: &mut Vec<Out<PI>>) {
        for &peer in peers {
            if peer != self.me
                && !self.bootstrap.contains(&peer)
                && self.bootstrap.len() < MAX_BOOTSTRAP
            {
                self.bootstrap.push(peer);
            }
        }
        for &peer in peers {
            if peer == self.me || self.active.contains(&peer) {
                continue;
            }
            // A join does not count against the pending limit: it is what starts everything.
            self.pending.insert(peer);
            out.push(Out::Send(peer, Message::Join));
            out.push(Out::Timer(
                self.config.neighbor_request_timeout,
                Timer::NeighborRequest(peer),
            ));
        }
        if !self.shuffle_armed {
            self.shuffle_armed = true;
            // Spread shuffles so a swarm started at once does not shuffle in lockstep.
            let half = self.config.shuffle_interval / 2;
            let jitter = half.mul_f64(rng.random::<f64>());
            out.push(Out::Timer(half + jitter, Timer::Shuffle));
        }
        self.arm_rejoin(out);
    }

    pub(crate) fn on_message<R: Rng>(
        &mut self,
        from: PI,
        message: Message<PI>,
        rng: &mut R,
        out: &mut Vec<Out<PI>>,
    ) {
        if from == self.me {
            return;
        }
        match message {
            Message::Join => {
                // A contact with a full view only starts the walks: taking every joiner itself
                // would churn its own links (a bootstrap node sees every join) and cluster the
                // overlay around it. The walks' ends give the joiner its links.
                let take = !self.active.is_full() || self.active.contains(&from);
                if take {
                    self.add_active(from, rng, out);
                }
                out.push(Out::Send(from, Message::NeighborReply { accepted: take }));
                let ttl = self.config.active_random_walk_length;
                for &peer in self.active.iter() {
                    if peer != from {
                        out.push(Out::Send(peer, Message::ForwardJoin { peer: from, ttl }));
                    }
                }
            }
            Message::ForwardJoin { peer, ttl } => self.on_forward_join(from, peer, ttl, rng, out),
            Message::Neighbor { high } => {
                let accepted = self.active.contains(&from) || high || !self.active.is_full();
                if accepted {
                    self.add_active(from, rng, out);
                } else {
                    self.add_passive(from, rng);
                }
                out.push(Out::Send(from, Message::NeighborReply { accepted }));
            }
            Message::Split => self.on_split(from, rng, out),
            Message::NeighborReply { accepted } => {
                self.pending.remove(&from);
                if accepted {
                    self.add_active(from, rng, out);
                } else {
                    // Refused: a full peer. Ask the next one at the refill tick, not at once, or
                    // a node among full peers would run through its passive view in a burst.
                    self.add_passive(from, rng);
                    self.arm_refill(out);
                }
            }
            Message::Shuffle { origin, peers, ttl } => {
                if origin == self.me {
                    return;
                }
                let next = if ttl > 0 && self.active.len() > 1 {
                    self.active.pick(rng, |p| *p == from || *p == origin)
                } else {
                    None
                };
                match next {
                    Some(next) => out.push(Out::Send(
                        next,
                        Message::Shuffle {
                            origin,
                            peers,
                            ttl: ttl - 1,
                        },
                    )),
                    None => {
                        let reply = self.passive.sample(rng, peers.len(), |p| *p == origin);
                        out.push(Out::Send(origin, Message::ShuffleReply { peers: reply }));
                        self.integrate(&peers, rng);
                    }
                }
            }
            Message::ShuffleReply { peers } => self.integrate(&peers, rng),
            Message::Swap { drop } => self.on_swap(from, drop, rng, out),
            Message::SwapReply { accepted, dropped } => {
                self.pending.remove(&from);
                self.swapping = None;
                if !accepted {
                    self.add_passive(from, rng);
                    return;
                }
                if let Some(mine) = self.swap_drop.take()
                    && mine != from
                    && self.active.remove(&mine)
                {
                    out.push(Out::NeighborDown(mine));
                    out.push(Out::Disconnect(mine));
                    out.push(Out::Send(mine, Message::Replace { with: dropped }));
                    self.add_passive(mine, rng);
                }
                self.add_active(from, rng, out);
            }
            Message::Replace { with } => {
                if self.remove_active(from, out) {
                    self.add_passive(from, rng);
                }
                match with {
                    Some(peer) if peer != self.me && !self.active.contains(&peer) => {
                        // The other dropped peer has a free slot too: a plain request suffices.
                        if self.pending.insert(peer) {
                            out.push(Out::Send(peer, Message::Neighbor { high: false }));
                            out.push(Out::Timer(
                                self.config.neighbor_request_timeout,
                                Timer::NeighborRequest(peer),
                            ));
                        }
                    }
                    _ => self.refill(rng, out),
                }
            }
            Message::Disconnect { alive } => {
                self.pending.remove(&from);
                if self.remove_active(from, out) {
                    if alive {
                        self.add_passive(from, rng);
                    }
                    self.refill(rng, out);
                } else if !alive {
                    self.passive.remove(&from);
                }
            }
        }
    }

    fn on_forward_join<R: Rng>(
        &mut self,
        from: PI,
        peer: PI,
        ttl: u16,
        rng: &mut R,
        out: &mut Vec<Out<PI>>,
    ) {
        if peer == self.me {
            return;
        }
        let next = if ttl > 0 && self.active.len() > 1 {
            self.active.pick(rng, |p| *p == from || *p == peer)
        } else {
            None
        };
        match next {
            Some(next) => {
                if ttl == self.config.passive_random_walk_length {
                    self.add_passive(peer, rng);
                }
                out.push(Out::Send(next, Message::ForwardJoin { peer, ttl: ttl - 1 }));
            }
            None => {
                if !self.active.contains(&peer) && self.pending.insert(peer) {
                    out.push(Out::Send(peer, Message::Neighbor { high: true }));
                    out.push(Out::Timer(
                        self.config.neighbor_request_timeout,
                        Timer::NeighborRequest(peer),
                    ));
                }
            }
        }
    }

    /// The connection to `peer` is gone (closed, reset, or could not be opened).
    pub(crate) fn on_peer_disconnected<R: Rng>(
        &mut self,
        peer: PI,
        rng: &mut R,
        out: &mut Vec<Out<PI>>,
    ) {
        let was_pending = self.pending.remove(&peer);
        self.passive.remove(&peer);
        if self.remove_active(peer, out) {
            self.remember_failed(peer);
            self.refill(rng, out);
        } else if was_pending {
            self.refill(rng, out);
        }
    }

    pub(crate) fn on_timer<R: Rng>(
        &mut self,
        timer: Timer<PI>,
        rng: &mut R,
        out: &mut Vec<Out<PI>>,
    ) {
        match timer {
            Timer::Shuffle => {
                out.push(Out::Timer(self.config.shuffle_interval, Timer::Shuffle));
                self.tried = View::new(self.config.passive_view_capacity);
                self.shuffle(rng, out);
                self.refill(rng, out);
                self.probe_failed(out);
                self.maybe_swap(rng, out);
            }
            Timer::NeighborRequest(peer) => {
                if self.swapping == Some(peer) {
                    self.swapping = None;
                    self.swap_drop = None;
                }
                if self.pending.remove(&peer) {
                    // Unresponsive: not a replacement candidate any more.
                    self.passive.remove(&peer);
                    self.refill(rng, out);
                }
            }
            Timer::Refill => {
                self.refill_armed = false;
                self.tried = View::new(self.config.passive_view_capacity);
                self.refill(rng, out);
            }
            Timer::Rejoin => {
                self.rejoin_armed = false;
                if self.active.is_empty() {
                    let candidates: Vec<PI> = self
                        .bootstrap
                        .iter()
                        .chain(self.failed.iter().map(|(p, _)| p))
                        .copied()
                        .filter(|p| !self.pending.contains(p))
                        .collect();
                    if !candidates.is_empty() {
                        let peer = candidates[rng.random_range(0..candidates.len())];
                        self.pending.insert(peer);
                        out.push(Out::Send(peer, Message::Join));
                        out.push(Out::Timer(
                            self.config.neighbor_request_timeout,
                            Timer::NeighborRequest(peer),
                        ));
                    }
                    self.refill(rng, out);
                    self.arm_rejoin(out);
                }
            }
        }
    }

    fn shuffle<R: Rng>(&mut self, rng: &mut R, out: &mut Vec<Out<PI>>) {
        let Some(target) = self.active.pick(rng, |_| false) else {
            return;
        };
        let mut peers = vec![self.me];
        peers.extend(
            self.active
                .sample(rng, self.config.shuffle_active_view_count, |p| *p == target),
        );
        peers.extend(
            self.passive
                .sample(rng, self.config.shuffle_passive_view_count, |_| false),
        );
        let ttl = self.config.shuffle_random_walk_length;
        out.push(Out::Send(
            target,
            Message::Shuffle {
                origin: self.me,
                peers,
                ttl,
            },
        ));
    }

    /// Asks passive peers to become active until requests cover the free active slots.
    fn refill<R: Rng>(&mut self, rng: &mut R, out: &mut Vec<Out<PI>>) {
        while self.active.len() + self.pending.len() < self.config.active_view_capacity {
            let (pending, tried) = (&self.pending, &self.tried);
            let Some(peer) = self
                .passive
                .pick(rng, |p| pending.contains(p) || tried.contains(p))
            else {
                break;
            };
            self.pending.insert(peer);
            self.tried.insert(peer);
            let free =
                self.config.active_view_capacity - (self.active.len() + self.pending.len() - 1);
            let message = if self.active.is_empty() {
                Message::Neighbor { high: true }
            } else if free >= 2 && self.config.split_links {
                Message::Split
            } else {
                Message::Neighbor { high: false }
            };
            out.push(Out::Send(peer, message));
            out.push(Out::Timer(
                self.config.neighbor_request_timeout,
                Timer::NeighborRequest(peer),
            ));
        }
        if self.active.is_empty() {
            self.arm_rejoin(out);
        }
        if self.active.len() + self.pending.len() < self.config.active_view_capacity {
            // Everyone in the passive view was asked: ask again later, not in a loop.
            self.arm_refill(out);
        }
    }

    fn arm_refill(&mut self, out: &mut Vec<Out<PI>>) {
        if !self.refill_armed && !self.active.is_full() {
            self.refill_armed = true;
            out.push(Out::Timer(self.config.refill_interval, Timer::Refill));
        }
    }

    /// Now and then (`swap_probability` per shuffle period) a full node swaps one of its links
    /// with a passive peer's, keeping every degree.
    fn maybe_swap<R: Rng>(&mut self, rng: &mut R, out: &mut Vec<Out<PI>>) {
        if !self.active.is_full()
            || self.swapping.is_some()
            || !rng.random_bool(probability(self.config.swap_probability))
        {
            return;
        }
        let pending = &self.pending;
        let Some(target) = self.passive.pick(rng, |p| pending.contains(p)) else {
            return;
        };
        let Some(drop) = self.active.pick(rng, |_| false) else {
            return;
        };
        self.swapping = Some(target);
        self.swap_drop = Some(drop);
        self.pending.insert(target);
        out.push(Out::Send(target, Message::Swap { drop }));
        out.push(Out::Timer(
            self.config.neighbor_request_timeout,
            Timer::NeighborRequest(target),
        ));
    }

    fn on_swap<R: Rng>(&mut self, from: PI, drop: PI, rng: &mut R, out: &mut Vec<Out<PI>>) {
        if self.active.contains(&from) || drop == self.me || self.swapping.is_some() {
            out.push(Out::Send(
                from,
                Message::SwapReply {
                    accepted: false,
                    dropped: None,
                },
            ));
            return;
        }
        let mut dropped = None;
        if self.active.is_full() {
            let Some(victim) = self.active.pick(rng, |p| *p == drop) else {
                out.push(Out::Send(
                    from,
                    Message::SwapReply {
                        accepted: false,
                        dropped: None,
                    },
                ));
                return;
            };
            self.active.remove(&victim);
            out.push(Out::NeighborDown(victim));
            out.push(Out::Disconnect(victim));
            out.push(Out::Send(victim, Message::Replace { with: Some(drop) }));
            self.add_passive(victim, rng);
            dropped = Some(victim);
        }
        self.add_active(from, rng, out);
        out.push(Out::Send(
            from,
            Message::SwapReply {
                accepted: true,
                dropped,
            },
        ));
    }

    fn on_split<R: Rng>(&mut self, from: PI, rng: &mut R, out: &mut Vec<Out<PI>>) {
        if self.active.is_full() && !self.active.contains(&from) {
            let Some(handed_over) = self.active.pick(rng, |p| *p == from) else {
                self.add_passive(from, rng);
                out.push(Out::Send(from, Message::NeighborReply { accepted: false }));
                return;
            };
            self.active.remove(&handed_over);
            out.push(Out::NeighborDown(handed_over));
            out.push(Out::Disconnect(handed_over));
            out.push(Out::Send(
                handed_over,
                Message::Replace { with: Some(from) },
            ));
            self.add_passive(handed_over, rng);
        }
        self.add_active(from, rng, out);
        out.push(Out::Send(from, Message::NeighborReply { accepted: true }));
    }

    /// Probes the oldest failed peer that still has probes left, with a high-priority request.
    fn probe_failed(&mut self, out: &mut Vec<Out<PI>>) {
        let Some((peer, left)) = self.failed.pop_front() else {
            return;
        };
        if self.active.contains(&peer) || self.pending.contains(&peer) {
            return;
        }
        // A probe may exceed the pending limit by one; it is rare (once per shuffle period).
        self.pending.insert(peer);
        out.push(Out::Send(peer, Message::Neighbor { high: true }));
        out.push(Out::Timer(
            self.config.neighbor_request_timeout,
            Timer::NeighborRequest(peer),
        ));
        if left > 1 {
            self.failed.push_back((peer, left - 1));
        }
    }

    fn remember_failed(&mut self, peer: PI) {
        if self.config.failed_peers_capacity == 0 || self.config.failed_peer_probes == 0 {
            return;
        }
        self.failed.retain(|(p, _)| *p != peer);
        if self.failed.len() >= self.config.failed_peers_capacity {
            self.failed.pop_front();
        }
        self.failed
            .push_back((peer, self.config.failed_peer_probes));
    }

    fn arm_rejoin(&mut self, out: &mut Vec<Out<PI>>) {
        if !self.rejoin_armed {
            self.rejoin_armed = true;
            out.push(Out::Timer(self.config.rejoin_interval, Timer::Rejoin));
        }
    }

    fn add_active<R: Rng>(&mut self, peer: PI, rng: &mut R, out: &mut Vec<Out<PI>>) {
        if peer == self.me || self.active.contains(&peer) {
            return;
        }
        self.pending.remove(&peer);
        self.passive.remove(&peer);
        self.failed.retain(|(p, _)| *p != peer);
        if self.active.is_full()
            && let Some(evicted) = self.active.remove_random(rng, |_| false)
        {
            out.push(Out::Send(evicted, Message::Disconnect { alive: true }));
            out.push(Out::NeighborDown(evicted));
            out.push(Out::Disconnect(evicted));
            self.add_passive(evicted, rng);
        }
        self.active.insert(peer);
        out.push(Out::NeighborUp(peer));
    }

    fn remove_active(&mut self, peer: PI, out: &mut Vec<Out<PI>>) -> bool {
        if self.active.remove(&peer) {
            out.push(Out::NeighborDown(peer));
            out.push(Out::Disconnect(peer));
            true
        } else {
            false
        }
    }

    fn add_passive<R: Rng>(&mut self, peer: PI, rng: &mut R) {
        if peer == self.me || self.active.contains(&peer) || self.passive.contains(&peer) {
            return;
        }
        if self.passive.is_full() {
            self.passive.remove_random(rng, |_| false);
        }
        self.passive.insert(peer);
    }

    fn integrate<R: Rng>(&mut self, peers: &[PI], rng: &mut R) {
        let limit =
            self.config.shuffle_active_view_count + self.config.shuffle_passive_view_count + 1;
        for &peer in peers.iter().take(limit) {
            self.add_passive(peer, rng);
        }
    }
}

/// A probability from a config file as `random_bool` accepts it: NaN counts as 0.
fn probability(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests;
