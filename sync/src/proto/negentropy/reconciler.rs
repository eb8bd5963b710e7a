//! The Negentropy v1 state machine, on an [`Index`].
//!
//! It follows the reference implementation (rust-nostr's `negentropy` 0.5) step for step,
//! including where it cuts a message at the frame size limit, so that for the same set, limit
//! and input our messages are the reference's byte for byte. What differs is the cost: every
//! range fingerprint and every rank lookup is O(log n) on the index instead of a scan.

use super::{
    MessageError, ReconcileError,
    bound::{Bound, BoundWriter},
    message::{self, IdList, Mode, NEGENTROPY_V1, Payload, RangeReader},
};
use crate::proto::{Index, ItemId};

/// Ranges are split into this many sub-ranges when fingerprints differ.
const BUCKETS: usize = 16;

/// Ranges of fewer keys than this are sent as id lists rather than split.
const ID_LIST_BELOW: usize = BUCKETS * 2;

/// The smallest frame size limit other than 0 (unlimited).
pub const MIN_FRAME_SIZE_LIMIT: usize = 4096;

/// Room kept below the frame size limit for the closing fingerprint, as the reference does.
const FRAME_SLACK: usize = 200;

/// Negentropy v1 set reconciliation for one session, one side.
///
/// The initiator calls [`initiate`](Self::initiate) once, sends the result, and feeds every
/// reply to [`reconcile`](Self::reconcile) until it returns no reply. The acceptor feeds every
/// message it receives to [`reconcile`](Self::reconcile) and sends back each reply. The role is
/// fixed by the first call; [`initiator`](Self::initiator) fixes it up front.
///
/// The reconciler keeps no copy of the set: each call reads the [`Index`] it is given, which
/// may have grown between calls (items fetched meanwhile do no harm: they only make later
/// ranges agree sooner).
///
/// Two deliberate differences from the reference, both on input it would accept: a message
/// longer than our own frame size limit is refused (so both sides must use the same limit, or
/// the larger one must be ours), and a message whose bounds go backwards is refused rather
/// than read as empty ranges. A key with timestamp `u64::MAX` is never reconciled, by either
/// implementation: the wire reserves that timestamp for the infinite bound.
///
/// ```
/// use weft_sync::proto::{Index, ItemId, ItemKey, Reconciler};
///
/// let ours = Index::from_keys([ItemKey::new(1, ItemId([1; 32])), ItemKey::new(2, ItemId([2; 32]))]);
/// let theirs = Index::from_keys([ItemKey::new(1, ItemId([1; 32])), ItemKey::new(3, ItemId([3; 32]))]);
/// let mut initiator = Reconciler::new(0)?;
/// let mut acceptor = Reconciler::new(0)?;
/// let mut message = initiator.initiate(&ours)?;
/// let (mut have, mut need) = (Vec::new(), Vec::new());
/// loop {
///     let reply = acceptor.reconcile(&theirs, &message)?.reply.expect("acceptors always reply");
///     let round = initiator.reconcile(&ours, &reply)?;
///     have.extend(round.have);
///     need.extend(round.need);
///     match round.reply {
///         Some(next) => message = next,
///         None => break,
///     }
/// }
/// assert_eq!((have, need), (vec![ItemId([2; 32])], vec![ItemId([3; 32])]));
/// # Ok::<(), weft_sync::proto::ReconcileError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reconciler {
    frame_size_limit: usize,
    role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Decided by the first call.
    Open,
    /// Made with [`Reconciler::initiator`]; `initiate` not called yet.
    Uninitiated,
    Initiator,
    Acceptor,
}

/// What one message taught us, and what to send back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// The message to send to the peer. For the initiator, `None` once reconciliation is
    /// complete; for the acceptor, always `Some`.
    pub reply: Option<Vec<u8>>,
    /// Initiator only: ids we have and the peer lacks (learned in this round).
    pub have: Vec<ItemId>,
    /// Initiator only: ids the peer has and we lack (learned in this round).
    pub need: Vec<ItemId>,
}

impl Reconciler {
    /// A reconciler whose messages stay within `frame_size_limit` bytes (0: unlimited; else at
    /// least [`MIN_FRAME_SIZE_LIMIT`]). Its role is set by the first call: `initiate` makes it
    /// the initiator, `reconcile` the acceptor.
    pub fn new(frame_size_limit: usize) -> Result<Self, ReconcileError> {
        if frame_size_limit != 0 && frame_size_limit < MIN_FRAME_SIZE_LIMIT {
            return Err(ReconcileError::FrameSizeLimitTooSmall(frame_size_limit));
        }
        Ok(Self {
            frame_size_limit,
            role: Role::Open,
        })
    }

