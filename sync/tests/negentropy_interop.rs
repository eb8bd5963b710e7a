//! Interop with the reference Negentropy implementation (rust-nostr's `negentropy` crate), in
//! both roles.
//!
//! Every run drives four parties at once: our reconciler and the crate's for the initiator's
//! set, and ours and the crate's for the acceptor's set. Each message is computed by both
//! implementations of the sending side and must be byte-for-byte equal; one of them (chosen
//! by the test) is what the other side receives. The have/need sets of both initiators must
//! be exactly the true differences.

use std::collections::BTreeSet;

use negentropy::{Id, Negentropy, NegentropyStorageVector};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use weft_sync::proto::{Index, ItemId, ItemKey, Reconciler};

/// Two sets and what each alone holds.
struct Sets {
    initiator: Vec<ItemKey>,
    acceptor: Vec<ItemKey>,
    initiator_only: BTreeSet<ItemId>,
    acceptor_only: BTreeSet<ItemId>,
}

/// `shared` keys in both sets, and `initiator_only` / `acceptor_only` in one each. Timestamps
/// come from `0..timestamps`: a small range makes many keys share a timestamp, so bounds need
/// id prefixes.
fn sets(
    seed: u64,
    shared: usize,
    initiator_only: usize,
    acceptor_only: usize,
    timestamps: u64,
) -> Sets {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut key = || {
        let mut id = [0u8; 32];
        rng.fill(&mut id[..]);
        ItemKey::new(rng.random_range(0..timestamps), ItemId(id))
    };
    let shared: Vec<ItemKey> = (0..shared).map(|_| key()).collect();
    let only_i: Vec<ItemKey> = (0..initiator_only).map(|_| key()).collect();
    let only_a: Vec<ItemKey> = (0..acceptor_only).map(|_| key()).collect();
    let mut initiator: Vec<ItemKey> = shared.iter().chain(&only_i).copied().collect();
    let mut acceptor: Vec<ItemKey> = shared.iter().chain(&only_a).copied().collect();
    // Insertion order must not matter to either implementation.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xdead);
    initiator.shuffle(&mut rng);
    acceptor.shuffle(&mut rng);
    Sets {
        initiator,
        acceptor,
        initiator_only: only_i.iter().map(|key| key.id).collect(),
        acceptor_only: only_a.iter().map(|key| key.id).collect(),
    }
}

fn storage(keys: &[ItemKey]) -> NegentropyStorageVector {
    let mut storage = NegentropyStorageVector::with_capacity(keys.len());
    for key in keys {
        storage
            .insert(key.timestamp, Id::from_byte_array(key.id.0))
            .unwrap();
    }
    storage.seal().unwrap();
    storage
}

fn ids(ids: &[Id]) -> BTreeSet<ItemId> {
    ids.iter().map(|id| ItemId(id.to_bytes())).collect()
}

/// Whose initiator messages the acceptors receive. (Both acceptors' replies are checked equal,
/// so either is what both initiators receive.)
#[derive(Clone, Copy, Debug)]
enum Sender {
    /// Ours initiates, the crate accepts (and ours shadows it).
    OursInitiates,
    /// The crate initiates, ours accepts (and the crate's shadows it).
    CrateInitiates,
}

/// Runs reconciliation to the end; returns the number of round trips.
fn run(sets: &Sets, limit: usize, sender: Sender) -> usize {
    run_with(sets, limit, sender, false)
}

