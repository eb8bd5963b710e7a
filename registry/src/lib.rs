//! weft-registry: signed provider records under human-readable names, stored on the `k` nodes
//! closest to `blake3(name)` in a Kademlia DHT.
//!
//! - [`proto`]: the protocol as a sans-IO state machine ([`proto::Node`]), with the routing
//!   table, the iterative lookup, signed records and removals, and the bounded store.
//! - [`sim`]: a deterministic simulator over the proto (thousands of nodes, virtual time).
//!
//! The registry learns peers only through [`proto::Input::AddPeers`]: whoever owns it (the node,
//! fed by discovery) pushes addresses in. It depends on `weft-transport` alone.

pub mod proto;
