//! The iterative Kademlia lookup, as a state machine with no IO.
//!
//! A lookup keeps the candidates it has heard of, ordered by distance to the target. It keeps
//! up to `alpha` requests in flight, always to the closest candidate not yet asked, and is done
//! when the `k` closest candidates that have not failed have all answered. A peer that fails
//! (times out, answers garbage, or its connection fails) is marked failed and the lookup moves on
//! to the next candidate, so unresponsive or broken peers only cost their timeout.
//!
//! With `disjoint_paths = d > 1` (S/Kademlia), the seeds are dealt round-robin into `d` paths
//! that never share a peer: each path only follows the peers its own answers name, keeps its
//! own `alpha` requests in flight, and ends on its own `k` closest. An attacker that answers on
//! one path with made-up peers cannot steer the others, so the result survives as long as one
//! path stays honest. The result is the `k` closest answered over all paths.
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

/// One path of a lookup: candidates by distance, and the requests it has in flight.
#[derive(Debug, Clone, Default)]
struct Path {
    candidates: BTreeMap<Distance, Candidate>,
    in_flight: usize,
}

impl Path {
    /// Peers to ask now: the closest waiting among the `k` closest not failed, up to `alpha`
    /// in flight.
    fn next_requests(&mut self, k: usize, alpha: usize, out: &mut Vec<PeerAddr>) -> u32 {
        let mut sent = 0;
        let mut seen = 0;
        for candidate in self.candidates.values_mut() {
            if self.in_flight >= alpha || seen >= k {
                break;
            }
            if candidate.state == State::Failed {
                continue;
            }
            seen += 1;
            if candidate.state == State::Waiting {
                candidate.state = State::InFlight;
                self.in_flight += 1;
                sent += 1;
                out.push(candidate.addr.clone());
            }
        }
        sent
    }

