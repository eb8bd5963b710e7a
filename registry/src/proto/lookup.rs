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
//! A request unanswered for longer than the node's stall time ([`Lookup::on_stalled`]) stops
//! holding the lookup back: it leaves its `alpha` slot to the next candidate and no longer
//! counts among the `k` closest the lookup waits for, so a peer that left the network costs a
//! few round trips rather than the whole request timeout. Its answer is still taken if it comes
//! while the lookup runs.
//!
//! With a network size estimate ([`Lookup::crowding_aware`]), "the `k` closest" reads "the
//! `k + e` closest", `e` being the crowding excess of the candidates (see `crowding`): peers
//! packed closer to the target than uniform ids would be, identities ground to take the `k`
//! places, push the window out rather than the honest nodes behind them.
//!
//! Each candidate remembers its hop: 1 for peers taken from the routing table, `h + 1` for a peer
//! first named by a peer at hop `h`. The hop of the answer that first carried a result is how
//! many sequential round trips the result took.

use std::collections::BTreeMap;

use weft_transport::{PeerAddr, PeerId};

use super::{
    crowding::{MAX_EXCESS_FACTOR, excess},
    id::{DhtId, Distance},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight,
    /// Asked, unanswered for longer than the stall time: waited for by nobody, answer welcome.
    Stalled,
    Answered,
    Failed,
}

impl State {
    /// Whether the lookup still counts on this candidate (asked or to ask, not given up).
    fn counts(self) -> bool {
        !matches!(self, State::Failed | State::Stalled)
    }
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
    /// Requests the lookup stopped waiting for (unanswered past the stall time).
    pub stalls: u32,
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
    /// The crowding excess of the candidates still counted on (see `crowding`).
    fn excess(&self, crowding: Option<(f64, usize)>) -> usize {
        crowding.map_or(0, |(size, cap)| {
            let counted = self
                .candidates
                .iter()
                .filter(|(_, c)| c.state.counts())
                .map(|(distance, _)| distance);
            excess(counted, size, cap)
        })
    }

