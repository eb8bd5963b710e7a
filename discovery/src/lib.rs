//! weft-discovery (work in progress).
