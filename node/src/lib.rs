//! weft-node: every weft layer behind one builder, a config file and a data directory.
//!
//! A node composes `weft-transport`, `weft-gossip`, `weft-discovery`,
//! `weft-registry` and `weft-sync` on one endpoint and wires them to each other; the `weft`
//! command runs one as a daemon. Nothing but `xtask` depends on this crate.

pub mod admin;