    /// Peers to ask now: the closest waiting among the `k` closest not failed or stalled, up to
    /// `alpha` in flight.
    fn next_requests(&mut self, k: usize, alpha: usize, out: &mut Vec<PeerAddr>) -> u32 {
        let mut sent = 0;
        let mut seen = 0;
        for candidate in self.candidates.values_mut() {
            if self.in_flight >= alpha || seen >= k {
                break;
            }
            if !candidate.state.counts() {
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

    /// Whether the `k` closest candidates that neither failed nor stalled have all answered.
    /// Stalled ones are passed over only while they are at most half of those passed: when
    /// most requests stall, the cause is more likely this node's own link or load than dead
    /// peers, and the lookup waits for them to answer or time out rather than end on the
    /// farther peers behind them.
    fn is_done(&self, k: usize) -> bool {
        let (mut answered, mut stalled) = (0, 0);
        for candidate in self.candidates.values() {
            if answered >= k {
                break;
            }
            match candidate.state {
                State::Failed => {}
                State::Stalled => stalled += 1,
                State::Answered => answered += 1,
                State::Waiting | State::InFlight => return false,
            }
        }
        stalled * 2 <= k
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
    /// The network size estimate and the largest excess counted, when crowding-aware.
    crowding: Option<(f64, usize)>,
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
            crowding: None,
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

    /// Makes the lookup reach past peers crowded next to the target: with `size` the
    /// network's estimated size, it waits for the `k + e` closest, `e` being the excess of
    /// candidates over what `size` uniform ids would put that close (at most
    /// [`MAX_EXCESS_FACTOR`]` × k`), takes up to `k` plus that cap of closer peers from each
    /// answer, and adds the `k` behind the crowd to [`Lookup::closest_answered`]. With no
    /// crowding, the same as without.
    #[must_use]
    pub fn crowding_aware(mut self, size: f64) -> Self {
        self.crowding = Some((size, MAX_EXCESS_FACTOR * self.k));
        self
    }

    /// How many closer peers an answer may name that the lookup takes.
    pub fn max_closer(&self) -> usize {
        self.k + self.crowding.map_or(0, |(_, cap)| cap)
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
            let window = self.k + path.excess(self.crowding);
            self.stats.requests += path.next_requests(window, self.alpha, &mut out);
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

    /// `peer` answered, naming `closer` peers (at most [`Lookup::max_closer`] of them are
    /// taken, onto the answering peer's path). Returns the peer's hop, or `None` when no request to it was in
    /// flight or stalled (a late or unsolicited answer, which is ignored).
    pub fn on_response(&mut self, peer: &PeerId, closer: Vec<PeerAddr>) -> Option<u32> {
        let (path, distance) = self.find(peer)?;
        let state = &mut self.paths[path];
        let candidate = state.candidates.get_mut(&distance)?;
        match candidate.state {
            State::InFlight => state.in_flight -= 1,
            State::Stalled => {}
            State::Waiting | State::Answered | State::Failed => return None,
        }
        candidate.state = State::Answered;
        let hop = candidate.hop;
        self.stats.responses += 1;
        let max_closer = self.max_closer();
        for addr in closer.into_iter().take(max_closer) {
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
        let Some(candidate) = state.candidates.get_mut(&distance) else {
            return;
        };
        match candidate.state {
            State::InFlight => state.in_flight -= 1,
            State::Stalled => {}
            State::Waiting | State::Answered | State::Failed => return,
        }
        candidate.state = State::Failed;
        self.stats.failures += 1;
    }

    /// The request to `peer` has gone unanswered for the stall time: stop waiting for it (its
    /// slot goes to the next candidate, and it no longer counts among the `k` closest the
    /// lookup must hear from). Returns whether the lookup was waiting for it.
    pub fn on_stalled(&mut self, peer: &PeerId) -> bool {
        let Some((path, distance)) = self.find(peer) else {
            return false;
        };
        let state = &mut self.paths[path];
        match state.candidates.get_mut(&distance) {
            Some(candidate) if candidate.state == State::InFlight => {
                candidate.state = State::Stalled;
                state.in_flight -= 1;
                self.stats.stalls += 1;
                true
            }
            _ => false,
        }
    }

    /// Whether the lookup is over: on every path, the `k` closest candidates that neither
    /// failed nor stalled have all answered, or there is nobody left to ask and nothing in
    /// flight that has not stalled.
    pub fn is_done(&self) -> bool {
        self.paths
            .iter()
            .all(|path| path.is_done(self.k + path.excess(self.crowding)))
    }

    /// Whether a request to `peer` is in flight for this lookup (stalled or not).
    pub fn is_in_flight(&self, peer: &PeerId) -> bool {
        self.find(peer).is_some_and(|(path, distance)| {
            matches!(
                self.paths[path].candidates[&distance].state,
                State::InFlight | State::Stalled
            )
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

    /// Where records for the target go: the `k` closest peers that answered, closest first.
    /// When crowding-aware and the closest are crowded (an excess `e`), also the `k` closest
    /// behind the crowd (ranks `e + 1` to `e + k`): those are the honest nodes a lookup that
    /// waits for the `k + e` closest reaches, whoever the crowd is. At most `2k` stores, so
    /// ground identities cost a publish at most twice its usual messages.
    pub fn closest_answered(&self) -> Vec<PeerAddr> {
        let answered = self.answered();
        let extra = self.crowding.map_or(0, |(size, cap)| {
            excess(answered.iter().map(|(distance, _)| *distance), size, cap)
        });
        answered
            .iter()
            .enumerate()
            .filter(|(rank, _)| *rank < self.k || (extra..extra + self.k).contains(rank))
            .map(|(_, (_, c))| c.addr.clone())
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
