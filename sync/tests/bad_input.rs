//! Bad input at a session: each is a clear error or refusal, and nothing stored is lost or
//! corrupted. A hand-driven attacker talks to one sans-IO manager.

use std::{sync::Arc, time::Duration};

use serde_bytes::ByteBuf;
use weft_gossip::TopicId;
use weft_sync::{
    Item, ItemId,
    proto::{
        Config, Event, Frame, Input, Manager, Output, ProtocolFactory, Refusal, SET_RECONCILIATION,
        SessionError, SessionId, SetMessage, SetReconciliationFactory, Timer, TopicItems,
    },
    store::{MemoryStore, Store},
};
use weft_transport::Now;

const VICTIM: u32 = 0;
const ATTACKER: u32 = 1;

fn topic() -> TopicId {
    TopicId::from_name("bad-input")
}

fn encode(message: &SetMessage) -> Vec<u8> {
    message.encode()
}

struct Victim {
    manager: Manager<u32>,
    stored: Vec<Item>,
    now: Duration,
}

impl Victim {
    fn new(config: Config) -> Self {
        let stored: Vec<Item> = (0..20).map(|i| Item::new(i, b"kept")).collect();
        let mut store = MemoryStore::new();
        store.insert_many(&stored).unwrap();
        let protocol: Arc<dyn ProtocolFactory> =
            Arc::new(SetReconciliationFactory::new((&config).into()));
        let mut manager = Manager::new(VICTIM, config, 1);
        manager
            .subscribe(
                topic(),
                TopicItems::open(Box::new(store)).unwrap(),
                protocol,
            )
            .unwrap();
        Self {
            manager,
            stored,
            now: Duration::ZERO,
        }
    }

    /// The attacker opens a session and passes the handshake.
    fn session(&mut self) -> SessionId {
        let session = self.manager.accept(ATTACKER, at(self.now));
        let hello = Frame::Hello {
            topic: topic(),
            protocol: SET_RECONCILIATION.into(),
        };
        let out = self.frame(session, hello);
        assert!(
            out.iter().any(|o| matches!(
                o,
                Output::Send {
                    frame: Frame::Accept,
                    ..
                }
            )),
            "{out:?}"
        );
        session
    }

    fn frame(&mut self, session: SessionId, frame: Frame) -> Vec<Output<u32>> {
        self.manager
            .handle(Input::Frame { session, frame }, at(self.now));
        self.manager.drain().collect()
    }

    fn data(&mut self, session: SessionId, message: &SetMessage) -> Vec<Output<u32>> {
        self.frame(session, Frame::Data(encode(message)))
    }

    /// Nothing stored was lost or changed, and nothing else was added.
    fn assert_intact(&self) {
        let items = self.manager.items(topic()).unwrap();
        assert_eq!(items.len(), self.stored.len());
        for item in &self.stored {
            assert_eq!(items.get(&item.id()).unwrap().as_ref(), Some(item));
        }
    }
}

/// The session failed with an error whose text contains `needle`, and the attacker was told.
fn assert_failed(out: &[Output<u32>], needle: &str) {
    let error = out
        .iter()
        .find_map(|o| match o {
            Output::Emit {
                event: Event::SessionFailed { error, .. },
                ..
            } => Some(error.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no failure in {out:?}"));
    assert!(error.contains(needle), "{error:?} lacks {needle:?}");
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Send {
                frame: Frame::Abort(_),
                ..
            }
        )),
        "the peer is told why: {out:?}"
    );
    assert!(out.iter().any(|o| matches!(o, Output::Close { .. })));
}

#[test]
fn a_malformed_message_fails_the_session() {
    let mut victim = Victim::new(Config::default());
    let session = victim.session();
    let out = victim.frame(session, Frame::Data(vec![0xff, 0x00, 0x13]));
    assert_failed(&out, "malformed");
    victim.assert_intact();
}

#[test]
fn a_malformed_reconciliation_message_fails_the_session() {
    let mut victim = Victim::new(Config::default());
    // Truncated varint, then an id list claiming more ids than it holds.
    for bad in [
        vec![0x61, 0x80],
        vec![0x61, 0x00, 0x00, 0x02, 0x05, 1, 2, 3],
    ] {
        let session = victim.session();
        let out = victim.data(session, &SetMessage::Reconcile(ByteBuf::from(bad)));
        let failed = out.iter().any(|o| {
            matches!(
                o,
                Output::Emit {
                    event: Event::SessionFailed {
                        error: SessionError::Protocol(_),
                        ..
                    },
                    ..
                }
            )
        });
        assert!(failed, "{out:?}");
    }
    victim.assert_intact();
}

