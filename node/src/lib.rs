//! weft-node: every weft layer behind one builder, a config file and a data directory.
//!
//! A node composes `weft-transport`, `weft-gossip`, `weft-discovery`,
//! `weft-registry` and `weft-sync` on one endpoint and wires them to each other; the `weft`
//! command runs one as a daemon. Nothing but `xtask` depends on this crate.
//!
//! - [`Config`]: the TOML file (`[node]`, `[bootstrap]`, `[admin]`, one section per layer),
//!   `WEFT_*` overrides, [`Config::to_toml`] and the commented [`Config::template`].

mod config;
mod duration;
mod template;

pub use config::{
    AdminConfig, BootstrapConfig, Config, ConfigError, DEFAULT_BIND, DEFAULT_SHUTDOWN_GRACE,
    ENV_VARS, NodeConfig,
};
