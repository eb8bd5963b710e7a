//! The sync part of the demo: two nodes with different sets of items converge by Negentropy
//! reconciliation, the other nodes join empty and catch up, then an item inserted at one node
//! reaches every other in live mode.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use weft_node::Node;
use weft_sync::{
    Item, SyncManager, SyncTopic, TopicId,
    proto::{CatchUpStats, Event},
    store::{MemoryStore, Store},
};

use crate::table::Table;

/// How long the demo waits for any one sync event before it calls the run failed.
const PATIENCE: Duration = Duration::from_secs(20);

pub(super) async fn run(nodes: &[Node]) -> Result<()> {
    let topic_id = TopicId::from_name("weft-demo/notes");
    // The nodes' own sync managers, with in-memory stores chosen here so two nodes can start
    // with different items (`Node::subscribe_sync` would open the node's store).
    let managers: Vec<&SyncManager> = nodes
        .iter()
        .map(|node| node.sync().context("the demo's nodes run sync"))
        .collect::<Result<_>>()?;
    let items: Vec<Item> = (0..2_500u64)
        .map(|i| Item::new(1_700_000_000 + i, format!("note {i}").as_bytes()))
        .collect();
    let total = items.len();

    // n0 holds notes 0..1500, n1 holds 1000..2500: 1,000 each to fetch.
    let started = Instant::now();
    let mut topics: Vec<SyncTopic> = Vec::with_capacity(nodes.len());
    topics.push(
        managers[0]
            .subscribe(topic_id, store(&items[..1_500])?, vec![])
            .await?,
    );
    topics.push(
        managers[1]
            .subscribe(topic_id, store(&items[1_000..])?, vec![nodes[0].addr()])
            .await?,
    );
    let stats = caught_up(&mut topics[1]).await.context("n1 catching up")?;
    wait_for_count(&mut topics[0], total).await?;
    wait_for_count(&mut topics[1], total).await?;
    let mut table = Table::new([
        "node",
        "items in",
        "items out",
        "bytes in",
        "bytes out",
        "round trips",
        "caught up after",
    ]);
    table.row(stats_row("n1 ⇄ n0", &stats, started.elapsed()));

    // The others join empty and catch up from whichever neighbours they get.
    for (i, manager) in managers.iter().enumerate().skip(2) {
        let started = Instant::now();
        let mut topic = manager
            .subscribe(topic_id, MemoryStore::new(), vec![nodes[0].addr()])
            .await?;
        wait_for_count(&mut topic, total)
            .await
            .with_context(|| format!("n{i} catching up"))?;
        let stats = caught_up(&mut topic).await?;
        table.row(stats_row(
            &format!("n{i} (empty)"),
            &stats,
            started.elapsed(),
        ));
        topics.push(topic);
    }
    println!(
        "== sync: {total} notes, n0 and n1 holding 1,500 each, the others none ==\n{}",
        table.render()
    );

    // Live: one note inserted at the last node reaches every other without a reconciliation.
    let last = topics.len() - 1;
    let started = Instant::now();
    let id = topics[last].insert(1_800_000_000, b"a live note").await?;
    let mut slowest = Duration::ZERO;
    for (i, topic) in topics.iter_mut().enumerate() {
        if i == last {
            continue;
        }
        tokio::time::timeout(PATIENCE, async {
            loop {
                match topic.recv().await {
                    Some(Event::ItemReceived { item, .. }) if item.id() == id => return Ok(()),
                    Some(_) => {}
                    None => bail!("n{i}'s sync stopped"),
                }
            }
        })
        .await
        .with_context(|| format!("n{i} waiting for the live note"))??;
        slowest = slowest.max(started.elapsed());
    }
    println!(
        "live note from n{last} reached all {} other nodes in {:.2} ms\n",
        topics.len() - 1,
        slowest.as_secs_f64() * 1e3
    );
    Ok(())
}

fn store(items: &[Item]) -> Result<MemoryStore> {
    let mut store = MemoryStore::new();
    store.insert_many(items)?;
    Ok(store)
}

fn stats_row(name: &str, stats: &CatchUpStats, after: Duration) -> [String; 7] {
    [
        name.to_owned(),
        stats.items_received.to_string(),
        stats.items_sent.to_string(),
        stats.bytes_received.to_string(),
        stats.bytes_sent.to_string(),
        stats.round_trips.to_string(),
        format!("{:.1} ms", after.as_secs_f64() * 1e3),
    ]
}

/// The next `CaughtUp` of a topic.
async fn caught_up(topic: &mut SyncTopic) -> Result<CatchUpStats> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match topic.recv().await {
                Some(Event::CaughtUp { stats, .. }) => return Ok(stats),
                Some(Event::SessionFailed { error, .. }) => bail!("a session failed: {error}"),
                Some(_) => {}
                None => bail!("sync stopped"),
            }
        }
    })
    .await
    .context("waiting to catch up")?
}

/// Waits until a topic holds `count` items.
async fn wait_for_count(topic: &mut SyncTopic, count: usize) -> Result<()> {
    tokio::time::timeout(PATIENCE, async {
        while topic.item_count().await? < count {
            if topic.recv().await.is_none() {
                bail!("sync stopped");
            }
        }
        Ok(())
    })
    .await
    .context("waiting for the items")?
}
