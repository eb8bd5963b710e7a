//! The pluggable session protocol: what runs inside a session once the topic is agreed.
//!
//! A protocol is a sans-IO state machine, one per session. The manager hands it the peer's
//! messages and the items inserted elsewhere, and it answers through a [`Context`]: messages
//! to send, items it received (inserted into the topic's store through the context), and the
//! moment it has caught up. The built-in protocol is
//! [`SetReconciliation`](super::SetReconciliation); an application can plug in its own (an
//! append-only log's height exchange, say) by implementing [`SyncProtocol`] and
//! [`ProtocolFactory`].

use std::fmt;

use super::{
    Item, ItemError, ItemId, ReconcileError, SessionId,
    items::{Claim, TopicItems},
};
use crate::store::StoreError;

/// Which side of a session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Opened the session and named the topic.
    Initiator,
    /// Accepted the session.
    Acceptor,
}

/// How an item new to this node arrived, which decides how it travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Inserted by the application here.
    Local,
    /// Pushed by a peer in live mode: it is news, forward it at once.
    Live,
    /// Fetched while catching up: the peers may well have it; offer its id.
    CatchUp,
}

/// What a session moved while catching up, reported once it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpStats {
    /// Items received and newly stored.
    pub items_received: u64,
    /// Items sent to the peer.
    pub items_sent: u64,
    /// Protocol bytes received (session frames' payloads).
    pub bytes_received: u64,
    /// Protocol bytes sent.
    pub bytes_sent: u64,
    /// Reconciliation round trips: the initiator's messages the acceptor answered.
    pub round_trips: u32,
}

/// Why a session protocol failed. The session ends with it; nothing stored is touched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A message that does not decode, or breaks the protocol's rules.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A reconciliation message the reconciler refused.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    /// An item whose bytes do not hash to the id it was sent under, or too short.
    #[error(transparent)]
    Item(#[from] ItemError),
    /// An item that was not requested: its bytes hash to an id we did not ask for (forged
    /// bytes for a requested id, or an item nobody asked for).
    #[error("item {0} was not requested: its bytes hash to an id we did not ask for")]
    Unrequested(ItemId),
    /// An item larger than the limit.
    #[error("item of {size} bytes exceeds the limit of {max}")]
    ItemTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a protocol call can do: read and insert the topic's items, send messages, and say it
/// has caught up.
pub struct Context<'a> {
    role: Role,
    session: SessionId,
    items: &'a mut TopicItems,
    pub(super) sent: &'a mut Vec<Vec<u8>>,
    pub(super) received: &'a mut Vec<(Item, Origin)>,
    pub(super) caught_up: &'a mut bool,
    released: &'a mut bool,
}

impl<'a> Context<'a> {
    pub(super) fn new(
        role: Role,
        session: SessionId,
        items: &'a mut TopicItems,
        sent: &'a mut Vec<Vec<u8>>,
        received: &'a mut Vec<(Item, Origin)>,
        caught_up: &'a mut bool,
        released: &'a mut bool,
    ) -> Self {
        Self {
            role,
            session,
            items,
            sent,
            received,
            caught_up,
            released,
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The topic's items (read-only: insert through [`Context::insert`]).
    pub fn items(&self) -> &TopicItems {
        self.items
    }

    /// Sends a message to the peer.
    pub fn send(&mut self, message: Vec<u8>) {
        self.sent.push(message);
    }

    /// Asks to fetch `id`: [`Claim::Claimed`] if this session should request it,
    /// [`Claim::Elsewhere`] if another session of the topic is fetching it, [`Claim::Stored`]
    /// if it is here already. One fetch per item, however many neighbours offer it.
    pub fn claim(&mut self, id: ItemId) -> Result<Claim, StoreError> {
        self.items.claim(id, self.session)
    }

    /// Gives up a claim on `id` (the peer did not have it after all).
    pub fn release(&mut self, id: &ItemId) {
        self.items.release(id, self.session);
        *self.released = true;
    }

    /// Stores items fetched while catching up; those that were new are delivered to the
    /// application once and offered (by id) to the topic's other sessions. Returns how many
    /// were new.
    pub fn insert(&mut self, items: Vec<Item>) -> Result<usize, StoreError> {
        self.insert_from(items, Origin::CatchUp)
    }

    /// Stores items the peer pushed in live mode; those that were new are delivered to the
    /// application once and pushed on to the topic's other sessions at once.
    pub fn insert_live(&mut self, items: Vec<Item>) -> Result<usize, StoreError> {
        self.insert_from(items, Origin::Live)
    }

    fn insert_from(&mut self, items: Vec<Item>, origin: Origin) -> Result<usize, StoreError> {
        let fresh = self.items.insert_many(items)?;
        let count = fresh.len();
        self.received
            .extend(fresh.into_iter().map(|item| (item, origin)));
        Ok(count)
    }

    /// Says the session has caught up: from now on it is in live mode. Only the first call
    /// counts.
    pub fn caught_up(&mut self) {
        *self.caught_up = true;
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("role", &self.role)
            .field("session", &self.session)
            .finish()
    }
}

/// One session's protocol state machine.
pub trait SyncProtocol: Send + 'static {
    /// The session runs: the initiator usually sends its first message here.
    fn start(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError>;

    /// A message from the peer.
    fn receive(&mut self, message: &[u8], cx: &mut Context<'_>) -> Result<(), ProtocolError>;

    /// Items new to this node arrived elsewhere (inserted locally or received in another
    /// session): send them on if the peer may lack them, as their origin suggests.
    fn forward(
        &mut self,
        items: &[Item],
        origin: Origin,
        cx: &mut Context<'_>,
    ) -> Result<(), ProtocolError>;

    /// Another session of the topic gave up items it had claimed (it ended): fetch what this
    /// session still lacks. The default does nothing.
    fn resume(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        let _ = cx;
        Ok(())
    }

    /// What catching up moved so far (reported when the session has caught up).
    fn stats(&self) -> CatchUpStats;
}

/// Makes a [`SyncProtocol`] for each session of a topic.
pub trait ProtocolFactory: Send + Sync + 'static {
    /// The protocol's name, agreed in the handshake (both sides must run the same one).
    fn name(&self) -> &str;

    /// A fresh protocol state for one session.
    fn new_session(&self, role: Role) -> Box<dyn SyncProtocol>;
}
