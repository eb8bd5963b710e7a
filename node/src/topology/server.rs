//! The `topology/1` answers this node gives: its neighbours on a topic.
//!
//! Bounded for a network of strangers: at most [`MAX_CONNECTIONS`] connections are answered at
//! once (a further one is closed at once), one question at a time on each, each read within
//! [`READ_TIMEOUT`]; and the gossip actor is asked for its views at most once per
//! [`VIEWS_MAX_AGE`], however many questions arrive, so a flood of questions costs the
//! overlay nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use weft_gossip::{Gossip, TopicViews};
use weft_transport::{
    FramedRecv, FramedSend,
    iroh::{AcceptError, Connection, ProtocolHandler},
};

use super::{
    MAX_ANSWER_FRAME, MAX_ANSWER_PEERS, MAX_REQUEST_FRAME, TopologyAnswer, TopologyRequest,
};

/// Connections answered at once, at most.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// How long a peer may take to send a question (the first, or the next on its connection).
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How old the cached views may be when a question is answered.
const VIEWS_MAX_AGE: Duration = Duration::from_millis(250);

/// Answers topology questions. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    gossip: Gossip,
    /// How long a connection may stay without a question ([`READ_TIMEOUT`]; shorter in tests).
    idle: Duration,
    connections: Arc<Semaphore>,
    /// A tokio mutex: refreshing the views awaits the gossip actor.
    views: Arc<tokio::sync::Mutex<Cached>>,
}

#[derive(Debug, Default)]
struct Cached {
    at: Option<Instant>,
    views: Vec<TopicViews>,
}

impl Server {
    /// Answers with `gossip`'s views.
    pub(crate) fn new(gossip: Gossip) -> Self {
        Self {
            gossip,
            idle: READ_TIMEOUT,
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            views: Arc::default(),
        }
    }

    /// The answer for `request`, from views at most [`VIEWS_MAX_AGE`] old.
    async fn answer(&self, request: TopologyRequest) -> TopologyAnswer {
        let mut cached = self.views.lock().await;
        let fresh = cached.at.is_some_and(|at| at.elapsed() < VIEWS_MAX_AGE);
        if !fresh {
            // A stopped gossip has joined nothing.
            cached.views = self.gossip.topics().await.unwrap_or_default();
            cached.at = Some(Instant::now());
        }
        match cached
            .views
            .iter()
            .find(|views| views.topic == request.topic)
        {
            Some(views) => TopologyAnswer::Neighbors(
                views
                    .active
                    .iter()
                    .take(MAX_ANSWER_PEERS)
                    .copied()
                    .collect(),
            ),
            None => TopologyAnswer::NotJoined,
        }
    }
}

impl Server {
    /// Answers the questions on one connection until it goes quiet or misbehaves; returns why
    /// it ended.
    async fn serve(&self, connection: &Connection) -> &'static [u8] {
        loop {
            let Ok(Ok((send, recv))) =
                tokio::time::timeout(self.idle, connection.accept_bi()).await
            else {
                return b"idle";
            };
            let mut recv = FramedRecv::<TopologyRequest>::new(recv, MAX_REQUEST_FRAME);
            let Ok(Ok(request)) = tokio::time::timeout(READ_TIMEOUT, recv.recv()).await else {
                // Malformed, oversized, slow or cut off: nothing worth answering on this link.
                return b"bad question";
            };
            let answer = self.answer(request).await;
            let mut send = FramedSend::<TopologyAnswer>::new(send, MAX_ANSWER_FRAME);
            let written = tokio::time::timeout(READ_TIMEOUT, async {
                send.send(&answer).await?;
                send.finish()
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                return b"answer not taken";
            }
        }
    }
}

impl ProtocolHandler for Server {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let Ok(_permit) = self.connections.clone().try_acquire_owned() else {
            connection.close(0u32.into(), b"busy");
            return Ok(());
        };
        let reason = self.serve(&connection).await;
        // Closed explicitly: the endpoint's admission keeps a handle to every inbound
        // connection, so dropping ours would leave it open with nobody reading it, and the
        // asking side, which reuses its connection, would wait on it in vain.
        connection.close(0u32.into(), reason);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weft_gossip::{Gossip, TopicId};
    use weft_transport::{Endpoint, MemoryNetwork, PeerAddr, SecretKey};

    use super::Server;
    use crate::topology::{PROTOCOL, TopologyAnswer, ask};

    async fn endpoint(net: &MemoryNetwork, seed: u8) -> Endpoint {
        Endpoint::builder()
            .secret_key(SecretKey::from_bytes(&[seed; 32]))
            .memory(net)
            .bind()
            .await
            .unwrap()
    }

    /// The asking side reuses its connection; once the answering side has closed it for
    /// idleness, the next question goes on a new one and is answered. (Without the explicit
    /// close, the connection stayed open unread and this test timed out.)
    #[tokio::test]
    async fn a_question_after_an_idle_close_is_answered() {
        let net = MemoryNetwork::new(1);
        let (asking, answering) = (endpoint(&net, 1).await, endpoint(&net, 2).await);
        let gossip = Gossip::builder().spawn(&answering).await.unwrap();
        let topic = TopicId::from_name("t");
        let _joined = gossip.subscribe(topic, Vec::new()).await.unwrap();
        let server = Server {
            idle: Duration::from_millis(50),
            ..Server::new(gossip)
        };
        answering.register(PROTOCOL, server).unwrap();
        asking.add_peer_addr(&answering.addr());
        let peer = answering.id();
        let expected = Some(TopologyAnswer::Neighbors(Vec::new()));
        assert_eq!(ask(&asking, peer, topic).await, expected);
        let cached = asking
            .connect(&PeerAddr::new(peer), PROTOCOL)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), cached.closed())
            .await
            .expect("the idle connection is closed by the answering side");
        assert_eq!(ask(&asking, peer, topic).await, expected);
        assert_eq!(
            ask(&asking, peer, TopicId::from_name("other")).await,
            Some(TopologyAnswer::NotJoined)
        );
    }
}
