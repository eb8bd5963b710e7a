//! Admission to a full catalog: strangers, however fresh and however directly they reach us,
//! never displace a peer that has stayed fresh in the catalog (see `catalog.rs`).

use std::time::Duration;

use super::*;
use crate::proto::{Catalog, Source, UpsertOutcome};

fn catalog(max_entries: usize) -> Catalog {
    let config = Config {
        max_entries,
        ..Config::for_tests()
    };
    Catalog::new(config, signed(&key(0), Version::new(1, 0), t(1)), 7)
}

fn offer(c: &mut Catalog, n: u32, at: Time, source: Source) -> UpsertOutcome {
    c.upsert(signed(&key(n), Version::new(1, 0), at), source, both(at))
}

fn after(start: Time, d: Duration) -> Time {
    start.saturating_add(d)
}

#[test]
fn held_counts_from_admission_across_refreshes() {
    let mut c = catalog(10);
    let start = t(10_000);
    assert_eq!(offer(&mut c, 1, start, Source::Relayed), UpsertOutcome::New);
    let mono_start = both(start).mono;
    assert_eq!(
        c.get(&key(1).peer_id()).unwrap().held(mono_start),
        Duration::ZERO
    );
    for step in 1..=5u64 {
        let at = after(start, Duration::from_millis(700 * step));
        assert_eq!(
            offer(&mut c, 1, at, Source::Relayed),
            UpsertOutcome::Refreshed
        );
    }
    let end = both(after(start, Duration::from_millis(4000))).mono;
    let record = c.get(&key(1).peer_id()).unwrap();
    assert_eq!(record.held(end), Duration::from_millis(4000));
    assert_eq!(
        record.expires(),
        both(after(start, Duration::from_millis(3500))).mono + Config::for_tests().purge_after
    );
}

/// Peers that keep announcing and have been held for `stale_after` are live: neither relayed
/// nor direct strangers displace them, however many and however fresh.
#[test]
fn live_peers_are_never_displaced_by_strangers() {
    let config = Config::for_tests();
    let (interval, stale_after) = (config.announce_interval, config.stale_after);
    let mut c = catalog(3);
    let start = t(10_000);
    for n in 1..=3 {
        assert_eq!(offer(&mut c, n, start, Source::Relayed), UpsertOutcome::New);
    }
    // The three keep announcing, as honest peers do, until each has been held `stale_after`.
    let mut now = start;
    while now < after(start, stale_after) {
        now = after(now, interval);
        for n in 1..=3 {
            assert_eq!(
                offer(&mut c, n, now, Source::Relayed),
                UpsertOutcome::Refreshed
            );
        }
    }
    // A flood of fresh strangers, each handing its own entry over directly.
    for stranger in 100..400 {
        let at = after(now, Duration::from_millis(u64::from(stranger - 100)));
        let source = if stranger % 2 == 0 {
            Source::Direct
        } else {
            Source::Relayed
        };
        assert_eq!(offer(&mut c, stranger, at, source), UpsertOutcome::Full);
    }
    assert_eq!(c.take_evicted(), None);
    for n in 1..=3 {
        assert!(c.contains(&key(n).peer_id()));
    }
}

/// Entries held for less than `stale_after` are on probation: a direct newcomer displaces the
/// one that expires soonest, a relayed one displaces nothing; a live peer beside them stays.
#[test]
fn strangers_on_probation_give_way_only_to_direct_newcomers() {
    let stale_after = Config::for_tests().stale_after;
    let mut c = catalog(3);
    let start = t(10_000);
    assert_eq!(offer(&mut c, 1, start, Source::Relayed), UpsertOutcome::New);
    // Peer 1 is refreshed until it has been held `stale_after`: live from then on.
    let live = after(start, stale_after);
    offer(&mut c, 1, after(start, stale_after / 2), Source::Relayed);
    assert_eq!(
        offer(&mut c, 1, live, Source::Relayed),
        UpsertOutcome::Refreshed
    );
    assert_eq!(offer(&mut c, 2, live, Source::Relayed), UpsertOutcome::New);
    let later = after(live, Duration::from_millis(10));
    assert_eq!(offer(&mut c, 3, later, Source::Relayed), UpsertOutcome::New);

    let newcomer = after(later, Duration::from_millis(10));
    assert_eq!(
        offer(&mut c, 4, newcomer, Source::Relayed),
        UpsertOutcome::Full
    );
    assert_eq!(
        offer(&mut c, 5, newcomer, Source::Direct),
        UpsertOutcome::New
    );
    // Peer 2 was admitted first of the two on probation, so it expires first.
    assert_eq!(c.take_evicted(), Some(key(2).peer_id()));
    assert!(c.contains(&key(1).peer_id()) && c.contains(&key(3).peer_id()));
}

