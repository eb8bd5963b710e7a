//! Where the node's data directory and config file are.
//!
//! The data directory: `--data-dir`, else `WEFT_DATA_DIR` (clap reads both into one option),
//! else `[node] data_dir` of the file given with `--config` (or `WEFT_CONFIG`), else
//! `$XDG_DATA_HOME/weft`, else `~/.local/share/weft`.
//!
//! The config file: `--config` (or `WEFT_CONFIG`), which must exist; else `config.toml` in the
//! data directory (where `weft init` writes it), when there is one; else none, and the
//! defaults apply.

use std::path::{Path, PathBuf};

use weft_node::Config;

use crate::Global;
use crate::commands::CliError;

/// The config file's name inside the data directory.
pub(crate) const CONFIG_FILE: &str = "config.toml";

/// The data directory the options name.
pub(crate) fn data_dir(global: &Global) -> Result<PathBuf, CliError> {
    if let Some(dir) = &global.data_dir {
        return Ok(dir.clone());
    }
    if let Some(path) = &global.config
        && let Some(dir) = Config::load(path)?.node.data_dir
    {
        return Ok(dir);
    }
    default_data_dir().ok_or(CliError::NoDataDir)
}

/// The config file to read: the one given, else the data directory's if it exists.
pub(crate) fn config_file(global: &Global, data_dir: &Path) -> Option<PathBuf> {
    if let Some(path) = &global.config {
        return Some(path.clone());
    }
    let path = data_dir.join(CONFIG_FILE);
    path.exists().then_some(path)
}

/// Where `weft init` writes the config: the file given, else the data directory's.
pub(crate) fn config_target(global: &Global, data_dir: &Path) -> PathBuf {
    global
        .config
        .clone()
        .unwrap_or_else(|| data_dir.join(CONFIG_FILE))
}

/// The effective config before command-line flags: defaults < file < `WEFT_*` environment.
pub(crate) fn load_config(global: &Global, data_dir: &Path) -> Result<Config, CliError> {
    let mut config = match config_file(global, data_dir) {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.apply_env(std::env::vars())?;
    Ok(config)
}

/// `$XDG_DATA_HOME/weft`, else `$HOME/.local/share/weft`.
fn default_data_dir() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_DATA_HOME")
        .map(|dir| dir.join("weft"))
        .or_else(|| absolute("HOME").map(|home| home.join(".local/share/weft")))
}
