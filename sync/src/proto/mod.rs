//! The sans-IO half: no clocks, no sockets, no OS randomness. Time and seeds are passed in.

mod config;
mod fingerprint;
mod index;
mod item;
mod items;
mod manager;
mod negentropy;
mod protocol;
mod set_sync;
mod wire;

pub use config::Config;
pub use fingerprint::{FINGERPRINT_LEN, Fingerprint, IdSum};
pub use index::{Index, Keys};
pub use item::{Item, ItemError, ItemId, ItemKey, TIMESTAMP_LEN};
pub use items::{Claim, TopicItems};
pub use manager::{
    EndReason, Event, Input, InsertError, Manager, Output, SessionError, SessionId, SessionInfo,
    SubscribeError, Timer,
};
pub use negentropy::{
    MIN_FRAME_SIZE_LIMIT, MessageError, NEGENTROPY_V1, ReconcileError, Reconciled, Reconciler,
};
pub use protocol::{
    CatchUpStats, Context, Origin, ProtocolError, ProtocolFactory, Role, SyncProtocol,
};
pub use set_sync::{
    SET_RECONCILIATION, SetConfig, SetMessage, SetReconciliation, SetReconciliationFactory,
};
pub use wire::{Frame, Refusal};