/// [`run`], with our indexes built one insert at a time (as live mode grows them) if `live`.
fn run_with(sets: &Sets, limit: usize, sender: Sender, live: bool) -> usize {
    let build = |keys: &[ItemKey]| {
        if live {
            let mut index = Index::new();
            for key in keys {
                index.insert(*key);
            }
            index
        } else {
            Index::from_keys(keys.iter().copied())
        }
    };
    let index_i = build(&sets.initiator);
    let index_a = build(&sets.acceptor);
    let storage_i = storage(&sets.initiator);
    let storage_a = storage(&sets.acceptor);

    let mut ours_i = Reconciler::new(limit).unwrap();
    let mut ours_a = Reconciler::new(limit).unwrap();
    let mut crate_i = Negentropy::borrowed(&storage_i, limit as u64).unwrap();
    let mut crate_a = Negentropy::borrowed(&storage_a, limit as u64).unwrap();

    let mut message = ours_i.initiate(&index_i).unwrap();
    assert_eq!(message, crate_i.initiate().unwrap(), "initiate differs");

    let (mut ours_have, mut ours_need) = (BTreeSet::new(), BTreeSet::new());
    let (mut crate_have, mut crate_need) = (Vec::new(), Vec::new());
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 100, "reconciliation did not end");
        if limit != 0 {
            assert!(message.len() <= limit, "initiator message over the limit");
        }

        let ours_reply = ours_a.reconcile(&index_a, &message).unwrap();
        assert!(ours_reply.have.is_empty() && ours_reply.need.is_empty());
        let ours_reply = ours_reply.reply.expect("an acceptor always replies");
        let crate_reply = crate_a.reconcile(&message).unwrap();
        assert_eq!(
            ours_reply, crate_reply,
            "acceptor reply differs in round {rounds}"
        );
        if limit != 0 {
            assert!(crate_reply.len() <= limit, "acceptor reply over the limit");
        }
        let reply = match sender {
            Sender::OursInitiates => crate_reply,
            Sender::CrateInitiates => ours_reply,
        };

        let ours_next = ours_i.reconcile(&index_i, &reply).unwrap();
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let crate_next = crate_i
            .reconcile_with_ids(&reply, &mut have, &mut need)
            .unwrap();
        assert_eq!(
            ours_next.reply, crate_next,
            "initiator message differs in round {rounds}"
        );
        // The same ids in the same round; the crate's `need` order comes from a hash set.
        let round_have: BTreeSet<ItemId> = ours_next.have.iter().copied().collect();
        let round_need: BTreeSet<ItemId> = ours_next.need.iter().copied().collect();
        assert_eq!(round_have, ids(&have));
        assert_eq!(round_need, ids(&need));
        crate_have.extend(have);
        crate_need.extend(need);
        for id in ours_next.have {
            assert!(ours_have.insert(id), "have reported twice");
        }
        for id in ours_next.need {
            assert!(ours_need.insert(id), "need reported twice");
        }

        let next = match sender {
            Sender::OursInitiates => ours_next.reply,
            Sender::CrateInitiates => crate_next,
        };
        match next {
            Some(next) => message = next,
            None => break,
        }
    }
    assert_eq!(ours_have, sets.initiator_only);
    assert_eq!(ours_need, sets.acceptor_only);
    assert_eq!(ids(&crate_have), sets.initiator_only);
    assert_eq!(ids(&crate_need), sets.acceptor_only);
    rounds
}

fn both_roles(sets: &Sets, limit: usize) {
    run(sets, limit, Sender::OursInitiates);
    run(sets, limit, Sender::CrateInitiates);
}

#[test]
fn empty_sets() {
    both_roles(&sets(1, 0, 0, 0, 1_000), 0);
    both_roles(&sets(2, 0, 10, 0, 1_000), 0);
    both_roles(&sets(3, 0, 0, 10, 1_000), 4096);
}

#[test]
fn identical_sets() {
    for limit in [0, 4096] {
        let same = sets(4, 1_000, 0, 0, 1_000_000);
        assert_eq!(run(&same, limit, Sender::OursInitiates), 1);
        both_roles(&same, limit);
        both_roles(&sets(5, 10_000, 0, 0, 100), limit);
    }
}

#[test]
fn disjoint_sets() {
    for limit in [0, 4096] {
        both_roles(&sets(6, 0, 500, 700, 1_000_000), limit);
        both_roles(&sets(7, 0, 20, 25, 1_000_000), limit);
    }
}

#[test]
fn small_differences() {
    for limit in [0, 4096] {
        for seed in 8..12 {
            both_roles(&sets(seed, 1_000, 3, 5, 1_000_000), limit);
            // Timestamps shared by many keys: bounds carry id prefixes.
            both_roles(&sets(seed + 100, 1_000, 4, 2, 10), limit);
        }
    }
}

#[test]
fn ten_thousand_items_with_a_hundred_differences() {
    for limit in [0, 4096] {
        both_roles(&sets(20, 10_000, 50, 50, 1_000_000), limit);
        both_roles(&sets(21, 10_000, 80, 20, 5_000), limit);
        both_roles(&sets(22, 10_000, 50, 50, 3), limit);
    }
}

#[test]
fn frame_limit_cuts_large_differences() {
    // Differences far beyond a 4096-byte frame: both sides cut their messages, and the
    // closing fingerprints must bring every difference back in a later round.
    let big = sets(30, 5_000, 1_500, 1_200, 100_000);
    both_roles(&big, 4096);
    both_roles(&big, 5_000);
    assert!(run(&big, 4096, Sender::OursInitiates) > 2);
    both_roles(&sets(31, 0, 3_000, 2_000, 1_000_000), 4096);
}

#[test]
fn random_sets_and_limits() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for seed in 0..150 {
        let shared = rng.random_range(0..3_000);
        let initiator_only = rng.random_range(0..300);
        let acceptor_only = rng.random_range(0..300);
        let timestamps = [1, 5, 100, 1_000_000][rng.random_range(0..4)];
        let limit = [0, 4096, rng.random_range(4096..20_000)][rng.random_range(0..3)];
        let sender = if rng.random_bool(0.5) {
            Sender::OursInitiates
        } else {
            Sender::CrateInitiates
        };
        let sets = sets(
            1_000 + seed,
            shared,
            initiator_only,
            acceptor_only,
            timestamps,
        );
        run_with(&sets, limit, sender, seed % 2 == 1);
    }
}
