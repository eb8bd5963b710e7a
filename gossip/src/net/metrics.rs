//! What a running [`Gossip`](super::Gossip) counts about itself, for an operator.
//!
//! Counters live in an `iroh-metrics` group owned by one `Gossip` (no global registry, so many
//! nodes in one process stay apart); [`Gossip::metrics`](super::Gossip::metrics) hands it out
//! and a node registers it next to the other layers' groups. Everything is counted in the
//! actor and its reader and writer tasks, from what the proto asked for and what arrived: the
//! proto itself stays free of side effects.

use iroh_metrics::{Counter, Gauge, Histogram, MetricsGroup};

use crate::proto::{BroadcastMessage, Message, TopicMessage};

/// Gossip's counters.
#[derive(Debug, MetricsGroup)]
#[metrics(name = "gossip", default)]
#[non_exhaustive]
pub struct Metrics {
    /// Broadcast messages (content pushes) sent.
    pub pushes_sent: Counter,
    /// Broadcast messages (content pushes) received, duplicates included.
    pub pushes_received: Counter,
    /// Pushes received that had been delivered already (a cycle in the tree, pruned).
    pub duplicates: Counter,
    /// Broadcasts delivered to subscribers for the first time.
    pub delivered: Counter,
    /// Lazy-push announcements (IHAVE messages) sent.
    pub ihave_sent: Counter,
    /// Lazy-push announcements (IHAVE messages) received.
    pub ihave_received: Counter,
    /// Grafts sent (a missing message fetched, or a link made eager).
    pub grafts_sent: Counter,
    /// Grafts received.
    pub grafts_received: Counter,
    /// Prunes sent (a link made lazy after a duplicate).
    pub prunes_sent: Counter,
    /// Prunes received.
    pub prunes_received: Counter,
    /// Membership (HyParView) messages sent.
    pub membership_sent: Counter,
    /// Membership (HyParView) messages received.
    pub membership_received: Counter,
    /// Frames sent, all kinds.
    pub frames_sent: Counter,
    /// Frames received, all kinds.
    pub frames_received: Counter,
    /// Bytes written to peers (framing included).
    pub bytes_sent: Counter,
    /// Bytes read from peers (framing included).
    pub bytes_received: Counter,
    /// Frames dropped because a peer's send queue was full.
    pub send_queue_full: Counter,
    /// Neighbours that came up, over every topic.
    pub neighbor_up: Counter,
    /// Neighbours that went down, over every topic.
    pub neighbor_down: Counter,
    /// Active neighbours now, summed over topics.
    pub neighbors: Gauge,
    /// Topics joined now.
    pub topics: Gauge,
    /// Hops of first deliveries from their originator (its neighbours are at 0).
    #[default(Histogram::new(HOP_BUCKETS.to_vec()))]
    pub delivery_hops: Histogram,
}

/// Hop buckets: a tree over 100,000 nodes stays under 32 hops.
const HOP_BUCKETS: [f64; 10] = [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0];

/// Which way a message went.
#[derive(Debug, Clone, Copy)]
pub(super) enum Direction {
    Sent,
    Received,
}

impl Metrics {
    /// Counts one message by its kind.
    pub(super) fn message<PI>(&self, message: &Message<PI>, direction: Direction) {
        let (sent, received) = match &message.message {
            TopicMessage::Membership(_) => (&self.membership_sent, &self.membership_received),
            TopicMessage::Broadcast(BroadcastMessage::Gossip(_)) => {
                (&self.pushes_sent, &self.pushes_received)
            }
            TopicMessage::Broadcast(BroadcastMessage::IHave(_)) => {
                (&self.ihave_sent, &self.ihave_received)
            }
            TopicMessage::Broadcast(BroadcastMessage::Graft { .. }) => {
                (&self.grafts_sent, &self.grafts_received)
            }
            TopicMessage::Broadcast(BroadcastMessage::Prune) => {
                (&self.prunes_sent, &self.prunes_received)
            }
        };
        match direction {
            Direction::Sent => {
                sent.inc();
                self.frames_sent.inc();
            }
            Direction::Received => {
                received.inc();
                self.frames_received.inc();
            }
        }
    }
}

/// Whether a message is a content push (for duplicate counting).
pub(super) fn is_push<PI>(message: &Message<PI>) -> bool {
    matches!(
        message.message,
        TopicMessage::Broadcast(BroadcastMessage::Gossip(_))
    )
}
