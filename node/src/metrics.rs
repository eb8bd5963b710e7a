//! The node's counters: each layer's `iroh-metrics` group, collected under one prefix.
//!
//! The groups belong to the layers (usable à la carte: `Gossip::metrics()`,
//! `Endpoint::metrics()`, ...); the node only gathers the ones that run into a registry, so two
//! nodes in one process never share a counter (no global registry).

use iroh_metrics::Registry;

use crate::Node;

/// The prefix of every metric a node exports: `weft_gossip_pushes_sent_total`, ...
pub const METRICS_PREFIX: &str = "weft";

impl Node {
    /// A registry of this node's counters: one group per running layer (`transport`,
    /// `gossip`, `discovery`, `registry`, `sync`), under [`METRICS_PREFIX`]. Built on each call
    /// from the layers' shared groups, so it always reads live values.
    pub fn metrics(&self) -> Registry {
        let mut registry = Registry::default();
        let weft = registry.sub_registry_with_prefix(METRICS_PREFIX);
        weft.register(self.endpoint().metrics().clone());
        weft.register(self.gossip().metrics().clone());
        if let Some(discovery) = self.discovery() {
            weft.register(discovery.metrics().clone());
        }
        if let Some(layer) = self.registry() {
            weft.register(layer.metrics().clone());
        }
        if let Some(sync) = self.sync() {
            weft.register(sync.metrics().clone());
        }
        registry
    }

    /// This node's counters in the OpenMetrics text format, which Prometheus scrapes (what
    /// the admin server's `GET /metrics` answers), ending with `# EOF`.
    pub fn encode_metrics(&self) -> String {
        let mut text = String::new();
        // Writing into a `String` cannot fail.
        let _ = self.metrics().encode_openmetrics_to_writer(&mut text);
        text.push_str("# EOF\n");
        text
    }
}
