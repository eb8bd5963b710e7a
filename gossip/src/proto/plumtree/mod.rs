//! Plumtree broadcast for one topic (Leitão, Pereira, Rodrigues, SRDS 2007), tuned for shallow
//! trees and a fast tail.
//!
//! Messages travel eagerly along a spanning tree and lazily (as IHAVE announcements) along the
//! other links. A duplicate prunes the link it came through; a missing message grafts the link
//! that announced it. On top of the paper:
//! - **Hop counts everywhere.** `Gossip` (a [`Push`]) and every IHAVE carry the hop count the receiver would
//!   get, and a graft goes to the announcer with the fewest hops, so the tree the first
//!   broadcasts build is breadth-first rather than lowest-latency (which is deep). A lazy link
//!   may replace an eager one when its IHAVE shows at least `optimization_threshold` fewer hops
//!   (graft without id + prune); off by default, because it bends the shared tree towards each
//!   sender in turn.
//! - **No first flood.** New links start lazy; the first messages build the tree by grafts
//!   (to the announcer with the fewest hops), not by flooding and pruning.
//! - **Patient, spread grafts.** The first graft waits `graft_timeout_1` — long enough that
//!   a working but slow branch is not grafted around, since every such graft and the prune
//!   that follows reshape the tree — or longer when eager copies on this node are known to
//!   arrive later than IHAVEs (up to `graft_timeout_max`). The wait is stretched by a random
//!   factor up to `1 + graft_jitter`, so of the nodes missing a message behind one broken link
//!   one grafts first and repairs it for the others, instead of all adding links at once
//!   (which made cycles, prunes and new gaps when all nodes sent at the same time). IHAVEs are
//!   batched for a couple of milliseconds only.
//! - **Sender push** (optional, off): the originator sends the message to its lazy neighbours
//!   too.

use std::{collections::HashMap, time::Duration};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{
    config::PlumtreeConfig,
    dedup::TimeBoundCache,
    types::{Content, MessageId, PeerIdentity, Scope},
    view::View,
};

/// Broadcast messages, on the wire inside a topic envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// A broadcast message.
    Gossip(Push),
    /// Announcements of received messages (lazy push).
    IHave(Vec<IHave>),
    /// Makes the link eager, and asks for a message if `id` is set.
    Graft {
        /// The missing message, or `None` for a tree optimisation.
        id: Option<MessageId>,
    },
    /// Makes the link lazy.
    Prune,
}

/// A broadcast message on the wire: the content pushed along the tree (the `Gossip` variant
/// of [`Message`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// The message id.
    pub id: MessageId,
    /// The payload.
    pub content: Content,
    /// Hops the receiver gets: 0 from the originator, +1 per forward.
    pub hops: u16,
    /// How far it travels.
    pub scope: Scope,
}

/// One announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IHave {
    /// The message id.
    pub id: MessageId,
    /// Hops the receiver would get by grafting this link.
    pub hops: u16,
}

/// Broadcast timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// Send the batched IHAVEs.
    DispatchIHave,
    /// The message is still missing: graft an announcer.
    Graft(MessageId),
}

/// What broadcast asks of the layers around it.
#[derive(Debug)]
pub(crate) enum Out<PI> {
    Send(PI, Message),
    Timer(Duration, Timer),
    Received {
        id: MessageId,
        content: Content,
        delivered_from: PI,
        hops: u16,
        scope: Scope,
    },
}

/// What we remember of a received message.
#[derive(Debug, Clone, Copy)]
struct Seen<PI> {
    /// Who delivered it first (`None` for our own broadcasts), or the link that replaced it.
    from: Option<PI>,
    hops: u16,
}

/// Announcers of a message we miss.
#[derive(Debug)]
struct Missing<PI> {
    /// When the first IHAVE arrived.
    since: Duration,
    announcers: Vec<(PI, IHave)>,
    /// The announcers we grafted, in order.
    grafted: Vec<PI>,
    /// Whether a graft timer is pending.
    armed: bool,
}

