//! The iterative Kademlia lookup, as a state machine with no IO.
//!
//! A lookup keeps the candidates it has heard of, ordered by distance to the target. It keeps
//! up to `alpha` requests in flight, always to the closest candidate not yet asked, and is done
//! when the `k` closest candidates that have not failed have all answered. A peer that fails
//! (times out, answers garbage, or its connection fails) is marked failed and the lookup moves on
//! to the next candidate, so unresponsive or broken peers only cost their timeout.
//!
//! Each candidate remembers its hop: 1 for peers taken from the routing table, `h + 1` for a peer
//! first named by a peer at hop `h`. The hop of the answer that first carried a result is how
//! many sequential round trips the result took.

use std::collections::BTreeMap;

use weft_transport::{PeerAddr, PeerId};

use super::id::{DhtId, Distance};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight,
    Answered,
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    addr: PeerAddr,
    state: State,
    hop: u32,
}

/// Figures about one lookup, for metrics and the simulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Requests sent.
    pub requests: u32,
    /// Answers received.
    pub responses: u32,
    /// Requests that failed or timed out.
    pub failures: u32,
    /// The hop of the first answer that carried a result (a provider), if any.
    pub first_result_hop: Option<u32>,
    /// The largest hop among the `k` closest peers that answered: the lookup's depth.
    pub depth: u32,
}

/// An iterative lookup towards one target.
#[derive(Debug, Clone)]
pub struct Lookup {
    target: DhtId,
    local: PeerId,
    k: usize,
    alpha: usize,
    max_candidates: usize,
    candidates: BTreeMap<Distance, Candidate>,
    in_flight: usize,
    stats: LookupStats,
}

impl Lookup {
    /// A lookup for `target` starting from `seeds` (typically the routing table's closest).
    /// `local` is never asked. At most `max_candidates` candidates are remembered; beyond that
    /// the farthest are forgotten, as they would be asked only if nearly all others failed.
    pub fn new(
        target: DhtId,
        local: PeerId,
        seeds: Vec<PeerAddr>,
        k: usize,
        alpha: usize,
        max_candidates: usize,
    ) -> Self {
        let mut lookup = Self {
            target,
            local,
            k: k.max(1),
            alpha: alpha.max(1),
            max_candidates: max_candidates.max(k),
            candidates: BTreeMap::new(),
            in_flight: 0,
            stats: LookupStats::default(),
        };
        for seed in seeds {
            lookup.add_candidate(seed, 1);
        }
        lookup
    }

    /// The target.
    pub fn target(&self) -> DhtId {
        self.target
    }

    /// Figures so far.
    pub fn stats(&self) -> LookupStats {
        self.stats
    }

    fn add_candidate(&mut self, addr: PeerAddr, hop: u32) {
        if addr.id == self.local {
            return;
        }
        let distance = DhtId::of_peer(&addr.id).distance(&self.target);
        if let Some(known) = self.candidates.get_mut(&distance) {
            known.hop = known.hop.min(hop);
            return;
        }
        if self.candidates.len() >= self.max_candidates {
            let Some((&farthest, _)) = self.candidates.last_key_value() else {
                return;
            };
            let removable = self.candidates[&farthest].state != State::InFlight;
            if distance > farthest || !removable {
                return;
            }
            self.candidates.remove(&farthest);
        }
        self.candidates.insert(
            distance,
            Candidate {
                addr,
                state: State::Waiting,
                hop,
            },
        );
    }

    /// Peers to ask now (marked in flight): the closest not yet asked among the `k` closest
    /// that have not failed, while fewer than `alpha` requests are in flight.
    pub fn next_requests(&mut self) -> Vec<PeerAddr> {
        let mut out = Vec::new();
        let mut seen = 0;
        for candidate in self.candidates.values_mut() {
            if self.in_flight >= self.alpha || seen >= self.k {
                break;
            }
            if candidate.state == State::Failed {
                continue;
            }
            seen += 1;
            if candidate.state == State::Waiting {
                candidate.state = State::InFlight;
                self.in_flight += 1;
                self.stats.requests += 1;
                out.push(candidate.addr.clone());
            }
        }
        out
    }

    fn find(&mut self, peer: &PeerId) -> Option<&mut Candidate> {
        let distance = DhtId::of_peer(peer).distance(&self.target);
        self.candidates
            .get_mut(&distance)
            .filter(|c| c.addr.id == *peer)
    }

    /// `peer` answered, naming `closer` peers (at most `k` of them are taken). Returns the
    /// peer's hop, or `None` when no request to it was in flight (a late or unsolicited answer,
    /// which is ignored).
    pub fn on_response(&mut self, peer: &PeerId, closer: Vec<PeerAddr>) -> Option<u32> {
        let k = self.k;
        let candidate = self.find(peer)?;
        if candidate.state != State::InFlight {
            return None;
        }
        candidate.state = State::Answered;
        let hop = candidate.hop;
        self.in_flight -= 1;
        self.stats.responses += 1;
        for addr in closer.into_iter().take(k) {
            self.add_candidate(addr, hop + 1);
        }
        Some(hop)
    }

    /// Notes that an answer from a peer at `hop` carried a result.
    pub fn on_result(&mut self, hop: u32) {
        if self.stats.first_result_hop.is_none() {
            self.stats.first_result_hop = Some(hop);
        }
    }

    /// A request to `peer` failed or timed out.
    pub fn on_failure(&mut self, peer: &PeerId) {
        if let Some(candidate) = self.find(peer)
            && candidate.state == State::InFlight
        {
            candidate.state = State::Failed;
            self.in_flight -= 1;
            self.stats.failures += 1;
        }
    }

    /// Whether the lookup is over: the `k` closest live candidates have all answered, or there is
    /// nobody left to ask and nothing in flight.
    pub fn is_done(&self) -> bool {
        let mut seen = 0;
        for candidate in self.candidates.values() {
            if seen >= self.k {
                break;
            }
            match candidate.state {
                State::Failed => continue,
                State::Answered => seen += 1,
                State::Waiting | State::InFlight => return false,
            }
        }
        true
    }

    /// Whether a request to `peer` is in flight for this lookup.
    pub fn is_in_flight(&self, peer: &PeerId) -> bool {
        let distance = DhtId::of_peer(peer).distance(&self.target);
        self.candidates
            .get(&distance)
            .is_some_and(|c| c.addr.id == *peer && c.state == State::InFlight)
    }

    /// Up to `k` closest peers that answered, closest first: where records for the target go.
    pub fn closest_answered(&self) -> Vec<PeerAddr> {
        self.candidates
            .values()
            .filter(|c| c.state == State::Answered)
            .take(self.k)
            .map(|c| c.addr.clone())
            .collect()
    }

    /// Finishes the statistics (the depth of the answer set).
    pub fn finish_stats(&mut self) -> LookupStats {
        self.stats.depth = self
            .candidates
            .values()
            .filter(|c| c.state == State::Answered)
            .take(self.k)
            .map(|c| c.hop)
            .max()
            .unwrap_or(0);
        self.stats
    }
}
