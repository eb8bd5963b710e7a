//! Every kind of bad input named in the issue, one test each, plus the removal rules.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use weft_transport::{
    PeerId, SecretKey, Signature, SignatureError, Signed, SignedPayload, cbor_decode, cbor_encode,
};

use super::{START, both, key};
use crate::proto::{
    CommandError, Config, DhtId, ProviderRecord, RecordError, RecordLimits, Refusal, Removal,
    Request, Store, StoreConfig, Stored, Time,
};

/// The wire form of a signed envelope, to build forged ones by hand.
#[derive(Serialize, Deserialize)]
struct Envelope {
    signer: PeerId,
    payload: ByteBuf,
    signature: Signature,
}

fn record(provider: &SecretKey, name: &str, issued_at: Time) -> ProviderRecord {
    ProviderRecord {
        key: DhtId::of_name(name),
        name: name.to_owned(),
        provider: provider.peer_id(),
        addresses: Default::default(),
        relay: None,
        metadata: b"meta".to_vec(),
        issued_at,
        ttl_ms: 300_000,
    }
}

fn signed(provider: &SecretKey, name: &str, issued_at: Time) -> Signed<ProviderRecord> {
    Signed::sign(provider, record(provider, name, issued_at)).unwrap()
}

fn removal(provider: &SecretKey, name: &str, issued_at: Time) -> Signed<Removal> {
    let removal = Removal {
        key: DhtId::of_name(name),
        name: name.to_owned(),
        provider: provider.peer_id(),
        issued_at,
        until: issued_at + Duration::from_secs(300),
    };
    Signed::sign(provider, removal).unwrap()
}

fn store() -> Store {
    Store::new(StoreConfig::default(), RecordLimits::default())
}

/// Wraps an envelope in an `AddProvider` request as a peer would send it, and decodes it.
fn decode_add_provider(envelope: Envelope) -> Result<Request, weft_transport::FrameError> {
    #[derive(Serialize)]
    enum WireRequest {
        AddProvider { record: Envelope },
    }
    let bytes = cbor_encode(&WireRequest::AddProvider { record: envelope }).unwrap();
    cbor_decode::<Request>(&bytes)
}

#[test]
fn honest_request_decodes() {
    let provider = key(1);
    let good = signed(&provider, "svc", START);
    let envelope: Envelope = cbor_decode(&good.to_bytes()).unwrap();
    let request = decode_add_provider(envelope).unwrap();
    assert_eq!(request, Request::AddProvider { record: good });
}

#[test]
fn forged_record_fails_to_decode() {
    let provider = key(1);
    let good = signed(&provider, "svc", START);
    let mut envelope: Envelope = cbor_decode(&good.to_bytes()).unwrap();
    // Point the record at an attacker's metadata after signing.
    let mut tampered = record(&provider, "svc", START);
    tampered.metadata = b"evil".to_vec();
    envelope.payload = ByteBuf::from(cbor_encode(&tampered).unwrap());
    assert!(decode_add_provider(envelope).is_err());
}

#[test]
fn record_for_another_provider_is_refused() {
    let owner = key(1);
    let intruder = key(2);
    let err = Signed::sign(&intruder, record(&owner, "svc", START)).unwrap_err();
    assert!(matches!(err, SignatureError::WrongSigner { .. }));
    // Signed validly, but by someone else than the provider it names.
    let payload = cbor_encode(&record(&owner, "svc", START)).unwrap();
    let envelope = Envelope {
        signer: intruder.peer_id(),
        signature: intruder.sign(ProviderRecord::DOMAIN, &payload),
        payload: ByteBuf::from(payload),
    };
    assert!(decode_add_provider(envelope).is_err());
}

#[test]
fn removal_signature_does_not_pass_as_a_record() {
    let provider = key(1);
    let removal = removal(&provider, "svc", START);
    assert!(Signed::<ProviderRecord>::from_bytes(&removal.to_bytes()).is_err());
}

