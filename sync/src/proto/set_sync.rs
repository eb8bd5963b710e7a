//! The built-in session protocol: Negentropy set reconciliation, then transfer of what each
//! side lacks in bounded batches, then live mode.
//!
//! Messages (CBOR, inside session `Data` frames):
//! - `Reconcile(bytes)`: a Negentropy v1 message (initiator → acceptor and back);
//! - `Offer(ids)`: ids the sender has and the receiver may lack: the initiator's `have` list
//!   during reconciliation, and later, from either side, ids of items it fetched elsewhere;
//! - `ReconcileDone`: initiator → acceptor: reconciliation is over, every offer of it was sent;
//! - `Want(ids)`: either side: send me these items;
//! - `Items { items, missing, later }`: the answer to a `Want`, at most one frame: the bytes of
//!   wanted items (the id is the hash of the bytes, so it is not repeated), the wanted ids the
//!   sender lacks, and the wanted ids that did not fit (asked again later);
//! - `Live(bytes)`: an item new to the sender, pushed without being asked.
//!
//! An item is fetched once per node: before requesting an id, a session claims it for the
//! topic ([`Context::claim`]); an id another session is fetching waits as *deferred* and is
//! requested only if that session ends without it. A side has caught up when reconciliation
//! is over and nothing it lacks is wanted, requested or deferred any more.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{
    Item, ItemId, Reconciler,
    items::Claim,
    protocol::{CatchUpStats, Context, Origin, ProtocolError, ProtocolFactory, Role, SyncProtocol},
};

/// The built-in protocol's name in the handshake.
pub const SET_RECONCILIATION: &str = "set-reconciliation/1";

/// CBOR overhead allowed per item in an `Items` message (its byte string header).
const PER_ITEM_OVERHEAD: usize = 9;
/// CBOR bytes of one id in a list (a 32-byte byte string).
const PER_ID: usize = 34;
/// Room for the `Items` message's own headers.
const ITEMS_OVERHEAD: usize = 64;

/// A message of the built-in protocol (CBOR inside a session's `Data` frame). Public so that
/// tests, fuzzers and other implementations speak it without a copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SetMessage {
    /// A Negentropy v1 message.
    Reconcile(ByteBuf),
    /// Ids the sender has and the receiver may lack.
    Offer(Vec<ItemId>),
    /// Initiator → acceptor: reconciliation is over; every offer of it was sent.
    ReconcileDone,
    /// Send me these items.
    Want(Vec<ItemId>),
    /// The answer to a `Want`, at most one frame.
    Items {
        /// The bytes of wanted items (their ids are their hashes).
        items: Vec<ByteBuf>,
        /// Wanted ids the sender lacks.
        missing: Vec<ItemId>,
        /// Wanted ids that did not fit: ask again.
        later: Vec<ItemId>,
    },
    /// An item new to the sender, pushed without being asked.
    Live(ByteBuf),
}

impl SetMessage {
    /// The message's CBOR bytes (what a `Data` frame carries).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        // Encoding plain data into a Vec cannot fail.
        let _ = ciborium::into_writer(self, &mut bytes);
        bytes
    }
}

/// Limits of the built-in protocol (from the manager's [`Config`](super::Config)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetConfig {
    /// Negentropy's frame size limit (0: unlimited, else ≥ 4,096).
    pub reconcile_frame_limit: usize,
    /// Most ids in one `Want` or `Offer`.
    pub max_batch_items: usize,
    /// Most ids requested and not yet answered.
    pub max_requested_items: usize,
    /// Most ids waiting to be requested (wanted or deferred); more fail the session.
    pub max_wanted_items: usize,
    /// Largest item accepted.
    pub max_item_size: usize,
    /// Budget for one message (the session frame limit less its framing).
    pub max_message_size: usize,
}