/// A message that arrived through our grafts, until the tree's copy shows up.
#[derive(Debug)]
struct Grafted<PI> {
    /// When its first IHAVE arrived.
    since: Duration,
    /// The links we grafted for it.
    peers: Vec<PI>,
}

/// Plumtree state of one topic.
#[derive(Debug)]
pub(crate) struct Plumtree<PI> {
    config: PlumtreeConfig,
    eager: View<PI>,
    lazy: View<PI>,
    seen: TimeBoundCache<MessageId, Seen<PI>>,
    cache: TimeBoundCache<MessageId, (Content, Scope)>,
    missing: TimeBoundCache<MessageId, Missing<PI>>,
    grafted: TimeBoundCache<MessageId, Grafted<PI>>,
    /// IHAVEs waiting for the dispatch timer, per peer. Bounded by the neighbour count times
    /// the messages received within one `ihave_delay`; a peer's batch is sent when it reaches
    /// `MAX_IHAVE_BATCH`.
    ihave_queue: HashMap<PI, Vec<IHave>>,
    dispatch_armed: bool,
    /// How much later than the first IHAVE eager copies tend to arrive here (a decaying
    /// maximum).
    lateness: Duration,
    /// Spreads the graft waits of the nodes that miss the same message.
    rng: ChaCha8Rng,
}

/// Most announcements in one IHAVE message.
const MAX_IHAVE_BATCH: usize = 256;

/// Largest `graft_jitter` honoured: a first graft waits at most this many times longer again.
const MAX_GRAFT_JITTER: f64 = 10.0;

impl<PI: PeerIdentity> Plumtree<PI> {
    pub(crate) fn new(config: PlumtreeConfig, seed: u64) -> Self {
        // Neighbours come from membership, which bounds them far below this.
        let peers = 64;
        Self {
            eager: View::new(peers),
            lazy: View::new(peers),
            seen: TimeBoundCache::new(config.max_message_ids, config.message_id_retention),
            cache: TimeBoundCache::new(config.max_cached_messages, config.message_cache_retention),
            missing: TimeBoundCache::new(config.max_missing, config.message_id_retention),
            grafted: TimeBoundCache::new(config.max_missing, config.message_cache_retention),
            ihave_queue: HashMap::new(),
            dispatch_armed: false,
            lateness: Duration::ZERO,
            rng: ChaCha8Rng::seed_from_u64(seed),
            config,
        }
    }

