//! `weft`: run a weft node (`weft init`, `weft run`) and talk to a running one.
//!
//! Exit codes: 0 done; 1 failed; 2 bad usage; 3 no node runs on the data directory. A failure
//! prints one line, `weft: <what went wrong>`, on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod commands;
mod daemon;
mod output;
mod paths;

use commands::CliError;

/// Run a weft node and talk to a running one.
#[derive(Debug, Parser)]
#[command(name = "weft", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct Global {
    /// The node's data directory [default: the `--config` file's `[node] data_dir`, else
    /// $XDG_DATA_HOME/weft or ~/.local/share/weft]
    #[arg(long, global = true, env = "WEFT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The config file [default: config.toml in the data directory, if there is one]
    #[arg(long, global = true, env = "WEFT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON (one document, or one per line for streams) instead of text
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory with a new key, and a commented config file
    Init,
    /// Run the node (logs on stderr; prints its id and ticket when ready), until SIGINT,
    /// SIGTERM or `weft shutdown`
    Run(daemon::RunArgs),
    /// Check the effective config, or print it
    #[command(subcommand)]
    Config(daemon::ConfigCommand),
    /// Print the node's id
    Id,
    /// Print a ticket other nodes can bootstrap from
    Ticket,
    /// Show the node: id, addresses, uptime, version, layers, the services it serves
    Status,
    /// List the peers the node knows, with round-trip times
    Peers,
    /// Print the node's counters (OpenMetrics text, as Prometheus scrapes them)
    Metrics,
    /// Publish on a gossip topic, or follow one
    #[command(subcommand)]
    Gossip(GossipCommand),
    /// Provide a name in the registry, or find its providers
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Call a service by name (the node fails over between its providers)
    Call(CallArgs),
    /// Add to a sync topic, list its items, or show its sessions
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Shut the node down gracefully
    Shutdown,
}

#[derive(Debug, Subcommand)]
enum GossipCommand {
    /// Broadcast a message on a topic
    Publish {
        /// The topic's name
        topic: String,
        /// The message (text)
        message: String,
    },
    /// Print the topic's messages and neighbour changes as they come, until the node stops
    Subscribe {
        /// The topic's name
        topic: String,
    },
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Register this node as a provider of a name (until it shuts down)
    Provide {
        /// The name
        name: String,
        /// Metadata stored with the record (text)
        #[arg(long, default_value = "")]
        metadata: String,
    },
    /// Look a name's providers up
    Find {
        /// The name
        name: String,
    },
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The service's name
    name: String,
    /// The request (text); empty when absent
    #[arg(default_value = "")]
    request: String,
    /// Give up after this many milliseconds [default: the node's]
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// Sync a topic, and add an item to it when one is given
    Add {
        /// The topic's name
        topic: String,
        /// The item (text)
        item: Option<String>,
    },
    /// List a topic's items, oldest first
    List {
        /// The topic's name
        topic: String,
        /// Only items from this time on (milliseconds since the Unix epoch)
        #[arg(long, default_value_t = 0, value_name = "MS")]
        since: u64,
        /// At most this many items
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show a topic's item count and sync sessions
    Status {
        /// The topic's name
        topic: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init => daemon::init(&cli.global),
        Command::Config(command) => daemon::config(&cli.global, command),
        // The node runs every layer's actor: give it every core.
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)
            .and_then(|runtime| runtime.block_on(daemon::run(&cli.global, args))),
        // A client makes one call at a time: one thread is plenty.
        command => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)
            .and_then(|runtime| runtime.block_on(commands::run(command, &cli.global))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// Prints the error in one line and picks the exit code.
fn fail(err: &CliError) -> ExitCode {
    if err.is_broken_pipe() {
        // The reader went away (`weft gossip subscribe | head -1`): nothing to report.
        return ExitCode::SUCCESS;
    }
    output::error_line(&err.to_string());
    ExitCode::from(err.exit_code())
}
