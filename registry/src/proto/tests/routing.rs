//! The routing table: buckets, least-recently-seen order, liveness checks, closest peers.

use weft_transport::{PeerAddr, PeerId};

use super::{START, key, mono};
use crate::proto::{DhtId, Insert, RoutingTable};

/// Peers (by seed) falling in bucket `index` of `local`, at least `count` of them.
fn peers_in_bucket(local: &DhtId, index: usize, count: usize) -> Vec<PeerId> {
    (1000..)
        .map(|seed| key(seed).peer_id())
        .filter(|id| local.distance(&DhtId::of_peer(id)).bucket() == Some(index))
        .take(count)
        .collect()
}

#[test]
fn full_bucket_asks_for_a_liveness_check_and_keeps_a_live_oldest() {
    let me = key(0).peer_id();
    let local = DhtId::of_peer(&me);
    let mut table = RoutingTable::new(local, 2, mono(START));
    let peers = peers_in_bucket(&local, 1, 4);
    assert_eq!(
        table.insert(PeerAddr::new(peers[0]), mono(START)),
        Insert::Inserted
    );
    assert_eq!(
        table.insert(PeerAddr::new(peers[1]), mono(START)),
        Insert::Inserted
    );
    assert_eq!(table.insert(PeerAddr::new(me), mono(START)), Insert::Myself);
    // Full: the least recently seen must be checked first.
    assert_eq!(
        table.insert(PeerAddr::new(peers[2]), mono(START)),
        Insert::CheckLiveness(PeerAddr::new(peers[0]))
    );
    // One check at a time per bucket.
    assert_eq!(
        table.insert(PeerAddr::new(peers[3]), mono(START)),
        Insert::Dropped
    );
    // The oldest answers: it stays (now most recently seen), the newcomer is dropped.
    table.seen(&peers[0], mono(START));
    assert!(table.contains(&peers[0]));
    assert!(!table.contains(&peers[2]));
    // Now peers[1] is the oldest.
    assert_eq!(
        table.insert(PeerAddr::new(peers[2]), mono(START)),
        Insert::CheckLiveness(PeerAddr::new(peers[1]))
    );
}

#[test]
fn failed_oldest_is_replaced_by_the_newcomer() {
    let local = DhtId::of_peer(&key(0).peer_id());
    let mut table = RoutingTable::new(local, 2, mono(START));
    let peers = peers_in_bucket(&local, 0, 3);
    table.insert(PeerAddr::new(peers[0]), mono(START));
    table.insert(PeerAddr::new(peers[1]), mono(START));
    assert!(matches!(
        table.insert(PeerAddr::new(peers[2]), mono(START)),
        Insert::CheckLiveness(_)
    ));
    assert_eq!(
        table.failed(&peers[0], mono(START)),
        Some(PeerAddr::new(peers[2]))
    );
    assert!(!table.contains(&peers[0]));
    assert!(table.contains(&peers[2]));
    assert_eq!(table.len(), 2);
}

#[test]
fn seeing_a_peer_moves_it_to_the_back() {
    let local = DhtId::of_peer(&key(0).peer_id());
    let mut table = RoutingTable::new(local, 2, mono(START));
    let peers = peers_in_bucket(&local, 0, 3);
    table.insert(PeerAddr::new(peers[0]), mono(START));
    table.insert(PeerAddr::new(peers[1]), mono(START));
    assert_eq!(
        table.insert(PeerAddr::new(peers[0]), mono(START)),
        Insert::Refreshed
    );
    // peers[1] is now the least recently seen.
    assert_eq!(
        table.insert(PeerAddr::new(peers[2]), mono(START)),
        Insert::CheckLiveness(PeerAddr::new(peers[1]))
    );
}

