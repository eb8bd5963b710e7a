//! Inbound admission: how the endpoint keeps throwaway identities from starving honest peers.
//!
//! Peer ids are free, so an attacker can open as many connections as it likes, each from a new
//! identity, and leave them idle or send half a frame and stop. The policy, the same for every
//! protocol:
//! - every accepted connection holds a slot for its whole life (not only while its handler's
//!   `accept` runs), up to `max_inbound`;
//! - one peer holds at most `max_per_peer` slots;
//! - a connection that has received no stream data within `first_data_deadline` of being
//!   admitted is closed (an idle or handshake-only connection);
//! - when every slot is taken, a newcomer displaces the connection that has been quiet longest
//!   (no stream data received), if it has been quiet for at least `displace_after_idle`;
//!   otherwise the newcomer is refused. Active peers, the ones sending, are never displaced by
//!   newcomers; an attacker that wants to keep a slot must keep sending on it;
//! - a newer connection from a peer supersedes its older ones for the same protocol (ALPN):
//!   they are closed before the newcomer is counted. Peer ids are authenticated by the QUIC
//!   handshake, so only the peer itself can do this, and an honest peer keeps one connection
//!   per (peer, protocol) (`Endpoint::connect`): dialling again means it lost its side of the
//!   old one (it restarted, or its end failed), whose other end would otherwise linger here,
//!   holding a slot and whatever the layer bound to it, until QUIC's idle time-out. A peer
//!   re-dialling in a loop costs a handshake and a close each time, and only ever its own
//!   connections.
//!
//! Activity is read from QUIC's own counters (stream frames received), so no protocol has to
//! report it and a trickle of keep-alive pings does not count.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{PeerId, metrics::Metrics};

/// What admission needs from a connection: its activity counter and a way to close it.
pub(crate) trait Link: Send + Sync + 'static {
    /// Stream frames received so far (monotonic).
    fn stream_frames_received(&self) -> u64;
    /// Closes the connection with a reason the peer sees.
    fn close(&self, reason: &'static [u8]);
}

#[cfg(feature = "net")]
impl Link for iroh::endpoint::Connection {
    fn stream_frames_received(&self) -> u64 {
        self.stats().frame_rx.stream
    }

    fn close(&self, reason: &'static [u8]) {
        iroh::endpoint::Connection::close(self, CLOSE_ADMISSION.into(), reason);
    }
}

/// The QUIC application close code for connections closed by admission.
pub(crate) const CLOSE_ADMISSION: u32 = 0x5745_0001;

/// The limits of inbound admission (set on the endpoint's builder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdmissionConfig {
    pub(crate) max_inbound: usize,
    pub(crate) max_per_peer: usize,
    pub(crate) first_data_deadline: Duration,
    pub(crate) displace_after_idle: Duration,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its peer holds `max_per_peer` slots already.
    PerPeer,
    /// Every slot is taken by a connection that was active recently.
    Full,
}

impl Refused {
    pub(crate) fn reason(self) -> &'static [u8] {
        match self {
            Self::PerPeer => b"too many connections from this peer",
            Self::Full => b"inbound connections at their limit",
        }
    }
}

struct Entry {
    peer: PeerId,
    /// The connection's ALPN.
    alpn: Vec<u8>,
    link: Arc<dyn Link>,
    /// Stream frames seen at the last look, and when that count last grew.
    frames: u64,
    last_active: Instant,
}

/// The admitted inbound connections. Cheap to clone.
#[derive(Clone)]
pub(crate) struct InboundTable {
    config: AdmissionConfig,
    state: Arc<Mutex<State>>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    next: u64,
    /// Connections displaced to make room (for tests and reports).
    displaced: u64,
    /// Connections refused.
    refused: u64,
    /// Connections closed because the same peer connected again for the same protocol.
    superseded: u64,
}

/// Inbound admission's counters ([`Endpoint::inbound_stats`](crate::Endpoint::inbound_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboundStats {
    /// Inbound connections held now.
    pub held: usize,
    /// Connections closed to make room for a newcomer (quiet longest).
    pub displaced: u64,
    /// Connections refused (per-peer limit, or full of active connections).
    pub refused: u64,
    /// Connections closed because their peer connected again for the same protocol.
    pub superseded: u64,
}

/// A connection's slot; dropping it frees the slot.
pub(crate) struct Slot {
    table: InboundTable,
    id: u64,
    /// How many of the peer's older connections for the same ALPN this one closed.
    pub(crate) superseded: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if lock(&self.table.state).entries.remove(&self.id).is_some() {
            self.table.metrics.inbound_held.dec();
        }
    }
}

