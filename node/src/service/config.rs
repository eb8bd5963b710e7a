//! The config of service calls: `[[service]]` (programs the node serves, see [`super::exec`])
//! and `[calls]` (how this node's calls are made by default).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    CallOptions, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_CALL_TIMEOUT, DEFAULT_HANDLER_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS, MAX_IN_FLIGHT, valid_name,
};
use crate::duration;

/// The default `max_concurrent` of a `[[service]]`: programs running at once for it.
pub const DEFAULT_MAX_CONCURRENT: usize = 8;

/// `[[service]]` tables a config may hold, at most.
pub const MAX_SERVICES: usize = 64;

/// One `[[service]]`: a program that answers calls for `name`.
///
/// Each call runs `exec` (program and arguments, no shell) with the request on stdin and
/// answers with what it writes on stdout, at most [`MAX_RESPONSE_SIZE`](super::MAX_RESPONSE_SIZE)
/// bytes. More output, a run past `timeout` (the program is then killed) or a non-zero exit is
/// an error answer, and the caller fails over; the program's stderr goes to the node's log
/// only (its first [`MAX_STDERR_LOGGED`](super::MAX_STDERR_LOGGED) bytes per run).
///
/// ```toml
/// [[service]]
/// name = "upper"
/// exec = ["tr", "a-z", "A-Z"]
/// timeout = "5s"
/// max_concurrent = 4
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The name callers call (1 to 255 bytes, no control characters).
    pub name: String,
    /// The program and its arguments. A program without a `/` is looked up in `PATH`; a
    /// relative path with one is relative to the config file's directory.
    pub exec: Vec<String>,
    /// How long one run may take; then the program is killed and the caller is answered
    /// `TimedOut` (default 10 s, [`DEFAULT_HANDLER_TIMEOUT`]).
    #[serde(default = "default_timeout", with = "duration::serde_human")]
    pub timeout: Duration,
    /// Runs at once, at most; a call beyond is answered `Busy`, so its caller fails over to
    /// another provider (default [`DEFAULT_MAX_CONCURRENT`]).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

fn default_timeout() -> Duration {
    DEFAULT_HANDLER_TIMEOUT
}

fn default_max_concurrent() -> usize {
    DEFAULT_MAX_CONCURRENT
}

impl ServiceConfig {
    /// A service running `exec` under `name`, with the default timeout and concurrency.
    pub fn new(name: impl Into<String>, exec: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            name: name.into(),
            exec: exec.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_HANDLER_TIMEOUT,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
        }
    }

    /// What is wrong with this one service: `(key, message)`, the key under `service[i]`.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        if !valid_name(&self.name) {
            return Some((
                "name",
                format!(
                    "{:?} is not a service name: 1 to 255 bytes",
                    self.name.chars().take(64).collect::<String>()
                ),
            ));
        }
        if self.name.chars().any(char::is_control) {
            return Some(("name", format!("{:?} has control characters", self.name)));
        }
        match self.exec.first() {
            None => return Some(("exec", "is empty: name the program to run".into())),
            Some(program) if program.trim().is_empty() => {
                return Some(("exec", "the program's name is empty".into()));
            }
            Some(_) => {}
        }
        if self.timeout.is_zero() {
            return Some(("timeout", "must be more than zero".into()));
        }
        if self.max_concurrent == 0 || self.max_concurrent > MAX_IN_FLIGHT {
            return Some((
                "max_concurrent",
                format!("must be 1 to {MAX_IN_FLIGHT} (the node's calls in flight)"),
            ));
        }
        None
    }
}

/// `[calls]`: how this node makes calls when the caller does not say ([`crate::Node::call`],
/// `weft call`). Durations are human-readable (`"2s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// The whole call, lookup and failovers included (default `"30s"`).
    #[serde(with = "duration::serde_human")]
    pub timeout: Duration,
    /// One attempt at one provider (default `"10s"`): how long a dead provider holds a call
    /// up before it fails over.
    #[serde(with = "duration::serde_human")]
    pub attempt_timeout: Duration,
    /// Providers tried, at most (default 4).
    pub max_attempts: usize,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_CALL_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl CallsConfig {
    /// These settings as [`CallOptions`] (the pings keep their defaults).
    pub fn options(&self) -> CallOptions {
        CallOptions {
            timeout: self.timeout,
            attempt_timeout: self.attempt_timeout,
            max_attempts: self.max_attempts,
            ..CallOptions::default()
        }
    }

    /// What is wrong: `(key, message)`, the key under `calls`.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        if self.timeout.is_zero() {
            return Some(("timeout", "must be more than zero".into()));
        }
        if self.attempt_timeout.is_zero() {
            return Some(("attempt_timeout", "must be more than zero".into()));
        }
        if self.max_attempts == 0 {
            return Some(("max_attempts", "must be at least 1".into()));
        }
        None
    }
}
