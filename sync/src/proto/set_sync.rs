//! The built-in session protocol: Negentropy set reconciliation, then transfer of what each
//! side lacks in bounded batches, then live mode.
//!
//! Messages (CBOR, inside session `Data` frames):
//! - `Reconcile(bytes)`: a Negentropy v1 message (initiator → acceptor and back);
//! - `Offer(ids)`: initiator → acceptor: ids the acceptor lacks (it will `Want` them);
//! - `ReconcileDone`: initiator → acceptor: reconciliation is over, every offer was sent;
//! - `Want(ids)`: either side: send me these items;
//! - `Items { items, missing }`: the answer to a `Want`: the bytes of each wanted item (its id
//!   is the hash of its bytes, so it is not repeated), and the wanted ids the sender lacks;
//! - `Live(bytes)`: an item new to the sender, pushed without being asked.
//!
//! Each side has caught up when reconciliation is over and every id it lacks has been
//! answered.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{
    Item, ItemId, Reconciler,
    protocol::{CatchUpStats, Context, ProtocolError, ProtocolFactory, Role, SyncProtocol},
};

/// The built-in protocol's name in the handshake.
pub const SET_RECONCILIATION: &str = "set-reconciliation/1";

/// CBOR overhead allowed per item in an `Items` message (its byte string header).
const PER_ITEM_OVERHEAD: usize = 9;

/// A message of the built-in protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum SetMessage {
    Reconcile(ByteBuf),
    Offer(Vec<ItemId>),
    ReconcileDone,
    Want(Vec<ItemId>),
    Items {
        items: Vec<ByteBuf>,
        missing: Vec<ItemId>,
    },
    Live(ByteBuf),
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
    /// Largest item accepted.
    pub max_item_size: usize,
    /// Budget for one `Items` message (the session frame limit).
    pub max_message_size: usize,
}

impl From<&super::Config> for SetConfig {
    fn from(config: &super::Config) -> Self {
        Self {
            reconcile_frame_limit: config.reconcile_frame_limit,
            max_batch_items: config.max_batch_items.max(1),
            max_requested_items: config.max_requested_items.max(1),
            max_item_size: config.max_item_size,
            // Room for the session frame around the message.
            max_message_size: config.max_frame_size.saturating_sub(64).max(4096),
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
            requested: HashSet::new(),
            caught_up: false,
            stats: CatchUpStats::default(),
        }
    }

    fn send(&mut self, cx: &mut Context<'_>, message: &SetMessage) {
        let mut bytes = Vec::new();
        // Encoding plain data into a Vec cannot fail.
        let _ = ciborium::into_writer(message, &mut bytes);
        cx.send(bytes);
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
        match role {
            Role::Acceptor => {
                self.stats.round_trips += 1;
                let reply = outcome.reply.unwrap_or_default();
                self.send(cx, &SetMessage::Reconcile(ByteBuf::from(reply)));
            }
            Role::Initiator => {
                self.stats.round_trips += 1;
                self.want(outcome.need);
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

    fn want(&mut self, ids: Vec<ItemId>) {
        self.to_want.extend(ids);
    }

    /// Requests what we lack, keeping at most `max_requested_items` in flight.
    fn pump_wants(&mut self, cx: &mut Context<'_>) {
        loop {
            let room = self
                .config
                .max_requested_items
                .saturating_sub(self.requested.len())
                .min(self.config.max_batch_items);
            if room == 0 || self.to_want.is_empty() {
                return;
            }
            let mut batch = Vec::with_capacity(room.min(self.to_want.len()));
            while batch.len() < room {
                let Some(id) = self.to_want.pop_front() else {
                    break;
                };
                if self.requested.insert(id) {
                    batch.push(id);
                }
            }
            if !batch.is_empty() {
                self.send(cx, &SetMessage::Want(batch));
            }
        }
    }

    fn on_want(&mut self, ids: Vec<ItemId>, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        self.check_batch(&ids, "want")?;
        let budget = self.config.max_message_size;
        let mut items = Vec::new();
        let mut missing = Vec::new();
        let mut size = 0;
        for id in ids {
            match cx.items().get(&id)? {
                Some(item) => {
                    let cost = item.len() + PER_ITEM_OVERHEAD;
                    if size + cost > budget && !items.is_empty() {
                        let batch = std::mem::take(&mut items);
                        self.send_items(cx, batch, Vec::new());
                        size = 0;
                    }
                    size += cost;
                    items.push(ByteBuf::from(item.as_bytes().to_vec()));
                }
                None => missing.push(id),
            }
        }
        self.send_items(cx, items, missing);
        Ok(())
    }

    fn send_items(&mut self, cx: &mut Context<'_>, items: Vec<ByteBuf>, missing: Vec<ItemId>) {
        self.stats.items_sent += items.len() as u64;
        self.send(cx, &SetMessage::Items { items, missing });
    }

    fn on_items(
        &mut self,
        items: Vec<ByteBuf>,
        missing: Vec<ItemId>,
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
            if !self.requested.remove(&id) {
                return Err(ProtocolError::Unrequested(id));
            }
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
        {
            self.caught_up = true;
            cx.caught_up();
        }
    }

    fn step(&mut self, message: SetMessage, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        match message {
            SetMessage::Reconcile(bytes) => self.on_reconcile(&bytes, cx)?,
            SetMessage::Offer(ids) => {
                if self.role == Role::Initiator || self.reconciled {
                    return Err(ProtocolError::Malformed("unexpected offer".into()));
                }
                self.check_batch(&ids, "offer")?;
                self.want(ids);
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
            SetMessage::Items { items, missing } => self.on_items(items, missing, cx)?,
            SetMessage::Live(bytes) => {
                self.check_size(bytes.len())?;
                let item = Item::from_bytes(bytes.into_vec())?;
                cx.insert(vec![item])?;
            }
        }
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
        self.pump_wants(cx);
        self.check_caught_up(cx);
        Ok(())
    }

    fn forward(&mut self, item: &Item, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        // An id we are about to request is one the peer has: no need to push it back.
        self.send(
            cx,
            &SetMessage::Live(ByteBuf::from(item.as_bytes().to_vec())),
        );
        Ok(())
    }

    fn stats(&self) -> CatchUpStats {
        self.stats
    }
}
