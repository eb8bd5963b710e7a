//! Event delivery from a layer's actor to its subscribers: the one piece every weft layer uses,
//! so that every event stream behaves the same.
//!
//! # The policy when a subscriber is slow
//! Each subscriber has its own bounded queue. The actor never waits for a subscriber: an event
//! that finds the queue full is counted as missed, and the next event that fits is preceded by
//! the layer's `Lagged(missed)` event (see [`LayerEvent`]). One slow subscriber therefore never
//! slows the protocol nor makes another subscriber miss anything. A subscriber that drops its
//! [`Events`] is removed at the next delivery ([`Subscribers::retain_open`] removes it sooner).
//!
//! ```
//! use weft_transport::{Events, LayerEvent, Subscribers};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum Event { Tick(u32), Lagged(u64) }
//! impl LayerEvent for Event {
//!     fn lagged(missed: u64) -> Self { Event::Lagged(missed) }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mut subscribers = Subscribers::new();
//! let mut events: Events<Event> = subscribers.subscribe(2);
//! for i in 0..4 {
//!     subscribers.deliver(&Event::Tick(i)); // the third and fourth find the queue full
//! }
//! assert_eq!(events.recv().await, Some(Event::Tick(0)));
//! assert_eq!(events.recv().await, Some(Event::Tick(1)));
//! subscribers.deliver(&Event::Tick(4));
//! assert_eq!(events.recv().await, Some(Event::Lagged(2)));
//! assert_eq!(events.recv().await, Some(Event::Tick(4)));
//! drop(subscribers); // the layer stopped
//! assert_eq!(events.recv().await, None);
//! # });
//! ```

use tokio::sync::mpsc;

/// An event type of a weft layer: it can say "you missed `n` events".
pub trait LayerEvent: Send + 'static {
    /// The event that tells a subscriber it missed `missed` events because its queue was full.
    fn lagged(missed: u64) -> Self;
}

/// The receiving half: one subscriber's stream of events.
#[derive(Debug)]
pub struct Events<E> {
    rx: mpsc::Receiver<E>,
}

impl<E> Events<E> {
    /// The next event; `None` once the layer has stopped (or dropped this subscriber).
    pub async fn recv(&mut self) -> Option<E> {
        self.rx.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<E> {
        self.rx.try_recv().ok()
    }
}

/// What became of one [`EventSender::deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued.
    Queued,
    /// The queue was full: counted as missed, reported by the next `Lagged`.
    Missed,
    /// The subscriber is gone.
    Closed,
}

/// The sending half of one subscriber: its bounded queue and its count of missed events.
#[derive(Debug)]
pub struct EventSender<E> {
    tx: mpsc::Sender<E>,
    missed: u64,
}

impl<E: LayerEvent> EventSender<E> {
    /// A subscriber whose queue holds `capacity` events (at least two: a `Lagged` notice and
    /// the event after it).
    pub fn channel(capacity: usize) -> (Self, Events<E>) {
        let (tx, rx) = mpsc::channel(capacity.max(2));
        (Self { tx, missed: 0 }, Events { rx })
    }

    /// Queues `event` without waiting. After a gap, the `Lagged` notice and the event go in
    /// together or not at all, so a reader always sees an event after a notice.
    pub fn deliver(&mut self, event: E) -> Delivery {
        if self.tx.is_closed() {
            return Delivery::Closed;
        }
        let needed = if self.missed > 0 { 2 } else { 1 };
        // We are the only sender of this queue, so the free capacity cannot shrink under us.
        if self.tx.capacity() < needed {
            self.missed += 1;
            return Delivery::Missed;
        }
        if self.missed > 0 {
            let _ = self.tx.try_send(E::lagged(self.missed));
            self.missed = 0;
        }
        match self.tx.try_send(event) {
            Ok(()) => Delivery::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.missed += 1;
                Delivery::Missed
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }

    /// Whether the subscriber dropped its [`Events`].
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Events missed and not yet reported.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// Every subscriber of one stream (a layer's events, or one topic's): each delivery goes to all.
#[derive(Debug)]
pub struct Subscribers<E> {
    senders: Vec<EventSender<E>>,
}

impl<E> Default for Subscribers<E> {
    fn default() -> Self {
        Self {
            senders: Vec::new(),
        }
    }
}

impl<E: LayerEvent + Clone> Subscribers<E> {
    /// No subscribers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscriber whose queue holds `capacity` events.
    pub fn subscribe(&mut self, capacity: usize) -> Events<E> {
        let (sender, events) = EventSender::channel(capacity);
        self.senders.push(sender);
        events
    }

    /// Delivers `event` to every subscriber (see [`EventSender::deliver`]); drops those that
    /// are gone.
    pub fn deliver(&mut self, event: &E) {
        self.senders
            .retain_mut(|sender| sender.deliver(event.clone()) != Delivery::Closed);
    }

    /// Drops the subscribers that are gone; returns how many remain.
    pub fn retain_open(&mut self) -> usize {
        self.senders.retain(|sender| !sender.is_closed());
        self.senders.len()
    }

    /// How many subscribers there are (including any that left since the last delivery).
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Whether there is no subscriber.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Ev {
        N(u32),
        Lagged(u64),
    }

    impl LayerEvent for Ev {
        fn lagged(missed: u64) -> Self {
            Ev::Lagged(missed)
        }
    }

    #[test]
    fn a_slow_subscriber_misses_events_without_slowing_the_other() {
        let mut subs = Subscribers::new();
        let mut slow = subs.subscribe(2);
        let mut fast = subs.subscribe(16);
        for i in 0..5 {
            subs.deliver(&Ev::N(i));
        }
        for i in 0..5 {
            assert_eq!(fast.try_recv(), Some(Ev::N(i)));
        }
        assert_eq!(slow.try_recv(), Some(Ev::N(0)));
        // One slot free: not room for a notice and an event, so this one is missed too.
        subs.deliver(&Ev::N(5));
        assert_eq!(slow.try_recv(), Some(Ev::N(1)));
        assert_eq!(slow.try_recv(), None);
        subs.deliver(&Ev::N(6));
        assert_eq!(slow.try_recv(), Some(Ev::Lagged(4)));
        assert_eq!(slow.try_recv(), Some(Ev::N(6)));
        subs.deliver(&Ev::N(7));
        assert_eq!(slow.try_recv(), Some(Ev::N(7)));
    }

    #[test]
    fn a_dropped_subscriber_is_removed() {
        let mut subs = Subscribers::<Ev>::new();
        let gone = subs.subscribe(4);
        let _kept = subs.subscribe(4);
        drop(gone);
        assert_eq!(subs.retain_open(), 1);
        subs.deliver(&Ev::N(1));
        assert_eq!(subs.len(), 1);
    }

    #[test]
    fn a_sender_reports_each_delivery() {
        let (mut sender, events) = EventSender::<Ev>::channel(2);
        assert_eq!(sender.deliver(Ev::N(1)), Delivery::Queued);
        assert_eq!(sender.deliver(Ev::N(2)), Delivery::Queued);
        assert_eq!(sender.deliver(Ev::N(3)), Delivery::Missed);
        assert_eq!(sender.missed(), 1);
        drop(events);
        assert_eq!(sender.deliver(Ev::N(4)), Delivery::Closed);
        assert!(sender.is_closed());
    }
}
