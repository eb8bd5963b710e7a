//! A whole sync session as a hostile peer drives it: a sans-IO `Manager` holding 20 items
//! accepts a stream, gets a valid `Hello`, then arbitrary input.
//!
//! Input: a control byte, then messages (`weft_fuzz::chunks`). Control bit 0 clear: each
//! message is the payload of a `Frame::Data` (the set-reconciliation protocol's messages);
//! set: each message is a whole CBOR `Frame` (undecodable ones are skipped). Bit 1: a timer
//! round and a stream close follow.
//! Checks: no panic, and afterwards every stored item is still there and unchanged, and every
//! item the store holds is consistent with its id (what the peer added, if anything, is sound).

#![no_main]

use std::{sync::Arc, time::Duration};

use libfuzzer_sys::fuzz_target;
use weft_fuzz::chunks;
use weft_sync::{
    Item,
    proto::{
        Config, Frame, Input, Manager, Output, ProtocolFactory, SET_RECONCILIATION,
        SetReconciliationFactory, Timer, TopicItems,
    },
    store::{MemoryStore, Store},
};
use weft_transport::{Now, cbor_decode};

const VICTIM: u32 = 0;
const ATTACKER: u32 = 1;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let topic = weft_gossip::TopicId::from_name("fuzz");
    let config = Config::default();
    let stored: Vec<Item> = (0..20).map(|i| Item::new(i, b"kept")).collect();
    let mut store = MemoryStore::new();
    store.insert_many(&stored).unwrap();
    let protocol: Arc<dyn ProtocolFactory> =
        Arc::new(SetReconciliationFactory::new((&config).into()));
    let mut manager = Manager::new(VICTIM, config, 1);
    manager
        .subscribe(topic, TopicItems::open(Box::new(store)).unwrap(), protocol)
        .unwrap();

    let mut now = Duration::ZERO;
    let mut timers = Vec::new();
    let session = manager.accept(ATTACKER, at(now));
    let hello = Frame::Hello {
        topic,
        protocol: SET_RECONCILIATION.into(),
    };
    manager.handle(
        Input::Frame {
            session,
            frame: hello,
        },
        at(now),
    );
    drain(&mut manager, &mut timers);

    for message in chunks(rest) {
        now += Duration::from_millis(10);
        let frame = if control & 1 == 0 {
            Frame::Data(message.to_vec())
        } else {
            match cbor_decode::<Frame>(message) {
                Ok(frame) => frame,
                Err(_) => continue,
            }
        };
        manager.handle(Input::Frame { session, frame }, at(now));
        drain(&mut manager, &mut timers);
    }
    if control & 2 != 0 {
        for timer in std::mem::take(&mut timers).into_iter().take(16) {
            now += Duration::from_secs(60);
            manager.handle(Input::TimerExpired(timer), at(now));
            drain(&mut manager, &mut Vec::new());
        }
        manager.handle(
            Input::Closed {
                session,
                error: None,
            },
            at(now),
        );
        drain(&mut manager, &mut Vec::new());
    }

    let items = manager.items(topic).unwrap();
    for item in &stored {
        assert_eq!(
            items.get(&item.id()).unwrap().as_ref(),
            Some(item),
            "a stored item was lost or changed"
        );
    }
    assert!(items.len() >= stored.len());
    assert_eq!(items.len(), items.index().len());
    for key in items.index().iter() {
        let item = items
            .get(&key.id)
            .unwrap()
            .expect("an indexed item is stored");
        assert_eq!(item.key(), key, "an item stored under another key");
    }
});

fn drain(manager: &mut Manager<u32>, timers: &mut Vec<Timer<u32>>) {
    for out in manager.drain() {
        match out {
            Output::ScheduleTimer(_, timer) => timers.push(timer),
            Output::Send { frame, .. } => {
                weft_transport::cbor_encode(&frame).expect("an outgoing frame encodes");
            }
            _ => {}
        }
    }
}

/// The manager's view of monotonic time `mono`.
fn at(mono: Duration) -> Now {
    Now {
        mono,
        ..Now::default()
    }
}
