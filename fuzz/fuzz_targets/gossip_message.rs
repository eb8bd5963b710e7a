//! Gossip's wire message, `Message<PeerId>`, and what the protocol does with it.
//!
//! Input: a mode byte. Mode even: the rest is one message, decoded and round-tripped. Mode odd:
//! the rest is a sequence of messages (`weft_fuzz::chunks`), each with a sender byte first,
//! fed to a gossip `State` that joined the seeds' topic; it must never panic.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use weft_fuzz::{assert_round_trip, chunks, peer};
use weft_gossip::{Config, Input, Message, State, Timer, TopicId};
use weft_transport::{Now, PeerId, cbor_decode};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(message) = cbor_decode::<Message<PeerId>>(rest) {
            assert_round_trip(&message);
        }
        return;
    }
    let topic = TopicId::from_name("fuzz");
    let peers = [peer(2), peer(3), peer(4)];
    let mut state = State::new(peer(1), Config::default(), u64::from(mode));
    state.join(topic, &peers[..1], Now::default()).unwrap();
    let mut timers: Vec<Timer<PeerId>> = Vec::new();
    collect(state.drain(), &mut timers);
    let mut now = Duration::ZERO;
    for chunk in chunks(rest) {
        let Some((&from, body)) = chunk.split_first() else {
            continue;
        };
        now += Duration::from_millis(u64::from(from >> 2) * 10);
        let sender = peers[usize::from(from & 3) % peers.len()];
        let Ok(message) = cbor_decode::<Message<PeerId>>(body) else {
            continue;
        };
        assert_round_trip(&message);
        state.handle(Input::RecvMessage(sender, message), at(now));
        collect(state.drain(), &mut timers);
        if from & 3 == 3 {
            state.handle(Input::PeerDisconnected(sender), at(now));
            collect(state.drain(), &mut timers);
        }
    }
    // Fire what was armed (a bounded number: timers re-arm themselves).
    for timer in timers.drain(..).take(64).collect::<Vec<_>>() {
        now += Duration::from_secs(1);
        state.handle(Input::TimerExpired(timer), at(now));
        let mut ignored = Vec::new();
        collect(state.drain(), &mut ignored);
    }
});

fn collect(
    out: impl Iterator<Item = weft_gossip::Output<PeerId>>,
    timers: &mut Vec<Timer<PeerId>>,
) {
    for event in out {
        match event {
            weft_gossip::Output::ScheduleTimer(_, timer) => timers.push(timer),
            weft_gossip::Output::SendMessage(to, message) => {
                assert_ne!(to, peer(1), "a message to ourselves");
                weft_transport::cbor_encode(&message).expect("an outgoing message encodes");
            }
            _ => {}
        }
    }
}

/// The proto's view of monotonic time `mono`.
fn at(mono: Duration) -> Now {
    Now {
        mono,
        ..Now::default()
    }
}
