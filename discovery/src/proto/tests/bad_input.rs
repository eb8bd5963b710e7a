//! One test per kind of bad input: each gets a clear outcome and leaves the node unharmed.

use std::time::Duration;

use serde::Serialize;
use serde_bytes::ByteBuf;
use weft_transport::{SignatureError, cbor_encode};

use super::*;
use crate::proto::{
    Announcement, Catalog, EntryError, Event, Limits, Source, SyncMessage, UpsertOutcome,
    Violation, message::MessageError,
};

fn catalog(config: Config) -> Catalog {
    Catalog::new(config, signed(&key(0), Version::new(1, 0), t(1)), 7)
}

/// The envelope layout of `weft_transport::Signed`, built by hand to forge one.
#[derive(Serialize)]
struct Envelope {
    signer: PeerId,
    payload: ByteBuf,
    signature: weft_transport::Signature,
}

#[test]
fn forged_signature() {
    let k = key(1);
    let good = signed(&k, Version::new(1, 0), t(1000));
    // Change the content after signing: the signature no longer covers it.
    let mut tampered = good.payload().clone();
    tampered.direct = BTreeSet::from(["10.6.6.6:666".parse().unwrap()]);
    let forged = cbor_encode(&Envelope {
        signer: k.peer_id(),
        payload: ByteBuf::from(cbor_encode(&tampered).unwrap()),
        signature: *good.signature(),
    })
    .unwrap();
    let mut c = catalog(Config::for_tests());
    let outcome = c.upsert_bytes(&forged, Source::Relayed, now_ms(1000));
    assert!(
        matches!(
            outcome,
            UpsertOutcome::InvalidSignature(SignatureError::BadSignature { .. })
        ),
        "{outcome:?}"
    );
    assert!(c.is_empty());

    // The same forgery on the gossip topic: reported, nothing stored, the node keeps working.
    let mut n = node(0, both(t(1000)));
    let wire = cbor_encode(&WireAnnouncement::Entry(ByteBuf::from(forged))).unwrap();
    let out = n.step(Input::Gossip(wire), now_ms(1000));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::BadAnnouncement(_))))
    );
    assert!(n.catalog().is_empty());
    n.step(Input::Announcement(Announcement::from(good)), now_ms(1000));
    assert_eq!(n.catalog().len(), 1);
}

/// Mirrors the private wire form of announcements.
#[derive(Serialize)]
enum WireAnnouncement {
    Entry(ByteBuf),
}

#[test]
fn entry_signed_by_another_key() {
    let owner = key(1);
    let intruder = key(2);
    let payload = cbor_encode(&entry(&owner, Version::new(1, 0), t(1000))).unwrap();
    let bytes = cbor_encode(&Envelope {
        signer: intruder.peer_id(),
        signature: intruder.sign(
            <PeerEntry as weft_transport::SignedPayload>::DOMAIN,
            &payload,
        ),
        payload: ByteBuf::from(payload),
    })
    .unwrap();
    let mut c = catalog(Config::for_tests());
    let outcome = c.upsert_bytes(&bytes, Source::Relayed, now_ms(1000));
    assert!(
        matches!(
            outcome,
            UpsertOutcome::InvalidSignature(SignatureError::WrongSigner { .. })
        ),
        "{outcome:?}"
    );
    assert!(c.is_empty());
}

#[test]
fn other_network() {
    let k = key(1);
    let mut e = entry(&k, Version::new(1, 0), t(1000));
    e.network = NetworkId::from_name("elsewhere");
    let mut c = catalog(Config::for_tests());
    let outcome = c.upsert(Signed::sign(&k, e).unwrap(), Source::Relayed, now_ms(1000));
    assert_eq!(outcome, UpsertOutcome::DifferentNetwork);
    assert!(c.is_empty());
}

