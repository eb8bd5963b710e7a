//! The discovery simulator (work in progress).
