//! Requests and responses of the `registry/1` protocol, as serde enums carried in CBOR frames.
//!
//! Every request gets exactly one response on the same stream. Records and removals travel in
//! their signed envelopes and are verified while decoding: a message that holds a forged or
//! misattributed record fails to decode as a whole, and the runtime treats its sender as a peer
//! that answered garbage.

use serde::{Deserialize, Serialize};
use weft_transport::PeerAddr;

use super::{
    id::DhtId,
    record::{SignedRecord, SignedRemoval},
    store::{Refusal, Stored},
};

/// The largest encoded request or response, in bytes. A `Providers` answer holds at most
/// `max_per_key` (64) records of about 1.5 KiB each and at most `5k` addresses (`k` and the
/// crowding excess, see `crowding`).
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// A request from one registry node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// Are you alive? Answered with [`Response::Pong`].
    Ping,
    /// Which nodes do you know closest to `target`? Answered with [`Response::Nodes`].
    FindNode {
        /// The id looked up.
        target: DhtId,
    },
    /// Which providers do you hold for `key`, and which nodes closer to it do you know?
    /// Answered with [`Response::Providers`].
    GetProviders {
        /// `blake3(name)`.
        key: DhtId,
    },
    /// Store this record. Answered with [`Response::Ack`].
    AddProvider {
        /// The signed record.
        record: SignedRecord,
    },
    /// Delete the records this removal covers and keep it. Answered with [`Response::Ack`].
    RemoveProvider {
        /// The signed removal.
        removal: SignedRemoval,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Response {
    /// Answers [`Request::Ping`].
    Pong,
    /// Answers [`Request::FindNode`]: up to `k` known nodes closest to the target.
    Nodes {
        /// Closest first.
        closer: Vec<PeerAddr>,
    },
    /// Answers [`Request::GetProviders`].
    Providers {
        /// The live records held for the key (empty for an unknown name: not an error).
        providers: Vec<SignedRecord>,
        /// Up to `k` known nodes closest to the key.
        closer: Vec<PeerAddr>,
    },
    /// Answers [`Request::AddProvider`] and [`Request::RemoveProvider`].
    Ack(Ack),
}

/// Whether a record or removal was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Ack {
    /// Stored (new, updated, or already held).
    Stored(Stored),
    /// Refused, and why.
    Refused(Refusal),
}

impl From<Result<Stored, Refusal>> for Ack {
    fn from(result: Result<Stored, Refusal>) -> Self {
        match result {
            Ok(stored) => Ack::Stored(stored),
            Err(refusal) => Ack::Refused(refusal),
        }
    }
}
