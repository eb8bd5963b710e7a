//! Unit tests of the module.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

fn node(me: u32) -> Hyparview<u32> {
    Hyparview::new(me, HyparviewConfig::default())
}

fn sends(out: &[Out<u32>]) -> Vec<(u32, Message<u32>)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send(to, m) => Some((*to, m.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn join_handshake_makes_a_symmetric_link() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let (mut a, mut b) = (node(1), node(2));
    let mut out = Vec::new();
    a.join(&[2], rng, &mut out);
    assert_eq!(sends(&out), vec![(2, Message::Join)]);
    out.clear();
    b.on_message(1, Message::Join, rng, &mut out);
    assert!(b.is_active(&1));
    assert!(out.iter().any(|o| matches!(o, Out::NeighborUp(1))));
    assert_eq!(
        sends(&out),
        vec![(1, Message::NeighborReply { accepted: true })]
    );
    out.clear();
    a.on_message(2, Message::NeighborReply { accepted: true }, rng, &mut out);
    assert!(a.is_active(&2));
    assert!(a.pending.is_empty());
}

#[test]
fn join_forwards_along_random_walks() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut c = node(1);
    let mut out = Vec::new();
    for peer in [2, 3, 4] {
        c.on_message(peer, Message::Join, rng, &mut out);
    }
    out.clear();
    c.on_message(9, Message::Join, rng, &mut out);
    let forwards: Vec<_> = sends(&out)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::ForwardJoin { peer: 9, ttl: 6 }))
        .map(|(to, _)| to)
        .collect();
    assert_eq!(forwards, vec![2, 3, 4]);
}

#[test]
fn forward_join_end_of_walk_requests_a_neighbor_and_prwl_adds_passive() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut n = node(1);
    let mut out = Vec::new();
    for peer in [2, 3] {
        n.on_message(peer, Message::Join, rng, &mut out);
    }
    out.clear();
    n.on_message(2, Message::ForwardJoin { peer: 9, ttl: 3 }, rng, &mut out);
    assert!(n.passive().any(|p| *p == 9));
    assert_eq!(
        sends(&out),
        vec![(3, Message::ForwardJoin { peer: 9, ttl: 2 })]
    );
    out.clear();
    n.on_message(2, Message::ForwardJoin { peer: 8, ttl: 0 }, rng, &mut out);
    assert_eq!(sends(&out), vec![(8, Message::Neighbor { high: true })]);
}

#[test]
fn full_active_view_refuses_low_priority_and_evicts_for_high() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut n = node(1);
    let mut out = Vec::new();
    for peer in 2..7 {
        n.on_message(peer, Message::Neighbor { high: false }, rng, &mut out);
    }
    assert_eq!(n.active.len(), 5);
    out.clear();
    n.on_message(10, Message::Neighbor { high: false }, rng, &mut out);
    assert_eq!(
        sends(&out),
        vec![(10, Message::NeighborReply { accepted: false })]
    );
    assert!(n.passive().any(|p| *p == 10));
    out.clear();
    n.on_message(11, Message::Neighbor { high: true }, rng, &mut out);
    assert!(n.is_active(&11));
    assert_eq!(n.active.len(), 5);
    let evicted: Vec<_> = sends(&out)
        .into_iter()
        .filter(|(_, m)| *m == Message::Disconnect { alive: true })
        .collect();
    assert_eq!(evicted.len(), 1);
    assert!(n.passive().any(|p| *p == evicted[0].0));
}

#[test]
fn failure_promotes_from_passive_and_is_probed_later() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut n = node(1);
    let mut out = Vec::new();
    n.on_message(2, Message::Neighbor { high: false }, rng, &mut out);
    n.on_message(
        3,
        Message::ShuffleReply { peers: vec![4, 5] },
        rng,
        &mut out,
    );
    out.clear();
    n.on_peer_disconnected(2, rng, &mut out);
    assert!(out.iter().any(|o| matches!(o, Out::NeighborDown(2))));
    let requests: Vec<_> = sends(&out).into_iter().map(|(to, _)| to).collect();
    assert_eq!(requests.len(), 2);
    assert!(requests.contains(&4) && requests.contains(&5));
    // Requests with an empty active view are high priority.
    assert!(
        sends(&out)
            .iter()
            .all(|(_, m)| *m == Message::Neighbor { high: true })
    );
    n.on_message(4, Message::NeighborReply { accepted: true }, rng, &mut out);
    out.clear();
    n.on_timer(Timer::Shuffle, rng, &mut out);
    assert!(
        sends(&out).contains(&(2, Message::Neighbor { high: true })),
        "failed peer probed"
    );
}

#[test]
fn shuffle_walks_then_replies_to_origin() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut n = node(1);
    let mut out = Vec::new();
    n.on_message(2, Message::Neighbor { high: false }, rng, &mut out);
    n.on_message(3, Message::Neighbor { high: false }, rng, &mut out);
    out.clear();
    n.on_message(
        2,
        Message::Shuffle {
            origin: 7,
            peers: vec![7, 8],
            ttl: 2,
        },
        rng,
        &mut out,
    );
    assert_eq!(
        sends(&out),
        vec![(
            3,
            Message::Shuffle {
                origin: 7,
                peers: vec![7, 8],
                ttl: 1
            }
        )]
    );
    out.clear();
    n.on_message(
        2,
        Message::Shuffle {
            origin: 7,
            peers: vec![7, 8],
            ttl: 0,
        },
        rng,
        &mut out,
    );
    assert!(matches!(sends(&out)[0], (7, Message::ShuffleReply { .. })));
    assert!(n.passive().any(|p| *p == 8));
}