#[test]
fn timestamp_beyond_max_drift() {
    let config = Config::for_tests();
    let drift = config.max_drift;
    let mut c = catalog(config);
    let now = t(10_000);
    let ahead = now.saturating_add(drift + Duration::from_millis(1));
    assert_eq!(
        c.upsert(
            signed(&key(1), Version::new(1, 0), ahead),
            Source::Relayed,
            both(now)
        ),
        UpsertOutcome::TooFarInFuture
    );
    // Within the drift is fine.
    assert_eq!(
        c.upsert(
            signed(&key(1), Version::new(1, 0), now.saturating_add(drift)),
            Source::Relayed,
            both(now)
        ),
        UpsertOutcome::New
    );
    assert_eq!(c.len(), 1);
}

#[test]
fn replay_of_older_version() {
    let mut n = node(0, both(t(1000)));
    let k = key(1);
    let old = signed(&k, Version::new(500, 1), t(1000));
    let new = signed(&k, Version::new(500, 2), t(1100));
    n.step(
        Input::Announcement(Announcement::from(new.clone())),
        now_ms(1100),
    );
    let out = n.step(Input::Announcement(Announcement::from(old)), now_ms(1200));
    assert!(
        out.iter().all(|o| !matches!(o, Output::Event(_))),
        "a replay is silent: {out:?}"
    );
    assert_eq!(
        n.catalog().get(&k.peer_id()).unwrap().entry(),
        new.payload()
    );
    // Replaying the current copy is rejected too, and does not extend its life.
    let expires = n.catalog().get(&k.peer_id()).unwrap().expires();
    n.step(Input::Announcement(Announcement::from(new)), now_ms(1300));
    assert_eq!(n.catalog().get(&k.peer_id()).unwrap().expires(), expires);
    assert_eq!(n.stats().ignored, 2);
}

#[test]
fn oversized_tags_or_metadata() {
    let limits = Limits::default();
    let k = key(1);
    let mut c = catalog(Config::for_tests());
    let mut e = entry(&k, Version::new(1, 0), t(1000));
    e.tags = (0..=limits.max_tags).map(|i| format!("tag{i}")).collect();
    assert_eq!(
        c.upsert(Signed::sign(&k, e).unwrap(), Source::Relayed, now_ms(1000)),
        UpsertOutcome::Invalid(EntryError::TooManyTags(limits.max_tags + 1))
    );
    let mut e = entry(&k, Version::new(1, 0), t(1000));
    e.tags = BTreeSet::from(["x".repeat(limits.max_tag_len + 1)]);
    assert!(matches!(
        c.upsert(Signed::sign(&k, e).unwrap(), Source::Relayed, now_ms(1000)),
        UpsertOutcome::Invalid(EntryError::TagTooLong(_))
    ));
    let mut e = entry(&k, Version::new(1, 0), t(1000));
    e.metadata = BTreeMap::from([("blob".to_string(), "x".repeat(limits.max_metadata_bytes))]);
    assert!(matches!(
        c.upsert(Signed::sign(&k, e).unwrap(), Source::Relayed, now_ms(1000)),
        UpsertOutcome::Invalid(EntryError::MetadataTooLarge(_))
    ));
    let mut e = entry(&k, Version::new(1, 0), t(1000));
    e.metadata = (0..=limits.max_metadata_entries)
        .map(|i| (format!("k{i}"), String::new()))
        .collect();
    assert!(matches!(
        c.upsert(Signed::sign(&k, e).unwrap(), Source::Relayed, now_ms(1000)),
        UpsertOutcome::Invalid(EntryError::TooManyMetadataEntries(_))
    ));
    assert!(c.is_empty());

    // The local node refuses to sign an oversized update and keeps its entry.
    let mut n = node(0, both(t(1000)));
    let before = n.catalog().local().payload().clone();
    let out = n.step(
        Input::Command(crate::proto::Command::SetTags(
            (0..100).map(|i| i.to_string()).collect(),
        )),
        now_ms(1100),
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(Event::LocalUpdateRefused(EntryError::TooManyTags(100)))
    )));
    assert_eq!(n.catalog().local().payload(), &before);
}