impl From<&super::Config> for SetConfig {
    fn from(config: &super::Config) -> Self {
        // Room for the session frame around the message.
        let max_message_size = config.max_frame_size.saturating_sub(64).max(4096);
        // A reconciliation message must fit in a frame, whatever the config says.
        let reconcile_frame_limit = match config.reconcile_frame_limit {
            0 => max_message_size,
            limit => limit.min(max_message_size),
        };
        let max_batch_items = config.max_batch_items.max(1);
        // An item must fit an `Items` answer beside a full batch of ids, or it would be
        // answered `later` for ever.
        let largest_fitting = max_message_size
            .saturating_sub(ITEMS_OVERHEAD + PER_ITEM_OVERHEAD + max_batch_items * PER_ID);
        Self {
            reconcile_frame_limit,
            max_batch_items,
            max_requested_items: config.max_requested_items.max(1),
            max_wanted_items: config.max_wanted_items.max(1),
            max_item_size: config.max_item_size.min(largest_fitting),
            max_message_size,
        }
    }
}

/// Makes [`SetReconciliation`] sessions.
#[derive(Debug, Clone, Copy)]
pub struct SetReconciliationFactory {
    config: SetConfig,
}

impl SetReconciliationFactory {
    /// A factory with these limits.
    pub fn new(config: SetConfig) -> Self {
        Self { config }
    }
}

impl ProtocolFactory for SetReconciliationFactory {
    fn name(&self) -> &str {
        SET_RECONCILIATION
    }

    fn new_session(&self, role: Role) -> Box<dyn SyncProtocol> {
        Box::new(SetReconciliation::new(self.config, role))
    }
}

/// One session of the built-in protocol.
#[derive(Debug)]
pub struct SetReconciliation {
    config: SetConfig,
    role: Role,
    reconciler: Option<Reconciler>,
    reconciled: bool,
    /// Ids we lack and have not requested yet.
    to_want: VecDeque<ItemId>,
    /// Ids another session is fetching: requested here only if it ends without them.
    deferred: HashSet<ItemId>,
    /// Ids requested and not answered yet.
    requested: HashSet<ItemId>,
    caught_up: bool,
    stats: CatchUpStats,
}

impl SetReconciliation {
    /// A session in `role`.
    pub fn new(config: SetConfig, role: Role) -> Self {
        Self {
            config,
            role,
            reconciler: None,
            reconciled: false,
            to_want: VecDeque::new(),
            deferred: HashSet::new(),
            requested: HashSet::new(),
            caught_up: false,
            stats: CatchUpStats::default(),
        }
    }

    fn send(&mut self, cx: &mut Context<'_>, message: &SetMessage) {
        cx.send(message.encode());
    }

    fn reconciler(&mut self) -> Result<&mut Reconciler, ProtocolError> {
        if self.reconciler.is_none() {
            let limit = self.config.reconcile_frame_limit;
            self.reconciler = Some(match self.role {
                Role::Initiator => Reconciler::initiator(limit)?,
                Role::Acceptor => Reconciler::new(limit)?,
            });
        }
        Ok(self.reconciler.as_mut().expect("set above"))
    }

    fn check_batch(&self, ids: &[ItemId], what: &str) -> Result<(), ProtocolError> {
        if ids.len() > self.config.max_batch_items {
            return Err(ProtocolError::Malformed(format!(
                "{what} of {} ids exceeds the batch limit of {}",
                ids.len(),
                self.config.max_batch_items
            )));
        }
        Ok(())
    }

    fn on_reconcile(&mut self, message: &[u8], cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        if self.reconciled {
            return Err(ProtocolError::Malformed(
                "reconciliation message after reconciliation ended".into(),
            ));
        }
        let role = self.role;
        let reconciler = self.reconciler()?;
        let outcome = reconciler.reconcile(cx.items().index(), message)?;
        self.stats.round_trips += 1;
        match role {
            Role::Acceptor => {
                let reply = outcome.reply.unwrap_or_default();
                self.send(cx, &SetMessage::Reconcile(ByteBuf::from(reply)));
            }
            Role::Initiator => {
                self.want(outcome.need)?;
                for offer in outcome.have.chunks(self.config.max_batch_items) {
                    self.send(cx, &SetMessage::Offer(offer.to_vec()));
                }
                match outcome.reply {
                    Some(reply) => self.send(cx, &SetMessage::Reconcile(ByteBuf::from(reply))),
                    None => {
                        self.reconciled = true;
                        self.send(cx, &SetMessage::ReconcileDone);
                    }
                }
            }
        }
        Ok(())
    }

