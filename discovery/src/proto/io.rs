//! The node's inputs and outputs: everything that crosses the sans-IO boundary, as data.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    time::Duration,
};

use weft_transport::{PeerId, RelayUrl};

use super::{
    catalog::UpsertOutcome,
    entry::EntryError,
    message::{Announcement, Message},
    shared::SharedEntry,
};

/// Something that happened to a node: fed to [`Node::handle`](crate::Node::handle).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// A timer armed by [`Output::ArmTimer`] fired.
    Timer(Timer),
    /// Gossip reports a new direct neighbour on the discovery topic: sync with it (once per
    /// connection run).
    NeighborUp(PeerId),
    /// Gossip reports that a neighbour went away: the next `NeighborUp` syncs again.
    NeighborDown(PeerId),
    /// Raw bytes received on the discovery gossip topic (decoded and verified here).
    Gossip(Vec<u8>),
    /// An announcement already decoded and verified (the simulator decodes once for all).
    Announcement(Announcement),
    /// A direct message from a peer (sync or ping), already decoded by
    /// [`Message::decode`].
    Message {
        /// The authenticated sender (the QUIC connection's peer id).
        from: PeerId,
        /// The message.
        message: Message,
    },
    /// A request from the application.
    Command(Command),
}

/// What the application asks of a node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Command {
    /// Replace the local direct addresses and relay (announced at once).
    SetAddresses {
        /// Direct addresses.
        direct: BTreeSet<SocketAddr>,
        /// Relay URL.
        relay: Option<RelayUrl>,
    },
    /// Replace the local tags (announced at once).
    SetTags(BTreeSet<String>),
    /// Replace the local metadata (announced at once).
    SetMetadata(BTreeMap<String, String>),
    /// Replace the local tags and metadata together: one new version, one announcement.
    SetContent {
        /// Tags.
        tags: BTreeSet<String>,
        /// Metadata.
        metadata: BTreeMap<String, String>,
    },
    /// Sync catalogs with `peer`, even if already synced this run.
    SyncWith(PeerId),
    /// Ping `peer` and measure the round trip.
    Ping(PeerId),
    /// Leave: broadcast a signed departure; the node then stops announcing.
    Depart,
}

/// Timers a node arms. Firing a timer that is no longer due is harmless: the node checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// Time to re-announce the local entry.
    Announce,
    /// Time to purge expired entries.
    Purge,
    /// A sync session's deadline.
    SyncTimeout {
        /// The peer.
        peer: PeerId,
        /// The session.
        session: u64,
    },
    /// Time to offer a sync again to a peer that was busy.
    SyncRetry {
        /// The peer.
        peer: PeerId,
    },
    /// A ping's deadline.
    PingTimeout {
        /// The peer.
        peer: PeerId,
        /// The ping's nonce.
        nonce: u64,
    },
}

/// What a node wants done: returned by [`Node::handle`](crate::Node::handle).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// Broadcast on the discovery gossip topic.
    Broadcast(Announcement),
    /// Send a direct message to a peer (the runtime dials it by id; discovery knows its
    /// addresses).
    Send {
        /// The receiver.
        to: PeerId,
        /// The message.
        message: Message,
    },
    /// Feed `Input::Timer(timer)` back at `at`, on the monotonic clock (`Now::mono`).
    ArmTimer {
        /// When: monotonic time, as in [`Now::mono`](crate::Now).
        at: Duration,
        /// Which timer.
        timer: Timer,
    },
    /// Report to the application.
    Event(Event),
}

/// What the application hears about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer we did not know. (The entry as the catalog holds it: shared, not copied.)
    PeerDiscovered(SharedEntry),
    /// A known peer's content changed (addresses, tags, metadata, or a restart).
    PeerUpdated(SharedEntry),
    /// A peer left the catalog.
    PeerDeparted {
        /// The peer.
        peer: PeerId,
        /// Why it left.
        reason: DepartReason,
    },
    /// A pong arrived.
    Pong {
        /// The peer.
        peer: PeerId,
        /// Round-trip time.
        rtt: Duration,
    },
    /// A ping got no answer in time, or could not be sent (too many pending).
    PingFailed {
        /// The peer.
        peer: PeerId,
    },
    /// A sync session ended.
    SyncFinished {
        /// The peer.
        peer: PeerId,
        /// Entries it taught us that were new or newer.
        learnt: usize,
    },
    /// A sync session was abandoned (timeout, or a busy peer: retried later).
    SyncFailed {
        /// The peer.
        peer: PeerId,
    },
    /// An entry was refused for a reason that suggests a faulty or hostile sender (not a
    /// duplicate or an old copy, which are routine).
    EntryRefused {
        /// Who handed it to us, when it came on a direct stream.
        from: Option<PeerId>,
        /// Why.
        outcome: UpsertOutcome,
    },
    /// A peer broke the protocol; its session (if any) was dropped.
    Violation {
        /// The peer.
        peer: PeerId,
        /// What it did.
        violation: Violation,
    },
    /// Received gossip bytes were not a valid announcement.
    BadAnnouncement(String),
    /// A local update was refused: the new entry would break the limits.
    LocalUpdateRefused(EntryError),
}

/// Why a peer left the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DepartReason {
    /// It announced its departure.
    Departed,
    /// It was not refreshed within `purge_after`.
    Purged,
    /// The catalog was full and it made room for a peer with better evidence of liveness.
    Evicted,
}

/// Protocol violations by a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A sync message that fits no session in progress with this peer.
    UnexpectedSyncMessage,
    /// An offer with a bucket count out of range or a fingerprint table of the wrong size.
    BadOffer,
    /// A digest with unordered or out-of-range buckets, or items outside them.
    BadDigest,
    /// Entries that were not asked for.
    UnwantedEntries,
    /// A pong whose entry is not the pinged peer's.
    BadPong,
}
