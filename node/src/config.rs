//! The node's configuration: one TOML file with `[node]`, `[bootstrap]`, `[admin]`, `[layers]`,
//! one section per layer, `[calls]` and `[[service]]`, environment overrides (`WEFT_*`), and the
//! effective config printed back.
//!
//! Precedence, lowest first: defaults < file < environment < command-line flags (the flags are
//! the CLI's: it sets fields on the [`Config`] after [`Config::apply_env`]).

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use weft_transport::{NetworkId, PeerAddr};

use crate::{
    duration,
    layers::{self, LayersConfig},
    service::{CallsConfig, MAX_SERVICES, ServiceConfig},
};

/// The default `[node] bind`: loopback, any port (see [`NodeConfig::bind`] for why).
pub const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The default `[node] shutdown_grace`: enough for every layer's own default grace (sync 2 s,
/// registry 1 s, gossip 1 s, discovery 0.2 s, one after the other) plus closing connections.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything a node can be configured with. Every section and every key is optional; a
/// missing one takes its default. Unknown keys are errors.
///
/// ```
/// use weft_node::Config;
///
/// let config = Config::from_toml_str(
///     "[node]\nnetwork = \"my-app\"\nshutdown_grace = \"2s\"\n\n[discovery]\nannounce_interval_ms = 5000\n",
/// )?;
/// assert_eq!(config.node.network, "my-app");
/// assert_eq!(config.node.shutdown_grace.as_secs(), 2);
/// assert_eq!(config.discovery.announce_interval.as_secs(), 5);
/// # Ok::<(), weft_node::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The node itself: network, socket, shutdown.
    pub node: NodeConfig,
    /// The peers a node starts from.
    pub bootstrap: BootstrapConfig,
    /// The local admin API (served by the `weft` daemon, on loopback only).
    pub admin: AdminConfig,
    /// Which optional layers run (all by default; see [`LayersConfig`]).
    pub layers: LayersConfig,
    /// The gossip layer's own settings ([`weft_gossip::Config`], durations in `*_ms`).
    pub gossip: weft_gossip::Config,
    /// The discovery layer's own settings ([`weft_discovery::Config`]).
    pub discovery: weft_discovery::Config,
    /// The registry layer's own settings ([`weft_registry::Config`]).
    pub registry: weft_registry::Config,
    /// The sync layer's own settings ([`weft_sync::proto::Config`]).
    pub sync: weft_sync::proto::Config,
    /// Meeting a topic's other subscribers through the registry.
    pub rendezvous: crate::RendezvousConfig,
    /// Answering topology queries, and how far this node's own go.
    pub topology: crate::TopologyConfig,
    /// How this node's service calls are made by default.
    pub calls: CallsConfig,
    /// `[[service]]`: programs the node serves by name (none by default).
    #[serde(rename = "service", skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceConfig>,
}

/// `[node]`: which network, which socket, how long a shutdown may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The network's name; its blake3 hash is the [`NetworkId`] inside every ALPN, so nodes of
    /// different networks cannot talk (default `"weft"`).
    pub network: String,
    /// The UDP socket address (default `127.0.0.1:0`).
    ///
    /// Loopback by default, because the project's rule is that nothing leaves the machine
    /// unless its operator opts in (relays and external address lookup are off for the same
    /// reason): a fresh node is a safe thing to start, tests and demos need no extra setting,
    /// and exposing the node is one deliberate line (`bind = "0.0.0.0:4433"`), which the
    /// template written by `weft init` shows. Port 0 lets the OS choose, so two nodes on one
    /// machine never collide; a node that others must reach at a stable ticket sets a port.
    pub bind: SocketAddr,
    /// The longest a graceful shutdown may take, all layers together (default `"5s"`).
    #[serde(with = "duration::serde_human")]
    pub shutdown_grace: Duration,
    /// Where the `weft` command keeps the node's data directory when neither `--data-dir` nor
    /// `WEFT_DATA_DIR` says (default: none, so `$XDG_DATA_HOME/weft`, else
    /// `~/.local/share/weft`). Read from a file given with `--config`; a relative path is
    /// relative to that file's directory ([`Config::load`] resolves it). The library takes the
    /// directory from [`crate::Builder::data_dir`] and ignores this key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            network: "weft".into(),
            bind: DEFAULT_BIND,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            data_dir: None,
        }
    }
}