    fn is_done(&self, k: usize) -> bool {
        let mut seen = 0;
        for candidate in self.candidates.values() {
            if seen >= k {
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
}

/// An iterative lookup towards one target.
#[derive(Debug, Clone)]
pub struct Lookup {
    target: DhtId,
    local: PeerId,
    k: usize,
    alpha: usize,
    max_candidates: usize,
    paths: Vec<Path>,
    /// Which path each known candidate belongs to (a peer belongs to one path only).
    owner: BTreeMap<Distance, usize>,
    stats: LookupStats,
}

impl Lookup {
    /// A lookup for `target` starting from `seeds` (typically the routing table's closest).
    /// `local` is never asked. At most `max_candidates` candidates are remembered per path;
    /// beyond that the farthest are forgotten, as they would be asked only if nearly all others
    /// failed.
    pub fn new(
        target: DhtId,
        local: PeerId,
        seeds: Vec<PeerAddr>,
        k: usize,
        alpha: usize,
        max_candidates: usize,
    ) -> Self {
        Self::with_paths(target, local, seeds, k, alpha, max_candidates, 1)
    }

    /// Like [`Lookup::new`], over `paths` disjoint paths (S/Kademlia; 1 is plain Kademlia).
    pub fn with_paths(
        target: DhtId,
        local: PeerId,
        seeds: Vec<PeerAddr>,
        k: usize,
        alpha: usize,
        max_candidates: usize,
        paths: usize,
    ) -> Self {
        let paths = paths.max(1);
        let mut lookup = Self {
            target,
            local,
            k: k.max(1),
            alpha: alpha.max(1),
            max_candidates: max_candidates.max(k),
            paths: vec![Path::default(); paths],
            owner: BTreeMap::new(),
            stats: LookupStats::default(),
        };
        let mut seeds: Vec<(Distance, PeerAddr)> = seeds
            .into_iter()
            .map(|a| (DhtId::of_peer(&a.id).distance(&target), a))
            .collect();
        seeds.sort_by_key(|(distance, _)| *distance);
        for (i, (_, seed)) in seeds.into_iter().enumerate() {
            lookup.add_candidate(i % paths, seed, 1);
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

    fn add_candidate(&mut self, path: usize, addr: PeerAddr, hop: u32) {
        if addr.id == self.local {
            return;
        }
        let distance = DhtId::of_peer(&addr.id).distance(&self.target);
        if let Some(&owner) = self.owner.get(&distance) {
            // Known: on its own path it may now be fewer hops away; another path's peer is
            // left alone, which keeps the paths disjoint.
            if owner == path
                && let Some(known) = self.paths[path].candidates.get_mut(&distance)
            {
                known.hop = known.hop.min(hop);
            }
            return;
        }
        let candidates = &mut self.paths[path].candidates;
        if candidates.len() >= self.max_candidates {
            let Some((&farthest, _)) = candidates.last_key_value() else {
                return;
            };
            let removable = candidates[&farthest].state != State::InFlight;
            if distance > farthest || !removable {
                return;
            }
            candidates.remove(&farthest);
            self.owner.remove(&farthest);
        }
        candidates.insert(
            distance,
            Candidate {
                addr,
                state: State::Waiting,
                hop,
            },
        );
        self.owner.insert(distance, path);
    }

    /// Peers to ask now (marked in flight): on every path, the closest not yet asked among
    /// the `k` closest that have not failed, while fewer than `alpha` requests are in flight.
    pub fn next_requests(&mut self) -> Vec<PeerAddr> {
        let mut out = Vec::new();
        for path in &mut self.paths {
            self.stats.requests += path.next_requests(self.k, self.alpha, &mut out);
        }
        out
    }

    /// The path and distance of `peer`, when it is a candidate.
    fn find(&self, peer: &PeerId) -> Option<(usize, Distance)> {
        let distance = DhtId::of_peer(peer).distance(&self.target);
        let path = *self.owner.get(&distance)?;
        let candidate = self.paths[path].candidates.get(&distance)?;
        (candidate.addr.id == *peer).then_some((path, distance))
    }

    /// `peer` answered, naming `closer` peers (at most `k` of them are taken, onto the
    /// answering peer's path). Returns the peer's hop, or `None` when no request to it was in
    /// flight (a late or unsolicited answer, which is ignored).
    pub fn on_response(&mut self, peer: &PeerId, closer: Vec<PeerAddr>) -> Option<u32> {
        let (path, distance) = self.find(peer)?;
        let state = &mut self.paths[path];
        let candidate = state.candidates.get_mut(&distance)?;
        if candidate.state != State::InFlight {
            return None;
        }
        candidate.state = State::Answered;
        let hop = candidate.hop;
        state.in_flight -= 1;
        self.stats.responses += 1;
        for addr in closer.into_iter().take(self.k) {
            self.add_candidate(path, addr, hop + 1);
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
        let Some((path, distance)) = self.find(peer) else {
            return;
        };
        let state = &mut self.paths[path];
        if let Some(candidate) = state.candidates.get_mut(&distance)
            && candidate.state == State::InFlight
        {
            candidate.state = State::Failed;
            state.in_flight -= 1;
            self.stats.failures += 1;
        }
    }

    /// Whether the lookup is over: on every path, the `k` closest live candidates have all
    /// answered, or there is nobody left to ask and nothing in flight.
    pub fn is_done(&self) -> bool {
        self.paths.iter().all(|path| path.is_done(self.k))
    }

    /// Whether a request to `peer` is in flight for this lookup.
    pub fn is_in_flight(&self, peer: &PeerId) -> bool {
        self.find(peer).is_some_and(|(path, distance)| {
            self.paths[path].candidates[&distance].state == State::InFlight
        })
    }

    /// The answered candidates of every path, closest first.
    fn answered(&self) -> Vec<(&Distance, &Candidate)> {
        let mut all: Vec<(&Distance, &Candidate)> = self
            .paths
            .iter()
            .flat_map(|p| p.candidates.iter())
            .filter(|(_, c)| c.state == State::Answered)
            .collect();
        all.sort_by_key(|(distance, _)| **distance);
        all
    }

    /// Up to `k` closest peers that answered, closest first: where records for the target go.
    pub fn closest_answered(&self) -> Vec<PeerAddr> {
        self.answered()
            .into_iter()
            .take(self.k)
            .map(|(_, c)| c.addr.clone())
            .collect()
    }

    /// Finishes the statistics (the depth of the answer set).
    pub fn finish_stats(&mut self) -> LookupStats {
        self.stats.depth = self
            .answered()
            .into_iter()
            .take(self.k)
            .map(|(_, c)| c.hop)
            .max()
            .unwrap_or(0);
        self.stats
    }
}
