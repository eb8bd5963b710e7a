//! Valid inputs for every target, so the fuzzers start from messages that get past the first
//! checks (signatures, checksums, handshakes) and mutate from there.

use std::net::SocketAddr;

use serde::Serialize;
use serde_bytes::ByteBuf;
use weft_discovery::{
    Announcement, Departure, DigestItem, Message as DiscoveryMessage, PeerEntry, SharedEntry,
    SyncMessage, Version,
};
use weft_gossip::{
    Content, Message as GossipMessage, MessageId, Scope, TopicId, TopicMessage,
    proto::{BroadcastMessage, IHave, MembershipMessage, Push},
};
use weft_registry::{
    Ack, DhtId, ProviderRecord, Refusal as RegistryRefusal, Removal, Request, Response, Stored,
};
use weft_sync::{
    Item, ItemId, ItemKey,
    proto::{Frame, Index, Reconciler, Refusal as SyncRefusal, SET_RECONCILIATION, SetMessage},
};
use weft_transport::{NetworkId, PeerAddr, Signed, SignedPayload, cbor_encode, encode_frame};

use crate::{join_chunks, key, peer};

/// `(target, inputs)` for every target.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("frame_decoder", frame_decoder()),
        ("cbor_value", cbor_value()),
        ("ticket", ticket()),
        ("peer_id", peer_id()),
        ("signed_envelope", signed_envelope()),
        ("gossip_message", gossip_message()),
        ("discovery_message", discovery_message()),
        ("registry_message", registry_message()),
        ("sync_frame", sync_frame()),
        ("sync_reconcile", sync_reconcile()),
        ("sync_item", sync_item()),
        ("sync_session", sync_session()),
        ("config_toml", config_toml()),
    ]
}

fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    cbor_encode(value).expect("seeds encode")
}

fn prefixed(byte: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![byte];
    out.extend_from_slice(body);
    out
}

fn addr() -> PeerAddr {
    PeerAddr::new(peer(1))
        .with_direct("127.0.0.1:4433".parse().unwrap())
        .with_direct("[::1]:4433".parse().unwrap())
        .with_relay("https://relay.example.invalid".parse().unwrap())
}

fn entry() -> PeerEntry {
    PeerEntry {
        peer: peer(1),
        network: NetworkId::from_name("fuzz"),
        direct: ["10.0.0.1:5000".parse::<SocketAddr>().unwrap()].into(),
        relay: None,
        version: Version::new(1_700_000_000_000, 3),
        timestamp: weft_discovery::Time::from_millis(1_700_000_100_000),
        tags: ["relay".to_string(), "storage".to_string()].into(),
        metadata: [("region".to_string(), "eu".to_string())].into(),
        protocol: weft_discovery::ENTRY_VERSION,
    }
}

fn departure() -> Departure {
    Departure {
        peer: peer(1),
        network: NetworkId::from_name("fuzz"),
        version: Version::new(1_700_000_000_000, 3),
        timestamp: weft_discovery::Time::from_millis(1_700_000_200_000),
    }
}

fn record() -> ProviderRecord {
    ProviderRecord {
        key: DhtId::of_name("service/fuzz"),
        name: "service/fuzz".into(),
        provider: peer(1),
        addresses: ["10.0.0.1:5000".parse::<SocketAddr>().unwrap()].into(),
        relay: None,
        metadata: b"meta".to_vec(),
        issued_at: weft_registry::Time(1_700_000_000_000),
        ttl_ms: 3_600_000,
    }
}

fn removal() -> Removal {
    Removal {
        key: DhtId::of_name("service/fuzz"),
        name: "service/fuzz".into(),
        provider: peer(1),
        issued_at: weft_registry::Time(1_700_000_000_000),
        until: weft_registry::Time(1_700_003_600_000),
    }
}

fn signed<T: SignedPayload + Serialize>(payload: T) -> Signed<T> {
    Signed::sign(&key(1), payload).expect("seeds sign")
}

fn gossip_messages() -> Vec<GossipMessage<weft_transport::PeerId>> {
    let topic = TopicId::from_name("fuzz");
    let content = Content::from(b"hello".to_vec());
    let id = MessageId::new(peer(2).as_bytes(), 1, b"hello");
    let membership = [
        MembershipMessage::Join,
        MembershipMessage::ForwardJoin {
            peer: peer(3),
            ttl: 4,
        },
        MembershipMessage::Neighbor { high: true },
        MembershipMessage::NeighborReply { accepted: true },
        MembershipMessage::Shuffle {
            origin: peer(3),
            peers: vec![peer(4), peer(5)],
            ttl: 3,
        },
        MembershipMessage::ShuffleReply {
            peers: vec![peer(5)],
        },
        MembershipMessage::Disconnect { alive: true },
    ];
    let broadcast = [
        BroadcastMessage::Gossip(Push {
            id,
            content,
            hops: 1,
            scope: Scope::Swarm,
        }),
        BroadcastMessage::IHave(vec![IHave { id, hops: 2 }]),
        BroadcastMessage::Graft { id: Some(id) },
        BroadcastMessage::Prune,
    ];
    membership
        .into_iter()
        .map(TopicMessage::Membership)
        .chain(broadcast.into_iter().map(TopicMessage::Broadcast))
        .map(|message| GossipMessage { topic, message })
        .collect()
}