/// Counters of the table, for tests and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AdmissionStats {
    pub(crate) admitted: usize,
    pub(crate) displaced: u64,
    pub(crate) refused: u64,
    pub(crate) superseded: u64,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // Maps and counters only: consistent across a panic elsewhere.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InboundTable {
    pub(crate) fn new(config: AdmissionConfig) -> Self {
        Self {
            config,
            state: Arc::new(Mutex::new(State::default())),
            metrics: Arc::default(),
        }
    }

    pub(crate) fn config(&self) -> AdmissionConfig {
        self.config
    }

    /// The endpoint's counters, kept here because admission sees every inbound connection.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Admits a connection that finished its handshake for `alpn`, closing the peer's older
    /// connections for that ALPN, and displacing the longest-quiet one when every slot is
    /// taken (see the module docs).
    pub(crate) fn admit(
        &self,
        peer: PeerId,
        alpn: &[u8],
        link: Arc<dyn Link>,
        now: Instant,
    ) -> Result<Slot, Refused> {
        let mut state = lock(&self.state);
        let mut superseded = 0;
        let older: Vec<u64> = state
            .entries
            .iter()
            .filter(|(_, e)| e.peer == peer && e.alpn == alpn)
            .map(|(id, _)| *id)
            .collect();
        for id in older {
            if let Some(entry) = state.entries.remove(&id) {
                entry
                    .link
                    .close(b"superseded by a newer connection from the peer");
                state.superseded += 1;
                superseded += 1;
                self.metrics.inbound_superseded.inc();
                self.metrics.inbound_held.dec();
            }
        }
        let from_peer = state.entries.values().filter(|e| e.peer == peer).count();
        if from_peer >= self.config.max_per_peer {
            state.refused += 1;
            self.metrics.inbound_refused.inc();
            return Err(Refused::PerPeer);
        }
        if state.entries.len() >= self.config.max_inbound {
            let Some(victim) = self.quietest(&mut state, now) else {
                state.refused += 1;
                self.metrics.inbound_refused.inc();
                return Err(Refused::Full);
            };
            if let Some(entry) = state.entries.remove(&victim) {
                entry
                    .link
                    .close(b"displaced: idle while the endpoint is full");
                state.displaced += 1;
                self.metrics.inbound_displaced.inc();
                self.metrics.inbound_held.dec();
            }
        }
        self.metrics.inbound_admitted.inc();
        self.metrics.inbound_held.inc();
        state.next += 1;
        let id = state.next;
        let frames = link.stream_frames_received();
        state.entries.insert(
            id,
            Entry {
                peer,
                alpn: alpn.to_vec(),
                link,
                frames,
                last_active: now,
            },
        );
        Ok(Slot {
            table: self.clone(),
            id,
            superseded,
        })
    }

    /// Refreshes every entry's activity and returns the one quiet longest, if it has been quiet
    /// for at least `displace_after_idle`.
    fn quietest(&self, state: &mut State, now: Instant) -> Option<u64> {
        let mut quietest: Option<(Instant, u64)> = None;
        for (id, entry) in &mut state.entries {
            let frames = entry.link.stream_frames_received();
            if frames != entry.frames {
                entry.frames = frames;
                entry.last_active = now;
            }
            if quietest.is_none_or(|(at, _)| entry.last_active < at) {
                quietest = Some((entry.last_active, *id));
            }
        }
        quietest
            .filter(|(at, _)| now.saturating_duration_since(*at) >= self.config.displace_after_idle)
            .map(|(_, id)| id)
    }

    pub(crate) fn stats(&self) -> AdmissionStats {
        let state = lock(&self.state);
        AdmissionStats {
            admitted: state.entries.len(),
            displaced: state.displaced,
            refused: state.refused,
            superseded: state.superseded,
        }
    }
}