    /// A reconciler that must initiate: `reconcile` before `initiate` is
    /// [`ReconcileError::NotInitiated`] rather than a switch to the acceptor role.
    pub fn initiator(frame_size_limit: usize) -> Result<Self, ReconcileError> {
        let mut reconciler = Self::new(frame_size_limit)?;
        reconciler.role = Role::Uninitiated;
        Ok(reconciler)
    }

    /// Whether this reconciler has initiated.
    pub fn is_initiator(&self) -> bool {
        self.role == Role::Initiator
    }

    /// The initiator's first message: fingerprints (or ids) of the whole set.
    pub fn initiate(&mut self, index: &Index) -> Result<Vec<u8>, ReconcileError> {
        match self.role {
            Role::Initiator => return Err(ReconcileError::AlreadyInitiated),
            Role::Acceptor => return Err(ReconcileError::AlreadyAccepting),
            Role::Open | Role::Uninitiated => self.role = Role::Initiator,
        }
        let mut out = vec![NEGENTROPY_V1];
        split_range(
            index,
            0,
            index.len(),
            &Bound::INFINITY,
            &mut BoundWriter::default(),
            &mut out,
        );
        Ok(out)
    }

    /// Handles one message from the peer: for the initiator, the acceptor's reply; for the
    /// acceptor, the initiator's message.
    ///
    /// Costs O(log n) per range of the message for fingerprints, plus the length of the ranges
    /// the peer sent or asks for as id lists, which the protocol makes it walk.
    pub fn reconcile(
        &mut self,
        index: &Index,
        message: &[u8],
    ) -> Result<Reconciled, ReconcileError> {
        let initiator = match self.role {
            Role::Uninitiated => return Err(ReconcileError::NotInitiated),
            Role::Initiator => true,
            Role::Acceptor => false,
            Role::Open => {
                self.role = Role::Acceptor;
                false
            }
        };
        if self.frame_size_limit != 0 && message.len() > self.frame_size_limit {
            return Err(ReconcileError::MessageTooLarge {
                len: message.len(),
                limit: self.frame_size_limit,
            });
        }
        let (&version, ranges) = message.split_first().ok_or(MessageError::Empty)?;
        if !(0x60..=0x6f).contains(&version) {
            return Err(ReconcileError::InvalidProtocolVersion(version));
        }
        if version != NEGENTROPY_V1 {
            if initiator {
                return Err(ReconcileError::UnsupportedProtocolVersion(version));
            }
            // The protocol's answer to a version we do not speak: the one we do, alone.
            return Ok(Reconciled {
                reply: Some(vec![NEGENTROPY_V1]),
                ..Reconciled::default()
            });
        }
        let mut round = Round {
            index,
            initiator,
            limit: self.frame_size_limit,
            out: vec![NEGENTROPY_V1],
            bounds: BoundWriter::default(),
            have: Vec::new(),
            need: Vec::new(),
        };
        round.run(RangeReader::new(ranges))?;
        let reply = if initiator && round.out.len() == 1 {
            None
        } else {
            Some(round.out)
        };
        Ok(Reconciled {
            reply,
            have: round.have,
            need: round.need,
        })
    }
}

/// The work of one incoming message.
struct Round<'a> {
    index: &'a Index,
    initiator: bool,
    limit: usize,
    out: Vec<u8>,
    bounds: BoundWriter,
    have: Vec<ItemId>,
    need: Vec<ItemId>,
}

