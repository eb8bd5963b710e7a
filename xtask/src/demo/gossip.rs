//! The gossip part of the demo: every node joins one topic through the first node, then every
//! node broadcasts once and every other node must receive each broadcast exactly once.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use weft_gossip::{Event, Topic, TopicId};
use weft_node::Node;
use weft_transport::PeerId;

use crate::table::Table;

/// How long the demo waits for any one gossip event before it calls the run failed.
const PATIENCE: Duration = Duration::from_secs(10);

pub(super) async fn run(nodes: &[Node]) -> Result<()> {
    let topic_id = TopicId::from_name("weft-demo/chat");
    let mut topics: Vec<Topic> = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        let bootstrap = if i == 0 {
            vec![]
        } else {
            vec![nodes[0].addr()]
        };
        topics.push(node.gossip().subscribe(topic_id, bootstrap).await?);
    }
    // Wait until every node but the first has joined (the first is joined by the others).
    for (i, topic) in topics.iter_mut().enumerate().skip(1) {
        wait_for(topic, |event| matches!(event, Event::Joined))
            .await
            .with_context(|| format!("n{i} joining the topic"))?;
    }

    let names: BTreeMap<PeerId, String> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id(), format!("n{i}")))
        .collect();
    let mut table = Table::new([
        "sender",
        "delivered",
        "max hops",
        "slowest",
        "neighbours of sender",
    ]);
    for sender in 0..topics.len() {
        let text = format!("hello from n{sender}");
        let started = Instant::now();
        topics[sender].sender().broadcast(text.clone()).await?;
        let mut delivered = 0;
        let mut max_hops = 0;
        let mut slowest = Duration::ZERO;
        for (i, topic) in topics.iter_mut().enumerate() {
            if i == sender {
                continue;
            }
            let event = wait_for(topic, |event| {
                matches!(event, Event::Received { content, .. } if content.as_bytes() == text.as_bytes())
            })
            .await
            .with_context(|| format!("n{i} receiving the broadcast of n{sender}"))?;
            if let Event::Received { hops, .. } = event {
                max_hops = max_hops.max(hops);
            }
            slowest = slowest.max(started.elapsed());
            delivered += 1;
        }
        let neighbours = topics[sender].sender().neighbors().await?;
        let mut neighbour_names: Vec<&str> = neighbours
            .iter()
            .filter_map(|id| names.get(id).map(String::as_str))
            .collect();
        neighbour_names.sort_unstable();
        table.row([
            format!("n{sender}"),
            format!("{delivered}/{}", topics.len() - 1),
            max_hops.to_string(),
            format!("{:.1} ms", slowest.as_secs_f64() * 1e3),
            neighbour_names.join(" "),
        ]);
    }
    println!(
        "== gossip: one topic, every node broadcasts once (hops counted from the sender's neighbours = 0) ==\n{}",
        table.render()
    );
    Ok(())
}

/// The next event that `matches`, skipping others; fails after [`PATIENCE`].
async fn wait_for(
    topic: &mut Topic,
    matches: impl Fn(&Event<PeerId>) -> bool,
) -> Result<Event<PeerId>> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let Ok(event) = tokio::time::timeout_at(deadline, topic.recv()).await else {
            bail!("no such gossip event within {PATIENCE:?}");
        };
        let Some(event) = event else {
            bail!("the gossip topic closed");
        };
        if matches(&event) {
            return Ok(event);
        }
    }
}