    pub(crate) fn eager(&self) -> impl Iterator<Item = &PI> + '_ {
        self.eager.iter()
    }

    pub(crate) fn lazy(&self) -> impl Iterator<Item = &PI> + '_ {
        self.lazy.iter()
    }

    #[cfg(test)]
    pub(crate) fn has_seen(&self, id: &MessageId) -> bool {
        self.seen.contains(id)
    }

    /// A new neighbour starts lazy (grafts build the tree without a first flood) or, with
    /// `eager_new_links`, eager (the paper: the first duplicates prune the tree into shape).
    ///
    /// It is also told, by IHAVE, about the messages of the last `link_up_announce_window`:
    /// messages that travelled while links were changing (or while the originator had no
    /// neighbour at all) would otherwise never reach the nodes on the far side of the change.
    pub(crate) fn neighbor_up(&mut self, peer: PI, now: Duration, out: &mut Vec<Out<PI>>) {
        if self.eager.contains(&peer) || self.lazy.contains(&peer) {
            return;
        }
        if self.config.eager_new_links {
            self.eager.insert(peer);
        } else {
            self.lazy.insert(peer);
        }
        let window = self.config.link_up_announce_window;
        if window.is_zero() {
            return;
        }
        let since = now.saturating_sub(window);
        let recent: Vec<IHave> = self
            .cache
            .recent(since)
            .take(MAX_IHAVE_BATCH)
            .filter_map(|id| {
                let seen = self.seen.get(id)?;
                let hops = if seen.from.is_some() {
                    seen.hops.saturating_add(1)
                } else {
                    0
                };
                Some(IHave { id: *id, hops })
            })
            .collect();
        for ihave in recent {
            self.queue_ihave(peer, ihave, out);
        }
    }

    pub(crate) fn neighbor_down(&mut self, peer: PI) {
        self.eager.remove(&peer);
        self.lazy.remove(&peer);
        self.ihave_queue.remove(&peer);
    }

    /// The wait before the first graft for a missing message.
    fn graft_delay(&mut self) -> Duration {
        let adaptive = self.lateness + self.lateness / 4;
        let max = self
            .config
            .graft_timeout_max
            .max(self.config.graft_timeout_1);
        let wait = adaptive.clamp(self.config.graft_timeout_1, max);
        // A config file may hold anything: no spread unless the factor is sane.
        let jitter = self.config.graft_jitter;
        if !(jitter.is_finite() && jitter > 0.0) {
            return wait;
        }
        let factor = jitter.min(MAX_GRAFT_JITTER) * self.rng.random::<f64>();
        wait + wait.mul_f64(factor)
    }

    /// Learns how late an eager copy arrived after the first IHAVE: up at once, down slowly.
    fn observe_lateness(&mut self, sample: Duration) {
        if sample > self.lateness {
            self.lateness = sample.min(self.config.graft_timeout_max);
        } else {
            self.lateness -= (self.lateness - sample) / 8;
        }
    }

    fn make_eager(&mut self, peer: PI) {
        if self.lazy.remove(&peer) {
            self.eager.insert(peer);
        }
    }

    fn make_lazy(&mut self, peer: PI) {
        if self.eager.remove(&peer) {
            self.lazy.insert(peer);
        }
    }

    /// Originates a broadcast: to every neighbour (sender push) or, without it, eagerly to the
    /// eager ones and by IHAVE to the lazy ones.
    pub(crate) fn broadcast(
        &mut self,
        id: MessageId,
        content: Content,
        scope: Scope,
        now: Duration,
        out: &mut Vec<Out<PI>>,
    ) {
        let seen = Seen {
            from: None,
            hops: 0,
        };
        self.seen.insert(id, seen, now);
        let push = self.config.sender_push || scope == Scope::Neighbors;
        let gossip = || Push {
            id,
            content: content.clone(),
            hops: 0,
            scope,
        };
        for &peer in self.eager.iter() {
            out.push(Out::Send(peer, Message::Gossip(gossip())));
        }
        let lazy: Vec<PI> = self.lazy.iter().copied().collect();
        for peer in lazy {
            if push {
                out.push(Out::Send(peer, Message::Gossip(gossip())));
            } else {
                self.queue_ihave(peer, IHave { id, hops: 0 }, out);
            }
        }
        if scope == Scope::Swarm {
            self.cache.insert(id, (content, scope), now);
        }
    }

    pub(crate) fn on_message(
        &mut self,
        from: PI,
        message: Message,
        now: Duration,
        out: &mut Vec<Out<PI>>,
    ) {
        match message {
            Message::Gossip(gossip) => self.on_gossip(from, gossip, now, out),
            Message::IHave(ihaves) => {
                for ihave in ihaves.into_iter().take(MAX_IHAVE_BATCH) {
                    self.on_ihave(from, ihave, now, out);
                }
            }
            Message::Graft { id } => {
                // Only neighbours become eager; a graft from anyone else still gets its answer.
                self.make_eager(from);
                if let Some(id) = id
                    && let (Some((content, scope)), Some(seen)) =
                        (self.cache.get(&id), self.seen.get(&id))
                {
                    let hops = if seen.from.is_some() {
                        seen.hops.saturating_add(1)
                    } else {
                        0
                    };
                    let gossip = Push {
                        id,
                        content: content.clone(),
                        hops,
                        scope: *scope,
                    };
                    out.push(Out::Send(from, Message::Gossip(gossip)));
                }
            }
            Message::Prune => self.make_lazy(from),
        }
    }

    fn on_gossip(&mut self, from: PI, gossip: Push, now: Duration, out: &mut Vec<Out<PI>>) {
        if self.seen.contains(&gossip.id) {
            if gossip.scope != Scope::Swarm {
                return;
            }
            if let Some(grafted) = self.grafted.remove(&gossip.id)
                && !grafted.peers.contains(&from)
            {
                // The copy we grafted for came anyway: our graft was early by this much.
                self.observe_lateness(now.saturating_sub(grafted.since));
            }
            // A duplicate means a cycle in the eager links (or the originator's push): cut it.
            if self.eager.contains(&from) {
                self.make_lazy(from);
                out.push(Out::Send(from, Message::Prune));
            }
            return;
        }
        let Push {
            id,
            content,
            hops,
            scope,
        } = gossip;
        let seen = Seen {
            from: Some(from),
            hops,
        };
        if let Some(missing) = self.missing.remove(&id) {
            if !missing.grafted.is_empty() {
                let grafted = Grafted {
                    since: missing.since,
                    peers: missing.grafted,
                };
                self.grafted.insert(id, grafted, now);
            } else {
                self.observe_lateness(now.saturating_sub(missing.since));
            }
        }
        out.push(Out::Received {
            id,
            content: content.clone(),
            delivered_from: from,
            hops,
            scope,
        });
        if scope != Scope::Swarm {
            self.seen.insert(id, seen, now);
            return;
        }
        self.cache.insert(id, (content.clone(), scope), now);
        // The paper makes the delivering link eager.
        self.make_eager(from);
        self.seen.insert(id, seen, now);
        let next = hops.saturating_add(1);
        for &peer in self.eager.iter() {
            if peer != from {
                let gossip = Push {
                    id,
                    content: content.clone(),
                    hops: next,
                    scope,
                };
                out.push(Out::Send(peer, Message::Gossip(gossip)));
            }
        }
        let lazy: Vec<PI> = self.lazy.iter().copied().filter(|p| *p != from).collect();
        for peer in lazy {
            self.queue_ihave(peer, IHave { id, hops: next }, out);
        }
    }

    /// Replaces the eager link a message came through by the lazy link `peer` when `peer`'s
    /// IHAVE, arriving after the message, offers at least `optimization_threshold` fewer hops.
    /// Both paths are tree paths from the originator, so the swap keeps a tree. (Acting on
    /// IHAVEs that arrive *before* the message as well was tried: it reshapes the tree towards
    /// every new sender and costs more than it gains when senders vary.)
    fn optimize(&mut self, seen: &mut Seen<PI>, peer: PI, ihave: IHave, out: &mut Vec<Out<PI>>) {
        let threshold = self.config.optimization_threshold;
        if threshold == 0 || ihave.hops.saturating_add(threshold) > seen.hops {
            return;
        }
        let Some(parent) = seen.from else { return };
        if parent == peer || !self.eager.contains(&parent) || !self.lazy.contains(&peer) {
            return;
        }
        seen.from = Some(peer);
        seen.hops = ihave.hops;
        self.make_eager(peer);
        self.make_lazy(parent);
        out.push(Out::Send(peer, Message::Graft { id: None }));
        out.push(Out::Send(parent, Message::Prune));
    }

    fn on_ihave(&mut self, from: PI, ihave: IHave, now: Duration, out: &mut Vec<Out<PI>>) {
        if let Some(seen) = self.seen.get(&ihave.id) {
            let mut seen = *seen;
            self.optimize(&mut seen, from, ihave, out);
            if let Some(entry) = self.seen.get_mut(&ihave.id) {
                *entry = seen;
            }
            return;
        }
        if !self.missing.contains(&ihave.id) {
            let missing = Missing {
                since: now,
                announcers: Vec::new(),
                grafted: Vec::new(),
                armed: true,
            };
            self.missing.insert(ihave.id, missing, now);
            // With no eager link no tree copy can come: wait only to hear more announcers.
            let wait = if self.eager.is_empty() {
                self.config.graft_timeout_no_tree
            } else {
                self.graft_delay()
            };
            out.push(Out::Timer(wait, Timer::Graft(ihave.id)));
        }
        if let Some(missing) = self.missing.get_mut(&ihave.id)
            && missing.announcers.len() < self.config.max_announcers
            && !missing.announcers.iter().any(|(p, _)| *p == from)
            && !missing.grafted.contains(&from)
        {
            missing.announcers.push((from, ihave));
            if !missing.armed {
                // Every earlier announcer was grafted in vain: try this one after a while.
                missing.armed = true;
                out.push(Out::Timer(
                    self.config.graft_timeout_2,
                    Timer::Graft(ihave.id),
                ));
            }
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, now: Duration, out: &mut Vec<Out<PI>>) {
        match timer {
            Timer::DispatchIHave => {
                self.dispatch_armed = false;
                self.flush_ihaves(out);
            }
            Timer::Graft(id) => {
                if self.seen.contains(&id) {
                    self.missing.remove(&id);
                    return;
                }
                let Some(missing) = self.missing.get_mut(&id) else {
                    return;
                };
                missing.armed = false;
                // Graft the announcer closest to the root (fewest hops), earliest on ties,
                // neighbours first. An announcer that stopped being a neighbour is still asked
                // (the message matters more than the link), but does not become eager.
                let (eager, lazy) = (&self.eager, &self.lazy);
                let best = missing
                    .announcers
                    .iter()
                    .enumerate()
                    .min_by_key(|(i, (p, ihave))| {
                        let stranger = !eager.contains(p) && !lazy.contains(p);
                        (stranger, ihave.hops, *i)
                    })
                    .map(|(i, _)| i);
                let Some(index) = best else {
                    return;
                };
                let (peer, _) = missing.announcers.remove(index);
                missing.grafted.push(peer);
                // The entry stays (until the message comes or the entry ages out) so the arrival
                // is known to be a grafted one, and the next announcer is tried if this fails.
                missing.armed = true;
                self.make_eager(peer);
                out.push(Out::Send(peer, Message::Graft { id: Some(id) }));
                out.push(Out::Timer(self.config.graft_timeout_2, Timer::Graft(id)));
            }
        }
        self.seen.expire(now);
        self.cache.expire(now);
    }

    fn queue_ihave(&mut self, peer: PI, ihave: IHave, out: &mut Vec<Out<PI>>) {
        let batch = self.ihave_queue.entry(peer).or_default();
        batch.push(ihave);
        if batch.len() >= MAX_IHAVE_BATCH {
            let batch = std::mem::take(batch);
            out.push(Out::Send(peer, Message::IHave(batch)));
        }
        if !self.dispatch_armed {
            self.dispatch_armed = true;
            out.push(Out::Timer(self.config.ihave_delay, Timer::DispatchIHave));
        }
    }

    fn flush_ihaves(&mut self, out: &mut Vec<Out<PI>>) {
        // Sorted so the output order does not depend on hash order (determinism).
        let mut peers: Vec<PI> = self.ihave_queue.keys().copied().collect();
        peers.sort_unstable();
        for peer in peers {
            if let Some(batch) = self.ihave_queue.remove(&peer)
                && !batch.is_empty()
                && (self.lazy.contains(&peer) || self.eager.contains(&peer))
            {
                // Also to a peer that turned eager since: the messages batched for it went
                // out before that, so only the IHAVE tells it about them.
                out.push(Out::Send(peer, Message::IHave(batch)));
            }
        }
    }
}

#[cfg(test)]
mod tests;
