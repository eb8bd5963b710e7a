//! [`TopicObserver`]: a topic's events and joins, without a say in whether the topic is kept.

use weft_transport::{Events, PeerAddr, PeerId};

use super::Gossip;
use crate::{
    Error,
    proto::{Event, TopicId},
};

/// Watches a joined topic without keeping it joined ([`Gossip::observe`]).
///
/// Unlike a [`super::Topic`], an observer does not count as a subscriber: when the topic's last
/// subscriber is gone the topic is left and the observer's stream ends ([`TopicObserver::recv`]
/// returns `None`), and its joins ([`TopicObserver::join_peers`]) do nothing from then on, so an
/// observer never rejoins a topic nobody on this node wants.
#[derive(Debug)]
pub struct TopicObserver {
    topic: TopicId,
    gossip: Gossip,
    events: Events<Event<PeerId>>,
}

impl TopicObserver {
    pub(super) fn new(topic: TopicId, gossip: Gossip, events: Events<Event<PeerId>>) -> Self {
        Self {
            topic,
            gossip,
            events,
        }
    }

    /// The topic observed.
    pub fn topic(&self) -> TopicId {
        self.topic
    }

    /// The topic's next event; `None` once the topic has been left (or gossip stopped). A
    /// bounded stream like a subscriber's: `Event::Lagged(n)` after a gap.
    pub async fn recv(&mut self) -> Option<Event<PeerId>> {
        self.events.recv().await
    }

    /// Adds peers to the topic and joins through them, as [`super::TopicSender::join_peers`]
    /// does; nothing happens if the topic has been left meanwhile.
    pub async fn join_peers(&self, peers: Vec<PeerAddr>) -> Result<(), Error> {
        self.gossip.join_peers(self.topic, peers).await
    }

    /// The topic's current neighbours (empty once it has been left).
    pub async fn neighbors(&self) -> Result<Vec<PeerId>, Error> {
        self.gossip.neighbors(self.topic).await
    }
}
