//! Protocol parameters. Plain structs with `Default` and serde, so TOML scenario files and node
//! configs can set any of them; durations are written in milliseconds (`*_ms` in files).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the gossip protocol can be tuned with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Membership (HyParView) parameters.
    pub membership: HyparviewConfig,
    /// Broadcast (Plumtree) parameters.
    pub broadcast: PlumtreeConfig,
    /// Largest message on the wire, in bytes, framing included: the length prefix
    /// ([`weft_transport::frame_overhead`]) and the CBOR envelope around the content count.
    /// Broadcasts whose content would exceed it are refused with an error, never dropped silently.
    pub max_message_size: usize,
    /// Most topics a [`State`](crate::proto::State) joins at once; further joins are refused.
    pub max_topics: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            membership: HyparviewConfig::default(),
            broadcast: PlumtreeConfig::default(),
            max_message_size: 64 * 1024,
            max_topics: 1024,
        }
    }
}

/// HyParView membership parameters (names and defaults from the paper).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HyparviewConfig {
    /// Active view size: the peers we keep connections to and gossip with.
    pub active_view_capacity: usize,
    /// Passive view size: known peers kept as replacements.
    pub passive_view_capacity: usize,
    /// Active random walk length (ARWL) of a forward-join.
    pub active_random_walk_length: u16,
    /// Passive random walk length (PRWL): where along the walk the joiner enters passive views.
    pub passive_random_walk_length: u16,
    /// Random walk length of a shuffle.
    pub shuffle_random_walk_length: u16,
    /// Active peers included in a shuffle.
    pub shuffle_active_view_count: usize,
    /// Passive peers included in a shuffle.
    pub shuffle_passive_view_count: usize,
    /// Period of shuffles (and of the passive-view upkeep that runs with them).
    #[serde(with = "millis", rename = "shuffle_interval_ms")]
    pub shuffle_interval: Duration,
    /// How long a neighbour request may stay unanswered before we try another peer.
    #[serde(with = "millis", rename = "neighbor_request_timeout_ms")]
    pub neighbor_request_timeout: Duration,
    /// Chance per shuffle period that a full node swaps one of its links with a passive peer's
    /// (degree-preserving), so closed islands of full nodes open up and the overlay stays close
    /// to a random graph. 0 disables it.
    pub swap_probability: f64,
    /// A peer with two or more free active slots asks with `Split`, which a full peer accepts
    /// by handing over one of its links (see `hyparview::Message::Split`).
    pub split_links: bool,
    /// Period of retries to fill free active slots once every passive peer was asked.
    #[serde(with = "millis", rename = "refill_interval_ms")]
    pub refill_interval: Duration,
    /// Period of join retries while the active view is empty.
    #[serde(with = "millis", rename = "rejoin_interval_ms")]
    pub rejoin_interval: Duration,
    /// Peers lost to failures that we keep probing (one per shuffle period) so that a healed
    /// partition reconnects. Oldest forgotten when full.
    pub failed_peers_capacity: usize,
    /// Probes of one failed peer before it is forgotten.
    pub failed_peer_probes: u8,
}

impl Default for HyparviewConfig {
    fn default() -> Self {
        Self {
            active_view_capacity: 5,
            passive_view_capacity: 30,
            active_random_walk_length: 6,
            passive_random_walk_length: 3,
            shuffle_random_walk_length: 6,
            shuffle_active_view_count: 3,
            shuffle_passive_view_count: 4,
            shuffle_interval: Duration::from_secs(60),
            neighbor_request_timeout: Duration::from_millis(500),
            swap_probability: 0.25,
            split_links: true,
            refill_interval: Duration::from_secs(1),
            rejoin_interval: Duration::from_secs(5),
            failed_peers_capacity: 8,
            failed_peer_probes: 5,
        }
    }
}

