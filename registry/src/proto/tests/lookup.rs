//! Lookups that go on around peers that never answer or answer garbage.

use super::{Fault, Net};
use crate::proto::{Config, Event};

fn small() -> Config {
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
