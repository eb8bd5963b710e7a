//! Set reconciliation alone (for `cargo xtask bench sync`): weft's `Reconciler` on its `Index`
//! beside the reference `negentropy` crate on a sealed `NegentropyStorageVector`, in the same
//! run, in-process, with no network.
//!
//! Each case reconciles two sets of about 1,000,000 (timestamp, 32-byte id) keys drawn from a
//! seeded RNG that differ by 0, 1, 100 or 10,000 keys, split between the two sides. Both
//! implementations get the same keys and the same frame size limit. Per case and
//! implementation it prints the bytes each way, the round trips, the CPU time of the exchange
//! (both sides; the median over the rounds) and, apart, of building the index or storage. The
//! have/need sets must be exactly the difference, else the benchmark fails. Then the ratios
//! weft / negentropy, beside the goal: bytes and round trips equal, CPU at most half.

mod drive;

use std::{collections::BTreeSet, time::Duration};

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weft_sync::proto::{ItemId, ItemKey};

use self::drive::{Exchange, check};
use crate::{stats::median, table::Table};

/// Keys on the larger side.
const ITEMS: usize = 1_000_000;
/// Keys only one side holds, in all, per case.
const DIFFERENCES: &[usize] = &[0, 1, 100, 10_000];
/// Frame size limit of every message, both implementations (weft's default).
const FRAME_SIZE_LIMIT: usize = 500_000;
/// Timestamps are seconds in a window this long (30 days), so some keys share one and bounds
/// need id prefixes.
const TIMESTAMP_WINDOW: u64 = 30 * 24 * 3600;

/// Two sets and what each alone holds.
struct Case {
    differences: usize,
    initiator: Vec<ItemKey>,
    acceptor: Vec<ItemKey>,
    initiator_only: BTreeSet<ItemId>,
    acceptor_only: BTreeSet<ItemId>,
}

/// `pool` is `ITEMS + max(DIFFERENCES)` random keys; the acceptor alone holds the first
/// `⌈d/2⌉`, the initiator alone the next `⌊d/2⌋`, and both hold enough of the rest for the
/// acceptor to hold `ITEMS`.
fn case(pool: &[ItemKey], differences: usize) -> Case {
    let acceptor_only = &pool[..differences.div_ceil(2)];
    let initiator_only = &pool[acceptor_only.len()..differences];
    let head = DIFFERENCES.iter().max().copied().unwrap_or(0);
    let shared = &pool[head..head + ITEMS - acceptor_only.len()];
    Case {
        differences,
        initiator: shared.iter().chain(initiator_only).copied().collect(),
        acceptor: shared.iter().chain(acceptor_only).copied().collect(),
        initiator_only: initiator_only.iter().map(|key| key.id).collect(),
        acceptor_only: acceptor_only.iter().map(|key| key.id).collect(),
    }
}

fn pool(seed: u64) -> Vec<ItemKey> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = 1_700_000_000;
    let len = ITEMS + DIFFERENCES.iter().max().copied().unwrap_or(0);
    (0..len)
        .map(|_| {
            let mut id = [0u8; 32];
            rng.fill(&mut id[..]);
            ItemKey::new(start + rng.random_range(0..TIMESTAMP_WINDOW), ItemId(id))
        })
        .collect()
}

/// One implementation's figures for one case: the first round's bytes and round trips (the
/// same every round), the medians of the times.
struct Figures {
    to_acceptor: usize,
    to_initiator: usize,
    round_trips: usize,
    cpu_ms: f64,
    build_ms: f64,
}

/// Runs `exchange` `rounds` times; checks every round's have/need against the case.
fn measure(
    name: &str,
    case: &Case,
    rounds: usize,
    exchange: impl Fn(&[ItemKey], &[ItemKey], usize) -> Result<Exchange>,
) -> Result<Figures> {
    let mut runs = Vec::new();
    for _ in 0..rounds.max(1) {
        let run = exchange(&case.initiator, &case.acceptor, FRAME_SIZE_LIMIT)?;
        let what = format!("{name}, {} differences", case.differences);
        check(&format!("{what}: have"), &run.have, &case.initiator_only)?;
        check(&format!("{what}: need"), &run.need, &case.acceptor_only)?;
        runs.push(run);
    }
    let mut cpu: Vec<f64> = runs.iter().map(|run| ms(run.cpu)).collect();
    let mut build: Vec<f64> = runs.iter().map(|run| ms(run.build)).collect();
    Ok(Figures {
        to_acceptor: runs[0].to_acceptor,
        to_initiator: runs[0].to_initiator,
        round_trips: runs[0].round_trips,
        cpu_ms: median(&mut cpu),
        build_ms: median(&mut build),
    })
}

pub(crate) fn run(rounds: usize) -> Result<()> {
    println!(
        "sync reconciliation: {ITEMS} keys a side, frame size limit {FRAME_SIZE_LIMIT} bytes, \
         median of {rounds} rounds; CPU: this thread, both sides; build: both sides' index or storage"
    );
    let pool = pool(1);
    let mut figures = Table::new([
        "differences",
        "implementation",
        "bytes i→a",
        "bytes a→i",
        "round trips",
        "CPU ms",
        "build ms",
        "have/need",
    ]);
    let mut ratios = Table::new([
        "differences",
        "bytes",
        "round trips",
        "CPU",
        "goal (bytes, trips = 1; CPU <= 0.5)",
    ]);
    for &differences in DIFFERENCES {
        let case = case(&pool, differences);
        let weft = measure("weft", &case, rounds, drive::weft)?;
        let reference = measure("negentropy", &case, rounds, drive::negentropy)?;
        for (name, f) in [("weft", &weft), ("negentropy", &reference)] {
            figures.row([
                differences.to_string(),
                name.to_string(),
                f.to_acceptor.to_string(),
                f.to_initiator.to_string(),
                f.round_trips.to_string(),
                format!("{:.3}", f.cpu_ms),
                format!("{:.0}", f.build_ms),
                "exact".to_string(),
            ]);
        }
        let bytes = ratio(
            weft.to_acceptor + weft.to_initiator,
            reference.to_acceptor + reference.to_initiator,
        );
        let trips = ratio(weft.round_trips, reference.round_trips);
        let cpu = weft.cpu_ms / reference.cpu_ms;
        let met = bytes == 1.0 && trips == 1.0 && cpu <= 0.5;
        ratios.row([
            differences.to_string(),
            format!("{bytes:.3}"),
            format!("{trips:.3}"),
            format!("{cpu:.3}"),
            if met { "met" } else { "missed" }.to_string(),
        ]);
    }
    println!(
        "{}\nweft / negentropy\n{}",
        figures.render(),
        ratios.render()
    );
    Ok(())
}

#[allow(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
fn ratio(a: usize, b: usize) -> f64 {
    a as f64 / b as f64
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
