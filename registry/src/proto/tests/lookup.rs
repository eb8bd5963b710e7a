//! Lookups that go on around peers that never answer or answer garbage.

use super::{Fault, Net, both};
use crate::proto::{Config, Event};

pub(super) fn small() -> Config {
    Config {
        k: 4,
        ..Config::default()
    }
}

#[test]
fn lookup_finds_a_registered_name_from_every_node() {
    let (mut net, ids) = Net::with_nodes(30, &small());
    net.register(ids[3], "svc");
    for &from in &ids {
        assert_eq!(
            net.lookup(from, "svc").into_iter().collect::<Vec<_>>(),
            vec![ids[3]]
        );
    }
}

#[test]
fn unknown_name_is_empty_not_an_error() {
    let (mut net, ids) = Net::with_nodes(10, &small());
    assert!(net.lookup(ids[0], "nobody-has-this").is_empty());
}

#[test]
fn lookup_goes_around_silent_and_garbage_peers() {
    let (mut net, ids) = Net::with_nodes(40, &small());
    net.register(ids[5], "svc");
    // A third of the other nodes stop answering, another third answer garbage.
    for (i, id) in ids.iter().enumerate() {
        if i == 5 || i == 0 {
            continue;
        }
        match i % 3 {
            0 => net.faults.insert(*id, Fault::Silent),
            1 => net.faults.insert(*id, Fault::Garbage),
            _ => None,
        };
    }
    let found = net.lookup(ids[0], "svc");
    assert!(
        found.contains(&ids[5]),
        "lookup did not get around the faulty peers"
    );
    let failures: u32 = net
        .events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            Event::LookupDone { stats, .. } => Some(stats.failures),
            _ => None,
        })
        .unwrap();
    assert!(
        failures > 0,
        "the lookup met no faulty peer; the test proves nothing"
    );
}

#[test]
fn silent_peers_cost_a_lookup_stall_times_not_timeouts() {
    let (mut net, ids) = Net::with_nodes(40, &small());
    net.register(ids[5], "svc");
    for (i, id) in ids.iter().enumerate() {
        if i != 0 && i != 5 && i % 3 == 0 {
            net.faults.insert(*id, Fault::Silent);
        }
    }
    let started = net.now;
    let op = net.node(ids[0]).lookup("svc", both(started)).unwrap();
    net.flush(ids[0]);
    net.run();
    assert!(net.found(ids[0], op).contains(&ids[5]));
    let took = net.done_at[&(ids[0], op)].0 - started.0;
    let stalls = net
        .events
        .iter()
        .find_map(|(who, e)| match e {
            Event::LookupDone { op: o, stats, .. } if *who == ids[0] && *o == op => {
                Some(stats.stalls)
            }
            _ => None,
        })
        .unwrap();
    assert!(stalls > 0, "no request stalled; the test proves nothing");
    // Answers are instant here, so each stall waits `min_stall_ms`; a silent peer among the
    // closest would otherwise hold the lookup for the whole request time-out.
    assert!(
        took < small().request_timeout_ms,
        "the lookup took {took} ms around {stalls} stalled requests"
    );
}

#[test]
fn lookup_with_no_peers_ends_empty() {
    let mut net = Net::new();
    let id = net.add_node(1, small());
    assert!(net.lookup(id, "svc").is_empty());
}

#[test]
fn own_registration_is_found_locally() {
    let mut net = Net::new();
    let id = net.add_node(1, small());
    net.register(id, "svc");
    assert!(net.lookup(id, "svc").contains(&id));
}

mod state_machine {
    use weft_transport::{PeerAddr, PeerId};

    use crate::proto::{DhtId, Lookup, tests::key};

    fn peers(range: std::ops::Range<u32>) -> Vec<PeerAddr> {
        range.map(|s| PeerAddr::new(key(s).peer_id())).collect()
    }

    #[test]
    fn keeps_alpha_in_flight_and_ends_when_the_k_closest_answered() {
        let target = DhtId::of_name("target");
        let me = key(0).peer_id();
        let mut lookup = Lookup::new(target, me, peers(1..9), 4, 3, 100);
        let first = lookup.next_requests();
        assert_eq!(first.len(), 3);
        assert!(
            lookup.next_requests().is_empty(),
            "more than alpha in flight"
        );
        // The closest are asked first.
        let mut by_distance: Vec<PeerId> = peers(1..9).into_iter().map(|a| a.id).collect();
        by_distance.sort_by_key(|id| DhtId::of_peer(id).distance(&target));
        assert_eq!(
            first.iter().map(|a| a.id).collect::<Vec<_>>(),
            by_distance[..3]
        );
        // One answer (naming ourselves, which is ignored) frees one slot.
        assert_eq!(
            lookup.on_response(&first[0].id, vec![PeerAddr::new(me)]),
            Some(1)
        );
        let second = lookup.next_requests();
        assert_eq!(second.len(), 1);
        // A failure frees another, and the lookup moves past the failed peer.
        lookup.on_failure(&first[1].id);
        let third = lookup.next_requests();
        assert_eq!(third.len(), 1);
        assert!(!lookup.is_done());
        for peer in [&first[2], &second[0], &third[0]] {
            lookup.on_response(&peer.id, vec![]);
        }
        // Four answered among the closest four that did not fail: done.
        assert!(lookup.is_done());
        assert_eq!(lookup.closest_answered().len(), 4);
        // Late or unsolicited answers are ignored.
        assert_eq!(lookup.on_response(&first[0].id, vec![]), None);
        let stats = lookup.finish_stats();
        assert_eq!((stats.requests, stats.responses, stats.failures), (5, 4, 1));
    }

