//! Plumtree broadcast for one topic (Leitão, Pereira, Rodrigues, SRDS 2007), tuned for shallow
//! trees and a fast tail.
//!
//! Messages travel eagerly along a spanning tree and lazily (as IHAVE announcements) along the
//! other links. A duplicate prunes the link it came through; a missing message grafts the link
//! that announced it. On top of the paper:
//! - **Hop counts everywhere.** `Gossip` and every IHAVE carry the hop count the receiver would
//!   get, so a lazy link whose IHAVE shows at least `optimization_threshold` fewer hops than
//!   the eager path replaces it (graft without id + prune). Trees converge towards
//!   breadth-first trees instead of the lowest-latency trees, which are deep.
//! - **Sender push.** The originator sends the message itself to all of its peers, not only
//!   the eager ones. Those extra copies are marked *not pure* (so are copies descending from
//!   them), and neither prunes nor tree optimisation acts on impure copies, because their
//!   paths are not tree paths.
//! - **Prompt IHAVE and grafting the closest announcer**: IHAVEs are batched for a couple of
//!   milliseconds only, and a graft goes to the announcer with the fewest hops.

use std::{collections::HashMap, time::Duration};

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
    Gossip(Gossip),
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

/// A broadcast message on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gossip {
    /// The message id.
    pub id: MessageId,
    /// The payload.
    pub content: Content,
    /// Hops the receiver gets: 0 from the originator, +1 per forward.
    pub hops: u16,
    /// Whether this copy travelled along tree links only (see the module docs).
    pub pure: bool,
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
    /// Whether the announcer's copy travelled along tree links only.
    pub pure: bool,
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
    /// Who delivered it first (`None` for our own broadcasts).
    from: Option<PI>,
    hops: u16,
    pure: bool,
}

/// Announcers of a message we miss.
#[derive(Debug)]
struct Missing<PI> {
    announcers: Vec<(PI, IHave)>,
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
    /// IHAVEs waiting for the dispatch timer, per peer. Bounded by the neighbour count times
    /// the messages received within one `ihave_delay`; a peer's batch is sent when it reaches
    /// `MAX_IHAVE_BATCH`.
    ihave_queue: HashMap<PI, Vec<IHave>>,
    dispatch_armed: bool,
}

/// Most announcements in one IHAVE message.
const MAX_IHAVE_BATCH: usize = 256;

