//! Request/response and signed records over real QUIC on 127.0.0.1.

mod common;

use std::time::Duration;

use common::loopback;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use weft_transport::{
    DomainTag, FrameError, PeerId, Protocol, RequestError, SecretKey, Signed, SignedPayload,
    accept_request, cbor_decode, cbor_encode,
    iroh::{AcceptError, Connection, ProtocolHandler},
    request,
};

const NOTES: Protocol = Protocol::new("notes", 1);
const SILENT: Protocol = Protocol::new("silent", 1);
const MAX: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    author: PeerId,
    text: String,
}

impl SignedPayload for Note {
    const DOMAIN: DomainTag = DomainTag::new("weft/test/note/1");
    fn required_signer(&self) -> Option<PeerId> {
        Some(self.author)
    }
}

/// Answers each signed note with its text length; reports every decoding failure.
#[derive(Debug, Clone)]
struct NoteServer {
    failures: mpsc::Sender<RequestError>,
}

impl ProtocolHandler for NoteServer {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        loop {
            match accept_request::<Signed<Note>, u64>(&conn, MAX).await {
                Ok((note, responder)) => {
                    let len = note.payload().text.len() as u64;
                    let _ = responder.respond(&len).await;
                }
                Err(RequestError::Connection(_)) => return Ok(()),
                Err(err) => {
                    let _ = self.failures.send(err).await;
                }
            }
        }
    }
}

/// Accepts streams and never answers.
#[derive(Debug, Clone)]
struct Silent;

impl ProtocolHandler for Silent {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let mut held = Vec::new();
        while let Ok(stream) = conn.accept_bi().await {
            held.push(stream);
        }
        Ok(())
    }
}

#[tokio::test]
async fn signed_request_is_answered_and_a_forged_one_fails_to_decode() {
    let server = loopback("requests").await;
    let (failures_tx, mut failures) = mpsc::channel(8);
    server
        .register(
            NOTES,
            NoteServer {
                failures: failures_tx,
            },
        )
        .unwrap();
    let client = loopback("requests").await;
    let conn = client.connect(&server.addr(), NOTES).await.unwrap();
    let key = SecretKey::generate();
    let note = Signed::sign(
        &key,
        Note {
            author: key.peer_id(),
            text: "hello".into(),
        },
    )
    .unwrap();
    let len: u64 = request(&conn, &note, MAX, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(len, 5);

    // Rewrite the payload under the original signature: a forgery.
    #[derive(Serialize, Deserialize)]
    struct RawEnvelope {
        signer: PeerId,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    }
    let mut forged: RawEnvelope = cbor_decode(&note.to_bytes()).unwrap();
    forged.payload = cbor_encode(&Note {
        author: key.peer_id(),
        text: "a much longer forged text".into(),
    })
    .unwrap();
    let answer: Result<u64, _> = request(&conn, &forged, MAX, Duration::from_millis(500)).await;
    assert!(answer.is_err(), "a forged note gets no answer");
    let failure = failures.recv().await.unwrap();
    assert!(
        matches!(failure, RequestError::Frame(FrameError::Malformed(ref why)) if why.contains("does not verify")),
        "{failure:?}"
    );

    // The server still answers honest requests.
    let len: u64 = request(&conn, &note, MAX, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(len, 5);
}

#[tokio::test]
async fn request_without_answer_times_out() {
    let server = loopback("timeouts").await;
    server.register(SILENT, Silent).unwrap();
    let client = loopback("timeouts").await;
    let conn = client.connect(&server.addr(), SILENT).await.unwrap();
    let result: Result<u64, _> = request(&conn, &1u64, MAX, Duration::from_millis(200)).await;
    assert!(
        matches!(result, Err(RequestError::Timeout(_))),
        "{result:?}"
    );
}