#[test]
fn expired_record_is_refused_and_never_returned() {
    let provider = key(1);
    let mut store = store();
    let old = signed(&provider, "svc", START);
    let later = START + Duration::from_secs(301);
    assert_eq!(
        store.put_record(old.clone(), later),
        Err(Refusal::Invalid(RecordError::Expired))
    );
    // Stored while live, then its time passes: no longer returned, then swept.
    assert_eq!(store.put_record(old, START), Ok(Stored::New));
    assert_eq!(store.providers(&DhtId::of_name("svc"), START).len(), 1);
    assert!(store.providers(&DhtId::of_name("svc"), later).is_empty());
    store.expire(later);
    assert!(store.is_empty());
}

#[test]
fn record_from_the_future_is_refused() {
    let provider = key(1);
    let future = START + Duration::from_secs(3_600);
    assert_eq!(
        store().put_record(signed(&provider, "svc", future), START),
        Err(Refusal::Invalid(RecordError::FromTheFuture))
    );
}

#[test]
fn oversized_metadata_is_refused() {
    let provider = key(1);
    let mut big = record(&provider, "svc", START);
    big.metadata = vec![0; 1025];
    let big = Signed::sign(&provider, big).unwrap();
    assert_eq!(
        store().put_record(big, START),
        Err(Refusal::Invalid(RecordError::MetadataTooLarge(1025)))
    );
    let mut net = super::Net::new();
    let id = net.add_node(1, Config::default());
    let err = net
        .node(id)
        .register("svc", vec![0; 1025], both(START))
        .unwrap_err();
    assert_eq!(
        err,
        CommandError::Invalid(RecordError::MetadataTooLarge(1025))
    );
}

#[test]
fn over_long_name_is_refused() {
    let provider = key(1);
    let name = "n".repeat(256);
    assert_eq!(
        store().put_record(signed(&provider, &name, START), START),
        Err(Refusal::Invalid(RecordError::NameTooLong(256)))
    );
    let mut net = super::Net::new();
    let id = net.add_node(1, Config::default());
    let err = net
        .node(id)
        .register(&name, vec![], both(START))
        .unwrap_err();
    assert_eq!(err, CommandError::Invalid(RecordError::NameTooLong(256)));
    let err = net.node(id).lookup(&name, both(START)).unwrap_err();
    assert_eq!(err, CommandError::Invalid(RecordError::NameTooLong(256)));
}

#[test]
fn key_that_is_not_the_names_hash_is_refused() {
    let provider = key(1);
    let mut lying = record(&provider, "svc", START);
    lying.key = DhtId::of_name("other");
    let lying = Signed::sign(&provider, lying).unwrap();
    assert_eq!(
        store().put_record(lying, START),
        Err(Refusal::Invalid(RecordError::KeyMismatch))
    );
}

#[test]
fn one_provider_flooding_hits_its_quota() {
    let flooder = key(1);
    let mut store = store();
    let quota = StoreConfig::default().max_per_provider;
    for i in 0..quota {
        let name = format!("name-{i}");
        assert_eq!(
            store.put_record(signed(&flooder, &name, START), START),
            Ok(Stored::New)
        );
    }
    let over = signed(&flooder, "one-too-many", START);
    assert_eq!(store.put_record(over, START), Err(Refusal::ProviderQuota));
    // Others are not affected, and the flooder may still refresh what it has.
    assert_eq!(
        store.put_record(signed(&key(2), "x", START), START),
        Ok(Stored::New)
    );
    let refresh = signed(&flooder, "name-0", START + Duration::from_secs(1));
    assert_eq!(store.put_record(refresh, START), Ok(Stored::Updated));
}

#[test]
fn a_full_key_refuses_newcomers_but_keeps_incumbents() {
    let mut store = Store::new(
        StoreConfig {
            max_per_key: 3,
            ..StoreConfig::default()
        },
        RecordLimits::default(),
    );
    for seed in 1..=3 {
        assert_eq!(
            store.put_record(signed(&key(seed), "svc", START), START),
            Ok(Stored::New)
        );
    }
    let newcomer = signed(&key(9), "svc", START);
    assert_eq!(store.put_record(newcomer, START), Err(Refusal::KeyFull));
    // Once an incumbent expires, its slot is free again.
    let later = START + Duration::from_secs(301);
    let late_newcomer = signed(&key(9), "svc", later);
    assert_eq!(store.put_record(late_newcomer, later), Ok(Stored::New));
}

