//! One reconciliation driven to its end in-process, by weft's `Reconciler` on an `Index` or by
//! the `negentropy` crate on a sealed `NegentropyStorageVector`, with what it cost.
//!
//! Both sides run on this thread one after the other, so the thread's CPU time over the whole
//! exchange is both sides' work. Building the index or storage is timed apart: a node keeps
//! its index between sessions, so the exchange is what a session costs.

use std::{collections::BTreeSet, time::Duration};

use anyhow::{Context, Result};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use weft_sync::proto::{Index, ItemId, ItemKey, Reconciler};

use crate::stats::thread_cpu;

/// Reconciliation ends well before this; more means a bug, not a slow case.
const MAX_ROUND_TRIPS: usize = 1_000;

/// What one exchange cost and found.
#[derive(Debug, Clone, Default)]
pub(super) struct Exchange {
    /// CPU time to build both sides' index or storage.
    pub(super) build: Duration,
    /// CPU time of the exchange, both sides.
    pub(super) cpu: Duration,
    /// Bytes of every message the initiator sent.
    pub(super) to_acceptor: usize,
    /// Bytes of every message the acceptor sent.
    pub(super) to_initiator: usize,
    /// Messages the initiator sent (each answered once).
    pub(super) round_trips: usize,
    /// Ids the initiator learned it has and the acceptor lacks.
    pub(super) have: Vec<ItemId>,
    /// Ids the initiator learned the acceptor has and it lacks.
    pub(super) need: Vec<ItemId>,
}

/// Runs `work` and adds the thread CPU time it took to `total`.
fn timed<T>(total: &mut Duration, work: impl FnOnce() -> T) -> Result<T> {
    let before = thread_cpu().context("no CPU clock on this system")?;
    let out = work();
    *total += thread_cpu().context("no CPU clock")?.saturating_sub(before);
    Ok(out)
}

/// weft's reconciler, on an index of each side's keys.
pub(super) fn weft(initiator: &[ItemKey], acceptor: &[ItemKey], limit: usize) -> Result<Exchange> {
    let mut out = Exchange::default();
    let (ours, theirs) = timed(&mut out.build, || {
        (
            Index::from_keys(initiator.iter().copied()),
            Index::from_keys(acceptor.iter().copied()),
        )
    })?;
    let mut cpu = Duration::ZERO;
    timed(&mut cpu, || -> Result<()> {
        let mut initiating = Reconciler::initiator(limit)?;
        let mut accepting = Reconciler::new(limit)?;
        let mut message = initiating.initiate(&ours)?;
        loop {
            out.round_trips += 1;
            anyhow::ensure!(out.round_trips <= MAX_ROUND_TRIPS, "weft: no end");
            out.to_acceptor += message.len();
            let reply = accepting
                .reconcile(&theirs, &message)?
                .reply
                .context("an acceptor always replies")?;
            out.to_initiator += reply.len();
            let round = initiating.reconcile(&ours, &reply)?;
            out.have.extend(round.have);
            out.need.extend(round.need);
            match round.reply {
                Some(next) => message = next,
                None => return Ok(()),
            }
        }
    })??;
    out.cpu = cpu;
    Ok(out)
}

/// The `negentropy` crate, on a sealed storage vector of each side's keys.
pub(super) fn negentropy(
    initiator: &[ItemKey],
    acceptor: &[ItemKey],
    limit: usize,
) -> Result<Exchange> {
    let mut out = Exchange::default();
    let (ours, theirs) = timed(&mut out.build, || -> Result<_> {
        Ok((storage(initiator)?, storage(acceptor)?))
    })??;
    let limit = u64::try_from(limit)?;
    let mut cpu = Duration::ZERO;
    let (mut have, mut need) = (Vec::new(), Vec::new());
    timed(&mut cpu, || -> Result<()> {
        let mut initiating = Negentropy::borrowed(&ours, limit)?;
        let mut accepting = Negentropy::borrowed(&theirs, limit)?;
        let mut message = initiating.initiate()?;
        loop {
            out.round_trips += 1;
            anyhow::ensure!(out.round_trips <= MAX_ROUND_TRIPS, "negentropy: no end");
            out.to_acceptor += message.len();
            let reply = accepting.reconcile(&message)?;
            out.to_initiator += reply.len();
            match initiating.reconcile_with_ids(&reply, &mut have, &mut need)? {
                Some(next) => message = next,
                None => return Ok(()),
            }
        }
    })??;
    out.cpu = cpu;
    out.have = have.iter().map(|id| ItemId(id.to_bytes())).collect();
    out.need = need.iter().map(|id| ItemId(id.to_bytes())).collect();
    Ok(out)
}

fn storage(keys: &[ItemKey]) -> Result<NegentropyStorageVector> {
    let mut storage = NegentropyStorageVector::with_capacity(keys.len());
    for key in keys {
        storage.insert(key.timestamp, Id::from_byte_array(key.id.0))?;
    }
    storage.seal()?;
    Ok(storage)
}

/// Checks that `found` holds each of `expected` exactly once and nothing else.
pub(super) fn check(what: &str, found: &[ItemId], expected: &BTreeSet<ItemId>) -> Result<()> {
    let set: BTreeSet<ItemId> = found.iter().copied().collect();
    anyhow::ensure!(
        set.len() == found.len(),
        "{what}: {} ids reported more than once",
        found.len() - set.len()
    );
    anyhow::ensure!(
        set == *expected,
        "{what}: {} ids found, {} expected, {} in common",
        set.len(),
        expected.len(),
        set.intersection(expected).count()
    );
    Ok(())
}