#[test]
fn an_item_that_does_not_match_its_id_is_refused() {
    let mut victim = Victim::new(Config::default());
    let session = victim.session();
    let promised = Item::new(100, b"what was promised");
    let delivered = Item::new(100, b"something else");
    let out = victim.data(session, &SetMessage::Offer(vec![promised.id()]));
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Send {
                frame: Frame::Data(_),
                ..
            }
        )),
        "the victim wants the offered id: {out:?}"
    );
    let out = victim.data(
        session,
        &SetMessage::Items {
            items: vec![ByteBuf::from(delivered.as_bytes().to_vec())],
            missing: vec![],
            later: vec![],
        },
    );
    assert_failed(&out, "hash");
    victim.assert_intact();
}

#[test]
fn an_item_nobody_asked_for_is_refused() {
    let mut victim = Victim::new(Config::default());
    let session = victim.session();
    let item = Item::new(7, b"unsolicited");
    let out = victim.data(
        session,
        &SetMessage::Items {
            items: vec![ByteBuf::from(item.as_bytes().to_vec())],
            missing: vec![],
            later: vec![],
        },
    );
    assert_failed(&out, "not requested");
    victim.assert_intact();
}

#[test]
fn a_batch_over_the_limit_is_refused() {
    let config = Config::default();
    let mut victim = Victim::new(config.clone());
    let session = victim.session();
    let ids = vec![ItemId([3; 32]); config.max_batch_items + 1];
    let out = victim.data(session, &SetMessage::Want(ids));
    assert_failed(&out, "batch limit");
    victim.assert_intact();
}

#[test]
fn an_oversized_live_item_is_refused() {
    let config = Config {
        max_item_size: 1024,
        ..Config::default()
    };
    let mut victim = Victim::new(config);
    let session = victim.session();
    let big = Item::new(1, &[0u8; 2048]);
    let out = victim.data(
        session,
        &SetMessage::Live(ByteBuf::from(big.as_bytes().to_vec())),
    );
    assert_failed(&out, "exceeds the limit");
    victim.assert_intact();
}

#[test]
fn an_unknown_topic_and_another_protocol_are_refused_with_reasons() {
    let mut victim = Victim::new(Config::default());
    let session = victim.manager.accept(ATTACKER, at(victim.now));
    let out = victim.frame(
        session,
        Frame::Hello {
            topic: TopicId::from_name("not synced here"),
            protocol: SET_RECONCILIATION.into(),
        },
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            frame: Frame::Refuse(Refusal::UnknownTopic),
            ..
        }
    )));
    let session = victim.manager.accept(ATTACKER, at(victim.now));
    let out = victim.frame(
        session,
        Frame::Hello {
            topic: topic(),
            protocol: "append-only-log/1".into(),
        },
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send { frame: Frame::Refuse(Refusal::UnsupportedProtocol { ours }), .. } if ours == SET_RECONCILIATION
    )));
    victim.assert_intact();
}

#[test]
fn data_before_the_handshake_fails_the_session() {
    let mut victim = Victim::new(Config::default());
    let session = victim.manager.accept(ATTACKER, at(victim.now));
    victim.manager.drain().for_each(drop);
    let out = victim.frame(session, Frame::Data(encode(&SetMessage::ReconcileDone)));
    assert!(
        out.iter().any(|o| matches!(o, Output::Close { .. })),
        "{out:?}"
    );
    assert!(victim.manager.sessions(topic()).is_empty());
    victim.assert_intact();
}

