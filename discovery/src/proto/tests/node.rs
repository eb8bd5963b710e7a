//! The node state machine: announce and purge loops, departure, ping, sync between nodes.

use std::time::Duration;

use super::*;
use crate::proto::{
    Announcement, Catalog, Command, DepartReason, Event, Source, SyncMessage, Timer, UpsertOutcome,
};

fn broadcasts(out: &[Output]) -> Vec<Announcement> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn timer_at(out: &[Output], which: Timer) -> Option<Time> {
    out.iter().find_map(|o| match o {
        // Virtual time: monotonic and wall clocks read the same milliseconds.
        Output::ArmTimer { at, timer } if *timer == which => {
            Some(Time::from_millis(u64::try_from(at.as_millis()).unwrap()))
        }
        _ => None,
    })
}

fn events(out: &[Output]) -> Vec<Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn announce_loop_with_jitter_and_immediate_on_change() {
    let config = Config::for_tests();
    let (interval, jitter) = (config.announce_interval, config.announce_jitter);
    let mut n = node(0, both(t(1000)));
    let out = n.begin(now_ms(1000));
    assert_eq!(broadcasts(&out).len(), 1);
    let mut now = t(1000);
    let mut at = timer_at(&out, Timer::Announce).unwrap();
    let mut gaps = BTreeSet::new();
    let version = n.catalog().local().payload().version;
    for _ in 0..20 {
        let gap = at.since(now);
        assert!(
            gap >= interval - jitter && gap <= interval + jitter,
            "{gap:?}"
        );
        gaps.insert(gap);
        // A timer firing early is ignored.
        assert!(
            n.step(
                Input::Timer(Timer::Announce),
                both(at.saturating_sub(Duration::from_millis(1)))
            )
            .is_empty()
        );
        now = at;
        let out = n.step(Input::Timer(Timer::Announce), both(now));
        let Ok::<[Announcement; 1], _>([Announcement::Entry(e)]) = broadcasts(&out).try_into()
        else {
            panic!()
        };
        // Re-announcing keeps the version and moves the timestamp.
        assert_eq!(e.payload().version, version);
        assert_eq!(e.payload().timestamp, now);
        at = timer_at(&out, Timer::Announce).unwrap();
    }
    assert!(gaps.len() > 5, "jitter varies the interval");
    // A local change is announced at once, with the next version.
    let out = n.step(
        Input::Command(Command::SetTags(BTreeSet::from(["gpu".to_string()]))),
        both(now.saturating_add(Duration::from_millis(5))),
    );
    let Ok::<[Announcement; 1], _>([Announcement::Entry(e)]) = broadcasts(&out).try_into() else {
        panic!()
    };
    assert_eq!(e.payload().version, version.next());
    assert!(e.payload().tags.contains("gpu"));
    // Setting the same tags again changes nothing and announces nothing.
    let out = n.step(
        Input::Command(Command::SetTags(BTreeSet::from(["gpu".to_string()]))),
        both(now.saturating_add(Duration::from_millis(6))),
    );
    assert!(broadcasts(&out).is_empty());
}

#[test]
fn set_content_changes_tags_and_metadata_in_one_version() {
    let mut n = node(0, both(t(1000)));
    n.begin(now_ms(1000));
    let version = n.catalog().local().payload().version;
    let tags = BTreeSet::from(["gpu".to_string()]);
    let metadata = std::collections::BTreeMap::from([("region".to_string(), "eu".to_string())]);
    let out = n.step(
        Input::Command(Command::SetContent {
            tags: tags.clone(),
            metadata: metadata.clone(),
        }),
        now_ms(1005),
    );
    let Ok::<[Announcement; 1], _>([Announcement::Entry(e)]) = broadcasts(&out).try_into() else {
        panic!()
    };
    assert_eq!(e.payload().version, version.next());
    assert_eq!(
        (&e.payload().tags, &e.payload().metadata),
        (&tags, &metadata)
    );
}

