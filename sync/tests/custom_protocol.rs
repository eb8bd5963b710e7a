//! An application's own session protocol plugged into the manager: an append-only log whose
//! sessions exchange heights and send the missing tail, instead of reconciling sets.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use weft_gossip::TopicId;
use weft_sync::{
    Item,
    proto::{
        CatchUpStats, Config, Context, Event, Origin, ProtocolError, ProtocolFactory, Refusal,
        Role, SessionError, SyncProtocol,
    },
    sim::World,
};

/// A log entry's timestamp is its sequence number, so the index orders the log.
#[derive(Serialize, Deserialize)]
enum LogMessage {
    Height(u64),
    Entries(Vec<ByteBuf>),
}

#[derive(Default)]
struct LogSession {
    sent_tail: bool,
    got_tail: bool,
    stats: CatchUpStats,
}

impl LogSession {
    fn send(cx: &mut Context<'_>, message: &LogMessage) {
        let mut bytes = Vec::new();
        ciborium::into_writer(message, &mut bytes).unwrap();
        cx.send(bytes);
    }
}

impl SyncProtocol for LogSession {
    fn start(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        let height = cx.items().len() as u64;
        Self::send(cx, &LogMessage::Height(height));
        Ok(())
    }

    fn receive(&mut self, message: &[u8], cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        let message: LogMessage =
            ciborium::from_reader(message).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        match message {
            LogMessage::Height(theirs) => {
                let ours = cx.items().len();
                let from = usize::try_from(theirs).unwrap_or(usize::MAX).min(ours);
                let keys: Vec<_> = cx.items().index().range(from..ours).collect();
                let mut tail = Vec::new();
                for key in keys {
                    let item = cx.items().get(&key.id)?.expect("indexed items are stored");
                    tail.push(ByteBuf::from(item.as_bytes().to_vec()));
                }
                self.stats.items_sent += tail.len() as u64;
                Self::send(cx, &LogMessage::Entries(tail));
                self.sent_tail = true;
            }
            LogMessage::Entries(entries) => {
                let items = entries
                    .into_iter()
                    .map(|bytes| Item::from_bytes(bytes.into_vec()))
                    .collect::<Result<Vec<_>, _>>()?;
                self.stats.items_received += cx.insert(items)? as u64;
                self.got_tail = true;
            }
        }
        if self.sent_tail && self.got_tail {
            cx.caught_up();
        }
        Ok(())
    }

    fn forward(
        &mut self,
        items: &[Item],
        _origin: Origin,
        cx: &mut Context<'_>,
    ) -> Result<(), ProtocolError> {
        let entries = items
            .iter()
            .map(|item| ByteBuf::from(item.as_bytes().to_vec()))
            .collect();
        Self::send(cx, &LogMessage::Entries(entries));
        Ok(())
    }

    fn stats(&self) -> CatchUpStats {
        self.stats
    }
}

struct Log;

impl ProtocolFactory for Log {
    fn name(&self) -> &str {
        "append-only-log/1"
    }

    fn new_session(&self, _role: Role) -> Box<dyn SyncProtocol> {
        Box::new(LogSession::default())
    }
}

fn topic() -> TopicId {
    TopicId::from_name("a log")
}

fn entries(range: std::ops::Range<u64>) -> Vec<Item> {
    range
        .map(|seq| Item::new(seq, format!("entry {seq}").as_bytes()))
        .collect()
}

#[test]
fn a_plugged_in_log_protocol_catches_up_and_goes_live() {
    let mut world = World::new(
        2,
        &Config::default(),
        (Duration::from_millis(3), Duration::from_millis(3)),
        3,
    );
    world.subscribe_with(0, topic(), &entries(0..10), Arc::new(Log));
    world.subscribe_with(1, topic(), &entries(0..4), Arc::new(Log));
    world.link(topic(), 0, 1);
    world.run_until(Duration::from_secs(1));
    assert_eq!(world.node(1).items(topic()).unwrap().len(), 10);
    let events = world.take_events();
    let stats: Vec<CatchUpStats> = events[1]
        .iter()
        .filter_map(|(_, e)| match e {
            Event::CaughtUp { stats, .. } => Some(*stats),
            _ => None,
        })
        .collect();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].items_received, 6);

    // Live: an entry appended at node 1 reaches node 0.
    world
        .node_mut(1)
        .insert(topic(), Item::new(10, b"entry 10"))
        .unwrap();
    world.flush(1);
    world.run_until(world.now() + Duration::from_secs(1));
    assert_eq!(world.node(0).items(topic()).unwrap().len(), 11);
}

#[test]
fn peers_running_different_protocols_on_a_topic_are_refused() {
    let mut world = World::new(
        2,
        &Config::default(),
        (Duration::from_millis(3), Duration::from_millis(3)),
        3,
    );
    world.subscribe_with(0, topic(), &entries(0..3), Arc::new(Log));
    world.subscribe(1, topic(), &entries(0..3));
    let now = world.clock();
    world.node_mut(0).connect(topic(), 1, now);
    world.flush(0);
    world.run_until(Duration::from_millis(100));
    let events = world.take_events();
    assert!(events[0].iter().any(|(_, e)| matches!(
        e,
        Event::SessionFailed { error: SessionError::Refused(Refusal::UnsupportedProtocol { ours }), .. }
            if ours == "set-reconciliation/1"
    )), "{:?}", events[0]);
}