impl std::fmt::Debug for InboundTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundTable")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::*;
    use crate::SecretKey;

    #[derive(Default)]
    struct FakeLink {
        frames: AtomicU64,
        closed: AtomicBool,
    }

    impl Link for FakeLink {
        fn stream_frames_received(&self) -> u64 {
            self.frames.load(Ordering::Relaxed)
        }

        fn close(&self, _reason: &'static [u8]) {
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    const ALPN: &[u8] = b"weft/test/echo/1";

    fn peer(seed: u8) -> PeerId {
        SecretKey::from_bytes(&[seed; 32]).peer_id()
    }

    fn table(max_inbound: usize) -> InboundTable {
        InboundTable::new(AdmissionConfig {
            max_inbound,
            max_per_peer: 2,
            first_data_deadline: Duration::from_secs(10),
            displace_after_idle: Duration::from_secs(5),
        })
    }

    #[test]
    fn one_peer_holds_at_most_its_share() {
        let table = table(10);
        let now = Instant::now();
        let _a = table
            .admit(peer(1), b"one", Arc::new(FakeLink::default()), now)
            .unwrap();
        let _b = table
            .admit(peer(1), b"two", Arc::new(FakeLink::default()), now)
            .unwrap();
        assert_eq!(
            table
                .admit(peer(1), b"three", Arc::new(FakeLink::default()), now)
                .err(),
            Some(Refused::PerPeer)
        );
        assert!(
            table
                .admit(peer(2), ALPN, Arc::new(FakeLink::default()), now)
                .is_ok()
        );
    }

    #[test]
    fn a_full_table_displaces_the_quietest_idle_connection_never_an_active_one() {
        let table = table(3);
        let start = Instant::now();
        let links: Vec<Arc<FakeLink>> = (0..3).map(|_| Arc::new(FakeLink::default())).collect();
        let _slots: Vec<Slot> = links
            .iter()
            .zip(10u8..)
            .map(|(link, seed)| {
                let at = start + Duration::from_secs(u64::from(seed - 10));
                table.admit(peer(seed), ALPN, link.clone(), at).unwrap()
            })
            .collect();
        // Too soon: nobody has been quiet for 5 s yet.
        let soon = start + Duration::from_secs(3);
        assert_eq!(
            table
                .admit(peer(20), ALPN, Arc::new(FakeLink::default()), soon)
                .err(),
            Some(Refused::Full)
        );
        // Later: the first two were active (sent data), the third was quiet since it came.
        links[0].frames.store(5, Ordering::Relaxed);
        links[1].frames.store(1, Ordering::Relaxed);
        let later = start + Duration::from_secs(9);
        let newcomer = table.admit(peer(21), ALPN, Arc::new(FakeLink::default()), later);
        assert!(newcomer.is_ok());
        assert!(
            links[2].closed.load(Ordering::Relaxed),
            "the quiet one goes"
        );
        assert!(!links[0].closed.load(Ordering::Relaxed));
        assert!(!links[1].closed.load(Ordering::Relaxed));
        assert_eq!(table.stats().displaced, 1);
        assert_eq!(table.stats().admitted, 3);
    }

    #[test]
    fn a_newer_connection_supersedes_the_peers_older_one_for_the_same_protocol() {
        let table = table(10);
        let now = Instant::now();
        let old = Arc::new(FakeLink::default());
        let other_protocol = Arc::new(FakeLink::default());
        let other_peer = Arc::new(FakeLink::default());
        let _old = table.admit(peer(1), ALPN, old.clone(), now).unwrap();
        let _other = table
            .admit(peer(1), b"other", other_protocol.clone(), now)
            .unwrap();
        let _peer = table.admit(peer(2), ALPN, other_peer.clone(), now).unwrap();
        let new = Arc::new(FakeLink::default());
        let new_slot = table.admit(peer(1), ALPN, new.clone(), now).unwrap();
        assert!(
            old.closed.load(Ordering::Relaxed),
            "the older one is closed"
        );
        assert!(!new.closed.load(Ordering::Relaxed));
        assert!(!other_protocol.closed.load(Ordering::Relaxed));
        assert!(!other_peer.closed.load(Ordering::Relaxed));
        let stats = table.stats();
        assert_eq!((stats.admitted, stats.superseded), (3, 1));
        // Its slot is free at once: a peer at its per-peer limit (2) can still reconnect.
        let _again = table
            .admit(peer(1), ALPN, Arc::new(FakeLink::default()), now)
            .unwrap();
        assert!(new.closed.load(Ordering::Relaxed));
        // Dropping a superseded connection's slot later frees nothing twice.
        drop(new_slot);
        assert_eq!(table.stats().admitted, 3);
    }

    #[test]
    fn a_dropped_slot_is_free_again() {
        let table = table(1);
        let now = Instant::now();
        let slot = table
            .admit(peer(1), ALPN, Arc::new(FakeLink::default()), now)
            .unwrap();
        assert!(
            table
                .admit(peer(2), ALPN, Arc::new(FakeLink::default()), now)
                .is_err()
        );
        drop(slot);
        assert!(
            table
                .admit(peer(2), ALPN, Arc::new(FakeLink::default()), now)
                .is_ok()
        );
    }
}
