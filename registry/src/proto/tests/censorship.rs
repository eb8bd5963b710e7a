//! Identities ground next to a name's key, answering every request, acknowledging every store,
//! returning no record and naming only each other, cannot cut the name off (issue 15's attack:
//! 30 honest nodes, `k = 8`, 12 identities sharing 10 leading bits with the key).

use weft_transport::{PeerAddr, PeerId};

use super::{Fault, Net, key};
use crate::proto::{Config, DhtId, Input};

const HONEST: usize = 30;
const GROUND: usize = 12;
const SHARED_BITS: usize = 10;

/// `count` identities whose positions share `bits` leading bits with `target`, found by trying
/// seeds in turn, as an attacker grinds keys (about `2^bits` tries each).
fn ground(target: &DhtId, bits: usize, count: usize) -> Vec<PeerId> {
    (1_000_000u32..)
        .map(|seed| key(seed).peer_id())
        .filter(|peer| DhtId::of_peer(peer).distance(target).leading_zeros() >= bits)
        .take(count)
        .collect()
}

/// From how many honest nodes a fresh lookup finds the provider of `svc`, with the ground
/// identities behaving as `behaviour` in every honest node's routing table (as discovery would
/// put them there).
#[allow(clippy::print_stderr)] // The figures, for `-- --nocapture`.
fn found_from(crowding_aware: bool, behaviour: Fault) -> usize {
    let config = Config {
        k: 8,
        crowding_aware,
        ..Config::default()
    };
    let (mut net, ids) = Net::with_nodes(u32::try_from(HONEST).unwrap(), &config);
    let censors = ground(&DhtId::of_name("svc"), SHARED_BITS, GROUND);
    for censor in &censors {
        net.faults.insert(*censor, behaviour);
    }
    let addrs: Vec<PeerAddr> = censors.iter().map(|c| PeerAddr::new(*c)).collect();
    for id in &ids {
        net.input(*id, Input::AddPeers(addrs.clone()));
        net.run();
    }
    let provider = ids[3];
    net.register(provider, "svc");
    let found = ids
        .iter()
        .filter(|&&from| from != provider)
        .filter(|&&from| net.lookup(from, "svc").contains(&provider))
        .count();
    eprintln!(
        "crowding_aware {crowding_aware}, {behaviour:?}: found from {found} of {}, {} requests",
        HONEST - 1,
        net.requests_sent
    );
    found
}

#[test]
fn ground_identities_next_to_a_key_cannot_hide_the_name() {
    assert_eq!(found_from(true, Fault::Censor), HONEST - 1);
}

#[test]
fn nor_can_they_by_answering_garbage_or_nothing() {
    assert_eq!(found_from(true, Fault::Garbage), HONEST - 1);
    assert_eq!(found_from(true, Fault::Silent), HONEST - 1);
}

#[test]
fn plain_kademlia_is_cut_off_by_them() {
    // The control: without the crowding check the same attack works in this harness.
    let found = found_from(false, Fault::Censor);
    assert!(
        found < (HONEST - 1) / 2,
        "found from {found} of {}",
        HONEST - 1
    );
}