#[test]
fn purge_loop_reports_departed() {
    let config = Config::for_tests();
    let mut n = node(0, both(t(1000)));
    n.begin(now_ms(1000));
    let k1 = key(1);
    let k2 = key(2);
    let out = n.step(
        Input::Announcement(Announcement::from(signed(&k1, Version::new(1, 0), t(1000)))),
        now_ms(1000),
    );
    let first = timer_at(&out, Timer::Purge).unwrap();
    assert_eq!(first, t(1000).saturating_add(config.purge_after));
    n.step(
        Input::Announcement(Announcement::from(signed(&k2, Version::new(1, 0), t(1500)))),
        now_ms(1500),
    );
    // k1 keeps announcing, k2 goes silent.
    n.step(
        Input::Announcement(Announcement::from(signed(&k1, Version::new(1, 0), t(2500)))),
        now_ms(2500),
    );
    // The timer armed for k1's first expiry fires; nothing is due yet, so it re-arms at k2's.
    let out = n.step(Input::Timer(Timer::Purge), both(first));
    assert!(events(&out).is_empty());
    let next = timer_at(&out, Timer::Purge).unwrap();
    assert_eq!(next, t(1500).saturating_add(config.purge_after));
    let out = n.step(Input::Timer(Timer::Purge), both(next));
    assert_eq!(
        events(&out),
        vec![Event::PeerDeparted {
            peer: k2.peer_id(),
            reason: DepartReason::Purged
        }]
    );
    assert!(n.catalog().contains(&k1.peer_id()));
    assert!(!n.catalog().contains(&k2.peer_id()));
}

#[test]
fn departure_propagates_and_stops_announcing() {
    let mut a = node(0, both(t(1000)));
    let mut b = node(1, both(t(1000)));
    let out = a.begin(now_ms(1000));
    for ann in broadcasts(&out) {
        b.step(Input::Announcement(ann), now_ms(1010));
    }
    assert!(b.catalog().contains(&a.id()));
    let out = a.step(Input::Command(Command::Depart), now_ms(1500));
    let anns = broadcasts(&out);
    assert!(matches!(anns.as_slice(), [Announcement::Departure(_)]));
    let out = b.step(Input::Announcement(anns[0].clone()), now_ms(1510));
    assert_eq!(
        events(&out),
        vec![Event::PeerDeparted {
            peer: a.id(),
            reason: DepartReason::Departed
        }]
    );
    assert!(!b.catalog().contains(&a.id()));
    // A departed node announces no more.
    assert!(
        a.step(Input::Timer(Timer::Announce), now_ms(9000))
            .is_empty()
    );
    // The departure, re-encoded as gossip bytes, decodes and is idempotent.
    let out = b.step(Input::Gossip(anns[0].encode()), now_ms(1520));
    assert!(events(&out).is_empty());
}

#[test]
fn ping_measures_rtt_with_a_fresh_entry() {
    let mut a = node(0, both(t(1000)));
    let mut b = node(1, both(t(1000)));
    let out = a.step(Input::Command(Command::Ping(b.id())), now_ms(2000));
    let Some(Output::Send { message, .. }) = out
        .iter()
        .find(|o| matches!(o, Output::Send { .. }))
        .cloned()
    else {
        panic!()
    };
    let out = b.step(
        Input::Message {
            from: a.id(),
            message,
        },
        now_ms(2020),
    );
    let Some(Output::Send { message: pong, .. }) =
        out.into_iter().find(|o| matches!(o, Output::Send { .. }))
    else {
        panic!()
    };
    let Message::Pong { entry, .. } = &pong else {
        panic!()
    };
    assert_eq!(
        entry.payload().timestamp,
        t(2020),
        "the pong carries a freshly signed entry"
    );
    let out = a.step(
        Input::Message {
            from: b.id(),
            message: pong.clone(),
        },
        now_ms(2040),
    );
    assert!(events(&out).contains(&Event::Pong {
        peer: b.id(),
        rtt: Duration::from_millis(40)
    }));
    assert_eq!(
        a.catalog().get(&b.id()).unwrap().rtt(),
        Some(Duration::from_millis(40))
    );
    // A second pong with the same nonce is ignored.
    assert!(
        events(&a.step(
            Input::Message {
                from: b.id(),
                message: pong
            },
            now_ms(2050)
        ))
        .is_empty()
    );
    // No answer: the ping fails at its deadline.
    let out = a.step(
        Input::Command(Command::Ping(key(5).peer_id())),
        now_ms(3000),
    );
    let at = out
        .iter()
        .find_map(|o| match o {
            Output::ArmTimer {
                at,
                timer: timer @ Timer::PingTimeout { .. },
            } => Some((*at, *timer)),
            _ => None,
        })
        .unwrap();
    let out = a.step(Input::Timer(at.1), mono(at.0));
    assert_eq!(
        events(&out),
        vec![Event::PingFailed {
            peer: key(5).peer_id()
        }]
    );
}

