//! The commands that talk to a running node through its admin API.

use std::io;

use serde::Serialize;
use weft_node::admin::{Call, Client, ClientError, GossipEvent, SyncAdd, SyncList};

use crate::output::{self, Output};
use crate::paths;
use crate::{CallArgs, Command, Global, GossipCommand, RegistryCommand, SyncCommand};

/// Why a command failed; its `Display` is the one line the user sees.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("no data directory: pass --data-dir, set WEFT_DATA_DIR, or set HOME")]
    NoDataDir,
    #[error(transparent)]
    Config(#[from] weft_node::ConfigError),
    #[error(transparent)]
    Spawn(#[from] weft_node::SpawnError),
    #[error(transparent)]
    DataDir(#[from] weft_node::DataDirError),
    #[error("cannot start the admin API: {0}")]
    Admin(#[from] weft_node::admin::StartError),
    #[error("{0}")]
    Usage(String),
    #[error("writing the output failed: {0}")]
    Output(#[from] io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Client(ClientError::NoRunningNode { .. }) => 3,
            _ => 1,
        }
    }

    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Runs a command against the node on the data directory `global` names.
pub(crate) async fn run(command: Command, global: &Global) -> Result<(), CliError> {
    let data_dir = paths::data_dir(global)?;
    let client = Client::from_data_dir(&data_dir)?;
    let mut out = Output::new(global.json);
    match command {
        Command::Id => {
            let status = client.status().await?;
            if out.is_json() {
                out.json(&Id { id: &status.id })?;
            } else {
                out.line(format_args!("{}", status.id))?;
            }
        }
        Command::Ticket => {
            let status = client.status().await?;
            if out.is_json() {
                out.json(&Ticket {
                    ticket: &status.ticket,
                })?;
            } else {
                out.line(format_args!("{}", status.ticket))?;
            }
        }
        Command::Status => status(&client, &mut out).await?,
        Command::Peers => peers(&client, &mut out).await?,
        Command::Metrics => metrics(&client, &mut out).await?,
        Command::Gossip(command) => gossip(&client, &mut out, command).await?,
        Command::Registry(command) => registry(&client, &mut out, command).await?,
        Command::Call(args) => call(&client, &mut out, args).await?,
        Command::Sync(command) => sync(&client, &mut out, command).await?,
        // `main` runs these without a client; reaching here is a wiring mistake, said in a line.
        Command::Init | Command::Run(_) | Command::Config(_) => {
            return Err(CliError::Usage(
                "this command does not talk to a running node".into(),
            ));
        }
        Command::Shutdown => {
            let answer = client.shutdown().await?;
            if out.is_json() {
                out.json(&answer)?;
            } else {
                out.line(format_args!("the node is shutting down"))?;
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Ticket<'a> {
    ticket: &'a str,
}

async fn status(client: &Client, out: &mut Output) -> Result<(), CliError> {
    let status = client.status().await?;
    if out.is_json() {
        out.json(&status)?;
        return Ok(());
    }
    let addresses: Vec<String> = status.addresses.iter().map(ToString::to_string).collect();
    let layers: Vec<String> = status
        .layers
        .iter()
        .map(|layer| match (layer.running, layer.enabled) {
            (true, _) => layer.name.clone(),
            (false, false) => format!("{}(off)", layer.name),
            (false, true) => format!("{}(stopped)", layer.name),
        })
        .collect();
    out.line(format_args!("id        {}", status.id))?;
    out.line(format_args!("network   {}", status.network))?;
    out.line(format_args!("addresses {}", addresses.join(" ")))?;
    if let Some(relay) = &status.relay {
        out.line(format_args!("relay     {relay}"))?;
    }
    out.line(format_args!(
        "uptime    {}",
        output::duration_ms(status.uptime_ms)
    ))?;
    out.line(format_args!("version   {}", status.version))?;
    out.line(format_args!("layers    {}", layers.join(" ")))?;
    if !status.services.is_empty() {
        out.line(format_args!("services  {}", status.services.join(" ")))?;
    }
    out.line(format_args!("ticket    {}", status.ticket))?;
    // The token rides in the fragment, which a browser never sends anywhere.
    out.line(format_args!("page      {}", client.page_url()))?;
    Ok(())
}

/// The counters as the node encodes them; with `--json`, as a map of sample name to value.
async fn metrics(client: &Client, out: &mut Output) -> Result<(), CliError> {
    let text = client.metrics().await?;
    if out.is_json() {
        let samples: std::collections::BTreeMap<String, f64> =
            iroh_metrics::parse_prometheus_metrics(&text)
                .into_iter()
                .collect();
        out.json(&samples)?;
    } else {
        out.raw(text.as_bytes())?;
    }
    Ok(())
}

async fn peers(client: &Client, out: &mut Output) -> Result<(), CliError> {
    let peers = client.peers().await?;
    if out.is_json() {
        out.json(&peers)?;
        return Ok(());
    }
    if peers.peers.is_empty() {
        output::note(format_args!("no peers"));
    }
    for peer in &peers.peers {
        let addresses: Vec<String> = peer.addresses.iter().map(ToString::to_string).collect();
        out.line(format_args!(
            "{}  {}  {}",
            peer.id,
            output::rtt(peer.rtt_us),
            addresses.join(" ")
        ))?;
    }
    Ok(())
}

async fn gossip(client: &Client, out: &mut Output, command: GossipCommand) -> Result<(), CliError> {
    match command {
        GossipCommand::Publish { topic, message } => {
            let published = client.gossip_publish(&topic, message.as_str()).await?;
            if out.is_json() {
                out.json(&published)?;
            } else {
                out.line(format_args!("published {}", published.message_id))?;
            }
        }
        GossipCommand::Subscribe { topic } => {
            let mut events = client.gossip_subscribe(&topic).await?;
            while let Some(event) = events.next().await {
                let event = event?;
                if out.is_json() {
                    out.json(&event)?;
                    continue;
                }
                match event {
                    GossipEvent::Message { from, content } => {
                        out.line(format_args!("{from}: {}", content.to_text_lossy()))?;
                    }
                    GossipEvent::NeighborUp { peer } => {
                        output::note(format_args!("neighbour up: {peer}"))
                    }
                    GossipEvent::NeighborDown { peer } => {
                        output::note(format_args!("neighbour down: {peer}"))
                    }
                    GossipEvent::Lagged { missed } => {
                        output::note(format_args!("read too slowly: {missed} events dropped"));
                    }
                    // A newer node's event this `weft` does not know: JSON shows it, text skips it.
                    _ => {}
                }
            }
            if !out.is_json() {
                output::note(format_args!("the node ended the subscription"));
            }
        }
    }
    Ok(())
}

async fn registry(
    client: &Client,
    out: &mut Output,
    command: RegistryCommand,
) -> Result<(), CliError> {
    match command {
        RegistryCommand::Provide { name, metadata } => {
            let provided = client.registry_provide(&name, metadata.as_str()).await?;
            if out.is_json() {
                out.json(&provided)?;
            } else {
                out.line(format_args!(
                    "providing {} (record held by {} nodes)",
                    provided.name, provided.holders
                ))?;
            }
        }
        RegistryCommand::Find { name } => {
            let found = client.registry_find(&name).await?;
            if out.is_json() {
                out.json(&found)?;
                return Ok(());
            }
            if found.providers.is_empty() {
                output::note(format_args!("no providers of {name}"));
            }
            for provider in &found.providers {
                let addresses: Vec<String> =
                    provider.addresses.iter().map(ToString::to_string).collect();
                out.line(format_args!(
                    "{}  expires in {}  {}",
                    provider.id,
                    output::duration_ms(provider.expires_in_ms),
                    addresses.join(" ")
                ))?;
            }
        }
    }
    Ok(())
}

async fn call(client: &Client, out: &mut Output, args: CallArgs) -> Result<(), CliError> {
    let request = Call {
        name: args.name,
        request: args.request.as_str().into(),
        timeout_ms: args.timeout_ms,
    };
    let reply = client.call(&request).await?;
    if out.is_json() {
        out.json(&reply)?;
        return Ok(());
    }
    for failure in &reply.failed {
        output::note(format_args!(
            "{} failed: {}",
            failure.provider, failure.error
        ));
    }
    output::note(format_args!(
        "answered by {} in {} ms",
        reply.provider, reply.elapsed_ms
    ));
    out.raw(reply.response.as_bytes())?;
    Ok(())
}

async fn sync(client: &Client, out: &mut Output, command: SyncCommand) -> Result<(), CliError> {
    match command {
        SyncCommand::Add { topic, item } => {
            let request = SyncAdd {
                topic,
                content: item.map(|item| item.as_str().into()),
                timestamp: None,
            };
            let added = client.sync_add(&request).await?;
            if out.is_json() {
                out.json(&added)?;
            } else if let Some(item) = &added.item {
                out.line(format_args!("added {item} to {}", added.topic))?;
            } else {
                out.line(format_args!("syncing {}", added.topic))?;
            }
        }
        SyncCommand::List {
            topic,
            since,
            limit,
        } => {
            let items = client
                .sync_list(&SyncList {
                    topic,
                    since,
                    limit,
                })
                .await?;
            if out.is_json() {
                out.json(&items)?;
                return Ok(());
            }
            for item in &items.items {
                out.line(format_args!(
                    "{}  {}  {}",
                    item.timestamp,
                    item.id,
                    item.content.to_text_lossy()
                ))?;
            }
            if items.more {
                output::note(format_args!("more items follow; use --since to page"));
            }
        }
        SyncCommand::Status { topic } => {
            let status = client.sync_status(&topic).await?;
            if out.is_json() {
                out.json(&status)?;
                return Ok(());
            }
            let joined = if status.joined {
                "syncing"
            } else {
                "not syncing"
            };
            out.line(format_args!(
                "{}: {joined}, {} items",
                status.topic, status.items
            ))?;
            for session in &status.sessions {
                let role = if session.initiator {
                    "initiator"
                } else {
                    "acceptor"
                };
                let state = if session.live { "live" } else { "catching up" };
                out.line(format_args!("  {}  {role}  {state}", session.peer))?;
            }
        }
    }
    Ok(())
}
