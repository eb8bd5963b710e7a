//! Unit tests of the module.
use super::*;

const T0: Duration = Duration::ZERO;

fn tree(eager: &[u32], lazy: &[u32]) -> Plumtree<u32> {
    tree_with(PlumtreeConfig::default(), eager, lazy)
}

fn tree_with(config: PlumtreeConfig, eager: &[u32], lazy: &[u32]) -> Plumtree<u32> {
    let mut p = Plumtree::new(config, 7);
    for &e in eager {
        p.neighbor_up(e, T0, &mut Vec::new());
        p.on_message(e, Message::Graft { id: None }, T0, &mut Vec::new());
    }
    for &l in lazy {
        p.neighbor_up(l, T0, &mut Vec::new());
    }
    p
}

fn gossip(id: u8, hops: u16) -> Push {
    Push {
        id: MessageId([id; 32]),
        content: Content::from(&[id]),
        hops,
        scope: Scope::Swarm,
    }
}

fn sent(out: &[Out<u32>]) -> Vec<(u32, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send(to, m) => Some((*to, m.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn forwards_eagerly_and_announces_lazily() {
    let mut p = tree(&[1, 2], &[3]);
    let mut out = Vec::new();
    p.on_message(1, Message::Gossip(gossip(7, 0)), T0, &mut out);
    assert!(matches!(
        out[0],
        Out::Received {
            delivered_from: 1,
            hops: 0,
            ..
        }
    ));
    assert_eq!(sent(&out), vec![(2, Message::Gossip(gossip(7, 1)))]);
    out.clear();
    p.on_timer(Timer::DispatchIHave, T0, &mut out);
    let ihave = IHave {
        id: MessageId([7; 32]),
        hops: 1,
    };
    assert_eq!(sent(&out), vec![(3, Message::IHave(vec![ihave]))]);
}

#[test]
fn duplicate_prunes_its_link() {
    let mut p = tree(&[1, 2], &[]);
    let mut out = Vec::new();
    p.on_message(1, Message::Gossip(gossip(7, 0)), T0, &mut out);
    out.clear();
    p.on_message(2, Message::Gossip(gossip(7, 3)), T0, &mut out);
    assert_eq!(sent(&out), vec![(2, Message::Prune)]);
    assert!(p.lazy().any(|x| *x == 2));
}

#[test]
fn missing_message_grafts_closest_announcer_after_timeout() {
    let mut p = tree(&[], &[1, 2]);
    let mut out = Vec::new();
    let id = MessageId([9; 32]);
    p.on_message(1, Message::IHave(vec![IHave { id, hops: 5 }]), T0, &mut out);
    p.on_message(2, Message::IHave(vec![IHave { id, hops: 2 }]), T0, &mut out);
    assert!(matches!(out.as_slice(), [Out::Timer(_, Timer::Graft(_))]));
    out.clear();
    p.on_timer(Timer::Graft(id), T0, &mut out);
    assert_eq!(sent(&out)[0], (2, Message::Graft { id: Some(id) }));
    assert!(p.eager().any(|x| *x == 2));
    assert!(matches!(out[1], Out::Timer(_, Timer::Graft(_))));
    out.clear();
    p.on_timer(Timer::Graft(id), T0, &mut out);
    assert_eq!(sent(&out), vec![(1, Message::Graft { id: Some(id) })]);
}

#[test]
fn graft_answers_with_the_message() {
    let mut p = tree(&[1], &[2]);
    let mut out = Vec::new();
    p.on_message(1, Message::Gossip(gossip(7, 4)), T0, &mut out);
    out.clear();
    p.on_message(
        2,
        Message::Graft {
            id: Some(MessageId([7; 32])),
        },
        T0,
        &mut out,
    );
    assert_eq!(sent(&out), vec![(2, Message::Gossip(gossip(7, 5)))]);
    assert!(p.eager().any(|x| *x == 2));
}

#[test]
fn shallower_ihave_replaces_the_eager_link() {
    let config = PlumtreeConfig {
        optimization_threshold: 2,
        ..PlumtreeConfig::default()
    };
    let mut p = tree_with(config, &[1], &[2]);
    let mut out = Vec::new();
    p.on_message(1, Message::Gossip(gossip(7, 6)), T0, &mut out);
    out.clear();
    let id = MessageId([7; 32]);
    // One hop better: below the threshold of 2, nothing happens.
    p.on_message(2, Message::IHave(vec![IHave { id, hops: 5 }]), T0, &mut out);
    assert!(sent(&out).is_empty());
    p.on_message(2, Message::IHave(vec![IHave { id, hops: 3 }]), T0, &mut out);
    assert_eq!(
        sent(&out),
        vec![(2, Message::Graft { id: None }), (1, Message::Prune)]
    );
    assert!(p.eager().eq([2].iter()));
    assert!(p.lazy().eq([1].iter()));
}

#[test]
fn sender_pushes_to_every_neighbor() {
    let config = PlumtreeConfig {
        sender_push: true,
        ..PlumtreeConfig::default()
    };
    let mut p = tree_with(config, &[1], &[2]);
    let mut out = Vec::new();
    let id = MessageId([3; 32]);
    p.broadcast(id, Content::from(&[3]), Scope::Swarm, T0, &mut out);
    assert_eq!(
        sent(&out),
        vec![
            (1, Message::Gossip(gossip(3, 0))),
            (2, Message::Gossip(gossip(3, 0)))
        ]
    );
    assert!(p.has_seen(&id));
}

#[test]
fn graft_wait_adapts_to_late_eager_copies() {
    let config = PlumtreeConfig {
        graft_timeout_1: Duration::from_millis(100),
        graft_timeout_max: Duration::from_millis(500),
        graft_jitter: 0.0,
        ..PlumtreeConfig::default()
    };
    let mut p = tree_with(config, &[1], &[2]);
    let mut out = Vec::new();
    assert_eq!(p.graft_delay(), Duration::from_millis(100));
    let id = MessageId([5; 32]);
    let ihave = IHave { id, hops: 1 };
    p.on_message(2, Message::IHave(vec![ihave]), T0, &mut out);
    // The eager copy comes 200 ms after the IHAVE: later grafts wait longer than that.
    p.on_message(
        1,
        Message::Gossip(gossip(5, 3)),
        Duration::from_millis(200),
        &mut out,
    );
    assert!(p.graft_delay() >= Duration::from_millis(200));
    assert!(p.graft_delay() <= Duration::from_millis(500));
}

#[test]
fn graft_waits_are_spread_by_the_jitter() {
    let config = PlumtreeConfig {
        graft_timeout_1: Duration::from_millis(100),
        graft_timeout_max: Duration::from_millis(100),
        graft_jitter: 1.0,
        ..PlumtreeConfig::default()
    };
    let mut p = tree_with(config, &[], &[]);
    let waits: Vec<Duration> = (0..50).map(|_| p.graft_delay()).collect();
    let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
    assert!(*min >= Duration::from_millis(100) && *max <= Duration::from_millis(200));
    // Spread over the range, not one value: that is what lets one graft win.
    assert!(*max - *min > Duration::from_millis(50), "{min:?}..{max:?}");
}

#[test]
fn new_links_start_lazy_unless_configured() {
    let mut p = Plumtree::<u32>::new(PlumtreeConfig::default(), 7);
    p.neighbor_up(1, T0, &mut Vec::new());
    assert!(p.lazy().eq([1].iter()));
    let mut p = Plumtree::<u32>::new(
        PlumtreeConfig {
            eager_new_links: true,
            ..PlumtreeConfig::default()
        },
        7,
    );
    p.neighbor_up(1, T0, &mut Vec::new());
    assert!(p.eager().eq([1].iter()));
}

#[test]
fn neighbor_scope_is_not_forwarded() {
    let mut p = tree(&[1, 2], &[]);
    let mut out = Vec::new();
    let mut g = gossip(7, 0);
    g.scope = Scope::Neighbors;
    p.on_message(1, Message::Gossip(g), T0, &mut out);
    assert_eq!(out.len(), 1);
    assert!(matches!(
        out[0],
        Out::Received {
            scope: Scope::Neighbors,
            ..
        }
    ));
}

#[test]
fn without_an_eager_link_the_graft_wait_is_short() {
    let config = PlumtreeConfig {
        graft_timeout_no_tree: Duration::from_millis(20),
        graft_jitter: 0.0,
        ..PlumtreeConfig::default()
    };
    let id = MessageId([4; 32]);
    let ihave = Message::IHave(vec![IHave { id, hops: 1 }]);
    // No eager link: no tree copy can come, so the graft goes out after the short wait.
    let mut alone = tree_with(config.clone(), &[], &[2]);
    let mut out = Vec::new();
    alone.on_message(2, ihave.clone(), T0, &mut out);
    assert!(
        matches!(out.as_slice(), [Out::Timer(d, Timer::Graft(_))] if *d == Duration::from_millis(20))
    );
    // In the tree: the patient wait.
    let mut member = tree_with(config, &[1], &[2]);
    let mut out = Vec::new();
    member.on_message(2, ihave, T0, &mut out);
    let patient = PlumtreeConfig::default().graft_timeout_1;
    assert!(matches!(out.as_slice(), [Out::Timer(d, Timer::Graft(_))] if *d == patient));
}

#[test]
fn a_nonsense_jitter_from_a_config_file_does_not_panic() {
    for jitter in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
        let config = PlumtreeConfig {
            graft_timeout_1: Duration::from_millis(100),
            graft_timeout_max: Duration::from_millis(100),
            graft_jitter: jitter,
            ..PlumtreeConfig::default()
        };
        let mut p = tree_with(config, &[1], &[]);
        let wait = p.graft_delay();
        assert!(wait >= Duration::from_millis(100) && wait <= Duration::from_millis(1100));
    }
}