    /// Queues ids to fetch; more than `max_wanted_items` waiting fails the session.
    fn want(&mut self, ids: Vec<ItemId>) -> Result<(), ProtocolError> {
        if self.to_want.len() + self.deferred.len() + ids.len() > self.config.max_wanted_items {
            return Err(ProtocolError::Malformed(format!(
                "more than {} ids waiting to be fetched",
                self.config.max_wanted_items
            )));
        }
        self.to_want.extend(ids);
        Ok(())
    }

    /// Requests what we lack and no other session is fetching, keeping at most
    /// `max_requested_items` in flight.
    fn pump_wants(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        // Deferred ids first: their fetcher may have delivered them, or given up.
        let deferred: Vec<ItemId> = self.deferred.iter().copied().collect();
        for id in deferred {
            match cx.claim(id)? {
                Claim::Stored => {
                    self.deferred.remove(&id);
                }
                Claim::Claimed => {
                    self.deferred.remove(&id);
                    self.to_want.push_front(id);
                }
                Claim::Elsewhere => {}
            }
        }
        let mut batch = Vec::new();
        while self.requested.len() < self.config.max_requested_items {
            let Some(id) = self.to_want.pop_front() else {
                break;
            };
            if self.requested.contains(&id) {
                continue;
            }
            match cx.claim(id)? {
                Claim::Stored => {}
                Claim::Elsewhere => {
                    self.deferred.insert(id);
                }
                Claim::Claimed => {
                    self.requested.insert(id);
                    batch.push(id);
                    if batch.len() == self.config.max_batch_items {
                        self.send(cx, &SetMessage::Want(std::mem::take(&mut batch)));
                    }
                }
            }
        }
        if !batch.is_empty() {
            self.send(cx, &SetMessage::Want(batch));
        }
        Ok(())
    }

    fn on_want(&mut self, ids: Vec<ItemId>, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        self.check_batch(&ids, "want")?;
        let budget = self.config.max_message_size.saturating_sub(ITEMS_OVERHEAD);
        let (mut items, mut missing, mut later) = (Vec::new(), Vec::new(), Vec::new());
        // Every id we do not send now is listed once (missing or later): reserve its room.
        let mut size = ids.len() * PER_ID;
        for id in ids {
            match cx.items().get(&id)? {
                Some(item) if size + item.len() + PER_ITEM_OVERHEAD <= budget => {
                    size += item.len() + PER_ITEM_OVERHEAD;
                    items.push(ByteBuf::from(item.as_bytes().to_vec()));
                }
                Some(_) => later.push(id),
                None => missing.push(id),
            }
        }
        self.stats.items_sent += items.len() as u64;
        self.send(
            cx,
            &SetMessage::Items {
                items,
                missing,
                later,
            },
        );
        Ok(())
    }

