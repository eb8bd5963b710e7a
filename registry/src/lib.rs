//! weft-registry (work in progress).