#[test]
fn flood_of_fake_entries_against_the_bound() {
    let config = Config {
        max_entries: 100,
        ..Config::for_tests()
    };
    let interval = config.announce_interval;
    let mut c = catalog(config);
    let mut now = t(10_000);
    // 60 honest peers, live: they re-announce every interval.
    let honest: Vec<SecretKey> = (1..=60).map(key).collect();
    let announce_all = |c: &mut Catalog, now: Time| {
        for k in &honest {
            let outcome = c.upsert(
                signed(k, Version::new(1, 0), now),
                Source::Relayed,
                both(now),
            );
            assert!(outcome.is_accepted(), "{outcome:?}");
        }
    };
    announce_all(&mut c, now);
    // A flood of 2,000 fresh fake entries (20 times the bound), over several intervals.
    let mut full = 0;
    for round in 0..5u32 {
        for i in 0..400u32 {
            let fake = key(1_000_000 + round * 400 + i);
            if c.upsert(
                signed(&fake, Version::new(1, 0), now),
                Source::Relayed,
                both(now),
            ) == UpsertOutcome::Full
            {
                full += 1;
            }
        }
        assert!(c.len() <= 100);
        now = now.saturating_add(interval);
        announce_all(&mut c, now);
        c.purge(both(now));
    }
    assert!(full > 1_850, "most of the flood bounced: {full}");
    for k in &honest {
        assert!(c.contains(&k.peer_id()), "honest peer pushed out");
    }
    // A newcomer that reaches us directly is proven, and displaces a fake.
    let newcomer = key(61);
    assert_eq!(
        c.upsert(
            signed(&newcomer, Version::new(1, 0), now),
            Source::Relayed,
            both(now)
        ),
        UpsertOutcome::Full
    );
    assert_eq!(
        c.upsert(
            signed(&newcomer, Version::new(1, 0), now),
            Source::Direct,
            both(now)
        ),
        UpsertOutcome::New
    );
    let evicted = c.take_evicted().expect("a fake made room");
    assert!(!honest.iter().any(|k| k.peer_id() == evicted));
    assert_eq!(c.len(), 100);
    for k in &honest {
        assert!(c.contains(&k.peer_id()));
    }
}

