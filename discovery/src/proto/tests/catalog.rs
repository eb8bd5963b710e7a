//! Upsert rules, departure, purge and the bound.

use std::time::Duration;

use super::*;
use crate::proto::{Catalog, Departure, DepartureOutcome, Source, UpsertOutcome};

fn catalog(config: Config) -> Catalog {
    Catalog::new(config, signed(&key(0), Version::new(1, 0), t(1)), 7)
}

#[test]
fn new_updated_refreshed_rejected() {
    let mut c = catalog(Config::for_tests());
    let k = key(1);
    let v = Version::new(100, 0);
    assert_eq!(
        c.upsert(signed(&k, v, t(1000)), Source::Relayed, now_ms(1000)),
        UpsertOutcome::New
    );
    assert_eq!(
        c.upsert(signed(&k, v, t(1000)), Source::Relayed, now_ms(1001)),
        UpsertOutcome::Rejected
    );
    assert_eq!(
        c.upsert(signed(&k, v, t(1500)), Source::Relayed, now_ms(1500)),
        UpsertOutcome::Refreshed
    );
    assert_eq!(
        c.upsert(signed(&k, v.next(), t(1600)), Source::Relayed, now_ms(1600)),
        UpsertOutcome::Updated
    );
    // Older version with a newer timestamp: still older.
    assert_eq!(
        c.upsert(signed(&k, v, t(1700)), Source::Relayed, now_ms(1700)),
        UpsertOutcome::Rejected
    );
    // A restart (later start) beats any seq of the previous run.
    assert_eq!(
        c.upsert(
            signed(&k, Version::new(200, 0), t(1800)),
            Source::Relayed,
            now_ms(1800)
        ),
        UpsertOutcome::Updated
    );
    assert_eq!(c.len(), 1);
    assert_eq!(c.wire_bytes(), c.get(&k.peer_id()).unwrap().wire_size());
}

#[test]
fn remote_entry_never_replaces_local() {
    let mut c = catalog(Config::for_tests());
    let newer = signed(&key(0), Version::new(999, 9), t(1000));
    assert_eq!(
        c.upsert(newer, Source::Direct, now_ms(1000)),
        UpsertOutcome::LocalPeer
    );
    assert_eq!(c.local().payload().version, Version::new(1, 0));
    assert!(c.is_empty());
}

#[test]
fn purge_at_expiry_and_no_resurrection_by_relay() {
    let config = Config::for_tests();
    let purge_after = config.purge_after;
    let mut c = catalog(config);
    let k = key(1);
    c.upsert(
        signed(&k, Version::new(1, 0), t(1000)),
        Source::Relayed,
        now_ms(1000),
    );
    assert_eq!(c.next_expiry(), Some(m(1000) + purge_after));
    assert!(
        c.purge(both(
            t(1000)
                .saturating_add(purge_after)
                .saturating_sub(Duration::from_millis(1))
        ))
        .is_empty()
    );
    assert_eq!(
        c.purge(both(t(1000).saturating_add(purge_after))),
        vec![k.peer_id()]
    );
    // A relay that still holds the old copy cannot bring it back for another full period: it
    // expires `purge_after` after it was signed, or is outdated already.
    let later = t(1000).saturating_add(purge_after);
    assert_eq!(
        c.upsert(
            signed(&k, Version::new(1, 0), t(1000)),
            Source::Relayed,
            both(later)
        ),
        UpsertOutcome::Outdated
    );
    let just_before = later.saturating_sub(Duration::from_millis(10));
    assert_eq!(
        c.upsert(
            signed(&k, Version::new(1, 0), t(1000)),
            Source::Relayed,
            both(just_before)
        ),
        UpsertOutcome::New
    );
    assert_eq!(c.next_expiry(), Some(m(later.as_millis())));
}

#[test]
fn departure_rules() {
    let config = Config::for_tests();
    let drift = config.max_drift;
    let mut c = catalog(config);
    let k = key(1);
    let v = Version::new(100, 3);
    c.upsert(signed(&k, v, t(1000)), Source::Relayed, now_ms(1000));
    let dep = |version, ts| Departure {
        peer: k.peer_id(),
        network: net(),
        version,
        timestamp: ts,
    };
    // An older version departing (a previous run) does not remove the current one.
    assert_eq!(
        c.depart(&dep(Version::new(100, 2), t(1100)), now_ms(1100)),
        DepartureOutcome::Stale
    );
    // Too old (a replay) or too far ahead.
    assert_eq!(
        c.depart(&dep(v, t(1100)), both(t(1100).saturating_add(drift * 2))),
        DepartureOutcome::TooOld
    );
    assert_eq!(
        c.depart(&dep(v, t(1100).saturating_add(drift * 2)), now_ms(1100)),
        DepartureOutcome::TooFarInFuture
    );
    let mut other = dep(v, t(1100));
    other.network = NetworkId::from_name("other");
    assert_eq!(
        c.depart(&other, now_ms(1100)),
        DepartureOutcome::DifferentNetwork
    );
    assert!(c.contains(&k.peer_id()));
    assert_eq!(
        c.depart(&dep(v, t(1100)), now_ms(1100)),
        DepartureOutcome::Removed
    );
    assert!(!c.contains(&k.peer_id()));
    // A late copy of the departed run is refused; the next run is welcome.
    assert_eq!(
        c.upsert(signed(&k, v, t(1050)), Source::Relayed, now_ms(1150)),
        UpsertOutcome::Rejected
    );
    assert_eq!(
        c.upsert(
            signed(&k, Version::new(2000, 0), t(2000)),
            Source::Relayed,
            now_ms(2000)
        ),
        UpsertOutcome::New
    );
    // A departure for our own id is ignored.
    let own = Departure {
        peer: key(0).peer_id(),
        network: net(),
        version: Version::new(1, 0),
        timestamp: t(2000),
    };
    assert_eq!(c.depart(&own, now_ms(2000)), DepartureOutcome::LocalPeer);
}

