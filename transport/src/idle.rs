//! Closing outbound connections nobody uses ([`crate::Endpoint::close_idle`]).
//!
//! The endpoint caches one connection per (peer, protocol) and iroh keeps every connection
//! alive with a QUIC ping every few seconds, so without this a request/response protocol (a
//! catalog sync, a DHT request, a service call) keeps a connection open, with its state, its
//! tasks and its keep-alive traffic, to every peer it ever asked. A protocol that opts in has
//! its connections closed once unused for its idle time; the next request dials again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};

use crate::{Protocol, cache::ConnectionCache};

/// The QUIC application close code of a connection closed for being idle (not a failure).
pub const CLOSE_IDLE: u32 = 0x5745_0002;

/// How often idle connections are looked for, at most: an idle connection lives between its
/// idle time and that plus this.
const MIN_SWEEP: Duration = Duration::from_secs(1);

/// The idle times set, and the task that applies them (started by the first).
#[derive(Debug, Default)]
pub(crate) struct IdleClose {
    after: Mutex<HashMap<Protocol, Duration>>,
    sweeper: Mutex<Option<AbortOnDropHandle<()>>>,
}

impl IdleClose {
    /// Closes `protocol`'s cached connections unused for `after` from now on, (re)starting the
    /// sweeper at a period of half the shortest idle time (at least [`MIN_SWEEP`]).
    pub(crate) fn set(
        &self,
        protocol: Protocol,
        after: Duration,
        cache: &Arc<Mutex<ConnectionCache>>,
        cancel: &CancellationToken,
    ) {
        let after_all = {
            let mut all = lock(&self.after);
            all.insert(protocol, after);
            all.clone()
        };
        let period = after_all
            .values()
            .min()
            .map_or(MIN_SWEEP, |shortest| (*shortest / 2).max(MIN_SWEEP));
        let (cache, cancel) = (cache.clone(), cancel.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let idle = lock(&cache).take_idle(Instant::now(), &after_all);
                for conn in idle {
                    conn.close(CLOSE_IDLE.into(), b"idle");
                }
            }
        });
        *lock(&self.sweeper) = Some(AbortOnDropHandle::new(task));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Maps only: consistent across a panic elsewhere.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
