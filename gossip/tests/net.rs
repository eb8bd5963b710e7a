//! The runtime on the in-process memory network.
#![cfg(feature = "net")]

use std::{collections::HashSet, time::Duration};

use tokio::time::timeout;
use weft_gossip::{Config, Error, Event, Gossip, Topic, TopicId};
use weft_transport::{Endpoint, MemoryNetwork, PeerAddr, PeerId, SecretKey};

fn fast_config() -> Config {
    let mut config = Config::default();
    // Memory-network links are fast: graft after a few ms, not after simulated-WAN delays.
    config.broadcast.graft_timeout_1 = Duration::from_millis(20);
    config.broadcast.graft_timeout_2 = Duration::from_millis(20);
    config.membership.shuffle_interval = Duration::from_secs(5);
    config
}

async fn node(net: &MemoryNetwork, seed: u8) -> (Endpoint, Gossip) {
    let endpoint = Endpoint::builder()
        .secret_key(SecretKey::from_bytes(&[seed; 32]))
        .memory(net)
        .connect_timeout(Duration::from_secs(2))
        .bind()
        .await
        .unwrap();
    let gossip = Gossip::builder()
        .config(fast_config())
        .event_capacity(4096)
        .spawn(&endpoint)
        .unwrap();
    (endpoint, gossip)
}

async fn wait_joined(topic: &mut Topic) {
    timeout(Duration::from_secs(10), async {
        while let Some(event) = topic.recv().await {
            if event == Event::Joined {
                return;
            }
        }
    })
    .await
    .expect("joined in time");
}

struct Swarm {
    _net: MemoryNetwork,
    nodes: Vec<(Endpoint, Gossip)>,
    topics: Vec<Topic>,
}