impl Round<'_> {
    fn run(&mut self, mut ranges: RangeReader<'_>) -> Result<(), MessageError> {
        let size = self.index.len();
        let mut prev_bound = Bound::ZERO;
        let mut prev_index = 0;
        // Whether ranges we had nothing to say about are pending: they are written as one
        // Skip, and only if something follows them.
        let mut skip = false;
        // Our keys below the last bound written end at this rank: if the frame fills, the
        // peer reads the rest of the message as one range from that bound, so the closing
        // fingerprint must start there.
        let mut emitted = 0;

        while let Some((bound, payload)) = ranges.next_range()? {
            let mut o = Vec::new();
            let lower = prev_index;
            let mut upper = self.index.lower_bound(&bound.key()).max(lower);

            match payload {
                Payload::Skip => skip = true,
                Payload::Fingerprint(theirs) => {
                    if theirs == self.index.fingerprint(lower..upper) {
                        skip = true;
                    } else {
                        self.flush_skip(&mut skip, &prev_bound, &mut o);
                        split_range(self.index, lower, upper, &bound, &mut self.bounds, &mut o);
                    }
                }
                Payload::IdList(ids) if self.initiator => {
                    self.compare(lower, upper, &ids);
                    skip = true;
                }
                Payload::IdList(_) => {
                    self.flush_skip(&mut skip, &prev_bound, &mut o);
                    let mut end_bound = bound;
                    // Our ids in the range, as many as the frame holds; if it fills, the list
                    // ends at the first id left out and the closing fingerprint covers the rest.
                    let mut count = 0;
                    for key in self.index.range(lower..upper) {
                        if self.exceeded(self.out.len() + count * 32) {
                            end_bound = Bound::of_key(&key);
                            break;
                        }
                        count += 1;
                    }
                    upper = lower + count;
                    let ids = self.index.range(lower..upper).map(|key| key.id);
                    message::write_id_list(&mut self.bounds, &end_bound, ids, &mut o);
                    self.out.append(&mut o);
                    emitted = upper;
                }
            }

            if self.exceeded(self.out.len() + o.len()) {
                let rest = self.index.fingerprint(emitted.min(size)..size);
                message::write_fingerprint(
                    &mut self.bounds,
                    &Bound::INFINITY,
                    &rest,
                    &mut self.out,
                );
                break;
            }
            if !o.is_empty() {
                emitted = upper;
            }
            self.out.append(&mut o);
            prev_index = upper;
            prev_bound = bound;
        }
        Ok(())
    }

    /// Writes the pending Skip, if any, ending at `prev_bound`.
    fn flush_skip(&mut self, skip: &mut bool, prev_bound: &Bound, o: &mut Vec<u8>) {
        if std::mem::take(skip) {
            message::write_header(&mut self.bounds, prev_bound, Mode::Skip, o);
        }
    }

    /// Initiator: the peer's ids in `lower..upper` against ours, into `have` and `need`.
    fn compare(&mut self, lower: usize, upper: usize, ids: &IdList<'_>) {
        // Sorted so that each of our ids is a binary search, and `need` comes out in a
        // deterministic order (id order) whatever the peer's order or duplicates.
        let mut theirs: Vec<ItemId> = ids.iter().collect();
        theirs.sort_unstable();
        theirs.dedup();
        let mut matched = vec![false; theirs.len()];
        for key in self.index.range(lower..upper) {
            match theirs.binary_search(&key.id) {
                Ok(at) => matched[at] = true,
                Err(_) => self.have.push(key.id),
            }
        }
        self.need.extend(
            theirs
                .into_iter()
                .zip(matched)
                .filter(|(_, matched)| !matched)
                .map(|(id, _)| id),
        );
    }

    fn exceeded(&self, len: usize) -> bool {
        self.limit != 0 && len > self.limit - FRAME_SLACK
    }
}

/// Describes our keys of ranks `lower..upper`, a range ending at `upper_bound`: as an id list
/// if it is small, else as the fingerprints of 16 sub-ranges of near-equal size.
fn split_range(
    index: &Index,
    lower: usize,
    upper: usize,
    upper_bound: &Bound,
    bounds: &mut BoundWriter,
    out: &mut Vec<u8>,
) {
    let len = upper - lower;
    if len < ID_LIST_BELOW {
        let ids = index.range(lower..upper).map(|key| key.id);
        message::write_id_list(bounds, upper_bound, ids, out);
        return;
    }
    let per_bucket = len / BUCKETS;
    let with_extra = len % BUCKETS;
    let mut curr = lower;
    for bucket in 0..BUCKETS {
        let size = per_bucket + usize::from(bucket < with_extra);
        let fingerprint = index.fingerprint(curr..curr + size);
        curr += size;
        let mut pair = index.range(curr - 1..(curr + 1).min(upper));
        let bound = match (pair.next(), pair.next()) {
            (Some(prev), Some(next)) if curr < upper => Bound::between(&prev, &next),
            // The last bucket ends where the range does.
            _ => *upper_bound,
        };
        message::write_fingerprint(bounds, &bound, &fingerprint, out);
    }
}
