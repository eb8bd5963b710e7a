//! Per-peer writer tasks with bounded queues: the one pool every layer's actor sends through, so
//! that no actor ever waits on a slow peer.
//!
//! The actor hands each outgoing item (an encoded frame, say) to [`WriterPool::send`]; the pool
//! queues it for the peer's writer task, starting one with the layer's own write loop when the
//! peer has none. The write loop owns how bytes go out (one long stream, or a stream per frame);
//! the pool owns the bounds.
//!
//! # Bounds, and the policy when full
//! - **Queue per peer**: `queue_capacity` items. An item that finds the queue full is dropped
//!   and reported ([`Sent::Full`]): the protocols above recover lost messages (time-outs,
//!   retries, lazy repair), and a peer that does not read must not grow our memory.
//! - **Writers**: `max_writers`. A new peer when all are in use closes the queue of the least
//!   recently used writer ([`Sent::StartedEvicting`]); that writer finishes what it had queued
//!   and ends. Peer ids are free, so this bound is what keeps an attacker who makes us answer
//!   many peers from making us hold a task per peer.
//! - **Shutdown**: [`WriterPool::close`] closes every queue, lets the writers finish within a
//!   grace period, then aborts the rest. Dropping the pool aborts every writer at once.

use std::{collections::HashMap, future::Future, time::Duration};

use tokio::{sync::mpsc, task::JoinSet};

use crate::PeerId;

/// What became of one [`WriterPool::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued for the peer's running writer.
    Queued,
    /// The peer's queue was full: the item was dropped.
    Full,
    /// A writer was started for the peer with the item queued.
    Started,
    /// A writer was started, and the least recently used one (this peer's) was closed to make
    /// room.
    StartedEvicting(PeerId),
}

#[derive(Debug)]
struct Writer<T> {
    queue: mpsc::Sender<T>,
    used: u64,
}

/// The writers of one actor: at most `max_writers` tasks, one per peer, each with a bounded
/// queue of `T`; each task ends with an `R` (a connection to close later, say).
#[derive(Debug)]
pub struct WriterPool<T, R = ()> {
    writers: HashMap<PeerId, Writer<T>>,
    tasks: JoinSet<R>,
    tick: u64,
    max_writers: usize,
    queue_capacity: usize,
}

impl<T: Send + 'static, R: Send + 'static> WriterPool<T, R> {
    /// An empty pool of at most `max_writers` writers with queues of `queue_capacity` items
    /// (both at least one).
    pub fn new(max_writers: usize, queue_capacity: usize) -> Self {
        Self {
            writers: HashMap::new(),
            tasks: JoinSet::new(),
            tick: 0,
            max_writers: max_writers.max(1),
            queue_capacity: queue_capacity.max(1),
        }
    }

    /// Queues `item` for `to`, starting `write_loop(queue)` as its writer if it has none (or its
    /// writer has ended). Never waits.
    pub fn send<F, Fut>(&mut self, to: PeerId, item: T, write_loop: F) -> Sent
    where
        F: FnOnce(mpsc::Receiver<T>) -> Fut,
        Fut: Future<Output = R> + Send + 'static,
    {
        self.reap();
        self.tick += 1;
        let tick = self.tick;
        let item = match self.writers.get_mut(&to) {
            Some(writer) => {
                writer.used = tick;
                match writer.queue.try_send(item) {
                    Ok(()) => return Sent::Queued,
                    Err(mpsc::error::TrySendError::Full(_)) => return Sent::Full,
                    // The writer ended (idled out or failed): start a new one below.
                    Err(mpsc::error::TrySendError::Closed(item)) => item,
                }
            }
            None => item,
        };
        self.writers.remove(&to);
        let evicted = if self.writers.len() >= self.max_writers {
            self.least_recently_used()
                .inspect(|oldest| drop(self.writers.remove(oldest)))
        } else {
            None
        };
        let (queue, rx) = mpsc::channel(self.queue_capacity);
        let _ = queue.try_send(item);
        self.writers.insert(to, Writer { queue, used: tick });
        self.tasks.spawn(write_loop(rx));
        match evicted {
            Some(peer) => Sent::StartedEvicting(peer),
            None => Sent::Started,
        }
    }