#[test]
fn tombstones_are_bounded() {
    let config = Config {
        max_tombstones: 3,
        ..Config::for_tests()
    };
    let mut c = catalog(config);
    for n in 1..=10 {
        let d = Departure {
            peer: key(n).peer_id(),
            network: net(),
            version: Version::new(1, 0),
            timestamp: t(1000 + u64::from(n)),
        };
        assert_eq!(c.depart(&d, now_ms(1000)), DepartureOutcome::Unknown);
    }
    // Only the three newest tombstones remain: an old departed entry may come back (until purged).
    assert_eq!(
        c.upsert(
            signed(&key(1), Version::new(1, 0), t(1000)),
            Source::Relayed,
            now_ms(1000)
        ),
        UpsertOutcome::New
    );
    assert_eq!(
        c.upsert(
            signed(&key(10), Version::new(1, 0), t(1000)),
            Source::Relayed,
            now_ms(1000)
        ),
        UpsertOutcome::Rejected
    );
}

#[test]
fn full_catalog_evicts_stale_entries_first() {
    let config = Config {
        max_entries: 3,
        ..Config::for_tests()
    };
    let stale_after = config.stale_after;
    let mut c = catalog(config);
    let start = t(10_000);
    for n in 1..=3 {
        let at = start.saturating_add(Duration::from_millis(u64::from(n)));
        c.upsert(
            signed(&key(n), Version::new(1, 0), at),
            Source::Relayed,
            both(at),
        );
    }
    // Peer 2 and 3 keep announcing; peer 1 falls silent and turns stale.
    let later = start.saturating_add(stale_after + Duration::from_millis(10));
    for n in 2..=3 {
        c.upsert(
            signed(&key(n), Version::new(1, 0), later),
            Source::Relayed,
            both(later),
        );
    }
    // While entries are fresh, a relayed newcomer is refused...
    let early = start.saturating_add(Duration::from_millis(100));
    assert_eq!(
        c.upsert(
            signed(&key(4), Version::new(1, 0), early),
            Source::Relayed,
            both(early)
        ),
        UpsertOutcome::Full
    );
    // ...once one is stale, it takes its place.
    assert_eq!(
        c.upsert(
            signed(&key(4), Version::new(1, 0), later),
            Source::Relayed,
            both(later)
        ),
        UpsertOutcome::New
    );
    assert_eq!(c.take_evicted(), Some(key(1).peer_id()));
    assert!(c.contains(&key(2).peer_id()) && c.contains(&key(3).peer_id()));
}

#[test]
fn a_full_catalog_searches_for_a_victim_once_per_purge_tick() {
    let config = Config {
        max_entries: 2,
        ..Config::for_tests()
    };
    let (stale_after, tick) = (config.stale_after, config.purge_tick);
    let mut c = catalog(config);
    let start = t(10_000);
    let offer = |c: &mut Catalog, n: u32, at: Time| {
        c.upsert(
            signed(&key(n), Version::new(1, 0), at),
            Source::Relayed,
            both(at),
        )
    };
    for n in 1..=2 {
        offer(&mut c, n, start);
    }
    // Just before peer 1 turns stale a relayed newcomer finds no victim...
    let almost = start.saturating_add(stale_after - Duration::from_millis(1));
    assert_eq!(offer(&mut c, 3, almost), UpsertOutcome::Full);
    // ...and the next ones within the tick are refused without a search, though peer 1 is
    // stale by then...
    let stale = start.saturating_add(stale_after);
    assert_eq!(offer(&mut c, 4, stale), UpsertOutcome::Full);
    // ...while a newcomer that reached us directly still searches, and takes the place.
    assert_eq!(
        c.upsert(
            signed(&key(5), Version::new(1, 0), stale),
            Source::Direct,
            both(stale)
        ),
        UpsertOutcome::New
    );
    // After the tick, relayed newcomers are searched for again.
    let after = almost.saturating_add(tick);
    assert_eq!(offer(&mut c, 6, after), UpsertOutcome::New);
}

#[test]
fn neighbours_are_never_evicted() {
    let config = Config {
        max_entries: 2,
        ..Config::for_tests()
    };
    let stale_after = config.stale_after;
    let mut c = catalog(config);
    let start = t(10_000);
    for n in 1..=2 {
        c.upsert(
            signed(&key(n), Version::new(1, 0), start),
            Source::Relayed,
            both(start),
        );
        c.set_neighbour(&key(n).peer_id(), true);
    }
    let later = start.saturating_add(stale_after * 2);
    // Both are stale by refresh age, but proven by being neighbours.
    assert_eq!(
        c.upsert(
            signed(&key(3), Version::new(1, 0), later),
            Source::Direct,
            both(later)
        ),
        UpsertOutcome::Full
    );
}

#[test]
fn a_record_and_its_key_fill_one_cache_line() {
    assert_eq!(crate::proto::table::slot_size::<crate::proto::Record>(), 64);
}
