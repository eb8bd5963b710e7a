//! Why reconciliation failed.

/// Why a message is not a well-formed Negentropy v1 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The message has no version byte.
    #[error("empty message: no protocol version byte")]
    Empty,
    /// A varint runs past the end of the message.
    #[error("varint cut off by the end of the message")]
    TruncatedVarint,
    /// A varint encodes a value above `u64::MAX`.
    #[error("varint above u64::MAX")]
    VarintOverflow,
    /// A range's mode is not Skip (0), Fingerprint (1) or IdList (2).
    #[error("unknown range mode {0}")]
    BadMode(u64),
    /// A bound's id prefix or a fingerprint runs past the end of the message.
    #[error("bound or fingerprint cut off by the end of the message")]
    Truncated,
    /// A bound claims an id prefix longer than an id.
    #[error("bound with an id prefix of {0} bytes, more than 32")]
    IdPrefixTooLong(u64),
    /// An id list's count is more than the ids the rest of the message holds.
    #[error("id list of {count} ids with room for {available} left in the message")]
    IdListTruncated {
        /// The count the list claims.
        count: u64,
        /// Whole ids left in the message.
        available: usize,
    },
    /// A range ends below where the previous range ended.
    #[error("range bounds out of order")]
    BoundsOutOfOrder,
}

/// Why a [`Reconciler`](super::Reconciler) refused a call or a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The frame size limit is neither 0 (unlimited) nor at least 4096 bytes.
    #[error("frame size limit {0} is below the minimum of 4096 (0 means unlimited)")]
    FrameSizeLimitTooSmall(usize),
    /// The first byte is not a Negentropy version byte at all (0x60 to 0x6f).
    #[error("first byte {0:#04x} is not a Negentropy protocol version")]
    InvalidProtocolVersion(u8),
    /// The peer speaks a Negentropy version other than v1. An acceptor does not fail on this:
    /// it replies with the single byte 0x61, as the protocol asks; the initiator that gets
    /// such a reply fails with this.
    #[error("peer speaks Negentropy version {0:#04x}, not v1 (0x61)")]
    UnsupportedProtocolVersion(u8),
    /// The message is malformed.
    #[error("malformed message: {0}")]
    Malformed(#[from] MessageError),
    /// The message is longer than our frame size limit.
    #[error("message of {len} bytes over the frame size limit of {limit}")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// Our frame size limit.
        limit: usize,
    },
    /// `initiate` was called on a reconciler that has already initiated.
    #[error("initiate called twice")]
    AlreadyInitiated,
    /// `initiate` was called on a reconciler that has already accepted a peer's message.
    #[error("initiate called on a reconciler that is accepting")]
    AlreadyAccepting,
    /// `reconcile` was called on a reconciler made to initiate that has not initiated yet.
    #[error("reconcile called on an initiator before initiate")]
    NotInitiated,
}
