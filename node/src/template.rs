//! The commented config file that `weft init` writes ([`crate::Config::template`]).
//!
//! Every value shown is the default, so the file parses to `Config::default()` (a unit test
//! holds it to that); uncomment and change what you need.

/// The template text.
pub(crate) const TEMPLATE: &str = r#"# weft node configuration.
#
# Precedence, lowest first: defaults < this file < WEFT_* environment variables < flags.
# Unknown keys are errors. Durations in [node], [rendezvous], [topology], [calls] and [[service]] read
# "250ms", "5s", "2m", "1h"; the layer sections below use integer milliseconds (keys ending
# in _ms).
# `weft config show` prints every key with its effective value.

[node]
# The network's name. Nodes of different networks cannot talk to each other.
# (env: WEFT_NODE_NETWORK)
network = "weft"

# The UDP socket. Loopback by default: nothing is reachable from other machines until you
# opt in, e.g. bind = "0.0.0.0:4433" (a fixed port keeps your ticket stable across restarts).
# (env: WEFT_NODE_BIND)
bind = "127.0.0.1:0"

# The longest a graceful shutdown may take: sync sessions end, registrations are withdrawn,
# the departure is announced, gossip topics are left, then connections close.
# (env: WEFT_NODE_SHUTDOWN_GRACE)
shutdown_grace = "5s"

# The data directory, for `weft --config FILE ...` (relative to FILE's directory). Without
# it: --data-dir, else WEFT_DATA_DIR, else $XDG_DATA_HOME/weft or ~/.local/share/weft.
# data_dir = "data"

[bootstrap]
# Peers to join through at the first start: tickets (weft1...) or "<peer id>@<ip:port>".
# After that the node also remembers the peers it saw (state.toml in the data directory).
# (env: WEFT_BOOTSTRAP_PEERS, comma-separated)
peers = []
# Find the nodes of this network on the local link (multicast beacons, no ticket). Needs a
# bind address on the LAN (e.g. bind = "0.0.0.0:4433" above); the beacons never leave the link.
local_network = false

[admin]
# The local admin API that the `weft` command talks to, on loopback only.
# (env: WEFT_ADMIN_ENABLED, WEFT_ADMIN_BIND, WEFT_ADMIN_OPEN_METRICS)
enabled = true
bind = "127.0.0.1:0"
# GET /metrics without the token, for a Prometheus scraper on this machine.
open_metrics = false

[layers]
# The optional layers; gossip is the base and always runs. Without discovery the node knows
# only its bootstrap peers; without the registry nothing is found by name (no `weft call`,
# `weft registry`, [[service]]); without sync there are no sync topics and no sync store.
# (env: WEFT_LAYERS_DISCOVERY, WEFT_LAYERS_REGISTRY, WEFT_LAYERS_SYNC)
discovery = true
registry = true
sync = true

[calls]
# How this node's calls (`weft call`) try a service's providers: the whole call, one
# attempt at one provider (what a dead provider costs before the next is tried), attempts.
timeout = "30s"
attempt_timeout = "10s"
max_attempts = 4

# Programs this node serves by name, one [[service]] each. A call runs the program (no
# shell) with the request on stdin and answers with its stdout (at most 1 MiB); a non-zero
# exit or a run past `timeout` (the program is killed) is an error answer, and beyond
# `max_concurrent` runs at once a call is told busy, so its caller tries another provider.
# The program's stderr goes to this node's log.
# [[service]]
# name = "upper"
# exec = ["tr", "a-z", "A-Z"]
# timeout = "10s"
# max_concurrent = 8

# Each layer's own settings; every key is optional. See `weft config show` for all of them.
[gossip]
# max_message_size = 65536

[discovery]
# announce_interval_ms = 30000
# purge_after_ms = 90000

[registry]
# k = 20
# record_ttl_ms = 300000

[sync]
# max_topics = 256

[rendezvous]
# Subscribed topics register in the registry (weft/topic/1/...) and join through the other
# subscribers found there; lookups repeat, retry_min doubling up to retry_max, while a topic
# has no neighbour. Takes effect only where the registry runs.
# enabled = true
# max_peers = 16
# retry_min = "1s"
# retry_max = "1m"

[topology]
# This node tells peers of its network its neighbours on a topic it joined (never its
# passive view), for their status pages' graphs; its own queries ask at most max_asked
# peers, max_depth hops out, each within query_timeout.
# answer = true
# max_asked = 32
# max_depth = 3
# query_timeout = "1s"
"#;