#[test]
fn malformed_sync_frames() {
    let mut n = node(0, both(t(1000)));
    let other = key(9).peer_id();
    // Garbage and oversized frames fail to decode before reaching the node.
    assert!(matches!(
        Message::decode(b"\xff\xfe garbage", 1024),
        Err(MessageError::Malformed(_))
    ));
    assert!(matches!(
        Message::decode(&[0u8; 2048], 1024),
        Err(MessageError::TooLarge { .. })
    ));
    // Valid CBOR, wrong shape.
    assert!(Message::decode(&cbor_encode(&("Sync", 1, 2)).unwrap(), 1024).is_err());
    // A forged entry inside a sync message fails the whole message.
    let good = signed(&key(1), Version::new(1, 0), t(1000));
    let mut msg = cbor_encode(&Message::Sync(SyncMessage::Entries {
        session: 1,
        entries: vec![good.into()],
    }))
    .unwrap();
    let last = msg.len() - 1;
    msg[last] ^= 0x01; // flip a bit of the signature
    assert!(Message::decode(&msg, usize::MAX).is_err());

    let violation = |out: &[Output]| {
        out.iter().find_map(|o| match o {
            Output::Event(Event::Violation { violation, .. }) => Some(*violation),
            _ => None,
        })
    };
    // Messages that fit no session.
    let digest = SyncMessage::Digest {
        session: 5,
        differing: vec![],
        items: vec![],
        entries: vec![],
    };
    let out = n.step(
        Input::Message {
            from: other,
            message: Message::Sync(digest),
        },
        now_ms(1000),
    );
    assert_eq!(violation(&out), Some(Violation::UnexpectedSyncMessage));
    let entries = SyncMessage::Entries {
        session: 5,
        entries: vec![],
    };
    let out = n.step(
        Input::Message {
            from: other,
            message: Message::Sync(entries),
        },
        now_ms(1000),
    );
    assert_eq!(violation(&out), Some(Violation::UnexpectedSyncMessage));
    // Offers with a bad bucket count or table size.
    for (buckets, len) in [
        (0u16, 0usize),
        (4, 47),
        (u16::MAX, usize::from(u16::MAX) * 12),
    ] {
        let offer = SyncMessage::Offer {
            session: 1,
            buckets,
            fingerprints: ByteBuf::from(vec![0; len]),
        };
        let out = n.step(
            Input::Message {
                from: other,
                message: Message::Sync(offer),
            },
            now_ms(1000),
        );
        assert_eq!(violation(&out), Some(Violation::BadOffer));
    }
    // A digest with buckets out of range, in answer to a real offer.
    let session = start_sync(&mut n, other);
    let bad = SyncMessage::Digest {
        session,
        differing: vec![3, 2, 9999],
        items: vec![],
        entries: vec![],
    };
    let out = n.step(
        Input::Message {
            from: other,
            message: Message::Sync(bad),
        },
        now_ms(1000),
    );
    assert_eq!(violation(&out), Some(Violation::BadDigest));
    // A digest pushing entries into a bucket our offer did not report empty.
    let session = start_sync(&mut n, other);
    // A peer in the bucket of our own entry, which our offer reported non-empty.
    let own_bucket = crate::proto::sync::bucket_of(&n.id(), 16);
    let same_bucket = (3..)
        .map(key)
        .find(|k| crate::proto::sync::bucket_of(&k.peer_id(), 16) == own_bucket)
        .unwrap();
    let pushy = SyncMessage::Digest {
        session,
        differing: vec![],
        items: vec![],
        entries: vec![signed(&same_bucket, Version::new(1, 0), t(1000)).into()],
    };
    let out = n.step(
        Input::Message {
            from: other,
            message: Message::Sync(pushy),
        },
        now_ms(1000),
    );
    assert_eq!(violation(&out), Some(Violation::UnwantedEntries));
    assert!(n.catalog().is_empty());
    assert_eq!(n.stats().violations, 7);
    // The node still works: it syncs with an honest peer afterwards.
    let mut nodes = vec![n, node(1, both(t(1000)))];
    let id1 = nodes[1].id();
    let out = nodes[0].step(Input::NeighborUp(id1), now_ms(1000));
    let id0 = nodes[0].id();
    pump(
        &mut nodes,
        out.into_iter().map(|o| (id0, o)).collect(),
        both(t(1000)),
    );
    assert!(nodes[0].catalog().contains(&id1));
    assert!(nodes[1].catalog().contains(&id0));
}

/// Starts a sync with `other` and returns the session id of the offer `n` sends.
fn start_sync(n: &mut Node, other: PeerId) -> u64 {
    let out = n.step(
        Input::Command(crate::proto::Command::SyncWith(other)),
        now_ms(1000),
    );
    out.iter()
        .find_map(|o| match o {
            Output::Send {
                message: Message::Sync(SyncMessage::Offer { session, .. }),
                ..
            } => Some(*session),
            _ => None,
        })
        .expect("a sync command sends an offer")
}

#[test]
fn oversized_or_garbage_gossip_is_reported() {
    let mut n = node(0, both(t(1000)));
    for bytes in [
        vec![0u8; 64 * 1024],
        b"\x00\x01garbage".to_vec(),
        Vec::new(),
    ] {
        let out = n.step(Input::Gossip(bytes), now_ms(1000));
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Event(Event::BadAnnouncement(_))))
        );
    }
    assert!(n.catalog().is_empty());
    assert_eq!(n.stats().refused, 3);
}
