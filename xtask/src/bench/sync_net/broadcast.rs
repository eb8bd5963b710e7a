//! The weft-gossip topic the live sync figures are compared with.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::timeout,
};
use weft_gossip::{Event as GossipEvent, TopicId, TopicSender};
use weft_transport::PeerId;

use super::{Delivery, LIVE, Node, parse_live, payload, since_start_ns};

/// The gossip topic the live figures are compared with.
#[derive(Debug)]
pub(super) struct GossipTopic {
    senders: Vec<TopicSender>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for GossipTopic {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl GossipTopic {
    /// Every node subscribes (through the first); returns once the membership settled the way
    /// the gossip benchmark waits for it.
    pub(super) async fn join(
        nodes: &[Node],
        start: Instant,
        total: usize,
    ) -> Result<(Self, mpsc::Receiver<Delivery>)> {
        let topic_id = TopicId::from_name("bench/broadcast");
        let (tx, rx) = mpsc::channel::<Delivery>(total * nodes.len() + 1024);
        let (changes_tx, mut changes) = mpsc::channel::<()>(64);
        let mut senders = Vec::with_capacity(nodes.len());
        let mut tasks = Vec::with_capacity(nodes.len());
        let mut joined = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let bootstrap = if i == 0 {
                vec![]
            } else {
                vec![nodes[0].endpoint.addr()]
            };
            let (sender, mut events) = node.gossip.subscribe(topic_id, bootstrap).await?.split();
            senders.push(sender);
            let (tx, changes_tx) = (tx.clone(), changes_tx.clone());
            let (joined_tx, joined_rx) = oneshot::channel();
            joined.push(joined_rx);
            tasks.push(tokio::spawn(async move {
                let mut joined = Some(joined_tx);
                while let Some(event) = events.recv().await {
                    match event {
                        GossipEvent::Joined => {
                            if let Some(j) = joined.take() {
                                let _ = j.send(());
                            }
                        }
                        GossipEvent::NeighborUp(_) | GossipEvent::NeighborDown(_) => {
                            let _ = changes_tx.try_send(());
                        }
                        GossipEvent::Received { content, hops, .. } => {
                            if let Some((seq, sent)) = parse_live(content.as_bytes()) {
                                let latency =
                                    start.elapsed().saturating_sub(Duration::from_nanos(sent));
                                // `hops` counts from the originator's neighbours at 0.
                                let _ = tx.try_send((i, seq, latency, Some(hops + 1)));
                            }
                        }
                        _ => {}
                    }
                }
            }));
        }
        for (i, joined) in joined.into_iter().enumerate().skip(1) {
            timeout(Duration::from_secs(10), joined)
                .await
                .with_context(|| format!("n{i} did not join the gossip topic"))?
                .ok();
        }
        let topic = Self { senders, tasks };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if timeout(Duration::from_millis(250), changes.recv())
                .await
                .is_ok()
            {
                continue;
            }
            if topic.symmetric(nodes).await {
                break;
            }
        }
        Ok((topic, rx))
    }

    pub(super) async fn symmetric(&self, nodes: &[Node]) -> bool {
        let mut views = Vec::with_capacity(self.senders.len());
        for sender in &self.senders {
            match sender.neighbors().await {
                Ok(view) => views.push(view),
                Err(_) => return false,
            }
        }
        let ids: Vec<PeerId> = nodes.iter().map(|n| n.endpoint.id()).collect();
        views.iter().zip(&ids).all(|(view, me)| {
            view.iter().all(|peer| {
                ids.iter()
                    .position(|id| id == peer)
                    .is_some_and(|j| views[j].contains(me))
            })
        })
    }

    /// Broadcasts live message `seq` from `node` (on a task, so the pacing holds).
    pub(super) fn send(&self, node: usize, seq: u64, start: Instant, size: usize) -> Result<()> {
        let sender = self.senders[node].clone();
        tokio::spawn(async move {
            let content = payload(LIVE, seq, since_start_ns(start), size);
            let _ = sender.broadcast(content).await;
        });
        Ok(())
    }
}