fn discovery_messages() -> Vec<DiscoveryMessage> {
    let shared = SharedEntry::new(signed(entry()));
    vec![
        DiscoveryMessage::Ping { nonce: 7 },
        DiscoveryMessage::Pong {
            nonce: 7,
            entry: shared.clone(),
        },
        DiscoveryMessage::Sync(SyncMessage::Offer {
            session: 1,
            buckets: 2,
            fingerprints: ByteBuf::from(vec![0u8; 24]),
        }),
        DiscoveryMessage::Sync(SyncMessage::Digest {
            session: 1,
            differing: vec![0, 1],
            items: vec![DigestItem(peer(2), Version::new(1, 2))],
            entries: vec![shared.clone()],
        }),
        DiscoveryMessage::Sync(SyncMessage::Exchange {
            session: 1,
            entries: vec![shared.clone()],
            wants: vec![peer(3)],
        }),
        DiscoveryMessage::Sync(SyncMessage::Entries {
            session: 1,
            entries: vec![shared],
        }),
        DiscoveryMessage::Sync(SyncMessage::Busy { session: 1 }),
    ]
}

fn frames() -> Vec<Frame> {
    vec![
        Frame::Hello {
            topic: TopicId::from_name("fuzz"),
            protocol: SET_RECONCILIATION.into(),
        },
        Frame::Accept,
        Frame::Refuse(SyncRefusal::UnsupportedProtocol {
            ours: "other/1".into(),
        }),
        Frame::Refuse(SyncRefusal::TooManySessions),
        Frame::Data(vec![1, 2, 3]),
        Frame::Abort("bye".into()),
    ]
}

fn frame_decoder() -> Vec<Vec<u8>> {
    let mut stream = Vec::new();
    for message in gossip_messages() {
        stream.extend(encode_frame(&message, usize::MAX).unwrap());
    }
    let mut sync = Vec::new();
    for frame in frames() {
        sync.extend(encode_frame(&frame, usize::MAX).unwrap());
    }
    vec![
        prefixed(2 | (7 << 2), &stream),
        prefixed(3, &sync),
        prefixed(1, &encode_frame(&"a short one", 64).unwrap()),
    ]
}

fn cbor_value() -> Vec<Vec<u8>> {
    let mut out = vec![
        cbor(&addr()),
        cbor(&peer(1)),
        cbor(&NetworkId::from_name("fuzz")),
    ];
    out.extend(gossip_messages().iter().take(3).map(cbor));
    out.push(signed(entry()).to_bytes());
    out
}

fn ticket() -> Vec<Vec<u8>> {
    vec![
        prefixed(0, addr().to_ticket().as_bytes()),
        prefixed(0, PeerAddr::new(peer(2)).to_ticket().as_bytes()),
        prefixed(1, &cbor(&addr())),
    ]
}

fn peer_id() -> Vec<Vec<u8>> {
    vec![
        peer(1).to_string().into_bytes(),
        peer(2).to_string().to_ascii_uppercase().into_bytes(),
        peer(3).as_bytes().to_vec(),
        cbor(&peer(4)),
    ]
}

fn signed_envelope() -> Vec<Vec<u8>> {
    vec![
        prefixed(0, &signed(entry()).to_bytes()),
        prefixed(4, &cbor(&entry())),
        prefixed(1, &signed(departure()).to_bytes()),
        prefixed(5, &cbor(&departure())),
        prefixed(2, &signed(record()).to_bytes()),
        prefixed(6, &cbor(&record())),
        prefixed(3, &signed(removal()).to_bytes()),
        prefixed(7, &cbor(&removal())),
    ]
}

fn gossip_message() -> Vec<Vec<u8>> {
    let messages = gossip_messages();
    let mut out: Vec<Vec<u8>> = messages.iter().map(|m| prefixed(0, &cbor(m))).collect();
    // A session: the peer we joined through (sender 0) and two others.
    let parts: Vec<Vec<u8>> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| prefixed(u8::try_from(i % 3).unwrap() | 4, &cbor(m)))
        .collect();
    out.push(prefixed(1, &join_chunks(parts.iter().map(Vec::as_slice))));
    out
}

fn discovery_message() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = discovery_messages()
        .iter()
        .map(|m| prefixed(6, &m.encode()))
        .collect();
    out.push(prefixed(7, &Announcement::from(signed(entry())).encode()));
    out.push(prefixed(
        7,
        &Announcement::from(signed(departure())).encode(),
    ));
    out
}