#[test]
fn a_peer_opening_sessions_in_a_loop_is_refused() {
    let config = Config::default();
    let limit = config.max_attempts_per_window;
    let mut victim = Victim::new(config);
    for _ in 0..limit {
        let session = victim.session();
        // The attacker drops each session at once.
        victim.manager.handle(
            Input::Closed {
                session,
                error: None,
            },
            at(victim.now),
        );
        victim.manager.drain().for_each(drop);
    }
    let session = victim.manager.accept(ATTACKER, at(victim.now));
    let out = victim.frame(
        session,
        Frame::Hello {
            topic: topic(),
            protocol: SET_RECONCILIATION.into(),
        },
    );
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Send {
                frame: Frame::Refuse(Refusal::TooManyAttempts),
                ..
            }
        )),
        "{out:?}"
    );
    // A new window lets it in again.
    victim.now += Duration::from_secs(61);
    victim.session();
    victim.assert_intact();
}

#[test]
fn a_peer_that_stops_answering_mid_session_times_out() {
    let config = Config::default();
    let timeout = config.session_timeout;
    let mut victim = Victim::new(config);
    let session = victim.session();
    // One message, then silence.
    victim.data(session, &SetMessage::Offer(vec![ItemId([9; 32])]));
    victim.now += timeout;
    victim
        .manager
        .handle(Input::TimerExpired(Timer::Silence(session)), at(victim.now));
    let out: Vec<_> = victim.manager.drain().collect();
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Emit {
                event: Event::SessionFailed {
                    error: SessionError::Timeout(_),
                    ..
                },
                ..
            }
        )),
        "{out:?}"
    );
    victim.assert_intact();
}

#[test]
fn silent_streams_from_many_identities_are_bounded() {
    let config = Config::default();
    let max = config.max_pending_handshakes;
    let mut victim = Victim::new(config);
    // Peer ids are free: one silent stream each, from fresh identities.
    for peer in (100u32..).take(max) {
        victim.manager.accept(peer, at(victim.now));
    }
    let out: Vec<_> = victim.manager.drain().collect();
    assert!(
        !out.iter().any(|o| matches!(o, Output::Send { .. })),
        "{out:?}"
    );
    victim.manager.accept(10_000, at(victim.now));
    let out: Vec<_> = victim.manager.drain().collect();
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Send {
                frame: Frame::Refuse(Refusal::TooManySessions),
                ..
            }
        )),
        "{out:?}"
    );
    // An honest peer gets in once the silent ones time out.
    victim.now += victim.manager.config().session_timeout;
    for id in 1..=(max as u64 + 1) {
        victim.manager.handle(
            Input::TimerExpired(Timer::Silence(SessionId(id))),
            at(victim.now),
        );
    }
    victim.manager.drain().for_each(drop);
    victim.session();
    victim.assert_intact();
}

#[test]
fn a_missing_id_nobody_asked_for_is_refused() {
    let mut victim = Victim::new(Config::default());
    let session = victim.session();
    let out = victim.data(
        session,
        &SetMessage::Items {
            items: vec![],
            missing: vec![ItemId([4; 32])],
            later: vec![],
        },
    );
    assert_failed(&out, "not requested");
    victim.assert_intact();
}

#[test]
fn an_end_of_reconciliation_from_the_wrong_side_or_twice_is_refused() {
    let mut victim = Victim::new(Config::default());
    let session = victim.session();
    // The victim accepted: a ReconcileDone from the initiator is fine once, not twice.
    let out = victim.data(session, &SetMessage::ReconcileDone);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Close { .. })),
        "{out:?}"
    );
    let out = victim.data(session, &SetMessage::ReconcileDone);
    assert_failed(&out, "unexpected end of reconciliation");
    victim.assert_intact();
}

#[test]
fn bytes_too_short_to_be_an_item_are_refused() {
    let mut victim = Victim::new(Config::default());
    let session = victim.session();
    let out = victim.data(session, &SetMessage::Live(ByteBuf::from(vec![1, 2, 3])));
    assert_failed(&out, "shorter than its 8-byte timestamp");
    victim.assert_intact();
}

#[test]
fn an_item_with_the_reserved_timestamp_is_refused() {
    let mut victim = Victim::new(Config::default());
    let session = victim.session();
    let reserved = Item::new(u64::MAX, b"infinity");
    let out = victim.data(
        session,
        &SetMessage::Live(ByteBuf::from(reserved.as_bytes().to_vec())),
    );
    assert_failed(&out, "reserved");
    assert!(victim.manager.insert(topic(), reserved).is_err());
    victim.assert_intact();
}

/// The manager's view of virtual time `mono`.
fn at(mono: Duration) -> Now {
    Now {
        mono,
        ..Now::default()
    }
}