#[test]
fn disconnect_alive_keeps_peer_passive() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut n = node(1);
    let mut out = Vec::new();
    n.on_message(2, Message::Neighbor { high: false }, rng, &mut out);
    n.on_message(2, Message::Disconnect { alive: true }, rng, &mut out);
    assert!(!n.is_active(&2));
    assert!(n.passive().any(|p| *p == 2));
    n.on_message(3, Message::Neighbor { high: false }, rng, &mut out);
    n.on_message(3, Message::Disconnect { alive: false }, rng, &mut out);
    assert!(!n.passive().any(|p| *p == 3));
}

#[test]
fn swap_keeps_degrees_and_links_the_dropped_peers() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut out = Vec::new();
    // x (1) is full with 10..15; p (2) is full with 20..25.
    let mut x = node(1);
    for peer in 10..15 {
        x.on_message(peer, Message::Neighbor { high: false }, rng, &mut out);
    }
    let mut p = node(2);
    for peer in 20..25 {
        p.on_message(peer, Message::Neighbor { high: false }, rng, &mut out);
    }
    out.clear();
    x.swapping = Some(2);
    x.swap_drop = Some(10);
    p.on_message(1, Message::Swap { drop: 10 }, rng, &mut out);
    assert!(p.is_active(&1));
    assert_eq!(p.active.len(), 5);
    let replaced: Vec<_> = sends(&out)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Replace { with: Some(10) } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(replaced.len(), 1);
    let dropped = replaced[0];
    let reply = sends(&out).into_iter().find(|(to, _)| *to == 1).unwrap().1;
    assert_eq!(
        reply,
        Message::SwapReply {
            accepted: true,
            dropped: Some(dropped)
        }
    );
    out.clear();
    x.on_message(2, reply, rng, &mut out);
    assert!(x.is_active(&2) && !x.is_active(&10));
    assert_eq!(x.active.len(), 5);
    assert!(sends(&out).contains(&(
        10,
        Message::Replace {
            with: Some(dropped)
        }
    )));
    // The dropped peer asks the other dropped peer to link.
    let mut ten = node(10);
    ten.on_message(1, Message::Neighbor { high: false }, rng, &mut out);
    out.clear();
    ten.on_message(
        1,
        Message::Replace {
            with: Some(dropped),
        },
        rng,
        &mut out,
    );
    assert!(!ten.is_active(&1));
    assert_eq!(
        sends(&out),
        vec![(dropped, Message::Neighbor { high: false })]
    );
}

#[test]
fn split_hands_a_link_over_to_a_peer_with_free_slots() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut out = Vec::new();
    // y (2) is full with 20..25; x (1) has one link and asks for more.
    let mut y = node(2);
    for peer in 20..25 {
        y.on_message(peer, Message::Neighbor { high: false }, rng, &mut out);
    }
    let mut x = node(1);
    x.on_message(9, Message::Neighbor { high: false }, rng, &mut out);
    x.passive.insert(2);
    out.clear();
    x.refill(rng, &mut out);
    assert!(sends(&out).contains(&(2, Message::Split)), "{out:?}");
    out.clear();
    y.on_message(1, Message::Split, rng, &mut out);
    // y keeps five links, x among them; the peer it dropped is told to link with x.
    assert!(y.is_active(&1));
    assert_eq!(y.active().count(), 5);
    let replaced: Vec<u32> = sends(&out)
        .into_iter()
        .filter_map(|(to, m)| (m == Message::Replace { with: Some(1) }).then_some(to))
        .collect();
    assert_eq!(replaced.len(), 1);
    assert!((20..25).contains(&replaced[0]) && !y.is_active(&replaced[0]));
    assert!(sends(&out).contains(&(1, Message::NeighborReply { accepted: true })));
    // The dropped peer asks x, which still has room.
    let mut z = node(replaced[0]);
    z.on_message(2, Message::Neighbor { high: false }, rng, &mut out);
    out.clear();
    z.on_message(2, Message::Replace { with: Some(1) }, rng, &mut out);
    assert!(sends(&out).contains(&(1, Message::Neighbor { high: false })));
}

#[test]
fn a_peer_with_one_free_slot_asks_plainly() {
    let rng = &mut ChaCha8Rng::seed_from_u64(0);
    let mut out = Vec::new();
    let mut x = node(1);
    for peer in 10..14 {
        x.on_message(peer, Message::Neighbor { high: false }, rng, &mut out);
    }
    x.passive.insert(2);
    out.clear();
    x.refill(rng, &mut out);
    assert_eq!(sends(&out), vec![(2, Message::Neighbor { high: false })]);
}

#[test]
fn nonsense_swap_probabilities_from_a_config_file_are_tamed() {
    assert_eq!(probability(f64::NAN), 0.0);
    assert_eq!(probability(-0.5), 0.0);
    assert_eq!(probability(7.0), 1.0);
    assert_eq!(probability(0.25), 0.25);
}
