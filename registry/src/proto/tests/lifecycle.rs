//! Decisions the runtime used to make and the proto now makes, so the simulator sees them:
//! bootstrapping when the table is short of `k`, the lookup cache, and the shutdown.

use std::time::Duration;

use weft_transport::PeerAddr;

use super::{Net, both};
use crate::proto::{CommandError, Config, Event, Input, Output, Request};

fn config() -> Config {
    Config {
        k: 5,
        cache_ttl_ms: 30_000,
        ..Config::default()
    }
}

/// Whether `outputs` ask any peer for the nodes closest to some target (a lookup step of a
/// bootstrap or refresh).
fn finds_nodes(outputs: &[Output]) -> bool {
    outputs.iter().any(|o| {
        matches!(
            o,
            Output::Send {
                request: Request::FindNode { .. },
                ..
            }
        )
    })
}

#[test]
fn a_table_short_of_k_bootstraps_and_a_full_one_does_not() {
    let (mut net, ids) = Net::with_nodes(12, &config());
    // Every node joined through AddPeers alone, and reported its bootstrap.
    let bootstrapped = net
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Bootstrapped { .. }))
        .count();
    assert_eq!(bootstrapped, ids.len() - 1);

    let newcomer = net.add_node(500, config());
    let now = net.now;
    let node = net.node(newcomer);
    node.handle(Input::AddPeers(vec![PeerAddr::new(ids[0])]), both(now));
    let outputs = node.drain();
    assert!(finds_nodes(&outputs), "an empty table bootstraps");

    let full = ids[3];
    assert!(net.nodes[&full].table().len() >= config().k);
    let node = net.node(full);
    node.handle(Input::AddPeers(vec![PeerAddr::new(newcomer)]), both(now));
    let outputs = node.drain();
    assert!(!finds_nodes(&outputs), "a table of k peers does not");
    assert_eq!(net.nodes[&full].running_ops(), 0);
}

#[test]
fn a_cached_lookup_answers_at_once_until_the_ttl_or_a_local_change() {
    let (mut net, ids) = Net::with_nodes(20, &config());
    net.register(ids[7], "svc");
    let seeker = ids[12];
    assert!(net.lookup(seeker, "svc").contains(&ids[7]));

    // Within the TTL: answered from the cache, no request sent.
    let now = net.now;
    let op = net.node(seeker).lookup_cached("svc", both(now)).unwrap();
    let outputs = net.node(seeker).drain();
    assert!(outputs.iter().all(|o| matches!(o, Output::Event(_))));
    net.events
        .extend(outputs.into_iter().filter_map(|o| match o {
            Output::Event(e) => Some((seeker, e)),
            _ => None,
        }));
    assert!(net.found(seeker, op).contains(&ids[7]));

    // Past the TTL: the network is asked again.
    net.now = net.now + Duration::from_millis(config().cache_ttl_ms);
    let now = net.now;
    net.node(seeker).lookup_cached("svc", both(now)).unwrap();
    let outputs = net.node(seeker).drain();
    assert!(outputs.iter().any(|o| matches!(o, Output::Send { .. })));
    net.route(seeker, outputs);
    net.run();

    // Registering the name here drops its cache entry.
    net.register(seeker, "svc");
    let now = net.now;
    net.node(seeker).lookup_cached("svc", both(now)).unwrap();
    let outputs = net.node(seeker).drain();
    assert!(outputs.iter().any(|o| matches!(o, Output::Send { .. })));
}

#[test]
fn shutdown_withdraws_everything_and_starts_nothing_more() {
    let (mut net, ids) = Net::with_nodes(20, &config());
    let provider = ids[9];
    for name in ["a", "b"] {
        net.register(provider, name);
        assert!(net.lookup(ids[2], name).contains(&provider));
    }
    let now = net.now;
    // Past max_lookups would not matter either: a shutdown withdraws everything.
    assert_eq!(net.node(provider).shutdown(both(now)), 2);
    assert_eq!(net.node(provider).shutdown(both(now)), 0, "idempotent");
    net.flush(provider);
    net.run();
    assert_eq!(net.nodes[&provider].withdrawals_running(), 0);
    for name in ["a", "b"] {
        let withdrawn = net.events.iter().any(|(who, e)| {
            *who == provider && matches!(e, Event::Withdrawn { name: n, holders, .. } if n == name && *holders > 0)
        });
        assert!(withdrawn, "{name} withdrawn");
        assert!(net.lookup(ids[2], name).is_empty(), "{name} still found");
    }
    let now = net.now;
    let node = net.node(provider);
    assert_eq!(
        node.register("c", vec![], both(now)).unwrap_err(),
        CommandError::ShuttingDown
    );
    assert_eq!(
        node.lookup("a", both(now)).unwrap_err(),
        CommandError::ShuttingDown
    );
    // Ticks go on (expiry) but republish and refresh nothing.
    net.advance(net.now + Duration::from_secs(3_600));
    assert_eq!(net.nodes[&provider].running_ops(), 0);
    assert_eq!(net.nodes[&provider].registrations().count(), 0);
}