/// Feeds `count` peers' entries into a node.
fn feed(n: &mut Node, peers: std::ops::Range<u32>, now: Now) {
    for i in peers {
        n.step(
            Input::Announcement(Announcement::from(signed(
                &key(i),
                Version::new(1, 0),
                now.wall,
            ))),
            now,
        );
    }
}

fn sync_bytes(outputs: &[(PeerId, Output)]) -> usize {
    outputs
        .iter()
        .map(|(_, o)| match o {
            Output::Send { message, .. } => message.encode().len(),
            _ => 0,
        })
        .sum()
}

/// Runs a sync between nodes[0] and nodes[1] started by a neighbour-up, counting bytes.
fn sync_pair(nodes: &mut [Node], now: Now) -> usize {
    let id0 = nodes[0].id();
    let id1 = nodes[1].id();
    let mut bytes = 0;
    let mut pending: Vec<(PeerId, Output)> = nodes[0]
        .step(Input::NeighborUp(id1), now)
        .into_iter()
        .map(|o| (id0, o))
        .collect();
    while !pending.is_empty() {
        // Only the pair exists: cascaded offers to other peers go nowhere.
        pending.retain(|(_, o)| matches!(o, Output::Send { to, .. } if *to == id0 || *to == id1));
        bytes += sync_bytes(&pending);
        let mut next = Vec::new();
        for (from, o) in pending {
            if let Output::Send { to, message } = o {
                let target = nodes.iter_mut().find(|n| n.id() == to).unwrap();
                next.extend(
                    target
                        .step(Input::Message { from, message }, now)
                        .into_iter()
                        .map(|o| (to, o)),
                );
            }
        }
        pending = next;
    }
    bytes
}

#[test]
fn delta_sync_sends_only_the_difference() {
    let now = t(10_000);
    let mut nodes = vec![node(0, both(now)), node(1, both(now))];
    // A common catalog of 300 peers, plus 5 only A knows and 3 only B knows.
    feed(&mut nodes[0], 100..400, both(now));
    feed(&mut nodes[1], 100..400, both(now));
    feed(&mut nodes[0], 400..405, both(now));
    feed(&mut nodes[1], 500..503, both(now));
    let bytes = sync_pair(&mut nodes, both(now));
    let (a, b) = (&nodes[0], &nodes[1]);
    assert!(a.catalog().contains(&b.id()) && b.catalog().contains(&a.id()));
    assert_eq!(a.catalog().len(), 309);
    assert_eq!(b.catalog().len(), 309);
    let full = a.catalog().wire_bytes() + b.catalog().wire_bytes();
    assert!(bytes * 5 < full, "delta {bytes} vs full {full}");
    // Synced once per run: a second neighbour-up does nothing.
    assert_eq!(sync_pair(&mut nodes, both(now)), 0);
    // After the neighbour went down and up again, catalogs are equal: one offer, one empty digest.
    let id1 = nodes[1].id();
    nodes[0].step(Input::NeighborDown(id1), both(now));
    let bytes = sync_pair(&mut nodes, both(now));
    assert!(bytes * 100 < nodes[0].catalog().wire_bytes(), "{bytes}");
}