/// A stale entry goes before one on probation, even when that one expires sooner.
#[test]
fn stale_entries_go_before_entries_on_probation() {
    let stale_after = Config::for_tests().stale_after;
    let mut c = catalog(2);
    let start = t(10_000);
    assert_eq!(offer(&mut c, 1, start, Source::Relayed), UpsertOutcome::New);
    // Peer 2 signed before peer 1 (so it expires sooner) but reached us just now.
    let early = after(start, stale_after - Duration::from_millis(1));
    let signed_before = Time::from_millis(start.as_millis() - 100);
    assert_eq!(
        c.upsert(
            signed(&key(2), Version::new(1, 0), signed_before),
            Source::Relayed,
            both(early)
        ),
        UpsertOutcome::New
    );
    assert!(
        c.get(&key(2).peer_id()).unwrap().expires() < c.get(&key(1).peer_id()).unwrap().expires()
    );
    let stale = after(start, stale_after);
    assert_eq!(offer(&mut c, 3, stale, Source::Direct), UpsertOutcome::New);
    assert_eq!(c.take_evicted(), Some(key(1).peer_id()));
}

/// The attack of issue 9: a victim with room for 24 holds 5 live honest peers; 600 throwaway
/// identities (25 times the bound) arrive over time, every one fresh and handed over directly,
/// and re-announce as long as they are held. Not one honest peer is ever displaced.
#[test]
fn a_flood_of_direct_strangers_never_displaces_live_honest_peers() {
    let config = Config::for_tests();
    let (interval, stale_after) = (config.announce_interval, config.stale_after);
    let mut c = catalog(24);
    let honest: Vec<u32> = (1..=5).collect();
    let ids: BTreeMap<PeerId, u32> = (1..1600u32).map(|n| (key(n).peer_id(), n)).collect();
    let mut now = t(10_000);
    for &n in &honest {
        assert_eq!(offer(&mut c, n, now, Source::Relayed), UpsertOutcome::New);
    }
    let settled = after(now, stale_after);
    while now < settled {
        now = after(now, interval);
        for &n in &honest {
            offer(&mut c, n, now, Source::Relayed);
        }
    }
    let (mut admitted, mut refused) = (0, 0);
    let mut next_announce = after(now, interval);
    for stranger in 1000..1600u32 {
        now = after(now, Duration::from_millis(20));
        if now >= next_announce {
            // Everyone held re-announces: honest peers and the strangers admitted so far.
            let held: Vec<u32> = c.iter().map(|(peer, _)| ids[peer]).collect();
            for n in held {
                offer(&mut c, n, now, Source::Relayed);
            }
            next_announce = after(now, interval);
        }
        match offer(&mut c, stranger, now, Source::Direct) {
            UpsertOutcome::New => admitted += 1,
            UpsertOutcome::Full => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
        if let Some(evicted) = c.take_evicted() {
            assert!(
                !honest.iter().any(|&n| key(n).peer_id() == evicted),
                "an honest peer was evicted"
            );
        }
        for &n in &honest {
            assert!(c.contains(&key(n).peer_id()));
        }
    }
    assert!(
        refused > 0 && admitted >= 19,
        "{admitted} admitted, {refused} refused"
    );
    assert_eq!(c.len(), 24);
}
