//! The handoff from a protocol handler to its actor: a bounded channel with a policy when full.
//!
//! A layer's iroh `ProtocolHandler` accepts what peers open (connections, streams, requests) on
//! the endpoint's tasks, one task per connection, and hands it to the layer's actor. The actor
//! may be behind, so the channel between them is bounded, and what happens when it is full is a
//! decision each layer makes once, by choosing a [`WhenFull`] policy for its [`Handoff`].

use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::mpsc::{self, error::TrySendError};

/// What a [`Handoff`] does with an item that finds its actor's queue full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenFull {
    /// The handler waits for room.
    ///
    /// For what a peer keeps sending on one connection (messages, streams, the connection
    /// itself). Waiting delays only the task serving that connection: while it waits it reads
    /// nothing more, so QUIC flow control holds the peer back, and nothing is lost. The bound on
    /// how many connections can wait at once is the endpoint's inbound admission.
    Wait,
    /// The item is handed back at once ([`Handed::Refused`]) and counted ([`Handoff::refused`]).
    ///
    /// For requests that expect an answer in time: a request queued behind a backlog would be
    /// answered after its asker gave up, so refusing it (its stream reset) tells the asker at
    /// once to try elsewhere, and the actor never works on answers nobody waits for.
    Refuse,
}

/// What became of an item given to [`Handoff::hand`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a refused or closed item is handed back: drop it on purpose"]
#[non_exhaustive]
pub enum Handed<T> {
    /// In the actor's queue.
    Queued,
    /// The queue was full and the policy is [`WhenFull::Refuse`]: the item, handed back.
    Refused(T),
    /// The actor has ended (its receiver is gone): the item, handed back. Nothing handed to this
    /// handoff will ever be queued again.
    Closed(T),
}

impl<T> Handed<T> {
    /// Whether the actor has ended: a handler stops serving its connection then.
    pub fn is_closed(&self) -> bool {
        matches!(self, Handed::Closed(_))
    }
}

/// The handler's side of a bounded channel to its actor, with its policy when full.
///
/// Cheap to clone; clones share the queue and the counters (a layer with two protocols can
/// give both handlers one handoff).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::num::NonZeroUsize;
/// use weft_transport::{Handed, Handoff, WhenFull};
///
/// let (requests, mut actor) = Handoff::channel(NonZeroUsize::MIN, WhenFull::Refuse);
/// assert_eq!(requests.hand("first").await, Handed::Queued);
/// assert_eq!(requests.hand("second").await, Handed::Refused("second"));
/// assert_eq!(requests.refused(), 1);
/// assert_eq!(actor.recv().await, Some("first"));
/// # }
/// ```
#[derive(Debug)]
pub struct Handoff<T> {
    queue: mpsc::Sender<T>,
    when_full: WhenFull,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    refused: AtomicU64,
    waited: AtomicU64,
}

impl<T> Clone for Handoff<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            when_full: self.when_full,
            counts: self.counts.clone(),
        }
    }
}

impl<T> Handoff<T> {
    /// A handoff holding at most `capacity` items for the actor, which reads them from the
    /// receiver. The receiver's drop (the actor's end) closes the handoff.
    pub fn channel(capacity: NonZeroUsize, when_full: WhenFull) -> (Self, mpsc::Receiver<T>) {
        let (queue, receiver) = mpsc::channel(capacity.get());
        let handoff = Self {
            queue,
            when_full,
            counts: Arc::default(),
        };
        (handoff, receiver)
    }