#[test]
fn newer_versions_travel_in_sync() {
    let now = t(10_000);
    let mut nodes = vec![node(0, both(now)), node(1, both(now))];
    feed(&mut nodes[0], 100..150, both(now));
    feed(&mut nodes[1], 100..150, both(now));
    let updated = signed(&key(120), Version::new(1, 1), now);
    nodes[1].step(Input::Announcement(Announcement::from(updated)), both(now));
    sync_pair(&mut nodes, both(now));
    assert_eq!(
        nodes[0]
            .catalog()
            .get(&key(120).peer_id())
            .unwrap()
            .entry()
            .version,
        Version::new(1, 1)
    );
}

#[test]
fn simultaneous_offers_resolve_to_one_session() {
    let now = t(10_000);
    let mut nodes = vec![node(0, both(now)), node(1, both(now))];
    feed(&mut nodes[0], 100..110, both(now));
    feed(&mut nodes[1], 110..120, both(now));
    let (id0, id1) = (nodes[0].id(), nodes[1].id());
    let mut outputs: Vec<(PeerId, Output)> = nodes[0]
        .step(Input::NeighborUp(id1), both(now))
        .into_iter()
        .map(|o| (id0, o))
        .collect();
    outputs.extend(
        nodes[1]
            .step(Input::NeighborUp(id0), both(now))
            .into_iter()
            .map(|o| (id1, o)),
    );
    let offers = outputs
        .iter()
        .filter(|(_, o)| {
            matches!(
                o,
                Output::Send {
                    message: Message::Sync(SyncMessage::Offer { .. }),
                    ..
                }
            )
        })
        .count();
    assert_eq!(offers, 2);
    let (rest, _) = pump(&mut nodes, outputs, both(now));
    assert!(
        rest.iter()
            .all(|(_, o)| !matches!(o, Output::Event(Event::Violation { .. })))
    );
    assert_eq!(nodes[0].catalog().len(), 21);
    assert_eq!(nodes[1].catalog().len(), 21);
}

#[test]
fn sync_cascades_to_newly_learnt_peers() {
    let now = t(10_000);
    let mut nodes = vec![node(0, both(now)), node(1, both(now)), node(2, both(now))];
    // Node 1 knows node 2; node 2 knows peers 100..120 that nobody else knows.
    let entry2 = nodes[2].catalog().local().clone();
    nodes[1].step(Input::Announcement(Announcement::from(entry2)), both(now));
    feed(&mut nodes[2], 100..120, both(now));
    let id0 = nodes[0].id();
    let id1 = nodes[1].id();
    let out = nodes[0].step(Input::NeighborUp(id1), both(now));
    pump(
        &mut nodes,
        out.into_iter().map(|o| (id0, o)).collect(),
        both(now),
    );
    // Node 0 learnt node 2 from node 1, synced with it in turn, and learnt its peers.
    assert_eq!(nodes[0].catalog().len(), 22);
}

