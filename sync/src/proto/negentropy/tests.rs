//! The reconciler's contract: roles, versions, limits, and malformed input refused without
//! panicking. Interop with the reference lives in `tests/negentropy_interop.rs`.

use super::*;
use crate::proto::{Index, ItemId, ItemKey};

fn index(n: u64) -> Index {
    Index::from_keys((0..n).map(|t| ItemKey::new(t, ItemId::of(&t.to_be_bytes()))))
}

fn accept(message: &[u8]) -> Result<Reconciled, ReconcileError> {
    Reconciler::new(0)?.reconcile(&index(100), message)
}

fn malformed(error: MessageError) -> Result<Reconciled, ReconcileError> {
    Err(ReconcileError::Malformed(error))
}

#[test]
fn frame_size_limit_is_zero_or_at_least_4096() {
    assert_eq!(
        Reconciler::new(4095).unwrap_err(),
        ReconcileError::FrameSizeLimitTooSmall(4095)
    );
    assert!(Reconciler::new(1).is_err());
    assert!(Reconciler::new(0).is_ok());
    assert!(Reconciler::new(MIN_FRAME_SIZE_LIMIT).is_ok());
}

#[test]
fn roles_are_fixed_by_the_first_call() {
    let set = index(10);
    let mut initiator = Reconciler::new(0).unwrap();
    initiator.initiate(&set).unwrap();
    assert!(initiator.is_initiator());
    assert_eq!(
        initiator.initiate(&set),
        Err(ReconcileError::AlreadyInitiated)
    );

    let mut acceptor = Reconciler::new(0).unwrap();
    acceptor.reconcile(&set, &[NEGENTROPY_V1]).unwrap();
    assert_eq!(
        acceptor.initiate(&set),
        Err(ReconcileError::AlreadyAccepting)
    );

    let mut uninitiated = Reconciler::initiator(0).unwrap();
    assert_eq!(
        uninitiated.reconcile(&set, &[NEGENTROPY_V1]),
        Err(ReconcileError::NotInitiated)
    );
    uninitiated.initiate(&set).unwrap();
    // The acceptor's "nothing left" reply ends reconciliation.
    assert_eq!(
        uninitiated.reconcile(&set, &[NEGENTROPY_V1]),
        Ok(Reconciled::default())
    );
}

#[test]
fn acceptor_answers_other_versions_with_its_own() {
    let reply = accept(&[0x62, 0xff, 0xff]).unwrap();
    assert_eq!(reply.reply, Some(vec![NEGENTROPY_V1]));
    assert_eq!(
        accept(&[0x42]),
        Err(ReconcileError::InvalidProtocolVersion(0x42))
    );
    assert_eq!(accept(&[]), malformed(MessageError::Empty));
}

#[test]
fn initiator_refuses_other_versions() {
    let set = index(10);
    let mut initiator = Reconciler::new(0).unwrap();
    initiator.initiate(&set).unwrap();
    assert_eq!(
        initiator.reconcile(&set, &[0x62]),
        Err(ReconcileError::UnsupportedProtocolVersion(0x62))
    );
    assert_eq!(
        initiator.reconcile(&set, &[0x00]),
        Err(ReconcileError::InvalidProtocolVersion(0x00))
    );
}

#[test]
fn messages_over_the_limit_are_refused() {
    let mut acceptor = Reconciler::new(4096).unwrap();
    let mut message = vec![NEGENTROPY_V1];
    message.resize(4097, 0);
    assert_eq!(
        acceptor.reconcile(&index(1), &message),
        Err(ReconcileError::MessageTooLarge {
            len: 4097,
            limit: 4096
        })
    );
}

#[test]
fn truncated_varints_are_refused() {
    // A bound whose timestamp varint never ends.
    assert_eq!(
        accept(&[0x61, 0x81]),
        malformed(MessageError::TruncatedVarint)
    );
    // A bound with no prefix length.
    assert_eq!(
        accept(&[0x61, 0x00]),
        malformed(MessageError::TruncatedVarint)
    );
    // A range with no mode.
    assert_eq!(
        accept(&[0x61, 0x00, 0x00]),
        malformed(MessageError::TruncatedVarint)
    );
    // An id list with no count.
    assert_eq!(
        accept(&[0x61, 0x00, 0x00, 0x02]),
        malformed(MessageError::TruncatedVarint)
    );
}

#[test]
fn overflowing_varints_are_refused() {
    let mut message = vec![0x61];
    message.extend([0xff; 10]);
    message.push(0x01);
    assert_eq!(accept(&message), malformed(MessageError::VarintOverflow));
}

#[test]
fn bad_modes_are_refused() {
    assert_eq!(
        accept(&[0x61, 0x00, 0x00, 0x03]),
        malformed(MessageError::BadMode(3))
    );
}

#[test]
fn id_lists_of_the_wrong_length_are_refused() {
    let mut message = vec![0x61, 0x00, 0x00, 0x02, 0x02];
    message.extend([0xbb; 32 + 31]);
    assert_eq!(
        accept(&message),
        malformed(MessageError::IdListTruncated {
            count: 2,
            available: 1
        })
    );
    // A count far beyond the message, refused before anything is reserved for it.
    assert_eq!(
        accept(&[0x61, 0x00, 0x00, 0x02, 0xc0, 0x80, 0x80, 0x80, 0x00]),
        malformed(MessageError::IdListTruncated {
            count: 1 << 34,
            available: 0
        })
    );
}

#[test]
fn id_prefixes_longer_than_an_id_are_refused() {
    let mut message = vec![0x61, 0x00, 33];
    message.extend([0xaa; 33]);
    message.push(0x00);
    assert_eq!(
        accept(&message),
        malformed(MessageError::IdPrefixTooLong(33))
    );
}

#[test]
fn truncated_bounds_and_fingerprints_are_refused() {
    assert_eq!(
        accept(&[0x61, 0x01, 0x04, 0xaa]),
        malformed(MessageError::Truncated)
    );
    assert_eq!(
        accept(&[0x61, 0x00, 0x00, 0x01, 0xaa]),
        malformed(MessageError::Truncated)
    );
}

#[test]
fn bounds_out_of_order_are_refused() {
    // (10, [0x80]) Skip, then (10, [0x10]) Skip: the second ends below the first.
    let message = [0x61, 11, 1, 0x80, 0, 1, 1, 0x10, 0];
    assert_eq!(accept(&message), malformed(MessageError::BoundsOutOfOrder));
}

#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let set = index(300);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for _ in 0..20_000 {
        let len = rng.random_range(0..80);
        let mut message: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if let Some(first) = message.first_mut() {
            // Mostly valid versions, so the parser behind them gets exercised.
            if rng.random_bool(0.9) {
                *first = NEGENTROPY_V1;
            }
        }
        let _ = Reconciler::new(0).unwrap().reconcile(&set, &message);
        let mut initiator = Reconciler::new(0).unwrap();
        initiator.initiate(&set).unwrap();
        let _ = initiator.reconcile(&set, &message);
    }
}