    fn on_items(
        &mut self,
        items: Vec<ByteBuf>,
        missing: &[ItemId],
        later: &[ItemId],
        cx: &mut Context<'_>,
    ) -> Result<(), ProtocolError> {
        let mut verified = Vec::with_capacity(items.len());
        for bytes in items {
            self.check_size(bytes.len())?;
            // The id is the hash of the bytes: bytes that hash to no id we asked for are
            // either forged or unasked, and both end the session.
            let item = Item::from_bytes(bytes.into_vec())?;
            if !self.requested.remove(&item.id()) {
                return Err(ProtocolError::Unrequested(item.id()));
            }
            verified.push(item);
        }
        for id in missing {
            if !self.requested.remove(id) {
                return Err(ProtocolError::Unrequested(*id));
            }
            // The peer offered it but lacks it now; another neighbour may have it.
            cx.release(id);
        }
        for id in later.iter().rev() {
            if !self.requested.remove(id) {
                return Err(ProtocolError::Unrequested(*id));
            }
            // Still ours to fetch: ask again first thing.
            self.to_want.push_front(*id);
        }
        self.stats.items_received += cx.insert(verified)? as u64;
        Ok(())
    }

    fn check_size(&self, size: usize) -> Result<(), ProtocolError> {
        if size > self.config.max_item_size {
            return Err(ProtocolError::ItemTooLarge {
                size,
                max: self.config.max_item_size,
            });
        }
        Ok(())
    }

    fn check_caught_up(&mut self, cx: &mut Context<'_>) {
        if !self.caught_up
            && self.reconciled
            && self.to_want.is_empty()
            && self.requested.is_empty()
            && self.deferred.is_empty()
        {
            self.caught_up = true;
            cx.caught_up();
        }
    }

    fn step(&mut self, message: SetMessage, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        match message {
            SetMessage::Reconcile(bytes) => self.on_reconcile(&bytes, cx)?,
            SetMessage::Offer(ids) => {
                self.check_batch(&ids, "offer")?;
                self.want(ids)?;
            }
            SetMessage::ReconcileDone => {
                if self.role == Role::Initiator || self.reconciled {
                    return Err(ProtocolError::Malformed(
                        "unexpected end of reconciliation".into(),
                    ));
                }
                self.reconciled = true;
            }
            SetMessage::Want(ids) => self.on_want(ids, cx)?,
            SetMessage::Items {
                items,
                missing,
                later,
            } => self.on_items(items, &missing, &later, cx)?,
            SetMessage::Live(bytes) => {
                self.check_size(bytes.len())?;
                let item = Item::from_bytes(bytes.into_vec())?;
                cx.insert_live(vec![item])?;
            }
        }
        Ok(())
    }

    /// What every call ends with: fetch what is missing, and say when caught up.
    fn settle(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        self.pump_wants(cx)?;
        self.check_caught_up(cx);
        Ok(())
    }
}

impl SyncProtocol for SetReconciliation {
    fn start(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        if self.role == Role::Initiator {
            let first = self.reconciler()?.initiate(cx.items().index())?;
            self.send(cx, &SetMessage::Reconcile(ByteBuf::from(first)));
        }
        Ok(())
    }

    fn receive(&mut self, message: &[u8], cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        let message: SetMessage = ciborium::from_reader(message)
            .map_err(|err| ProtocolError::Malformed(err.to_string()))?;
        self.step(message, cx)?;
        self.settle(cx)
    }

    fn forward(
        &mut self,
        items: &[Item],
        origin: Origin,
        cx: &mut Context<'_>,
    ) -> Result<(), ProtocolError> {
        match origin {
            // News: push the bytes at once, latency matters more than the odd duplicate.
            Origin::Local | Origin::Live => {
                for item in items {
                    self.send(
                        cx,
                        &SetMessage::Live(ByteBuf::from(item.as_bytes().to_vec())),
                    );
                }
            }
            // Fetched while catching up: the peer most likely has these; 34 bytes an id
            // instead of the item, and it fetches what it lacks.
            Origin::CatchUp => {
                let ids: Vec<ItemId> = items.iter().map(Item::id).collect();
                for offer in ids.chunks(self.config.max_batch_items) {
                    self.send(cx, &SetMessage::Offer(offer.to_vec()));
                }
            }
        }
        // Items that arrived elsewhere may be ones this session deferred.
        self.settle(cx)
    }

    fn resume(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        self.settle(cx)
    }

    fn stats(&self) -> CatchUpStats {
        self.stats
    }
}
