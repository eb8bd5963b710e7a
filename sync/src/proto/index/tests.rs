//! The index against a sorted `Vec`, which is obviously right and O(n).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn random_key(rng: &mut ChaCha8Rng, timestamps: u64) -> ItemKey {
    let mut id = [0u8; 32];
    rng.fill(&mut id[..]);
    // Few distinct first bytes, so ids of one timestamp share prefixes and ties happen.
    id[0] &= 0x03;
    ItemKey::new(rng.random_range(0..timestamps), ItemId(id))
}

/// Every query of the index agrees with the naive model on `probes` random probes.
fn assert_matches(index: &Index, model: &[ItemKey], rng: &mut ChaCha8Rng, probes: usize) {
    assert_eq!(index.len(), model.len());
    assert_eq!(index.is_empty(), model.is_empty());
    assert!(index.iter().eq(model.iter().copied()));
    for _ in 0..probes {
        let probe = random_key(rng, 60);
        assert_eq!(
            index.lower_bound(&probe),
            model.partition_point(|key| *key < probe)
        );
        assert_eq!(index.contains(&probe), model.binary_search(&probe).is_ok());
        let rank = rng.random_range(0..=model.len());
        assert_eq!(index.get(rank), model.get(rank).copied());
        if let Some(key) = model.get(rank) {
            assert!(index.contains(key));
            assert_eq!(index.lower_bound(key), rank);
        }
        let start = rng.random_range(0..=model.len());
        let end = rng.random_range(start..=model.len());
        let naive = Fingerprint::of_ids(model[start..end].iter().map(|key| &key.id));
        assert_eq!(index.fingerprint(start..end), naive, "{start}..{end}");
        assert!(
            index
                .range(start..end)
                .eq(model[start..end].iter().copied())
        );
        assert_eq!(index.range(start..end).len(), end - start);
    }
}

#[test]
fn random_inserts_match_a_sorted_vec() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut index = Index::new();
    let mut model: Vec<ItemKey> = Vec::new();
    assert_matches(&index, &model, &mut rng, 10);
    for round in 0..20 {
        for _ in 0..250 {
            let key = random_key(&mut rng, 50);
            let fresh = match model.binary_search(&key) {
                Ok(_) => false,
                Err(pos) => {
                    model.insert(pos, key);
                    true
                }
            };
            assert_eq!(index.insert(key), fresh);
            // Inserting again is a no-op.
            assert!(!index.insert(key));
        }
        assert_matches(&index, &model, &mut rng, 50 + round);
    }
}

#[test]
fn bulk_build_matches_inserts_and_dedupes() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut keys: Vec<ItemKey> = (0..5_000).map(|_| random_key(&mut rng, 100)).collect();
    // Duplicates in the input.
    keys.extend_from_within(..1_000);
    let bulk = Index::from_keys(keys.iter().copied());
    let mut model = keys.clone();
    model.sort_unstable();
    model.dedup();
    assert_matches(&bulk, &model, &mut rng, 300);

    // Growing a bulk-built index keeps it right, through leaf splits.
    let mut grown = bulk.clone();
    for _ in 0..3_000 {
        let key = random_key(&mut rng, 100);
        if let Err(pos) = model.binary_search(&key) {
            model.insert(pos, key);
        }
        grown.insert(key);
    }
    assert_matches(&grown, &model, &mut rng, 300);
}

#[test]
fn ascending_and_descending_runs_split_leaves() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let key = |t: u64| ItemKey::new(t, ItemId([0; 32]));
    let mut ascending = Index::new();
    let mut descending = Index::new();
    for t in 0..(LEAF_MAX as u64 * 5) {
        ascending.insert(key(t));
        descending.insert(key(LEAF_MAX as u64 * 5 - 1 - t));
    }
    let model: Vec<ItemKey> = (0..LEAF_MAX as u64 * 5).map(key).collect();
    assert!(ascending.leaves.len() > 4);
    assert_matches(&ascending, &model, &mut rng, 100);
    assert_matches(&descending, &model, &mut rng, 100);
}

#[test]
fn empty_ranges_and_the_empty_index() {
    let index = Index::new();
    assert_eq!(index.fingerprint(0..0), Fingerprint::new(IdSum::ZERO, 0));
    assert_eq!(index.range(0..0).count(), 0);
    assert_eq!(index.lower_bound(&ItemKey::new(0, ItemId([0; 32]))), 0);
    assert_eq!(index.get(0), None);
    let index = Index::from_keys([ItemKey::new(1, ItemId([1; 32]))]);
    assert_eq!(index.fingerprint(1..1), Fingerprint::new(IdSum::ZERO, 0));
    assert_eq!(index.range(1..1).count(), 0);
}

#[test]
#[should_panic(expected = "out of an index")]
fn fingerprint_past_the_end_panics_like_a_slice() {
    let index = Index::from_keys([ItemKey::new(1, ItemId([1; 32]))]);
    let _ = index.fingerprint(0..2);
}
