//! `[layers]`: which of the optional layers a node runs, and what needs which.
//!
//! Gossip is the base (discovery and sync ride on it) and always runs. Discovery, the registry
//! and sync can each be left out; what then stops working:
//!
//! - without **discovery** the node knows only its bootstrap peers (and the peers gossip
//!   meets): the registry's routing table and every topic's bootstrap come from them alone,
//!   and `weft peers` has no catalog to list;
//! - without the **registry** nothing can be found by name: service calls (`Node::call`,
//!   `weft call`), serving (`Node::serve`, `[[service]]`) and `weft registry` need it;
//! - without **sync** there are no sync topics (`Node::subscribe_sync`, `weft sync`), and no
//!   sync store is opened.
//!
//! None of the three needs another of them to run, so the only combinations refused are a
//! config that asks for something a left-out layer would have to do (`[[service]]` without
//! the registry).

use serde::{Deserialize, Serialize};

/// `[layers]`: the optional layers a node runs (all by default). `gossip` is not a key: it is
/// the base the others ride on and always runs.
///
/// [`crate::Builder::without_discovery`] and its siblings turn a layer off whatever the file
/// says; nothing turns on a layer the file turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayersConfig {
    /// Run discovery (signed peer catalog over gossip). Default `true`.
    pub discovery: bool,
    /// Run the registry (providers under names; service calls need it). Default `true`.
    pub registry: bool,
    /// Run the sync manager (synced topics, the sync store). Default `true`.
    pub sync: bool,
}

impl Default for LayersConfig {
    fn default() -> Self {
        Self {
            discovery: true,
            registry: true,
            sync: true,
        }
    }
}

impl LayersConfig {
    /// Applies one `WEFT_LAYERS_*` variable; `None` if `var` is not one of them.
    pub(crate) fn apply_env(&mut self, var: &str, value: &str) -> Option<Result<(), String>> {
        let slot = match var {
            "WEFT_LAYERS_DISCOVERY" => &mut self.discovery,
            "WEFT_LAYERS_REGISTRY" => &mut self.registry,
            "WEFT_LAYERS_SYNC" => &mut self.sync,
            _ => return None,
        };
        Some(parse_bool(value).map(|on| *slot = on))
    }
}

/// What an admin command answers when the layer it needs is off: one line naming the layer,
/// the key that turns it on, and what needed it.
pub(crate) fn off(layer: &str, what: &str) -> String {
    format!("the {layer} layer is off on this node ([layers] {layer} = false); {what} needs it")
}

/// `true`/`1`/`yes` or `false`/`0`/`no`, as environment variables write booleans.
pub(crate) fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}