    /// Closes `peer`'s queue: its writer finishes what is queued and ends. Returns whether it
    /// had one.
    pub fn remove(&mut self, peer: &PeerId) -> bool {
        self.writers.remove(peer).is_some()
    }

    /// Peers with a writer.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Whether no peer has a writer.
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }

    /// Closes every queue and waits up to `grace` for the writers to finish; aborts those still
    /// running. Returns what the finished writers returned, and how many were cut off.
    pub async fn close(&mut self, grace: Duration) -> (Vec<R>, usize) {
        self.writers.clear();
        let mut finished = Vec::new();
        let joined = tokio::time::timeout(grace, async {
            while let Some(result) = self.tasks.join_next().await {
                if let Ok(value) = result {
                    finished.push(value);
                }
            }
        })
        .await;
        let cut_off = if joined.is_err() { self.tasks.len() } else { 0 };
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        (finished, cut_off)
    }

    /// Forgets the results of writers that have ended (their peers get a new writer on the
    /// next send).
    fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    fn least_recently_used(&self) -> Option<PeerId> {
        self.writers
            .iter()
            .min_by_key(|(_, writer)| writer.used)
            .map(|(peer, _)| *peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    fn peer(i: u8) -> PeerId {
        SecretKey::from_bytes(&[i; 32]).peer_id()
    }

    /// A writer that forwards what it is given to `out`.
    fn forwarding(
        out: mpsc::Sender<(PeerId, u32)>,
        who: PeerId,
    ) -> impl FnOnce(mpsc::Receiver<u32>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    {
        move |mut rx| {
            Box::pin(async move {
                while let Some(item) = rx.recv().await {
                    let _ = out.send((who, item)).await;
                }
            })
        }
    }

    #[tokio::test]
    async fn items_reach_each_peer_in_order_through_one_writer() {
        let (out, mut seen) = mpsc::channel(64);
        let mut pool = WriterPool::new(4, 8);
        let (a, b) = (peer(1), peer(2));
        assert_eq!(pool.send(a, 1, forwarding(out.clone(), a)), Sent::Started);
        assert_eq!(pool.send(b, 2, forwarding(out.clone(), b)), Sent::Started);
        assert_eq!(pool.send(a, 3, forwarding(out.clone(), a)), Sent::Queued);
        let (finished, cut_off) = pool.close(Duration::from_secs(5)).await;
        assert_eq!((finished.len(), cut_off), (2, 0));
        drop(out);
        let mut got = Vec::new();
        while let Some(item) = seen.recv().await {
            got.push(item);
        }
        let to_a: Vec<u32> = got
            .iter()
            .filter(|(p, _)| *p == a)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(to_a, vec![1, 3]);
        assert!(got.contains(&(b, 2)));
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_the_least_recently_used_writer_makes_room() {
        let mut pool: WriterPool<u32> = WriterPool::new(2, 1);
        // Writers that never read: their queues fill.
        let stuck = |rx: mpsc::Receiver<u32>| async move {
            let _held = rx;
            std::future::pending::<()>().await
        };
        let (a, b, c) = (peer(1), peer(2), peer(3));
        assert_eq!(pool.send(a, 1, stuck), Sent::Started);
        assert_eq!(pool.send(a, 2, stuck), Sent::Full);
        assert_eq!(pool.send(b, 1, stuck), Sent::Started);
        assert_eq!(pool.send(c, 1, stuck), Sent::StartedEvicting(a));
        assert_eq!(pool.len(), 2);
        // Writers that never finish are cut off after the grace period.
        let (finished, cut_off) = pool.close(Duration::from_millis(1)).await;
        assert_eq!((finished.len(), cut_off), (0, 3));
    }

    #[tokio::test]
    async fn a_writer_that_ended_is_replaced_on_the_next_send() {
        let mut pool: WriterPool<u32, u32> = WriterPool::new(2, 4);
        let a = peer(1);
        // Ends after its first item.
        let once = |mut rx: mpsc::Receiver<u32>| async move { rx.recv().await.unwrap_or(0) };
        assert_eq!(pool.send(a, 7, once), Sent::Started);
        // Wait until it has ended (its queue closes).
        while !pool.writers[&a].queue.is_closed() {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.send(a, 8, once), Sent::Started);
        let (finished, _) = pool.close(Duration::from_secs(5)).await;
        assert_eq!(finished, vec![8]);
    }
}