#[test]
fn fresh_node_imports_from_one_peer_at_a_time() {
    let now = t(10_000);
    let mut nodes = vec![node(0, both(now)), node(1, both(now)), node(2, both(now))];
    feed(&mut nodes[1], 100..150, both(now));
    feed(&mut nodes[2], 100..150, both(now));
    let (id0, id1, id2) = (nodes[0].id(), nodes[1].id(), nodes[2].id());
    // The fresh node 0 offers to node 1; node 2 offers to node 0 meanwhile.
    let first = nodes[0].step(Input::NeighborUp(id1), both(now));
    assert!(
        first
            .iter()
            .any(|o| matches!(o, Output::Send { to, .. } if *to == id1))
    );
    let out = nodes[2].step(Input::NeighborUp(id0), both(now));
    let Some(Output::Send { message: offer, .. }) =
        out.into_iter().find(|o| matches!(o, Output::Send { .. }))
    else {
        panic!()
    };
    let out = nodes[0].step(
        Input::Message {
            from: id2,
            message: offer,
        },
        both(now),
    );
    let Some(Output::Send { message: busy, .. }) =
        out.into_iter().find(|o| matches!(o, Output::Send { .. }))
    else {
        panic!()
    };
    assert!(matches!(busy, Message::Sync(SyncMessage::Busy { .. })));
    // Node 2 schedules a retry.
    let out = nodes[2].step(
        Input::Message {
            from: id0,
            message: busy,
        },
        both(now),
    );
    let retry = out
        .iter()
        .find_map(|o| match o {
            Output::ArmTimer {
                at,
                timer: timer @ Timer::SyncRetry { .. },
            } => Some((*at, *timer)),
            _ => None,
        })
        .unwrap();
    assert!(events(&out).contains(&Event::SyncFailed { peer: id0 }));
    // Node 0 finishes its first import, then the retry finds it ready: a cheap delta.
    pump(
        &mut nodes,
        first.into_iter().map(|o| (id0, o)).collect(),
        both(now),
    );
    assert_eq!(nodes[0].catalog().len(), 51);
    let later = mono(retry.0);
    let out = nodes[2].step(Input::Timer(retry.1), later);
    let (_, delivered) = pump(
        &mut nodes,
        out.into_iter().map(|o| (id2, o)).collect(),
        later,
    );
    assert!(delivered >= 2);
    assert!(nodes[0].catalog().contains(&id2));
}

#[test]
fn a_wall_clock_step_re_signs_at_once_and_moves_no_timer() {
    let config = Config::for_tests();
    let base = 10_000_000;
    let mut a = node(0, now_ms(base));
    a.begin(now_ms(base));
    let version = a.catalog().local().payload().version;
    let hour = Duration::from_secs(3600);
    // An hour ahead on the wall clock, 10 ms later on the monotonic one.
    let ahead = Now {
        mono: m(base + 10),
        wall: t(base + 10) + hour,
    };
    let out = a.step(Input::NeighborDown(key(9).peer_id()), ahead);
    let Ok::<[Announcement; 1], _>([Announcement::Entry(e1)]) = broadcasts(&out).try_into() else {
        panic!("re-announced at once")
    };
    assert_eq!(e1.payload().timestamp, ahead.wall);
    assert_eq!(e1.payload().version, version);
    // The next announcement is an interval away on the monotonic clock.
    let next = out
        .iter()
        .find_map(|o| match o {
            Output::ArmTimer {
                at,
                timer: Timer::Announce,
            } => Some(*at),
            _ => None,
        })
        .unwrap();
    assert!(next <= m(base + 10) + config.announce_interval + config.announce_jitter);
    // Two hours back: stamping after the last timestamp would look like the future to peers,
    // so the entry gets a new version, stamped with the clock.
    let behind = Now {
        mono: m(base + 20),
        wall: t(base + 20) - hour,
    };
    let out = a.step(Input::NeighborDown(key(9).peer_id()), behind);
    let Ok::<[Announcement; 1], _>([Announcement::Entry(e2)]) = broadcasts(&out).try_into() else {
        panic!("re-announced at once")
    };
    assert_eq!(e2.payload().timestamp, behind.wall);
    assert_eq!(e2.payload().version, version.next());

    // A peer whose clock stepped the same way takes both, and its entry's life runs on the
    // monotonic clock: neither step purges it.
    let mut c = Catalog::new(config.clone(), signed(&key(5), Version::new(1, 0), t(1)), 7);
    let peer_ahead = Now {
        mono: m(500),
        wall: ahead.wall,
    };
    assert_eq!(
        c.upsert(e1, Source::Relayed, peer_ahead),
        UpsertOutcome::New
    );
    let peer_behind = Now {
        mono: m(600),
        wall: behind.wall,
    };
    assert!(c.purge(peer_behind).is_empty());
    assert_eq!(
        c.upsert(e2, Source::Relayed, peer_behind),
        UpsertOutcome::Updated
    );
    let record = c.get(&a.id()).unwrap();
    assert_eq!(record.expires(), m(600) + config.purge_after);
}