impl NodeConfig {
    /// The network id of [`NodeConfig::network`].
    pub fn network_id(&self) -> NetworkId {
        NetworkId::from_name(&self.network)
    }
}

/// `[bootstrap]`: the peers a node joins through at its first start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Tickets (`weft1...`) or `<peer id>@<ip:port>` strings; printed back as tickets.
    #[serde(with = "peer_strings")]
    pub peers: Vec<PeerAddr>,
    /// Whether to find the nodes of this network on the local link by multicast beacons, with
    /// no ticket (default `false`; needs `[node] bind` on a LAN IPv4 address or `0.0.0.0`).
    /// See [`crate::LOCAL_NETWORK_GROUP`].
    pub local_network: bool,
}

/// `[admin]`: the local admin API the `weft` command talks to. Only these fields live here;
/// the server is the daemon's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Whether the daemon serves the admin API (default `true`).
    pub enabled: bool,
    /// Where it listens; must be a loopback address (default `127.0.0.1:0`, any port).
    pub bind: SocketAddr,
    /// Whether `GET /metrics` answers without the admin token, for a Prometheus scraper on
    /// this machine (default `false`; every other route keeps requiring the token).
    pub open_metrics: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: DEFAULT_BIND,
            open_metrics: false,
        }
    }
}

/// Why a config could not be read, parsed or applied. Every case names where the problem is:
/// the file (and line), the environment variable, or the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML did not parse, has an unknown key, a value of the wrong type or a bad value.
    #[error("{origin}{}: {message}", line_col(.line))]
    Parse {
        /// The file, or `config` for a string.
        origin: String,
        /// Line and column (1-based) of the offending key or value, when known.
        line: Option<(usize, usize)>,
        /// What is wrong, naming the key (`unknown field `foo``, `invalid type: ...`).
        message: String,
    },
    /// A `WEFT_*` variable has a bad value, or is not one the node knows.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value parsed but cannot run (e.g. an admin address off loopback, a registry `k` of 0).
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// The file, `config` for a string, or `environment`.
        origin: String,
        /// The key, `section.key`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn line_col(at: &Option<(usize, usize)>) -> String {
    at.map(|(line, col)| format!(", line {line}, column {col}"))
        .unwrap_or_default()
}

/// The node-level keys that `WEFT_*` variables override, and the variable of each.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("WEFT_NODE_NETWORK", "node.network"),
    ("WEFT_NODE_BIND", "node.bind"),
    ("WEFT_NODE_SHUTDOWN_GRACE", "node.shutdown_grace"),
    ("WEFT_BOOTSTRAP_PEERS", "bootstrap.peers"),
    ("WEFT_ADMIN_ENABLED", "admin.enabled"),
    ("WEFT_ADMIN_BIND", "admin.bind"),
    ("WEFT_ADMIN_OPEN_METRICS", "admin.open_metrics"),
    ("WEFT_LAYERS_DISCOVERY", "layers.discovery"),
    ("WEFT_LAYERS_REGISTRY", "layers.registry"),
    ("WEFT_LAYERS_SYNC", "layers.sync"),
];