async fn swarm(count: u8, seed: u64) -> Swarm {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let net = MemoryNetwork::new(seed);
    let topic_id = TopicId::from_name("test");
    let mut nodes: Vec<(Endpoint, Gossip)> = Vec::new();
    let mut topics = Vec::new();
    for i in 0..count {
        let (endpoint, gossip) = node(&net, i + 1).await;
        let bootstrap = if i == 0 {
            vec![]
        } else {
            vec![PeerAddr::new(nodes[0].0.id())]
        };
        topics.push(gossip.subscribe(topic_id, bootstrap).await.unwrap());
        nodes.push((endpoint, gossip));
    }
    for topic in topics.iter_mut() {
        wait_joined(topic).await;
    }
    Swarm {
        _net: net,
        nodes,
        topics,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_deliver_every_broadcast_exactly_once() {
    let mut swarm = swarm(10, 1).await;
    let per_node = 100u32;
    for (i, topic) in swarm.topics.iter().enumerate() {
        let sender = topic.sender().clone();
        for seq in 0..per_node {
            let content = [u32::try_from(i).unwrap().to_be_bytes(), seq.to_be_bytes()].concat();
            sender.broadcast(content).await.unwrap();
        }
    }
    let expected = (swarm.topics.len() - 1) * per_node as usize;
    for (i, topic) in swarm.topics.iter_mut().enumerate() {
        let mut seen = HashSet::new();
        let got = timeout(Duration::from_secs(30), async {
            while seen.len() < expected {
                match topic.recv().await {
                    Some(Event::Received { content, .. }) => {
                        assert!(
                            seen.insert(content.as_bytes().to_vec()),
                            "node {i}: duplicate delivery"
                        );
                    }
                    Some(Event::Lagged(n)) => panic!("node {i} lagged by {n}"),
                    Some(_) => {}
                    None => break,
                }
            }
        })
        .await;
        if got.is_err() {
            let mut per_sender = [0usize; 16];
            for c in &seen {
                per_sender[c[3] as usize] += 1;
            }
            let neighbors = topic.sender().neighbors().await.unwrap();
            panic!(
                "node {i} got {} of {expected}: per sender {per_sender:?}, neighbours {neighbors:?}",
                seen.len()
            );
        }
        assert!(
            !seen
                .iter()
                .any(|c| c[..4] == u32::try_from(i).unwrap().to_be_bytes()),
            "own messages are not delivered"
        );
    }
    // Nothing more arrives (exactly once).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for topic in swarm.topics.iter_mut() {
        while let Ok(Some(event)) = timeout(Duration::from_millis(10), topic.recv()).await {
            assert!(
                !matches!(event, Event::Received { .. }),
                "late duplicate: {event:?}"
            );
        }
    }
    drop(swarm.nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_broadcast_is_an_error() {
    let net = MemoryNetwork::new(2);
    let (_endpoint, gossip) = node(&net, 1).await;
    let topic = gossip
        .subscribe(TopicId::from_name("big"), vec![])
        .await
        .unwrap();
    let max = gossip.max_content_size();
    let err = topic
        .sender()
        .broadcast(vec![0u8; max + 1])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Broadcast(_)), "{err}");
    topic.sender().broadcast(vec![0u8; max]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_reported_down_and_replaced() {
    let mut swarm = swarm(8, 3).await;
    let victim: PeerId = swarm.nodes[3].0.id();
    let mut had_victim = Vec::new();
    for topic in &swarm.topics {
        had_victim.push(topic.sender().neighbors().await.unwrap().contains(&victim));
    }
    // Kill node 3: its gossip and endpoint go away.
    let (endpoint, gossip) = swarm.nodes.remove(3);
    had_victim.remove(3);
    drop(swarm.topics.remove(3));
    drop(gossip);
    endpoint.shutdown().await;
    // Every live node that had it as a neighbour sees NeighborDown.
    let mut saw_down = false;
    for (topic, had) in swarm.topics.iter_mut().zip(&had_victim) {
        if !had {
            continue;
        }
        let down = timeout(Duration::from_secs(15), async {
            while let Some(event) = topic.recv().await {
                if event == Event::NeighborDown(victim) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(down, Ok(true), "a neighbour did not notice the dead node");
        saw_down = true;
    }
    assert!(saw_down, "no neighbour noticed the dead node");
    // Broadcasts still reach every live node.
    let sender = swarm.topics[0].sender().clone();
    sender.broadcast(b"after".to_vec()).await.unwrap();
    for (i, topic) in swarm.topics.iter_mut().enumerate().skip(1) {
        let got = timeout(Duration::from_secs(15), async {
            while let Some(event) = topic.recv().await {
                if let Event::Received { content, .. } = event
                    && content.as_bytes() == b"after"
                {
                    return;
                }
            }
        })
        .await;
        assert!(
            got.is_ok(),
            "node {i} missed the broadcast after the failure"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_drop_the_peer_not_the_node() {
    let mut swarm = swarm(3, 4).await;
    // A rogue endpoint speaks gossip/1 with garbage.
    let rogue = Endpoint::builder()
        .secret_key(SecretKey::from_bytes(&[99; 32]))
        .memory(&swarm._net)
        .bind()
        .await
        .unwrap();
    let conn = rogue
        .connect(&PeerAddr::new(swarm.nodes[0].0.id()), weft_gossip::GOSSIP)
        .await
        .unwrap();
    let mut stream = conn.open_uni().await.unwrap();
    stream
        .write_all(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let _ = stream.finish();
    // The connection gets closed by the node.
    let closed = timeout(Duration::from_secs(5), conn.closed()).await;
    assert!(closed.is_ok(), "rogue connection not closed");
    // The node still works.
    swarm.topics[1]
        .sender()
        .broadcast(b"still fine".to_vec())
        .await
        .unwrap();
    let got = timeout(Duration::from_secs(10), async {
        while let Some(event) = swarm.topics[0].recv().await {
            if let Event::Received { content, .. } = event
                && content.as_bytes() == b"still fine"
            {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok());
}

async fn wait_for(topic: &mut Topic, content: &[u8], within: Duration) -> bool {
    timeout(within, async {
        while let Some(event) = topic.recv().await {
            if let Event::Received { content: got, .. } = event
                && got.as_bytes() == content
            {
                return;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_heals() {
    let mut swarm = swarm(6, 5).await;
    let ids: Vec<PeerId> = swarm.nodes.iter().map(|(e, _)| e.id()).collect();
    swarm._net.partition(&ids[..3], &ids[3..]);
    swarm.topics[0]
        .sender()
        .broadcast(b"during".to_vec())
        .await
        .unwrap();
    // The own half gets it while split.
    for i in 1..3 {
        assert!(
            wait_for(&mut swarm.topics[i], b"during", Duration::from_secs(10)).await,
            "node {i}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    swarm._net.heal();
    // After the heal the other half gets it too, and later broadcasts reach everyone.
    for i in 3..6 {
        assert!(
            wait_for(&mut swarm.topics[i], b"during", Duration::from_secs(20)).await,
            "node {i}"
        );
    }
    swarm.topics[5]
        .sender()
        .broadcast(b"after".to_vec())
        .await
        .unwrap();
    for i in 0..5 {
        assert!(
            wait_for(&mut swarm.topics[i], b"after", Duration::from_secs(20)).await,
            "node {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_rejoins_with_the_same_key() {
    let mut swarm = swarm(5, 6).await;
    let topic_id = TopicId::from_name("test");
    // Node 4 stops...
    let (endpoint, gossip) = swarm.nodes.remove(4);
    drop(swarm.topics.remove(4));
    drop(gossip);
    endpoint.shutdown().await;
    drop(endpoint);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...and comes back with the same key.
    let (endpoint, gossip) = node(&swarm._net, 5).await;
    let mut topic = gossip
        .subscribe(topic_id, vec![PeerAddr::new(swarm.nodes[0].0.id())])
        .await
        .unwrap();
    wait_joined(&mut topic).await;
    swarm.topics[1]
        .sender()
        .broadcast(b"welcome back".to_vec())
        .await
        .unwrap();
    assert!(wait_for(&mut topic, b"welcome back", Duration::from_secs(20)).await);
    topic
        .sender()
        .broadcast(b"hello again".to_vec())
        .await
        .unwrap();
    assert!(
        wait_for(
            &mut swarm.topics[2],
            b"hello again",
            Duration::from_secs(20)
        )
        .await
    );
    drop((endpoint, gossip));
}