    #[test]
    fn a_stalled_request_frees_its_slot_and_no_longer_holds_the_lookup() {
        let target = DhtId::of_name("target");
        let me = key(0).peer_id();
        let mut lookup = Lookup::new(target, me, peers(1..4), 2, 1, 100);
        let first = lookup.next_requests();
        assert_eq!(first.len(), 1);
        assert!(lookup.on_stalled(&first[0].id));
        assert!(!lookup.on_stalled(&first[0].id), "stalled twice");
        // Its slot goes to the next candidate.
        let second = lookup.next_requests();
        assert_eq!(second.len(), 1);
        assert_ne!(second[0].id, first[0].id);
        lookup.on_response(&second[0].id, vec![]);
        let third = lookup.next_requests();
        lookup.on_response(&third[0].id, vec![]);
        // The two closest that neither failed nor stalled answered: done, without the first.
        assert!(lookup.is_done());
        assert!(lookup.is_in_flight(&first[0].id));
        // Its late answer is still taken, and it fails at most once.
        assert_eq!(lookup.on_response(&first[0].id, vec![]), Some(1));
        lookup.on_failure(&first[0].id);
        let stats = lookup.finish_stats();
        assert_eq!(
            (
                stats.requests,
                stats.responses,
                stats.failures,
                stats.stalls
            ),
            (3, 3, 0, 1)
        );
        assert_eq!(lookup.closest_answered().len(), 2);
    }

    #[test]
    fn peers_named_by_an_answer_are_one_hop_further() {
        let target = DhtId::of_name("target");
        let mut lookup = Lookup::new(target, key(0).peer_id(), peers(1..2), 20, 3, 100);
        let first = lookup.next_requests();
        lookup.on_response(&first[0].id, peers(2..5));
        let next = lookup.next_requests();
        assert_eq!(next.len(), 3);
        assert_eq!(lookup.on_response(&next[0].id, vec![]), Some(2));
    }
}

mod disjoint {
    use std::collections::BTreeSet;

    use weft_transport::{PeerAddr, PeerId};

    use super::{Fault, Net, small};
    use crate::proto::{Config, DhtId, Lookup, tests::key};

    #[test]
    fn paths_never_share_a_peer() {
        let target = DhtId::of_name("target");
        let seeds: Vec<PeerAddr> = (1..7).map(|s| PeerAddr::new(key(s).peer_id())).collect();
        let mut lookup = Lookup::with_paths(target, key(0).peer_id(), seeds, 4, 1, 100, 2);
        // One request in flight per path.
        let first = lookup.next_requests();
        assert_eq!(first.len(), 2);
        // Both answer naming the same peers: each is followed by one path only.
        let shared: Vec<PeerAddr> = (10..14).map(|s| PeerAddr::new(key(s).peer_id())).collect();
        lookup.on_response(&first[0].id, shared.clone());
        lookup.on_response(&first[1].id, shared);
        let mut asked: BTreeSet<PeerId> = first.iter().map(|a| a.id).collect();
        while !lookup.is_done() {
            let next = lookup.next_requests();
            assert!(!next.is_empty());
            for peer in next {
                assert!(asked.insert(peer.id), "a peer was asked twice");
                lookup.on_response(&peer.id, vec![]);
            }
        }
        assert_eq!(lookup.closest_answered().len(), 4);
    }

    #[test]
    fn a_lookup_over_disjoint_paths_finds_the_record_around_liars() {
        let config = Config {
            disjoint_paths: 3,
            ..small()
        };
        let (mut net, ids) = Net::with_nodes(40, &config);
        net.register(ids[5], "svc");
        for (i, id) in ids.iter().enumerate() {
            if i != 5 && i != 0 && i % 3 == 1 {
                net.faults.insert(*id, Fault::Garbage);
            }
        }
        assert!(net.lookup(ids[0], "svc").contains(&ids[5]));
    }
}
