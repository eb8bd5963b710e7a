//! The sync manager's promises, on the sans-IO proto driven by the simulator's world: sessions
//! per (peer, topic), the topic handshake, catch-up, live mode, retries and bad input.

use std::time::Duration;

use weft_sync::{
    Item,
    proto::{Config, EndReason, Event, Frame, InEvent, Refusal, Role, SessionError},
    sim::{NodeId, World},
};
use weft_gossip::TopicId;

const MS: Duration = Duration::from_millis(1);

fn topic() -> TopicId {
    TopicId::from_name("manager-test")
}

fn items(range: std::ops::Range<u64>) -> Vec<Item> {
    range.map(|i| Item::new(i, format!("item {i}").as_bytes())).collect()
}

fn world(nodes: u32) -> World {
    World::new(nodes, &Config::default(), (5 * MS, 5 * MS), 7)
}

fn held(world: &World, node: NodeId) -> usize {
    world.node(node).items(topic()).map_or(0, |items| items.len())
}

/// Events of one node, without the topic.
fn events(all: &[Vec<(TopicId, Event<NodeId>)>], node: NodeId) -> Vec<Event<NodeId>> {
    all[node as usize].iter().map(|(_, e)| e.clone()).collect()
}

#[test]
fn two_nodes_with_different_sets_converge_and_go_live() {
    let mut world = world(2);
    world.subscribe(0, topic(), &items(0..600));
    world.subscribe(1, topic(), &items(400..1000));
    world.link(topic(), 0, 1);
    world.run_until(Duration::from_secs(5));
    assert_eq!(held(&world, 0), 1000);
    assert_eq!(held(&world, 1), 1000);
    let all = world.take_events();
    for node in 0..2 {
        let events = events(&all, node);
        let received = events
            .iter()
            .filter(|e| matches!(e, Event::ItemReceived { .. }))
            .count();
        assert_eq!(received, 400, "node {node} receives each missing item once");
        let caught_up: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::CaughtUp { stats, .. } => Some(*stats),
                _ => None,
            })
            .collect();
        assert_eq!(caught_up.len(), 1, "node {node}: {events:?}");
        assert_eq!(caught_up[0].items_received, 400);
        assert!(caught_up[0].bytes_received > 0 && caught_up[0].bytes_sent > 0);
    }
    // The lower id initiated; the session is live on both sides.
    let sessions = world.node(0).sessions(topic());
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].role, Role::Initiator);
    assert!(sessions[0].live && world.node(1).sessions(topic())[0].live);

    // Live: an insert at node 1 reaches node 0 once, without another reconciliation.
    let item = Item::new(5000, b"live");
    assert!(world.node_mut(1).insert(topic(), item.clone()).unwrap());
    world.flush(1);
    world.run_until(world.now() + Duration::from_secs(1));
    assert_eq!(held(&world, 0), 1001);
    let all = world.take_events();
    let got: Vec<_> = events(&all, 0)
        .into_iter()
        .filter_map(|e| match e {
            Event::ItemReceived { item, from } => Some((item, from)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![(item, 1)]);
}