    /// Hands `item` to the actor: queued, refused (full, under [`WhenFull::Refuse`]), or closed.
    /// Under [`WhenFull::Wait`] a full queue makes this wait for room (or for the actor's end).
    pub async fn hand(&self, item: T) -> Handed<T> {
        let item = match self.queue.try_send(item) {
            Ok(()) => return Handed::Queued,
            Err(TrySendError::Closed(item)) => return Handed::Closed(item),
            Err(TrySendError::Full(item)) => item,
        };
        match self.when_full {
            WhenFull::Refuse => {
                self.counts.refused.fetch_add(1, Ordering::Relaxed);
                Handed::Refused(item)
            }
            WhenFull::Wait => {
                self.counts.waited.fetch_add(1, Ordering::Relaxed);
                match self.queue.send(item).await {
                    Ok(()) => Handed::Queued,
                    Err(mpsc::error::SendError(item)) => Handed::Closed(item),
                }
            }
        }
    }

    /// This handoff's policy when full.
    pub fn when_full(&self) -> WhenFull {
        self.when_full
    }

    /// Items refused so far because the queue was full (always 0 under [`WhenFull::Wait`]).
    pub fn refused(&self) -> u64 {
        self.counts.refused.load(Ordering::Relaxed)
    }

    /// Items so far that found the queue full and waited for room (always 0 under
    /// [`WhenFull::Refuse`]): how often the actor was the bottleneck.
    pub fn waited(&self) -> u64 {
        self.counts.waited.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use futures_lite::future::poll_once;

    use super::*;

    fn one() -> NonZeroUsize {
        NonZeroUsize::MIN
    }

    #[tokio::test]
    async fn queues_while_there_is_room() {
        let two = NonZeroUsize::new(2).unwrap();
        for policy in [WhenFull::Wait, WhenFull::Refuse] {
            let (handoff, mut rx) = Handoff::channel(two, policy);
            assert_eq!(handoff.hand(1).await, Handed::Queued);
            assert_eq!(handoff.hand(2).await, Handed::Queued);
            assert_eq!((rx.recv().await, rx.recv().await), (Some(1), Some(2)));
            assert_eq!((handoff.refused(), handoff.waited()), (0, 0));
        }
    }

    #[tokio::test]
    async fn wait_holds_the_item_until_the_actor_makes_room() {
        let (handoff, mut rx) = Handoff::channel(one(), WhenFull::Wait);
        assert_eq!(handoff.hand(1).await, Handed::Queued);

        let mut second = pin!(handoff.hand(2));
        assert!(poll_once(&mut second).await.is_none(), "full: it waits");
        assert_eq!(handoff.waited(), 1);

        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(second.await, Handed::Queued);
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(handoff.refused(), 0);
    }

    #[tokio::test]
    async fn refuse_hands_the_item_back_at_once_and_counts_it() {
        let (handoff, mut rx) = Handoff::channel(one(), WhenFull::Refuse);
        let clone = handoff.clone();
        assert_eq!(handoff.hand(1).await, Handed::Queued);
        assert_eq!(handoff.hand(2).await, Handed::Refused(2));
        assert_eq!(clone.hand(3).await, Handed::Refused(3));
        assert_eq!(handoff.refused(), 2, "clones share the count");

        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(clone.hand(4).await, Handed::Queued);
        assert_eq!(rx.recv().await, Some(4));
        assert_eq!((handoff.refused(), handoff.waited()), (2, 0));
    }

    #[tokio::test]
    async fn a_closed_receiver_hands_every_item_back() {
        for policy in [WhenFull::Wait, WhenFull::Refuse] {
            let (handoff, rx) = Handoff::channel(one(), policy);
            drop(rx);
            let handed = handoff.hand(1).await;
            assert!(handed.is_closed());
            assert_eq!(handed, Handed::Closed(1));
            assert_eq!((handoff.refused(), handoff.waited()), (0, 0));
        }
    }

    #[tokio::test]
    async fn a_waiting_item_comes_back_when_the_actor_ends() {
        let (handoff, rx) = Handoff::channel(one(), WhenFull::Wait);
        assert_eq!(handoff.hand(1).await, Handed::Queued);
        let mut second = pin!(handoff.hand(2));
        assert!(poll_once(&mut second).await.is_none());

        drop(rx);
        assert_eq!(second.await, Handed::Closed(2));
    }
}
