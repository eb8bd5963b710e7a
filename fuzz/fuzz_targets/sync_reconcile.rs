//! The Negentropy v1 reconciler, `Reconciler::reconcile`, on messages from a peer.
//!
//! Input: a control byte, then the rest.
//! - bit 0: frame size limit 0 (unlimited) or `MIN_FRAME_SIZE_LIMIT`;
//! - bits 1-2 = 0: the rest is messages (`weft_fuzz::chunks`) to an acceptor on a fixed index;
//! - bits 1-2 = 1: the same to an initiator (after `initiate`);
//! - bits 1-2 = 2 or 3: the rest describes two sets (two bytes per key), and two honest
//!   reconcilers run to completion.
//!
//! Checks: replies stay within the limit; an acceptor always replies; an initiator's `have`
//! are ours and its `need` no more than the peer named; two honest sides finish and find
//! exactly the difference.

#![no_main]

use std::{
    collections::{BTreeSet, HashMap},
    sync::LazyLock,
};

use libfuzzer_sys::fuzz_target;
use weft_fuzz::chunks;
use weft_sync::proto::{Index, ItemId, ItemKey, MIN_FRAME_SIZE_LIMIT, Reconciler};

/// The fixed index: 48 keys, timestamps shared by three keys each, some near the top.
static INDEX: LazyLock<Index> = LazyLock::new(|| Index::from_keys(KEYS[..48].iter().copied()));

/// The ids of [`INDEX`], for the initiator's `have` check.
static INDEX_IDS: LazyLock<BTreeSet<ItemId>> =
    LazyLock::new(|| INDEX.iter().map(|key| key.id).collect());

/// The universe both honest sets draw from, hashed once: a blake3 per key per input made the
/// honest-pair mode the slowest part of the run.
static KEYS: LazyLock<Vec<ItemKey>> = LazyLock::new(|| (0..0x1000).map(key).collect());

/// Key `n` of the universe both sets draw from.
fn key(n: u16) -> ItemKey {
    let timestamp = if n % 7 == 6 {
        u64::MAX - 1 - u64::from(n)
    } else {
        u64::from(n / 3)
    };
    ItemKey::new(timestamp, ItemId::of(&n.to_be_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let limit = if control & 1 == 0 {
        0
    } else {
        MIN_FRAME_SIZE_LIMIT
    };
    match (control >> 1) & 3 {
        0 => acceptor(limit, rest),
        1 => initiator(limit, rest),
        _ => honest_pair(limit, rest),
    }
});

fn within(limit: usize, message: &[u8]) {
    assert!(
        limit == 0 || message.len() <= limit,
        "a message of {} bytes over the limit of {limit}",
        message.len()
    );
}

fn acceptor(limit: usize, rest: &[u8]) {
    let mut reconciler = Reconciler::new(limit).unwrap();
    for message in chunks(rest) {
        let Ok(round) = reconciler.reconcile(&INDEX, message) else {
            return;
        };
        let reply = round.reply.expect("an acceptor always replies");
        within(limit, &reply);
        assert!(round.have.is_empty() && round.need.is_empty());
    }
}

fn initiator(limit: usize, rest: &[u8]) {
    let ours = &*INDEX_IDS;
    let mut reconciler = Reconciler::initiator(limit).unwrap();
    within(limit, &reconciler.initiate(&INDEX).unwrap());
    for message in chunks(rest) {
        let Ok(round) = reconciler.reconcile(&INDEX, message) else {
            return;
        };
        if let Some(reply) = &round.reply {
            within(limit, reply);
        }
        assert!(
            round.have.iter().all(|id| ours.contains(id)),
            "have: not ours"
        );
        // No `need: not ours` check: a peer chooses the bounds of the ranges it lists ids for,
        // so it can list one of our ids in a range where we do not hold it (we hold it under
        // another timestamp) and we then "need" it. Negentropy's reference does the same; the
        // cost is one wasted fetch per id named, bounded by the message size and the
        // manager's claims (crasher kept in the seeds).
        assert!(
            round.need.len() <= message.len() / 32,
            "need: more ids than the message named"
        );
    }
}

fn honest_pair(limit: usize, rest: &[u8]) {
    let (mut a, mut b) = (Members::EMPTY, Members::EMPTY);
    for pair in rest.chunks_exact(2) {
        let word = u16::from_be_bytes([pair[0], pair[1]]);
        let n = usize::from(word & 0x0fff);
        match word >> 14 {
            0 => a.0[n] = true,
            1 => b.0[n] = true,
            _ => (a.0[n], b.0[n]) = (true, true),
        }
    }
    let ours = Index::from_keys(a.keys());
    let theirs = Index::from_keys(b.keys());
    let mut initiator = Reconciler::initiator(limit).unwrap();
    let mut acceptor = Reconciler::new(limit).unwrap();
    let mut message = initiator.initiate(&ours).unwrap();
    let (mut have, mut need) = (Members::EMPTY, Members::EMPTY);
    let mut done = false;
    for _ in 0..1000 {
        within(limit, &message);
        let reply = acceptor
            .reconcile(&theirs, &message)
            .expect("the acceptor takes the initiator's message")
            .reply
            .expect("an acceptor always replies");
        within(limit, &reply);
        let round = initiator
            .reconcile(&ours, &reply)
            .expect("the initiator takes the acceptor's reply");
        round.have.iter().for_each(|id| have.insert(id));
        round.need.iter().for_each(|id| need.insert(id));
        match round.reply {
            Some(next) => message = next,
            None => {
                done = true;
                break;
            }
        }
    }
    assert!(done, "reconciliation did not finish in 1000 rounds");
    for n in 0..KEYS.len() {
        assert_eq!(
            have.0[n],
            a.0[n] && !b.0[n],
            "have is not ours minus theirs (key {n})"
        );
        assert_eq!(
            need.0[n],
            b.0[n] && !a.0[n],
            "need is not theirs minus ours (key {n})"
        );
    }
}

/// A subset of [`KEYS`] by position. Plain flags rather than ordered sets of keys or ids: the
/// 32-byte comparisons of those sets, each traced by the fuzzer, took over a third of a run.
struct Members([bool; 0x1000]);

impl Members {
    const EMPTY: Self = Self([false; 0x1000]);

    fn keys(&self) -> impl Iterator<Item = ItemKey> + '_ {
        self.0
            .iter()
            .zip(KEYS.iter())
            .filter_map(|(member, key)| member.then_some(*key))
    }

    /// Adds the key whose id is `id`, which must be one of the universe's.
    fn insert(&mut self, id: &ItemId) {
        let n = *POSITIONS
            .get(id)
            .expect("an id in neither set came out of the reconciliation");
        self.0[n] = true;
    }
}

/// Each universe id's position in [`KEYS`].
static POSITIONS: LazyLock<HashMap<ItemId, usize>> = LazyLock::new(|| {
    KEYS.iter()
        .enumerate()
        .map(|(n, key)| (key.id, n))
        .collect()
});
