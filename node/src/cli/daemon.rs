//! The commands that need the node library itself: `weft init`, `weft run` and
//! `weft config check|show`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::info;
use weft_node::admin::ServerConfig;
use weft_node::{Config, KEY_FILE, Node, NodeApi, init_data_dir, parse_peer};

use crate::Global;
use crate::commands::CliError;
use crate::output::Output;
use crate::paths;

/// `weft run`'s flags: the last word on the config (defaults < file < `WEFT_*` < these).
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The UDP socket address [overrides `[node] bind`]
    #[arg(long, value_name = "IP:PORT")]
    bind: Option<SocketAddr>,
    /// A peer to join through: a ticket (weft1...) or PEER_ID@IP:PORT; repeatable, added
    /// to `[bootstrap] peers`
    #[arg(long, value_name = "TICKET")]
    bootstrap: Vec<String>,
    /// The network's name [overrides `[node] network`]
    #[arg(long, value_name = "NAME")]
    network: Option<String>,
    /// Where the admin API listens, a loopback address [overrides `[admin] bind`]
    #[arg(long, value_name = "IP:PORT")]
    admin_bind: Option<SocketAddr>,
}

/// `weft config ...`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Load and validate the effective config (file and WEFT_* environment)
    Check,
    /// Print the effective config, every key included (TOML, or JSON with --json)
    Show,
}

#[derive(Serialize)]
struct Initialised<'a> {
    id: String,
    data_dir: &'a std::path::Path,
    config: &'a std::path::Path,
}

/// `weft init`: a commented config file and a new key, refusing to replace either.
pub(crate) fn init(global: &Global) -> Result<(), CliError> {
    let data_dir = paths::data_dir(global)?;
    let config = paths::config_target(global, &data_dir);
    // Both checks before either write, so a refused init leaves nothing half done.
    if config.exists() {
        return Err(CliError::Usage(format!(
            "config file {} exists already; edit it, or remove it to start over",
            config.display()
        )));
    }
    let key = data_dir.join(KEY_FILE);
    if key.exists() {
        return Err(CliError::Usage(format!(
            "key file {} exists already: this data directory has an identity",
            key.display()
        )));
    }
    let id = init_data_dir(&data_dir)?;
    if let Some(parent) = config.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create_new(&config)?.write_all(Config::template().as_bytes())?;
    let mut out = Output::new(global.json);
    if out.is_json() {
        out.json(&Initialised {
            id: id.to_string(),
            data_dir: &data_dir,
            config: &config,
        })?;
    } else {
        out.line(format_args!("id      {id}"))?;
        out.line(format_args!("data    {}", data_dir.display()))?;
        out.line(format_args!("config  {}", config.display()))?;
    }
    Ok(())
}

/// `weft config check|show`.
pub(crate) fn config(global: &Global, command: ConfigCommand) -> Result<(), CliError> {
    let data_dir = paths::data_dir(global)?;
    let config = paths::load_config(global, &data_dir)?;
    config.validate()?;
    let mut out = Output::new(global.json);
    match command {
        ConfigCommand::Check => {
            let source = paths::config_file(global, &data_dir).map_or_else(
                || "defaults, no file".to_owned(),
                |p| p.display().to_string(),
            );
            if out.is_json() {
                out.json(&serde_json::json!({ "ok": true, "config": source }))?;
            } else {
                out.line(format_args!("config ok ({source})"))?;
            }
        }
        ConfigCommand::Show if out.is_json() => out.json(&config)?,
        ConfigCommand::Show => out.raw(config.to_toml().as_bytes())?,
    }
    Ok(())
}

/// `weft run`: the node and its admin API, until SIGINT, SIGTERM or `weft shutdown`.
///
/// When ready it prints the node id and its ticket on stdout, a line each, so a script can
/// read them; logs go to stderr.
pub(crate) async fn run(global: &Global, args: RunArgs) -> Result<(), CliError> {
    init_logs();
    let data_dir = paths::data_dir(global)?;
    let mut config = paths::load_config(global, &data_dir)?;
    if let Some(bind) = args.admin_bind {
        config.admin.bind = bind;
    }
    config.validate()?;
    let mut builder = Node::builder().data_dir(&data_dir).config(config.clone());
    if let Some(bind) = args.bind {
        builder = builder.bind_addr(bind);
    }
    if let Some(network) = args.network {
        builder = builder.network(network);
    }
    let bootstrap = args
        .bootstrap
        .iter()
        .map(|text| parse_peer(text).map_err(|err| CliError::Usage(format!("--bootstrap: {err}"))))
        .collect::<Result<Vec<_>, _>>()?;
    builder = builder.bootstrap(bootstrap);

    let node = builder.spawn().await?;
    // Cancelled by the admin API's `shutdown`. The server gets a token of its own: it must
    // keep answering until the node has shut down, and stop after.
    let shutdown = CancellationToken::new();
    let mut restore = None;
    let server = if config.admin.enabled {
        let api = Arc::new(NodeApi::new(node.clone(), shutdown.clone()).saved_in(&data_dir));
        let server_config = ServerConfig {
            bind: config.admin.bind,
            open_metrics: config.admin.open_metrics,
            ..ServerConfig::default()
        };
        match api.clone().serve(server_config, &data_dir).await {
            Ok(server) => {
                // What the last run joined and provided, in the background: re-providing a
                // name waits for the network, and the API answers meanwhile.
                restore = Some(tokio::spawn(async move { api.restore().await }));
                Some(server)
            }
            Err(err) => {
                node.shutdown().await;
                return Err(err.into());
            }
        }
    } else {
        None
    };
    info!(id = %node.id(), data_dir = %data_dir.display(), "node ready");
    {
        let mut out = Output::new(false);
        // A closed stdout must not stop the node: its operator reads the logs.
        let _ = out.line(format_args!("{}", node.id()));
        let _ = out.line(format_args!("{}", node.ticket()));
    }

    let reason = wait_for_stop(&shutdown).await?;
    info!("{reason}; shutting down");
    if let Some(restore) = restore {
        restore.abort();
    }
    node.shutdown().await;
    if let Some(server) = server {
        server.shutdown().await;
    }
    info!("stopped");
    Ok(())
}

/// Waits for SIGINT, SIGTERM or the admin API's `shutdown`, and says which came.
async fn wait_for_stop(shutdown: &CancellationToken) -> Result<&'static str, CliError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            () = shutdown.cancelled() => "shutdown requested through the admin API",
        })
    }
    #[cfg(not(unix))]
    {
        Ok(tokio::select! {
            result = tokio::signal::ctrl_c() => { result?; "Ctrl-C" }
            () = shutdown.cancelled() => "shutdown requested through the admin API",
        })
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: this node's info, others' warnings).
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    const DEFAULT: &str = "warn,weft=info,weft_node=info";
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT));
    // Fails only when a subscriber is set already: then logs go there.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
