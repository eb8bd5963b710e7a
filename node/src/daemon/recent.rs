//! What happened lately on the node, for the status page: a bounded log of one-line events
//! fed by the layers' event streams (discovery, registry) and by the admin API's gossip topics.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use weft_discovery::{DepartReason, Event as DiscoveryEvent};
use weft_registry::Event as RegistryEvent;
use weft_transport::Events;

use crate::Node;
use crate::admin::RecentEvent;

/// Events kept at most; the oldest is dropped for a new one.
pub const MAX_RECENT_EVENTS: usize = 100;

/// The log. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Recent {
    started: Instant,
    events: Arc<Mutex<VecDeque<RecentEvent>>>,
}

impl Recent {
    /// An empty log; times are counted from `started` (the node's start, as its uptime is).
    pub(crate) fn new(started: Instant) -> Self {
        Self {
            started,
            events: Arc::default(),
        }
    }

    /// Adds an event, dropping the oldest when full.
    pub(crate) fn push(&self, layer: &str, text: String) {
        let at_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut events = lock(&self.events);
        if events.len() >= MAX_RECENT_EVENTS {
            events.pop_front();
        }
        events.push_back(RecentEvent {
            at_ms,
            layer: layer.to_owned(),
            text,
        });
    }

    /// The events kept, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<RecentEvent> {
        lock(&self.events).iter().cloned().collect()
    }

    /// Starts logging what `node`'s discovery and registry report; the tasks end with the
    /// layers' event streams or when the handles are dropped.
    pub(crate) fn follow(&self, node: &Node) -> Vec<AbortOnDropHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(discovery) = node.discovery() {
            tasks.push(self.log("discovery", discovery.events(), discovery_text));
        }
        if let Some(registry) = node.registry() {
            tasks.push(self.log("registry", registry.events(), registry_text));
        }
        tasks
    }

    /// A task logging what `text` makes of each of `events` (it skips those it says nothing
    /// about), until the stream ends.
    fn log<E: Send + 'static>(
        &self,
        layer: &'static str,
        mut events: Events<E>,
        text: fn(&E) -> Option<String>,
    ) -> AbortOnDropHandle<()> {
        let recent = self.clone();
        AbortOnDropHandle::new(tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Some(text) = text(&event) {
                    recent.push(layer, text);
                }
            }
        }))
    }
}

fn discovery_text(event: &DiscoveryEvent) -> Option<String> {
    Some(match event {
        DiscoveryEvent::PeerDiscovered(entry) => {
            format!("peer {} discovered", entry.peer.fmt_short())
        }
        DiscoveryEvent::PeerDeparted { peer, reason } => {
            let why = match reason {
                DepartReason::Departed => "departed",
                DepartReason::Purged => "purged (silent too long)",
                DepartReason::Evicted => "evicted (catalog full)",
                _ => "gone",
            };
            format!("peer {} {why}", peer.fmt_short())
        }
        DiscoveryEvent::Lagged(missed) => format!("{missed} discovery events not logged"),
        // Updates (a re-announce with new addresses) come often and say little.
        _ => return None,
    })
}

fn registry_text(event: &RegistryEvent) -> Option<String> {
    Some(match event {
        RegistryEvent::Published {
            name,
            holders,
            republished: false,
        } => format!("provided {name} ({holders} holders)"),
        RegistryEvent::Withdrawn { name, holders } => {
            format!("withdrew {name} ({holders} holders told)")
        }
        RegistryEvent::Bootstrapped { peers } => {
            format!("routing table bootstrapped ({peers} peers)")
        }
        RegistryEvent::Lagged(missed) => format!("{missed} registry events not logged"),
        // Republishes repeat every record TTL.
        _ => return None,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A plain queue: consistent whatever panicked while holding it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_newest_events() {
        let recent = Recent::new(Instant::now());
        for i in 0..MAX_RECENT_EVENTS + 5 {
            recent.push("node", format!("event {i}"));
        }
        let events = recent.snapshot();
        assert_eq!(events.len(), MAX_RECENT_EVENTS);
        assert_eq!(events[0].text, "event 5");
        assert_eq!(
            events.last().unwrap().text,
            format!("event {}", MAX_RECENT_EVENTS + 4)
        );
    }
}
