//! One topic: HyParView membership feeding neighbours to Plumtree broadcast.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    config::Config,
    hyparview::{self, Hyparview},
    plumtree::{self, Plumtree},
    types::{Content, MessageId, PeerIdentity, Scope},
};

/// A message of one topic: membership or broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TopicMessage<PI> {
    /// HyParView.
    Membership(hyparview::Message<PI>),
    /// Plumtree.
    Broadcast(plumtree::Message),
}

/// What a topic tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<PI> {
    /// The topic has its first neighbour since it was joined (emitted once, right after that
    /// neighbour's `NeighborUp`).
    Joined,
    /// A link became active on both ends.
    NeighborUp(PI),
    /// An active link went away (closed by either end or failed).
    NeighborDown(PI),
    /// A broadcast arrived for the first time.
    Received {
        /// The message id.
        id: MessageId,
        /// The payload.
        content: Content,
        /// The neighbour that delivered it (not necessarily the originator).
        delivered_from: PI,
        /// Hops from the originator; its direct neighbours are at 0.
        hops: u16,
        /// How far it travels.
        scope: Scope,
    },
    /// The receiver fell behind and this many events were dropped (emitted by runtimes whose
    /// event buffers overflow; the protocol itself never drops events).
    Lagged(u64),
}

/// Timers of one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TopicTimer<PI> {
    Membership(hyparview::Timer<PI>),
    Broadcast(plumtree::Timer),
}

/// What one topic asks of the state around it.
#[derive(Debug)]
pub(crate) enum TopicOut<PI> {
    Send(PI, TopicMessage<PI>),
    Timer(Duration, TopicTimer<PI>),
    Emit(Event<PI>),
    Disconnect(PI),
}

/// The state of one topic.
#[derive(Debug)]
pub(crate) struct Topic<PI> {
    swarm: Hyparview<PI>,
    gossip: Plumtree<PI>,
    joined: bool,
    hv_out: Vec<hyparview::Out<PI>>,
    pt_out: Vec<plumtree::Out<PI>>,
}

impl<PI: PeerIdentity> Topic<PI> {
    pub(crate) fn new(me: PI, config: &Config, seed: u64) -> Self {
        Self {
            swarm: Hyparview::new(me, config.membership.clone()),
            gossip: Plumtree::new(config.broadcast.clone(), seed),
            joined: false,
            hv_out: Vec::new(),
            pt_out: Vec::new(),
        }
    }

    pub(crate) fn neighbors(&self) -> impl Iterator<Item = &PI> + '_ {
        self.swarm.active()
    }

    pub(crate) fn passive(&self) -> impl Iterator<Item = &PI> + '_ {
        self.swarm.passive()
    }

    pub(crate) fn is_neighbor(&self, peer: &PI) -> bool {
        self.swarm.is_active(peer)
    }

    pub(crate) fn eager(&self) -> impl Iterator<Item = &PI> + '_ {
        self.gossip.eager()
    }

    pub(crate) fn lazy(&self) -> impl Iterator<Item = &PI> + '_ {
        self.gossip.lazy()
    }

    pub(crate) fn join<R: Rng>(
        &mut self,
        peers: &[PI],
        rng: &mut R,
        now: Duration,
        out: &mut Vec<TopicOut<PI>>,
    ) {
        self.swarm.join(peers, rng, &mut self.hv_out);
        self.drain(now, out);
    }

    pub(crate) fn broadcast(
        &mut self,
        id: MessageId,
        content: Content,
        scope: Scope,
        now: Duration,
        out: &mut Vec<TopicOut<PI>>,
    ) {
        self.gossip
            .broadcast(id, content, scope, now, &mut self.pt_out);
        self.drain(now, out);
    }

    pub(crate) fn on_message<R: Rng>(
        &mut self,
        from: PI,
        message: TopicMessage<PI>,
        rng: &mut R,
        now: Duration,
        out: &mut Vec<TopicOut<PI>>,
    ) {
        match message {
            TopicMessage::Membership(message) => {
                self.swarm.on_message(from, message, rng, &mut self.hv_out)
            }
            TopicMessage::Broadcast(message) => {
                // Taken from anyone: broadcast traffic races with links coming up and going
                // down, and a message must not be lost to that. Only neighbours' GRAFT and PRUNE
                // change eager and lazy sets (Plumtree ignores them for anyone else, but still
                // answers a graft with the message).
                self.gossip.on_message(from, message, now, &mut self.pt_out);
            }
        }
        self.drain(now, out);
    }

    pub(crate) fn on_timer<R: Rng>(
        &mut self,
        timer: TopicTimer<PI>,
        rng: &mut R,
        now: Duration,
        out: &mut Vec<TopicOut<PI>>,
    ) {
        match timer {
            TopicTimer::Membership(timer) => self.swarm.on_timer(timer, rng, &mut self.hv_out),
            TopicTimer::Broadcast(timer) => self.gossip.on_timer(timer, now, &mut self.pt_out),
        }
        self.drain(now, out);
    }

    pub(crate) fn on_peer_disconnected<R: Rng>(
        &mut self,
        peer: PI,
        rng: &mut R,
        now: Duration,
        out: &mut Vec<TopicOut<PI>>,
    ) {
        self.swarm.on_peer_disconnected(peer, rng, &mut self.hv_out);
        self.drain(now, out);
    }

    /// Moves sub-protocol outputs out, feeding membership changes into the broadcast layer.
    fn drain(&mut self, now: Duration, out: &mut Vec<TopicOut<PI>>) {
        for o in self.hv_out.drain(..) {
            match o {
                hyparview::Out::Send(to, m) => {
                    out.push(TopicOut::Send(to, TopicMessage::Membership(m)))
                }
                hyparview::Out::Timer(d, t) => {
                    out.push(TopicOut::Timer(d, TopicTimer::Membership(t)))
                }
                hyparview::Out::NeighborUp(peer) => {
                    self.gossip.neighbor_up(peer, now, &mut self.pt_out);
                    out.push(TopicOut::Emit(Event::NeighborUp(peer)));
                    if !self.joined {
                        self.joined = true;
                        out.push(TopicOut::Emit(Event::Joined));
                    }
                }
                hyparview::Out::NeighborDown(peer) => {
                    self.gossip.neighbor_down(peer);
                    out.push(TopicOut::Emit(Event::NeighborDown(peer)));
                }
                hyparview::Out::Disconnect(peer) => out.push(TopicOut::Disconnect(peer)),
            }
        }
        for o in self.pt_out.drain(..) {
            match o {
                plumtree::Out::Send(to, m) => {
                    out.push(TopicOut::Send(to, TopicMessage::Broadcast(m)))
                }
                plumtree::Out::Timer(d, t) => {
                    out.push(TopicOut::Timer(d, TopicTimer::Broadcast(t)))
                }
                plumtree::Out::Received {
                    id,
                    content,
                    delivered_from,
                    hops,
                    scope,
                } => {
                    out.push(TopicOut::Emit(Event::Received {
                        id,
                        content,
                        delivered_from,
                        hops,
                        scope,
                    }));
                }
            }
        }
    }
}
