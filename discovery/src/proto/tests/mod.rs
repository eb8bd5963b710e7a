//! Proto unit tests: catalog rules, bad input, loops and sync between in-memory nodes.

mod admission;
mod bad_input;
mod catalog;
mod node;

use std::collections::{BTreeMap, BTreeSet};

use weft_transport::{NetworkId, PeerId, SecretKey, Signed};

use super::{
    Config, ENTRY_VERSION, Input, LocalInfo, Message, Node, Now, Output, PeerEntry, Time, Version,
};

/// Calls a node and takes what it queued, as the runtime does.
pub(super) trait Step {
    /// `handle` then `drain`.
    fn step(&mut self, input: Input, now: Now) -> Vec<Output>;
    /// `start` then `drain`.
    fn begin(&mut self, now: Now) -> Vec<Output>;
}

impl Step for Node {
    fn step(&mut self, input: Input, now: Now) -> Vec<Output> {
        self.handle(input, now);
        self.drain()
    }

    fn begin(&mut self, now: Now) -> Vec<Output> {
        self.start(now);
        self.drain()
    }
}

pub(super) fn key(n: u32) -> SecretKey {
    let mut bytes = [7u8; 32];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    SecretKey::from_bytes(&bytes)
}

pub(super) fn net() -> NetworkId {
    NetworkId::from_name("test")
}

pub(super) fn t(ms: u64) -> Time {
    Time::from_millis(ms)
}

/// Both clocks at `ms` milliseconds (no step between them).
pub(super) fn now_ms(ms: u64) -> Now {
    Now::virtual_millis(ms)
}

/// Both clocks at wall time `t` (no step between them).
pub(super) fn both(t: Time) -> Now {
    Now::virtual_millis(t.as_millis())
}

/// Both clocks at monotonic time `d` (a timer's deadline; no step between the clocks).
pub(super) fn mono(d: std::time::Duration) -> Now {
    Now::virtual_millis(u64::try_from(d.as_millis()).unwrap())
}

/// Monotonic `ms` milliseconds (a timer deadline).
pub(super) fn m(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}

pub(super) fn entry(key: &SecretKey, version: Version, timestamp: Time) -> PeerEntry {
    PeerEntry {
        peer: key.peer_id(),
        network: net(),
        direct: BTreeSet::from(["127.0.0.1:4000".parse().unwrap()]),
        relay: None,
        version,
        timestamp,
        tags: BTreeSet::from(["role:test".to_string()]),
        metadata: BTreeMap::new(),
        protocol: ENTRY_VERSION,
    }
}

pub(super) fn signed(key: &SecretKey, version: Version, timestamp: Time) -> Signed<PeerEntry> {
    Signed::sign(key, entry(key, version, timestamp)).unwrap()
}

pub(super) fn node(n: u32, now: Now) -> Node {
    Node::new(
        key(n),
        net(),
        LocalInfo::default(),
        Config::for_tests(),
        u64::from(n),
        now,
    )
    .unwrap()
}

/// Delivers every direct message between `nodes` at once (no latency), until none is left, and
/// returns the other outputs and the number of messages delivered.
pub(super) fn pump(
    nodes: &mut [Node],
    outputs: Vec<(PeerId, Output)>,
    now: Now,
) -> (Vec<(PeerId, Output)>, usize) {
    let mut pending = outputs;
    let mut rest = Vec::new();
    let mut delivered = 0;
    while let Some((from, output)) = pending.pop() {
        match output {
            Output::Send { to, message } => {
                // Round-trip through the wire format, as the runtime would.
                let bytes = message.encode();
                let message = Message::decode(&bytes, usize::MAX).unwrap();
                if let Some(target) = nodes.iter_mut().find(|n| n.id() == to) {
                    delivered += 1;
                    let produced = target.step(Input::Message { from, message }, now);
                    pending.extend(produced.into_iter().map(|o| (to, o)));
                }
            }
            other => rest.push((from, other)),
        }
    }
    (rest, delivered)
}