#[test]
fn the_whole_store_is_bounded() {
    let mut store = Store::new(
        StoreConfig {
            max_total: 5,
            ..StoreConfig::default()
        },
        RecordLimits::default(),
    );
    for seed in 1..=5 {
        store
            .put_record(signed(&key(seed), "svc", START), START)
            .unwrap();
    }
    assert_eq!(
        store.put_record(signed(&key(6), "other", START), START),
        Err(Refusal::StoreFull)
    );
}

#[test]
fn removal_deletes_and_stops_an_older_copy_coming_back() {
    let provider = key(1);
    let mut store = store();
    let svc = DhtId::of_name("svc");
    let copy = signed(&provider, "svc", START);
    store.put_record(copy.clone(), START).unwrap();
    let t1 = START + Duration::from_secs(10);
    assert_eq!(
        store.put_removal(removal(&provider, "svc", t1), t1),
        Ok(Stored::Updated)
    );
    assert!(store.providers(&svc, t1).is_empty());
    // A holder that missed the removal hands the old copy back: refused.
    assert_eq!(store.put_record(copy, t1), Err(Refusal::Withdrawn));
    // A registration after the removal is accepted.
    let t2 = t1 + Duration::from_secs(1);
    assert_eq!(
        store.put_record(signed(&provider, "svc", t2), t2),
        Ok(Stored::Updated)
    );
    assert_eq!(store.providers(&svc, t2).len(), 1);
}

#[test]
fn removal_arriving_first_blocks_the_record() {
    let provider = key(1);
    let mut store = store();
    let t1 = START + Duration::from_secs(10);
    assert_eq!(
        store.put_removal(removal(&provider, "svc", t1), t1),
        Ok(Stored::New)
    );
    assert_eq!(
        store.put_record(signed(&provider, "svc", START), t1),
        Err(Refusal::Withdrawn)
    );
    // Kept until every record it covers has expired, then dropped.
    store.expire(t1 + Duration::from_secs(300));
    assert!(store.is_empty());
}

#[test]
fn removal_signed_by_someone_else_cannot_be_made() {
    let owner = key(1);
    let intruder = key(2);
    let forged = Removal {
        key: DhtId::of_name("svc"),
        name: "svc".into(),
        provider: owner.peer_id(),
        issued_at: START,
        until: START + Duration::from_secs(300),
    };
    assert!(Signed::sign(&intruder, forged).is_err());
}

#[test]
fn withdrawing_an_unknown_name_is_an_error() {
    let mut net = super::Net::new();
    let id = net.add_node(1, Config::default());
    let err = net.node(id).withdraw("nothing", both(START)).unwrap_err();
    assert!(matches!(err, CommandError::NotRegistered(_)));
}

#[test]
fn a_copy_issued_in_the_future_gives_way_once_the_clock_stepped_back() {
    let provider = key(1);
    let name_key = DhtId::of_name("svc");
    let mut store = store();
    // Stored while the clock read an hour ahead.
    let ahead = START + Duration::from_secs(3600);
    assert_eq!(
        store.put_record(signed(&provider, "svc", ahead), ahead),
        Ok(Stored::New)
    );
    // The clock steps back: the held copy no longer validates here, so it is not handed out,
    // and the provider's copy stamped by the stepped-back clock replaces it.
    assert!(store.providers(&name_key, START).is_empty());
    assert_eq!(
        store.put_record(signed(&provider, "svc", START), START),
        Ok(Stored::Updated)
    );
    assert_eq!(store.providers(&name_key, START).len(), 1);
    // A valid copy still only gives way to a newer one: replays stay refused.
    let older = START - Duration::from_secs(1);
    assert_eq!(
        store.put_record(signed(&provider, "svc", older), START),
        Err(Refusal::Outdated)
    );
}
