//! Whole-network behaviour: several providers, withdrawal everywhere, expiry, republish,
//! hand-over to a new closer node.

use std::time::Duration;

use weft_transport::PeerAddr;

use super::{Net, both};
use crate::proto::{Config, DhtId, Event};

fn config() -> Config {
    Config {
        k: 5,
        ..Config::default()
    }
}

#[test]
fn three_providers_are_found_whole_from_every_node() {
    let (mut net, ids) = Net::with_nodes(30, &config());
    for &p in &ids[..3] {
        net.register(p, "svc");
    }
    for &from in &ids {
        let found = net.lookup(from, "svc");
        assert_eq!(found.len(), 3, "from {from:?}");
    }
}

#[test]
fn withdrawal_removes_the_record_everywhere() {
    let (mut net, ids) = Net::with_nodes(30, &config());
    net.register(ids[1], "svc");
    net.register(ids[2], "svc");
    net.withdraw(ids[1], "svc");
    let withdrawn = net.events.iter().any(|(who, e)| {
        *who == ids[1] && matches!(e, Event::Withdrawn { holders, .. } if *holders > 0)
    });
    assert!(withdrawn);
    for &from in &ids {
        let found = net.lookup(from, "svc");
        assert!(
            !found.contains(&ids[1]),
            "withdrawn record returned to {from:?}"
        );
        assert!(found.contains(&ids[2]));
    }
    // No node holds it any more.
    let key = DhtId::of_name("svc");
    let now = net.now;
    for node in net.nodes.values() {
        assert!(
            node.store()
                .providers(&key, now)
                .iter()
                .all(|r| r.payload().provider != ids[1])
        );
    }
}

#[test]
fn a_dead_providers_record_expires_after_its_ttl() {
    let (mut net, ids) = Net::with_nodes(20, &config());
    net.register(ids[7], "svc");
    net.kill(ids[7]);
    assert!(net.lookup(ids[0], "svc").contains(&ids[7]));
    let ttl = Duration::from_millis(config().record_ttl_ms);
    let end = net.now + ttl;
    net.advance(end);
    assert!(net.lookup(ids[0], "svc").is_empty());
}

#[test]
fn republish_keeps_a_live_record() {
    let (mut net, ids) = Net::with_nodes(20, &config());
    net.register(ids[7], "svc");
    let ttl = Duration::from_millis(config().record_ttl_ms);
    let end = net.now + ttl * 3;
    net.advance(end);
    assert!(net.lookup(ids[0], "svc").contains(&ids[7]));
    let published = net
        .events
        .iter()
        .filter(|(who, e)| *who == ids[7] && matches!(e, Event::Published { .. }))
        .count();
    assert!(published >= 4, "published {published} times");
}

#[test]
fn records_are_handed_over_to_a_new_closer_node() {
    let (mut net, ids) = Net::with_nodes(20, &config());
    net.register(ids[3], "svc");
    let key = DhtId::of_name("svc");
    // Pick a newcomer closer to the key than every current node.
    let nearest = ids
        .iter()
        .map(|id| DhtId::of_peer(id).distance(&key))
        .min()
        .unwrap();
    let seed = (1000..)
        .find(|&s| DhtId::of_peer(&super::key(s).peer_id()).distance(&key) < nearest)
        .unwrap();
    let newcomer = net.add_node(seed, config());
    net.input(
        newcomer,
        crate::proto::Input::AddPeers(vec![PeerAddr::new(ids[0])]),
    );
    // Short of k peers: the node bootstraps by itself.
    net.run();
    let now = net.now;
    let held = net.node(newcomer).store().providers(&key, now);
    assert_eq!(held.len(), 1, "the closest node did not receive the record");
}

#[test]
fn a_registration_made_alone_is_published_after_bootstrap() {
    let (mut net, ids) = Net::with_nodes(10, &config());
    let loner = net.add_node(500, config());
    net.register(loner, "svc");
    let key = DhtId::of_name("svc");
    let now = net.now;
    assert!(
        ids.iter()
            .all(|id| net.nodes[id].store().providers(&key, now).is_empty())
    );
    net.input(
        loner,
        crate::proto::Input::AddPeers(vec![PeerAddr::new(ids[0])]),
    );
    // Short of k peers: the node bootstraps by itself.
    net.run();
    let now = net.now;
    let holders = ids
        .iter()
        .filter(|id| !net.nodes[id].store().providers(&key, now).is_empty())
        .count();
    assert!(holders >= 5, "published to {holders} nodes");
    assert!(net.lookup(ids[9], "svc").contains(&loner));
}

#[test]
fn withdrawing_during_the_publish_leaves_nothing_behind() {
    let (mut net, ids) = Net::with_nodes(20, &config());
    let now = net.now;
    net.node(ids[4]).register("svc", vec![], both(now)).unwrap();
    net.node(ids[4]).withdraw("svc", both(now)).unwrap();
    net.flush(ids[4]);
    net.run();
    for &from in &ids {
        assert!(net.lookup(from, "svc").is_empty(), "from {from:?}");
    }
}

#[test]
fn removals_are_retried_until_a_flaky_holder_gets_them() {
    let (mut net, ids) = Net::with_nodes(20, &config());
    net.register(ids[3], "svc");
    let key = DhtId::of_name("svc");
    let now = net.now;
    let holders: Vec<_> = ids
        .iter()
        .copied()
        .filter(|id| *id != ids[3] && !net.nodes[id].store().providers(&key, now).is_empty())
        .collect();
    assert!(!holders.is_empty());
    for holder in &holders {
        net.faults.insert(*holder, super::Fault::Flaky);
    }
    net.withdraw(ids[3], "svc");
    net.faults.clear();
    let now = net.now;
    for holder in &holders {
        assert!(
            net.nodes[holder].store().providers(&key, now).is_empty(),
            "a flaky holder kept the withdrawn record"
        );
    }
}