/// Plumtree broadcast parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlumtreeConfig {
    /// How long IHAVEs are batched before they leave. Short, because the lazy path is what
    /// repairs the tree and what optimises it.
    #[serde(with = "millis", rename = "ihave_delay_ms")]
    pub ihave_delay: Duration,
    /// Shortest wait after the first IHAVE for a missing message before grafting (the wait
    /// adapts upwards, see `graft_timeout_max`). It must exceed how much later than an IHAVE the
    /// tree's own copy can come: a graft that the tree would have beaten adds a link, the
    /// tree's late copy then prunes another, and with varying senders the tree drifts and
    /// deepens. The default suits links of 10–50 ms (the simulator's); with a 100 ms wait the
    /// simulator's random-sender trees at 1,000 nodes were 16.6 hops deep, with 300 ms 10.5.
    /// On a LAN or loopback a few ms is right.
    #[serde(with = "millis", rename = "graft_timeout_1_ms")]
    pub graft_timeout_1: Duration,
    /// Upper bound of the first graft's wait, which adapts (between `graft_timeout_1` and this)
    /// to how late eager copies arrive after the first IHAVE on this node.
    #[serde(with = "millis", rename = "graft_timeout_max_ms")]
    pub graft_timeout_max: Duration,
    /// The first graft's wait is drawn from `[wait, wait × (1 + graft_jitter)]` (0 to 10; other
    /// values count as 0 or 10), so that of the
    /// nodes missing the same message (the far side of a broken tree link) one grafts first and
    /// brings the message to the others before their own grafts add redundant links.
    pub graft_jitter: f64,
    /// The first graft's wait on a node with no eager link yet (a new node, or the first
    /// broadcasts of a topic): no tree copy can come, so the wait only serves to hear the
    /// announcer with the fewest hops. Keeps the first broadcasts fast (simulator, 1,000 nodes,
    /// one sender: mean round 353 → 280 ms) without deeper trees.
    #[serde(with = "millis", rename = "graft_timeout_no_tree_ms")]
    pub graft_timeout_no_tree: Duration,
    /// Wait before grafting the next announcer when the first graft brought nothing.
    #[serde(with = "millis", rename = "graft_timeout_2_ms")]
    pub graft_timeout_2: Duration,
    /// New links start eager (the paper; the first broadcast floods and duplicates prune the
    /// tree) instead of lazy (grafts build the tree; no flood).
    pub eager_new_links: bool,
    /// A lazy link replaces the eager link a message came through when its IHAVE shows at
    /// least this many fewer hops. 0 (the default) disables the optimisation: it bends the tree
    /// towards each sender in turn, which suits one sender and deepens the tree for all others
    /// (simulator, 1,000 nodes, random sender: LDH 12.3 with 2, 10.5 with 0).
    pub optimization_threshold: u16,
    /// The originator of a broadcast sends the message itself (not an IHAVE) to its lazy peers
    /// too. Off by default: the duplicates it causes prune tree links, and with varying
    /// senders the tree deepens (simulator, 1,000 nodes, random sender: LDH 22.5 instead of
    /// 10.5).
    pub sender_push: bool,
    /// Message ids remembered for deduplication: at most this many...
    pub max_message_ids: usize,
    /// ...and for at most this long. The oldest go first when full.
    #[serde(with = "millis", rename = "message_id_retention_ms")]
    pub message_id_retention: Duration,
    /// Message contents kept to answer grafts: at most this many...
    pub max_cached_messages: usize,
    /// ...and for at most this long. The oldest go first when full.
    #[serde(with = "millis", rename = "message_cache_retention_ms")]
    pub message_cache_retention: Duration,
    /// A new neighbour gets IHAVEs for the messages of this last stretch of time (at most 256),
    /// so messages that crossed a changing part of the overlay still reach everyone. 0 disables.
    #[serde(with = "millis", rename = "link_up_announce_window_ms")]
    pub link_up_announce_window: Duration,
    /// Missing messages tracked (announced by IHAVE, not yet received). Oldest dropped when full.
    pub max_missing: usize,
    /// Announcers remembered per missing message. Further ones ignored.
    pub max_announcers: usize,
}

impl Default for PlumtreeConfig {
    fn default() -> Self {
        Self {
            ihave_delay: Duration::from_millis(2),
            graft_timeout_1: Duration::from_millis(300),
            graft_timeout_max: Duration::from_millis(300),
            graft_timeout_2: Duration::from_millis(80),
            graft_jitter: 1.0,
            graft_timeout_no_tree: Duration::from_millis(160),
            eager_new_links: false,
            optimization_threshold: 0,
            sender_push: false,
            max_message_ids: 16 * 1024,
            message_id_retention: Duration::from_secs(90),
            max_cached_messages: 1024,
            message_cache_retention: Duration::from_secs(30),
            link_up_announce_window: Duration::from_secs(5),
            max_missing: 4096,
            max_announcers: 8,
        }
    }
}

impl PlumtreeConfig {
    /// The round trip the default graft waits are set for: links of 10–50 ms one way, as in
    /// the simulator and on the internet.
    pub const DEFAULT_LINK_RTT: Duration = Duration::from_millis(60);

    /// The defaults with every graft wait scaled from [`Self::DEFAULT_LINK_RTT`] to links of
    /// round-trip time `rtt` (never below 1 ms). On a LAN, loopback or a memory network a few
    /// milliseconds is right; with the defaults there, the first broadcasts of a topic wait
    /// 160 ms per tree level and a missing message 300–600 ms.
    pub fn for_link_rtt(rtt: Duration) -> Self {
        let defaults = Self::default();
        let ratio = rtt.as_secs_f64() / Self::DEFAULT_LINK_RTT.as_secs_f64();
        let scale = |wait: Duration| {
            Duration::try_from_secs_f64(wait.as_secs_f64() * ratio)
                .unwrap_or(Duration::MAX)
                .max(Duration::from_millis(1))
        };
        Self {
            graft_timeout_1: scale(defaults.graft_timeout_1),
            graft_timeout_max: scale(defaults.graft_timeout_max),
            graft_timeout_2: scale(defaults.graft_timeout_2),
            graft_timeout_no_tree: scale(defaults.graft_timeout_no_tree),
            ..defaults
        }
    }
}

/// Serialises a [`Duration`] as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_roundtrip_and_partial_files() {
        let config = Config::default();
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("shuffle_interval_ms = 60000"));
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
        let partial: Config = toml::from_str("[broadcast]\ngraft_timeout_1_ms = 20\n").unwrap();
        assert_eq!(partial.broadcast.graft_timeout_1, Duration::from_millis(20));
        assert_eq!(partial.membership, HyparviewConfig::default());
    }

    #[test]
    fn graft_waits_scale_with_the_link_rtt() {
        let lan = PlumtreeConfig::for_link_rtt(Duration::from_millis(6));
        assert_eq!(lan.graft_timeout_1, Duration::from_millis(30));
        assert_eq!(lan.graft_timeout_no_tree, Duration::from_millis(16));
        assert_eq!(lan.graft_timeout_2, Duration::from_millis(8));
        assert_eq!(lan.ihave_delay, PlumtreeConfig::default().ihave_delay);
        let loopback = PlumtreeConfig::for_link_rtt(Duration::from_micros(50));
        assert_eq!(loopback.graft_timeout_2, Duration::from_millis(1));
        let same = PlumtreeConfig::for_link_rtt(PlumtreeConfig::DEFAULT_LINK_RTT);
        assert_eq!(same, PlumtreeConfig::default());
    }
}
