//! Shared test fixtures: an echo protocol that reports every stream's outcome.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use weft_transport::{
    Endpoint, FrameError, FramedRecv, FramedSend, MemoryNetwork, NetworkId, Protocol, SecretKey,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

pub const ECHO: Protocol = Protocol::new("echo", 1);
pub const MAX_FRAME: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Msg {
    pub seq: u64,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// What the echo server saw on one stream.
#[derive(Debug)]
pub enum StreamOutcome {
    /// The stream ended cleanly after echoing this many frames.
    Echoed(usize),
    /// A frame failed to decode.
    Failed(FrameError),
}

#[derive(Debug, Clone)]
pub struct Echo {
    pub outcomes: mpsc::Sender<StreamOutcome>,
    pub connections: mpsc::Sender<Connection>,
}

impl ProtocolHandler for Echo {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let _ = self.connections.try_send(conn.clone());
        while let Ok((send, recv)) = conn.accept_bi().await {
            let outcomes = self.outcomes.clone();
            tokio::spawn(async move {
                let mut recv = FramedRecv::<Msg>::new(recv, MAX_FRAME);
                let mut send = FramedSend::<Msg>::new(send, MAX_FRAME);
                let mut count = 0;
                let outcome = loop {
                    match recv.recv().await {
                        Ok(msg) => {
                            if send.send(&msg).await.is_err() {
                                break StreamOutcome::Echoed(count);
                            }
                            count += 1;
                        }
                        Err(FrameError::Closed) => {
                            let _ = send.finish();
                            break StreamOutcome::Echoed(count);
                        }
                        Err(err) => break StreamOutcome::Failed(err),
                    }
                };
                let _ = outcomes.send(outcome).await;
            });
        }
        Ok(())
    }
}

pub struct EchoServer {
    pub endpoint: Endpoint,
    pub outcomes: mpsc::Receiver<StreamOutcome>,
    pub connections: mpsc::Receiver<Connection>,
}

pub fn attach_echo(
    endpoint: &Endpoint,
) -> (mpsc::Receiver<StreamOutcome>, mpsc::Receiver<Connection>) {
    let (outcomes_tx, outcomes) = mpsc::channel(64);
    let (conns_tx, connections) = mpsc::channel(64);
    endpoint
        .register(
            ECHO,
            Echo {
                outcomes: outcomes_tx,
                connections: conns_tx,
            },
        )
        .unwrap();
    (outcomes, connections)
}

pub async fn loopback(network: &str) -> Endpoint {
    Endpoint::builder()
        .network(NetworkId::from_name(network))
        .bind_addr("127.0.0.1:0".parse().unwrap())
        .connect_timeout(Duration::from_secs(5))
        .bind()
        .await
        .unwrap()
}

pub async fn loopback_echo(network: &str) -> EchoServer {
    let endpoint = loopback(network).await;
    let (outcomes, connections) = attach_echo(&endpoint);
    EchoServer {
        endpoint,
        outcomes,
        connections,
    }
}

pub async fn on_memory(net: &MemoryNetwork, seed: u8, timeout: Duration) -> Endpoint {
    Endpoint::builder()
        .secret_key(SecretKey::from_bytes(&[seed; 32]))
        .memory(net)
        .connect_timeout(timeout)
        .bind()
        .await
        .unwrap()
}

/// Sends `count` messages on one new stream and checks each echo.
pub async fn echo_round_trip(conn: &Connection, count: u64) {
    let (send, recv) = conn.open_bi().await.unwrap();
    let mut send = FramedSend::<Msg>::new(send, MAX_FRAME);
    let mut recv = FramedRecv::<Msg>::new(recv, MAX_FRAME);
    for seq in 0..count {
        let msg = Msg {
            seq,
            body: vec![u8::try_from(seq % 251).unwrap(); 1000],
        };
        send.send(&msg).await.unwrap();
        assert_eq!(recv.recv().await.unwrap(), msg);
    }
    send.finish().unwrap();
    assert!(matches!(recv.recv().await, Err(FrameError::Closed)));
}