impl<PI: PeerIdentity> Plumtree<PI> {
    pub(crate) fn new(config: PlumtreeConfig) -> Self {
        // Neighbours come from membership, which bounds them far below this.
        let peers = 64;
        Self {
            eager: View::new(peers),
            lazy: View::new(peers),
            seen: TimeBoundCache::new(config.max_message_ids, config.message_id_retention),
            cache: TimeBoundCache::new(config.max_cached_messages, config.message_cache_retention),
            missing: TimeBoundCache::new(config.max_missing, config.message_id_retention),
            ihave_queue: HashMap::new(),
            dispatch_armed: false,
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

    /// A new neighbour starts eager: the first duplicates prune the tree into shape.
    pub(crate) fn neighbor_up(&mut self, peer: PI) {
        self.lazy.remove(&peer);
        self.eager.insert(peer);
    }

    pub(crate) fn neighbor_down(&mut self, peer: PI) {
        self.eager.remove(&peer);
        self.lazy.remove(&peer);
        self.ihave_queue.remove(&peer);
    }

    /// Originates a broadcast.
    pub(crate) fn broadcast(
        &mut self,
        id: MessageId,
        content: Content,
        scope: Scope,
        now: Duration,
        out: &mut Vec<Out<PI>>,
    ) {
        self.seen.insert(
            id,
            Seen {
                from: None,
                hops: 0,
                pure: true,
            },
            now,
        );
        let gossip = |pure| Gossip {
            id,
            content: content.clone(),
            hops: 0,
            pure,
            scope,
        };
        for &peer in self.eager.iter() {
            out.push(Out::Send(peer, Message::Gossip(gossip(true))));
        }
        let push = self.config.sender_push || scope == Scope::Neighbors;
        let lazy: Vec<PI> = self.lazy.iter().copied().collect();
        for peer in lazy {
            if push {
                out.push(Out::Send(peer, Message::Gossip(gossip(false))));
            } else {
                self.queue_ihave(
                    peer,
                    IHave {
                        id,
                        hops: 0,
                        pure: true,
                    },
                    out,
                );
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
                if self.lazy.remove(&from) {
                    self.eager.insert(from);
                }
                if let Some(id) = id
                    && let (Some((content, scope)), Some(seen)) =
                        (self.cache.get(&id), self.seen.get(&id))
                {
                    let hops = if seen.from.is_some() {
                        seen.hops.saturating_add(1)
                    } else {
                        0
                    };
                    let gossip = Gossip {
                        id,
                        content: content.clone(),
                        hops,
                        pure: seen.pure,
                        scope: *scope,
                    };
                    out.push(Out::Send(from, Message::Gossip(gossip)));
                }
            }
            Message::Prune => {
                if self.eager.remove(&from) {
                    self.lazy.insert(from);
                }
            }
        }
    }

    fn on_gossip(&mut self, from: PI, gossip: Gossip, now: Duration, out: &mut Vec<Out<PI>>) {
        if let Some(seen) = self.seen.get(&gossip.id) {
            // A duplicate on a tree path means a cycle in the eager links: cut it. Impure copies
            // (from the sender push) say nothing about the tree.
            if gossip.pure && seen.pure && gossip.scope == Scope::Swarm && self.eager.remove(&from)
            {
                self.lazy.insert(from);
                out.push(Out::Send(from, Message::Prune));
            }
            return;
        }
        let Gossip {
            id,
            content,
            hops,
            pure,
            scope,
        } = gossip;
        self.seen.insert(
            id,
            Seen {
                from: Some(from),
                hops,
                pure,
            },
            now,
        );
        self.missing.remove(&id);
        out.push(Out::Received {
            id,
            content: content.clone(),
            delivered_from: from,
            hops,
            scope,
        });
        if scope != Scope::Swarm {
            return;
        }
        self.cache.insert(id, (content.clone(), scope), now);
        // The paper makes the delivering link eager; with sender push an impure copy may come
        // over a lazy link that is no tree link, so only pure copies do.
        if pure && self.lazy.remove(&from) {
            self.eager.insert(from);
        }
        let next = hops.saturating_add(1);
        for &peer in self.eager.iter() {
            if peer != from {
                let gossip = Gossip {
                    id,
                    content: content.clone(),
                    hops: next,
                    pure,
                    scope,
                };
                out.push(Out::Send(peer, Message::Gossip(gossip)));
            }
        }
        let lazy: Vec<PI> = self.lazy.iter().copied().filter(|p| *p != from).collect();
        for peer in lazy {
            self.queue_ihave(
                peer,
                IHave {
                    id,
                    hops: next,
                    pure,
                },
                out,
            );
        }
    }

    fn on_ihave(&mut self, from: PI, ihave: IHave, now: Duration, out: &mut Vec<Out<PI>>) {
        if let Some(seen) = self.seen.get_mut(&ihave.id) {
            let shorter = ihave
                .hops
                .saturating_add(self.config.optimization_threshold)
                <= seen.hops;
            if self.config.optimization_threshold > 0
                && shorter
                && seen.pure
                && ihave.pure
                && let Some(parent) = seen.from
                && parent != from
                && self.eager.contains(&parent)
            {
                // Replace the deep eager link by the shallow lazy one. Both copies were pure, so
                // both paths are tree paths from one root and the swap keeps a tree.
                seen.from = Some(from);
                seen.hops = ihave.hops;
                self.lazy.remove(&from);
                self.eager.insert(from);
                self.eager.remove(&parent);
                self.lazy.insert(parent);
                out.push(Out::Send(from, Message::Graft { id: None }));
                out.push(Out::Send(parent, Message::Prune));
            }
            return;
        }
        let first = !self.missing.contains(&ihave.id);
        if first {
            self.missing.insert(
                ihave.id,
                Missing {
                    announcers: Vec::new(),
                },
                now,
            );
            out.push(Out::Timer(
                self.config.graft_timeout_1,
                Timer::Graft(ihave.id),
            ));
        }
        if let Some(missing) = self.missing.get_mut(&ihave.id)
            && missing.announcers.len() < self.config.max_announcers
            && !missing.announcers.iter().any(|(p, _)| *p == from)
        {
            missing.announcers.push((from, ihave));
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
                // Graft the announcer closest to the root (fewest hops), earliest on ties.
                let best = missing
                    .announcers
                    .iter()
                    .enumerate()
                    .filter(|(_, (p, _))| self.eager.contains(p) || self.lazy.contains(p))
                    .min_by_key(|(i, (_, ihave))| (ihave.hops, *i))
                    .map(|(i, _)| i);
                let Some(index) = best else {
                    self.missing.remove(&id);
                    return;
                };
                let (peer, _) = missing.announcers.remove(index);
                let more = !missing.announcers.is_empty();
                self.lazy.remove(&peer);
                self.eager.insert(peer);
                out.push(Out::Send(peer, Message::Graft { id: Some(id) }));
                if more {
                    out.push(Out::Timer(self.config.graft_timeout_2, Timer::Graft(id)));
                } else {
                    self.missing.remove(&id);
                }
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
                && self.lazy.contains(&peer)
            {
                out.push(Out::Send(peer, Message::IHave(batch)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::ZERO;

    fn tree(eager: &[u32], lazy: &[u32]) -> Plumtree<u32> {
        let mut p = Plumtree::new(PlumtreeConfig::default());
        for &e in eager {
            p.neighbor_up(e);
        }
        for &l in lazy {
            p.neighbor_up(l);
            p.on_message(l, Message::Prune, T0, &mut Vec::new());
        }
        p
    }

    fn gossip(id: u8, hops: u16, pure: bool) -> Gossip {
        Gossip {
            id: MessageId([id; 32]),
            content: Content::from(&[id]),
            hops,
            pure,
            scope: Scope::Swarm,
        }
    }

    fn sent(out: &[Out<u32>]) -> Vec<(u32, Message)> {
        out.iter()
            .filter_map(|o| match o {
                Out::Send(to, m) => Some((*to, m.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn forwards_eagerly_and_announces_lazily() {
        let mut p = tree(&[1, 2], &[3]);
        let mut out = Vec::new();
        p.on_message(1, Message::Gossip(gossip(7, 0, true)), T0, &mut out);
        assert!(matches!(
            out[0],
            Out::Received {
                delivered_from: 1,
                hops: 0,
                ..
            }
        ));
        assert_eq!(sent(&out), vec![(2, Message::Gossip(gossip(7, 1, true)))]);
        out.clear();
        p.on_timer(Timer::DispatchIHave, T0, &mut out);
        let ihave = IHave {
            id: MessageId([7; 32]),
            hops: 1,
            pure: true,
        };
        assert_eq!(sent(&out), vec![(3, Message::IHave(vec![ihave]))]);
    }

    #[test]
    fn pure_duplicate_prunes_impure_does_not() {
        let mut p = tree(&[1, 2], &[]);
        let mut out = Vec::new();
        p.on_message(1, Message::Gossip(gossip(7, 0, true)), T0, &mut out);
        out.clear();
        p.on_message(2, Message::Gossip(gossip(7, 3, false)), T0, &mut out);
        assert!(sent(&out).is_empty());
        p.on_message(2, Message::Gossip(gossip(7, 3, true)), T0, &mut out);
        assert_eq!(sent(&out), vec![(2, Message::Prune)]);
        assert!(p.lazy().any(|x| *x == 2));
    }

    #[test]
    fn missing_message_grafts_closest_announcer_after_timeout() {
        let mut p = tree(&[], &[1, 2]);
        let mut out = Vec::new();
        let id = MessageId([9; 32]);
        p.on_message(
            1,
            Message::IHave(vec![IHave {
                id,
                hops: 5,
                pure: true,
            }]),
            T0,
            &mut out,
        );
        p.on_message(
            2,
            Message::IHave(vec![IHave {
                id,
                hops: 2,
                pure: true,
            }]),
            T0,
            &mut out,
        );
        assert!(matches!(out.as_slice(), [Out::Timer(_, Timer::Graft(_))]));
        out.clear();
        p.on_timer(Timer::Graft(id), T0, &mut out);
        assert_eq!(sent(&out)[0], (2, Message::Graft { id: Some(id) }));
        assert!(p.eager().any(|x| *x == 2));
        assert!(matches!(out[1], Out::Timer(_, Timer::Graft(_))));
        out.clear();
        p.on_timer(Timer::Graft(id), T0, &mut out);
        assert_eq!(sent(&out), vec![(1, Message::Graft { id: Some(id) })]);
    }

    #[test]
    fn graft_answers_with_the_message() {
        let mut p = tree(&[1], &[2]);
        let mut out = Vec::new();
        p.on_message(1, Message::Gossip(gossip(7, 4, true)), T0, &mut out);
        out.clear();
        p.on_message(
            2,
            Message::Graft {
                id: Some(MessageId([7; 32])),
            },
            T0,
            &mut out,
        );
        assert_eq!(sent(&out), vec![(2, Message::Gossip(gossip(7, 5, true)))]);
        assert!(p.eager().any(|x| *x == 2));
    }

    #[test]
    fn shallower_ihave_replaces_the_eager_link() {
        let mut p = tree(&[1], &[2]);
        let mut out = Vec::new();
        p.on_message(1, Message::Gossip(gossip(7, 6, true)), T0, &mut out);
        out.clear();
        let id = MessageId([7; 32]);
        // One hop better: below the threshold of 2, nothing happens.
        p.on_message(
            2,
            Message::IHave(vec![IHave {
                id,
                hops: 5,
                pure: true,
            }]),
            T0,
            &mut out,
        );
        assert!(sent(&out).is_empty());
        // Impure announcements never reshape the tree.
        p.on_message(
            2,
            Message::IHave(vec![IHave {
                id,
                hops: 1,
                pure: false,
            }]),
            T0,
            &mut out,
        );
        assert!(sent(&out).is_empty());
        p.on_message(
            2,
            Message::IHave(vec![IHave {
                id,
                hops: 3,
                pure: true,
            }]),
            T0,
            &mut out,
        );
        assert_eq!(
            sent(&out),
            vec![(2, Message::Graft { id: None }), (1, Message::Prune)]
        );
        assert!(p.eager().eq([2].iter()));
        assert!(p.lazy().eq([1].iter()));
    }

    #[test]
    fn sender_pushes_to_lazy_peers_as_impure() {
        let mut p = tree(&[1], &[2]);
        let mut out = Vec::new();
        let id = MessageId([3; 32]);
        p.broadcast(id, Content::from(&[3]), Scope::Swarm, T0, &mut out);
        assert_eq!(
            sent(&out),
            vec![
                (1, Message::Gossip(gossip(3, 0, true))),
                (2, Message::Gossip(gossip(3, 0, false)))
            ]
        );
        assert!(p.has_seen(&id));
    }

    #[test]
    fn neighbor_scope_is_not_forwarded() {
        let mut p = tree(&[1, 2], &[]);
        let mut out = Vec::new();
        let mut g = gossip(7, 0, true);
        g.scope = Scope::Neighbors;
        p.on_message(1, Message::Gossip(g), T0, &mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(
            out[0],
            Out::Received {
                scope: Scope::Neighbors,
                ..
            }
        ));
    }
}