#[test]
fn closest_is_sorted_by_xor_distance() {
    let local = DhtId::of_peer(&key(0).peer_id());
    let mut table = RoutingTable::new(local, 20, mono(START));
    for seed in 1..200 {
        table.insert(PeerAddr::new(key(seed).peer_id()), mono(START));
    }
    let target = DhtId::of_name("target");
    let closest = table.closest(&target, 10, None);
    assert_eq!(closest.len(), 10);
    let distances: Vec<_> = closest
        .iter()
        .map(|a| DhtId::of_peer(&a.id).distance(&target))
        .collect();
    assert!(distances.windows(2).all(|w| w[0] < w[1]));
    // Nobody in the table is closer than the tenth.
    let tenth = distances[9];
    let closer = table
        .peers()
        .filter(|a| DhtId::of_peer(&a.id).distance(&target) < tenth)
        .count();
    assert_eq!(closer, 9);
}

#[test]
fn idle_buckets_are_due_for_refresh() {
    let local = DhtId::of_peer(&key(0).peer_id());
    let mut table = RoutingTable::new(local, 20, mono(START));
    let interval = std::time::Duration::from_secs(600);
    assert!(table.buckets_to_refresh(mono(START), interval).is_empty());
    for seed in 1..50 {
        table.insert(PeerAddr::new(key(seed).peer_id()), mono(START));
    }
    let later = START + interval;
    let due = table.buckets_to_refresh(mono(later), interval);
    assert!(due.contains(&0));
    // A lookup into bucket 0 makes it fresh again.
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    table.touch(&local.random_in_bucket(0, &mut rng), mono(later));
    assert!(!table.buckets_to_refresh(mono(later), interval).contains(&0));
}

#[test]
fn closest_matches_a_full_sort() {
    let me = key(0).peer_id();
    let local = DhtId::of_peer(&me);
    let mut table = RoutingTable::new(local, 20, mono(START));
    for seed in 1..2000 {
        table.insert(PeerAddr::new(key(seed).peer_id()), mono(START));
    }
    let excluded = table.peers().nth(3).unwrap().id;
    let mut targets: Vec<DhtId> = (0..50).map(|i| DhtId::of_name(&format!("t{i}"))).collect();
    targets.push(local);
    targets.push(DhtId::of_peer(&excluded));
    for target in targets {
        let mut all: Vec<PeerId> = table
            .peers()
            .map(|a| a.id)
            .filter(|id| *id != excluded)
            .collect();
        all.sort_by_key(|id| DhtId::of_peer(id).distance(&target));
        all.truncate(20);
        let got: Vec<PeerId> = table
            .closest(&target, 20, Some(&excluded))
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(got, all);
    }
}

#[test]
fn a_peer_survives_failures_below_the_limit_unless_a_newcomer_waits() {
    let local = DhtId::of_peer(&key(0).peer_id());
    let mut table = RoutingTable::new(local, 2, mono(START)).with_max_failures(3);
    let peers = peers_in_bucket(&local, 0, 3);
    table.insert(PeerAddr::new(peers[0]), mono(START));
    table.insert(PeerAddr::new(peers[1]), mono(START));
    assert_eq!(table.failed(&peers[1], mono(START)), None);
    assert_eq!(table.failed(&peers[1], mono(START)), None);
    assert!(
        table.contains(&peers[1]),
        "removed before its third failure"
    );
    // An answer clears the count.
    table.seen(&peers[1], mono(START));
    table.failed(&peers[1], mono(START));
    table.failed(&peers[1], mono(START));
    assert!(table.contains(&peers[1]));
    table.failed(&peers[1], mono(START));
    assert!(
        !table.contains(&peers[1]),
        "kept after three failures in a row"
    );
    // With a newcomer waiting, one failure is enough.
    table.insert(PeerAddr::new(peers[1]), mono(START));
    assert!(matches!(
        table.insert(PeerAddr::new(peers[2]), mono(START)),
        Insert::CheckLiveness(_)
    ));
    let oldest = table.peers().next().unwrap().id;
    assert_eq!(
        table.failed(&oldest, mono(START)),
        Some(PeerAddr::new(peers[2]))
    );
}
