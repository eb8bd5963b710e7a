//! The gossip topics the admin API has joined, and the fan-out of each topic's events to the
//! `weft gossip subscribe` streams reading it.
//!
//! A topic joined through the admin API stays joined until the node shuts down: a `weft gossip
//! publish` is one short command, and leaving the topic right after it would tear down the
//! links the next publish needs. One gossip subscription per topic feeds every admin
//! subscriber, so a hundred `subscribe` commands cost the gossip actor one event queue.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use weft_gossip::{Event, TopicEvents, TopicId, TopicSender};
use weft_transport::PeerId;

use crate::Node;
use crate::admin::{ApiError, GossipEvent, Payload, Subscription};
use crate::daemon::recent::Recent;

/// Gossip topics the admin API keeps joined at most. Past it, joining another is refused
/// (the topics joined stay): each topic costs links and timers for as long as the node runs.
pub const MAX_GOSSIP_TOPICS: usize = 64;

/// `weft gossip subscribe` streams per topic at most (the admin server's connection limit is
/// the tighter bound in practice).
pub const MAX_GOSSIP_SUBSCRIBERS: usize = 16;

/// Events a slow subscriber may have unread before new ones are dropped for it (and counted
/// in the next [`GossipEvent::Lagged`]).
const SUBSCRIBER_CAPACITY: usize = 256;

/// How long a publish on a topic joined just now waits for a first neighbour: without one the
/// message reaches nobody. Bounded so a publish on a network of one still answers.
const FIRST_NEIGHBOUR_WAIT: Duration = Duration::from_secs(5);

/// The joined topics, by name.
#[derive(Debug)]
pub(crate) struct GossipTopics {
    topics: tokio::sync::Mutex<BTreeMap<String, Joined>>,
    /// Where neighbour changes are logged for the status page.
    recent: Recent,
}

/// One joined topic: its sending half, and the task that drains its events to subscribers.
#[derive(Debug)]
struct Joined {
    sender: TopicSender,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    /// `true` once the topic has had a neighbour.
    has_neighbour: watch::Receiver<bool>,
    fan_out: JoinHandle<()>,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.fan_out.abort();
    }
}

#[derive(Debug)]
struct Subscriber {
    sender: mpsc::Sender<GossipEvent>,
    /// Events dropped since the last one delivered.
    missed: u64,
}

impl GossipTopics {
    /// No topic joined yet; neighbour changes will be logged to `recent`.
    pub(crate) fn new(recent: Recent) -> Self {
        Self {
            topics: tokio::sync::Mutex::default(),
            recent,
        }
    }

    /// The names of the topics joined, in order.
    pub(crate) async fn names(&self) -> Vec<String> {
        self.topics.lock().await.keys().cloned().collect()
    }

    /// Broadcasts `content` on the topic `name`, joining it first if needed (and then waiting
    /// up to [`FIRST_NEIGHBOUR_WAIT`] for a neighbour). Returns the message id as hex.
    pub(crate) async fn publish(
        &self,
        node: &Node,
        name: &str,
        content: Payload,
    ) -> Result<String, ApiError> {
        let (sender, mut has_neighbour) = {
            let mut topics = self.topics.lock().await;
            let joined = join(&mut topics, node, name, &self.recent).await?;
            (joined.sender.clone(), joined.has_neighbour.clone())
        };
        // A topic with a neighbour already passes at once; a lonely one publishes anyway.
        let _ = tokio::time::timeout(FIRST_NEIGHBOUR_WAIT, has_neighbour.wait_for(|up| *up)).await;
        let id = sender.broadcast(content.0).await.map_err(|err| {
            ApiError::bad_request(format_args!("cannot publish on {name}: {err}"))
        })?;
        Ok(hex::encode(id.0))
    }

    /// Joins the topic `name` if needed, with nobody reading it yet (what a restart restores).
    pub(crate) async fn join(&self, node: &Node, name: &str) -> Result<(), ApiError> {
        let mut topics = self.topics.lock().await;
        join(&mut topics, node, name, &self.recent)
            .await
            .map(|_| ())
    }

    /// A stream of the topic's events, joining it first if needed. It starts with a
    /// `neighbor_up` for each current neighbour, so a reader knows when a publish can reach it.
    pub(crate) async fn subscribe(
        &self,
        node: &Node,
        name: &str,
    ) -> Result<Subscription<GossipEvent>, ApiError> {
        let mut topics = self.topics.lock().await;
        let joined = join(&mut topics, node, name, &self.recent).await?;
        let neighbours = joined
            .sender
            .neighbors()
            .await
            .map_err(|err| closed(&err))?;
        let (sender, subscription) = Subscription::channel(SUBSCRIBER_CAPACITY);
        for peer in neighbours {
            // The channel is new and larger than any active view: this cannot be full.
            let _ = sender.try_send(GossipEvent::NeighborUp {
                peer: peer.to_string(),
            });
        }
        let mut subscribers = lock(&joined.subscribers);
        subscribers.retain(|subscriber| !subscriber.sender.is_closed());
        if subscribers.len() >= MAX_GOSSIP_SUBSCRIBERS {
            return Err(ApiError::unavailable(format_args!(
                "topic {name} already has {MAX_GOSSIP_SUBSCRIBERS} subscribers; stop one first"
            )));
        }
        subscribers.push(Subscriber { sender, missed: 0 });
        Ok(subscription)
    }
}

