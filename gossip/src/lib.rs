//! weft-gossip (work in progress).