fn registry_message() -> Vec<Vec<u8>> {
    let requests = [
        Request::Ping,
        Request::FindNode {
            target: DhtId::of_name("x"),
        },
        Request::GetProviders {
            key: DhtId::of_name("service/fuzz"),
        },
        Request::AddProvider {
            record: signed(record()),
        },
        Request::RemoveProvider {
            removal: signed(removal()),
        },
    ];
    let responses = [
        Response::Pong,
        Response::Nodes {
            closer: vec![addr(), PeerAddr::new(peer(2))],
        },
        Response::Providers {
            providers: vec![signed(record())],
            closer: vec![addr()],
        },
        Response::Ack(Ack::Stored(Stored::New)),
        Response::Ack(Ack::Refused(RegistryRefusal::KeyFull)),
    ];
    requests
        .iter()
        .map(|r| prefixed(0, &cbor(r)))
        .chain(responses.iter().map(|r| prefixed(1, &cbor(r))))
        .collect()
}

fn sync_frame() -> Vec<Vec<u8>> {
    frames().iter().map(cbor).collect()
}

fn keys(range: std::ops::Range<u16>) -> Index {
    Index::from_keys(range.map(|n| ItemKey::new(u64::from(n / 3), ItemId::of(&n.to_be_bytes()))))
}

fn sync_reconcile() -> Vec<Vec<u8>> {
    // The fixed index of the target is keys 0..48 (with a few timestamps moved up); these
    // messages come from sets that overlap it.
    let theirs = keys(20..90);
    let mut initiator = Reconciler::new(0).unwrap();
    let first = initiator.initiate(&theirs).unwrap();
    let mut acceptor = Reconciler::new(0).unwrap();
    let reply = acceptor.reconcile(&theirs, &first).unwrap().reply.unwrap();
    let small = keys(0..5);
    let mut initiator = Reconciler::new(0).unwrap();
    let small_first = initiator.initiate(&small).unwrap();
    let mut out = vec![
        prefixed(0, &join_chunks([first.as_slice()])),
        prefixed(0, &join_chunks([small_first.as_slice()])),
        prefixed(2, &join_chunks([reply.as_slice()])),
    ];
    // Honest pairs: both, only ours, only theirs.
    let mut words = Vec::new();
    for n in 0u16..60 {
        let side: u16 = match n % 5 {
            0 => 0,
            1 => 1,
            _ => 2,
        };
        words.extend_from_slice(&((side << 14) | (n * 37 % 4096)).to_be_bytes());
    }
    out.push(prefixed(4, &words));
    out.push(prefixed(5, &words));
    out
}

fn sync_item() -> Vec<Vec<u8>> {
    vec![
        Item::new(1_700_000_000, b"hello").as_bytes().to_vec(),
        Item::new(0, b"").as_bytes().to_vec(),
        vec![1, 2, 3],
    ]
}

fn sync_session() -> Vec<Vec<u8>> {
    // The victim holds `Item::new(i, b"kept")` for i in 0..20.
    let kept: Vec<Item> = (0..20).map(|i| Item::new(i, b"kept")).collect();
    let fresh: Vec<Item> = (0..4).map(|i| Item::new(100 + i, b"new")).collect();
    let ours = Index::from_keys(kept[..10].iter().chain(&fresh).map(Item::key));
    let mut initiator = Reconciler::new(0).unwrap();
    let reconcile = initiator.initiate(&ours).unwrap();
    let messages = [
        SetMessage::Reconcile(ByteBuf::from(reconcile)),
        SetMessage::Offer(fresh.iter().map(Item::id).collect()),
        SetMessage::Want(vec![kept[15].id()]),
        SetMessage::Items {
            items: fresh
                .iter()
                .map(|i| ByteBuf::from(i.as_bytes().to_vec()))
                .collect(),
            missing: vec![],
            later: vec![],
        },
        SetMessage::ReconcileDone,
        SetMessage::Live(ByteBuf::from(Item::new(200, b"live").as_bytes().to_vec())),
    ];
    let payloads: Vec<Vec<u8>> = messages.iter().map(cbor).collect();
    let frames: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| cbor(&Frame::Data(p.clone())))
        .chain([cbor(&Frame::Abort("done".into()))])
        .collect();
    vec![
        prefixed(0, &join_chunks(payloads.iter().map(Vec::as_slice))),
        prefixed(2, &join_chunks(payloads[..1].iter().map(Vec::as_slice))),
        prefixed(1, &join_chunks(frames.iter().map(Vec::as_slice))),
    ]
}

fn config_toml() -> Vec<Vec<u8>> {
    let texts = [
        toml::to_string(&weft_gossip::Config::default()).unwrap(),
        toml::to_string(&weft_discovery::Config::default()).unwrap(),
        toml::to_string(&weft_registry::Config::default()).unwrap(),
        toml::to_string(&weft_sync::proto::Config::default()).unwrap(),
        include_str!("../../gossip/sim/default.toml").to_string(),
        include_str!("../../discovery/sim/default.toml").to_string(),
        include_str!("../../registry/sim/default.toml").to_string(),
    ];
    let mut out: Vec<Vec<u8>> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| prefixed(u8::try_from(i).unwrap(), text.as_bytes()))
        .collect();
    out.push(prefixed(3, b"session_timeout_ms = 1000\n"));
    out
}