/// The joined topic `name`, joining it through the node's bootstrap peers if it is new.
async fn join<'a>(
    topics: &'a mut BTreeMap<String, Joined>,
    node: &Node,
    name: &str,
    recent: &Recent,
) -> Result<&'a Joined, ApiError> {
    if !topics.contains_key(name) {
        if name.is_empty() {
            return Err(ApiError::bad_request("the topic name is empty"));
        }
        if topics.len() >= MAX_GOSSIP_TOPICS {
            return Err(ApiError::unavailable(format_args!(
                "this node has joined its limit of {MAX_GOSSIP_TOPICS} gossip topics through the \
                 admin API; restart it to leave them"
            )));
        }
        let topic = node
            .subscribe_gossip(TopicId::from_name(name))
            .await
            .map_err(|err| ApiError::unavailable(format_args!("cannot join {name}: {err}")))?;
        let (sender, events) = topic.split();
        let subscribers = Arc::new(Mutex::new(Vec::new()));
        let (up, has_neighbour) = watch::channel(false);
        recent.push("gossip", format!("joined topic {name}"));
        let log = NeighbourLog {
            recent: recent.clone(),
            topic: name.to_owned(),
        };
        let fan_out = tokio::spawn(fan_out(events, subscribers.clone(), up, log));
        topics.insert(
            name.to_owned(),
            Joined {
                sender,
                subscribers,
                has_neighbour,
                fan_out,
            },
        );
    }
    topics
        .get(name)
        .ok_or_else(|| ApiError::internal("the topic vanished while joining"))
}

/// Delivers each event of the topic to every subscriber without waiting on any: a full
/// subscriber misses the event and is told how many it missed when it has room again.
async fn fan_out(
    mut events: TopicEvents,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    has_neighbour: watch::Sender<bool>,
    log: NeighbourLog,
) {
    // The stream ends when gossip stops: dropping the senders then ends every subscription.
    while let Some(event) = events.recv().await {
        let event = match event {
            Event::Received {
                content,
                delivered_from,
                ..
            } => message(delivered_from, content.as_bytes().to_vec()),
            Event::NeighborUp(peer) => {
                has_neighbour.send_replace(true);
                log.push("up", peer);
                GossipEvent::NeighborUp {
                    peer: peer.to_string(),
                }
            }
            Event::NeighborDown(peer) => {
                log.push("down", peer);
                GossipEvent::NeighborDown {
                    peer: peer.to_string(),
                }
            }
            Event::Lagged(missed) => {
                // Gossip dropped events before they reached us: every subscriber missed them.
                for subscriber in lock(&subscribers).iter_mut() {
                    subscriber.missed += missed;
                }
                continue;
            }
            // `Joined`, and kinds a newer gossip adds: nothing a subscriber is told about.
            _ => continue,
        };
        let mut subscribers = lock(&subscribers);
        subscribers.retain_mut(|subscriber| deliver(subscriber, &event));
    }
}

/// Logs a topic's neighbour changes for the status page.
struct NeighbourLog {
    recent: Recent,
    topic: String,
}

impl NeighbourLog {
    fn push(&self, change: &str, peer: PeerId) {
        let text = format!("neighbour {} {change} on {}", peer.fmt_short(), self.topic);
        self.recent.push("gossip", text);
    }
}

/// Sends `event` (after a pending `Lagged`); false once the subscriber has gone.
fn deliver(subscriber: &mut Subscriber, event: &GossipEvent) -> bool {
    use mpsc::error::TrySendError;
    if subscriber.missed > 0 {
        let lagged = GossipEvent::Lagged {
            missed: subscriber.missed,
        };
        match subscriber.sender.try_send(lagged) {
            Ok(()) => subscriber.missed = 0,
            Err(TrySendError::Full(_)) => {
                subscriber.missed += 1;
                return true;
            }
            Err(TrySendError::Closed(_)) => return false,
        }
    }
    match subscriber.sender.try_send(event.clone()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            subscriber.missed += 1;
            true
        }
        Err(TrySendError::Closed(_)) => false,
    }
}

fn message(from: PeerId, content: Vec<u8>) -> GossipEvent {
    GossipEvent::Message {
        from: from.to_string(),
        content: Payload(content),
    }
}

fn closed(err: &weft_gossip::Error) -> ApiError {
    ApiError::unavailable(format_args!("gossip has stopped: {err}"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The vector stays consistent whatever panicked while holding it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
