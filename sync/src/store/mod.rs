//! Where a topic's items live.
