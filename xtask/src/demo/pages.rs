//! The status pages of the demo's nodes: each node gets its admin server (as `weft run` starts
//! it) in a temporary directory, and the demo prints the pages' addresses. With `--serve` the
//! nodes stay up after the demo, joined to a chat topic and a sync topic so every panel of the
//! page has something to show, until Ctrl-C.

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use weft_node::admin::{Client, EventStream, GossipEvent, Server, ServerConfig, SyncAdd};
use weft_node::{Node, NodeApi};

use crate::table::Table;

/// One node's admin server and the directory holding its token.
pub(super) struct Page {
    server: Server,
    dir: tempfile::TempDir,
}

/// Starts an admin server for every node.
pub(super) async fn start(nodes: &[Node]) -> Result<Vec<Page>> {
    let mut pages = Vec::with_capacity(nodes.len());
    for node in nodes {
        let dir = tempfile::tempdir()?;
        let server = std::sync::Arc::new(NodeApi::new(node.clone(), CancellationToken::new()))
            .serve(ServerConfig::default(), dir.path())
            .await?;
        pages.push(Page { server, dir });
    }
    Ok(pages)
}

/// Prints every node's page address.
pub(super) fn print(pages: &[Page]) {
    let mut table =
        Table::new(["node", "status page (open in a browser on this machine)"]).left_aligned();
    for (i, page) in pages.iter().enumerate() {
        table.row([format!("n{i}"), page.server.page_url()]);
    }
    println!("== weft-node: status pages ==\n{}", table.render());
}

/// Keeps the nodes of `pages` up (the first `alive` of them are still running) with a chat
/// topic and a sync topic joined, until Ctrl-C.
pub(super) async fn serve(pages: &[Page], alive: usize) -> Result<()> {
    let mut subscriptions: Vec<EventStream<GossipEvent>> = Vec::new();
    for (i, page) in pages[..alive].iter().enumerate() {
        let client = Client::from_data_dir(page.dir.path())?;
        subscriptions.push(client.gossip_subscribe("demo/chat").await?);
        client
            .sync_add(&SyncAdd {
                topic: "demo/notes".into(),
                content: Some(format!("a note from n{i}").as_bytes().to_vec().into()),
                timestamp: None,
            })
            .await?;
    }
    println!(
        "serving: the nodes n0..n{} stay up, joined to gossip \"demo/chat\" and sync \
         \"demo/notes\"; open a page above; Ctrl-C stops them",
        alive - 1
    );
    tokio::signal::ctrl_c().await?;
    println!("\nstopping");
    drop(subscriptions);
    Ok(())
}

/// Stops every admin server (their files go with the temporary directories).
pub(super) async fn stop(pages: Vec<Page>) {
    for page in pages {
        page.server.shutdown().await;
        drop(page.dir);
    }
}