impl Config {
    /// Reads and parses the TOML file at `path`. Errors name the file, and the line and key of
    /// a bad value. A relative `[node] data_dir` is made relative to the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text, &path.display().to_string())?;
        if let Some(dir) = &config.node.data_dir
            && dir.is_relative()
        {
            let base = path.parent().unwrap_or(Path::new("."));
            config.node.data_dir = Some(base.join(dir));
        }
        // A program named by a relative path means the one next to the file, as data_dir does.
        let base = path.parent().unwrap_or(Path::new("."));
        for service in &mut config.services {
            if let Some(program) = service.exec.first_mut()
                && program.contains('/')
                && Path::new(program.as_str()).is_relative()
            {
                *program = base.join(&*program).display().to_string();
            }
        }
        Ok(config)
    }

    /// Parses TOML text (what [`Config::load`] does after reading the file).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, "config")
    }

    fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|err| ConfigError::Parse {
            origin: origin.to_owned(),
            line: err.span().map(|span| line_and_column(text, span.start)),
            message: err.message().trim().to_owned(),
        })?;
        config.check(origin)?;
        Ok(config)
    }

    /// Applies `WEFT_*` overrides of the node-level keys (see [`ENV_VARS`]): pass
    /// `std::env::vars()`. Variables of the `WEFT_NODE_`, `WEFT_BOOTSTRAP_`, `WEFT_ADMIN_` and
    /// `WEFT_LAYERS_` families that the node does not know are errors (a typo must not pass silently); other
    /// `WEFT_*` variables are left to the command line tool (`WEFT_DATA_DIR`, say).
    /// `WEFT_BOOTSTRAP_PEERS` is a comma-separated list that replaces the file's.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (var, value) in vars {
            let env_err = |message: String| ConfigError::Env {
                var: var.clone(),
                message,
            };
            let value = value.trim();
            match var.as_str() {
                "WEFT_NODE_NETWORK" => {
                    if value.is_empty() {
                        return Err(env_err("the network name is empty".into()));
                    }
                    self.node.network = value.to_owned();
                }
                "WEFT_NODE_BIND" => {
                    self.node.bind = value
                        .parse()
                        .map_err(|err| env_err(format!("{value:?} is not ip:port ({err})")))?;
                }
                "WEFT_NODE_SHUTDOWN_GRACE" => {
                    self.node.shutdown_grace = duration::parse(value).map_err(env_err)?;
                }
                "WEFT_BOOTSTRAP_PEERS" => {
                    self.bootstrap.peers = value
                        .split(',')
                        .map(str::trim)
                        .filter(|peer| !peer.is_empty())
                        .map(parse_peer)
                        .collect::<Result<_, _>>()
                        .map_err(env_err)?;
                }
                "WEFT_ADMIN_ENABLED" => {
                    self.admin.enabled = layers::parse_bool(value).map_err(env_err)?;
                }
                "WEFT_ADMIN_OPEN_METRICS" => {
                    self.admin.open_metrics = layers::parse_bool(value).map_err(env_err)?;
                }
                "WEFT_ADMIN_BIND" => {
                    self.admin.bind = value
                        .parse()
                        .map_err(|err| env_err(format!("{value:?} is not ip:port ({err})")))?;
                }
                layer @ ("WEFT_LAYERS_DISCOVERY" | "WEFT_LAYERS_REGISTRY" | "WEFT_LAYERS_SYNC") => {
                    if let Some(result) = self.layers.apply_env(layer, value) {
                        result.map_err(env_err)?;
                    }
                }
                other
                    if [
                        "WEFT_NODE_",
                        "WEFT_BOOTSTRAP_",
                        "WEFT_ADMIN_",
                        "WEFT_LAYERS_",
                    ]
                    .iter()
                    .any(|family| other.starts_with(family)) =>
                {
                    let known: Vec<&str> = ENV_VARS.iter().map(|(var, _)| *var).collect();
                    return Err(env_err(format!(
                        "not a variable the node knows; known: {}",
                        known.join(", ")
                    )));
                }
                _ => {}
            }
        }
        self.check("environment")
    }

    /// Checks what parsing cannot: the admin API on loopback, a network name, the layers'
    /// own validations, `[calls]`, each `[[service]]` (a program to run, a valid name, each
    /// name once) and what the services need (the registry: `[layers] registry = true`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check("config")
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        if self.node.network.trim().is_empty() {
            return Err(invalid("node.network", "the network name is empty".into()));
        }
        if !self.admin.bind.ip().is_loopback() {
            return Err(invalid(
                "admin.bind",
                format!(
                    "{} is not a loopback address; the admin API is served on this machine only",
                    self.admin.bind
                ),
            ));
        }
        self.registry
            .validate()
            .map_err(|err| invalid("registry", err.to_string()))?;
        self.rendezvous
            .check()
            .map_err(|(key, message)| invalid(key, message))?;
        self.topology
            .check()
            .map_err(|(key, message)| invalid(key, message))?;
        if let Some((key, message)) = self.calls.problem() {
            return Err(invalid(&format!("calls.{key}"), message));
        }
        self.check_services(origin)
    }

    /// `[[service]]`: each one runnable, the names distinct, the registry on to find them.
    fn check_services(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key,
            message,
        };
        if self.services.len() > MAX_SERVICES {
            return Err(invalid(
                "service".into(),
                format!(
                    "{} services; a node serves at most {MAX_SERVICES} from its config",
                    self.services.len()
                ),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, service) in self.services.iter().enumerate() {
            if let Some((key, message)) = service.problem() {
                return Err(invalid(format!("service[{i}].{key}"), message));
            }
            if !names.insert(service.name.as_str()) {
                return Err(invalid(
                    format!("service[{i}].name"),
                    format!("{:?} is served twice; each name once", service.name),
                ));
            }
        }
        if !self.services.is_empty() && !self.layers.registry {
            return Err(invalid(
                "layers.registry".into(),
                format!(
                    "is off, but [[service]] {:?} needs it: callers find providers through \
                     the registry (turn it on, or remove the services)",
                    self.services[0].name
                ),
            ));
        }
        Ok(())
    }

    /// The effective config as TOML, every key included (`weft config show`).
    pub fn to_toml(&self) -> String {
        // Serializing plain structs of strings, numbers and tables cannot fail; should a
        // future field make it fail, say so in the output rather than panic.
        toml::to_string(self).unwrap_or_else(|err| format!("# cannot print the config: {err}\n"))
    }

    /// The commented config file `weft init` writes: the node-level keys with their defaults
    /// and what they mean. It parses to [`Config::default`].
    pub fn template() -> &'static str {
        crate::template::TEMPLATE
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_toml())
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A bootstrap peer from a ticket (`weft1...`) or `<peer id>@<ip:port>`, the forms
/// `[bootstrap] peers` and `weft run --bootstrap` take; the error says what is wrong in a line.
pub fn parse_peer(text: &str) -> Result<PeerAddr, String> {
    let text = text.trim();
    if text.starts_with(weft_transport::Ticket::PREFIX) {
        return PeerAddr::from_ticket(text).map_err(|err| format!("bad ticket {text:?}: {err}"));
    }
    let Some((id, addr)) = text.split_once('@') else {
        return Err(format!(
            "{text:?} is neither a ticket (weft1...) nor <peer id>@<ip:port>"
        ));
    };
    let id = id
        .parse()
        .map_err(|err| format!("bad peer id in {text:?}: {err}"))?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|err| format!("bad address in {text:?}: {err}"))?;
    Ok(PeerAddr::new(id).with_direct(addr))
}

/// `Vec<PeerAddr>` as a list of strings: parsed from tickets or `id@addr`, written as tickets.
pub(crate) mod peer_strings {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use weft_transport::PeerAddr;

    pub(crate) fn serialize<S: Serializer>(peers: &[PeerAddr], s: S) -> Result<S::Ok, S::Error> {
        let tickets: Vec<String> = peers.iter().map(PeerAddr::to_ticket).collect();
        tickets.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PeerAddr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| super::parse_peer(text).map_err(serde::de::Error::custom))
            .collect()
    }
}
