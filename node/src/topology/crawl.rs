//! [`Crawl`]: which peers a topology query asks, in what order, and the graph their answers
//! draw. No I/O: the runner in `mod.rs` asks, this decides, so the bounds are tested here.
//!
//! Breadth first from this node: its neighbours are asked first (depth 1), then theirs
//! (depth 2), and so on down to [`CrawlLimits::max_depth`]. At most
//! [`CrawlLimits::max_asked`] peers are asked and at most [`CrawlLimits::max_nodes`] drawn, so
//! a peer that answers with made-up neighbours can add at most [`super::MAX_ANSWER_PEERS`]
//! nodes per answer and never makes the crawl longer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use weft_transport::PeerId;

/// How far a crawl goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrawlLimits {
    /// Peers asked at most (default 32).
    pub max_asked: usize,
    /// The deepest peers asked: 1 asks the neighbours only, 2 their neighbours too (default 3).
    pub max_depth: u8,
    /// Nodes drawn at most, this node included (default 128); further ones are left out and
    /// the graph is marked truncated.
    pub max_nodes: usize,
}

impl Default for CrawlLimits {
    fn default() -> Self {
        Self {
            max_asked: 32,
            max_depth: 3,
            max_nodes: 128,
        }
    }
}

/// What is known of one node of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrawlNode {
    /// Hops from this node (0) along the shortest path found.
    pub depth: u8,
    /// Whether the node was asked, and how it went.
    pub reply: Reply,
}

/// Whether a node answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Not asked (beyond the limits), or not yet.
    NotAsked,
    /// Asked, no answer yet.
    Pending,
    /// Answered with its neighbours (this node counts as answered).
    Answered,
    /// Did not answer: unreachable, timed out, refused, or not on the topic.
    Failed,
}

/// A topology crawl in progress.
#[derive(Debug)]
pub struct Crawl {
    limits: CrawlLimits,
    nodes: BTreeMap<PeerId, CrawlNode>,
    /// Undirected, each stored as (smaller, larger).
    edges: BTreeSet<(PeerId, PeerId)>,
    to_ask: VecDeque<PeerId>,
    asked: usize,
    truncated: bool,
}

impl Crawl {
    /// A crawl from `me`, whose neighbours on the topic are `neighbors`.
    pub fn new(me: PeerId, neighbors: &[PeerId], limits: CrawlLimits) -> Self {
        let mut crawl = Self {
            limits,
            nodes: BTreeMap::new(),
            edges: BTreeSet::new(),
            to_ask: VecDeque::new(),
            asked: 0,
            truncated: false,
        };
        crawl.nodes.insert(
            me,
            CrawlNode {
                depth: 0,
                reply: Reply::Answered,
            },
        );
        crawl.add_neighbors(me, 0, neighbors);
        crawl
    }

    /// The next peer to ask, if any is left within the limits. Each peer is handed out once.
    pub fn next_to_ask(&mut self) -> Option<PeerId> {
        if self.asked >= self.limits.max_asked {
            if !self.to_ask.is_empty() {
                self.truncated = true;
            }
            return None;
        }
        let peer = self.to_ask.pop_front()?;
        if let Some(node) = self.nodes.get_mut(&peer) {
            node.reply = Reply::Pending;
        }
        self.asked += 1;
        Some(peer)
    }

    /// `peer` answered: these are its neighbours on the topic. An answer from a peer that was
    /// not asked, or answered already, is ignored.
    pub fn answered(&mut self, peer: PeerId, neighbors: &[PeerId]) {
        let Some(node) = self.nodes.get_mut(&peer) else {
            return;
        };
        if node.reply != Reply::Pending {
            return;
        }
        node.reply = Reply::Answered;
        let depth = node.depth;
        self.add_neighbors(peer, depth, neighbors);
    }

    /// `peer` did not answer.
    pub fn failed(&mut self, peer: PeerId) {
        if let Some(node) = self.nodes.get_mut(&peer)
            && node.reply == Reply::Pending
        {
            node.reply = Reply::Failed;
        }
    }

    /// How many peers were asked.
    pub fn asked(&self) -> usize {
        self.asked
    }

    /// Whether a limit left peers unasked or nodes undrawn.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The nodes, by id.
    pub fn nodes(&self) -> &BTreeMap<PeerId, CrawlNode> {
        &self.nodes
    }

    /// The edges, each once, as (smaller id, larger id).
    pub fn edges(&self) -> &BTreeSet<(PeerId, PeerId)> {
        &self.edges
    }

    fn add_neighbors(&mut self, from: PeerId, depth: u8, neighbors: &[PeerId]) {
        let child_depth = depth.saturating_add(1);
        for &peer in neighbors {
            if peer == from {
                continue;
            }
            if !self.nodes.contains_key(&peer) {
                if self.nodes.len() >= self.limits.max_nodes {
                    self.truncated = true;
                    continue;
                }
                self.nodes.insert(
                    peer,
                    CrawlNode {
                        depth: child_depth,
                        reply: Reply::NotAsked,
                    },
                );
                if child_depth <= self.limits.max_depth {
                    self.to_ask.push_back(peer);
                } else {
                    self.truncated = true;
                }
            }
            self.edges.insert(if from < peer {
                (from, peer)
            } else {
                (peer, from)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> PeerId {
        weft_transport::SecretKey::from_bytes(&[n; 32]).peer_id()
    }

    fn drain(crawl: &mut Crawl) -> Vec<PeerId> {
        std::iter::from_fn(|| crawl.next_to_ask()).collect()
    }

    #[test]
    fn a_triangle_is_three_nodes_and_three_edges() {
        let (a, b, c) = (id(1), id(2), id(3));
        let mut crawl = Crawl::new(a, &[b, c], CrawlLimits::default());
        let asked = drain(&mut crawl);
        assert_eq!(asked.len(), 2);
        crawl.answered(b, &[a, c]);
        crawl.answered(c, &[a, b]);
        assert_eq!(crawl.nodes().len(), 3);
        assert_eq!(crawl.edges().len(), 3, "a-b, a-c, b-c, each once");
        assert!(crawl.nodes().values().all(|n| n.reply == Reply::Answered));
        assert!(drain(&mut crawl).is_empty(), "nobody new to ask");
        assert!(!crawl.truncated());
    }

    #[test]
    fn neighbours_of_neighbours_are_asked_breadth_first() {
        let (a, b, c, d) = (id(1), id(2), id(3), id(4));
        let mut crawl = Crawl::new(a, &[b, c], CrawlLimits::default());
        assert_eq!(drain(&mut crawl).len(), 2);
        crawl.answered(b, &[a, d]);
        crawl.failed(c);
        assert_eq!(drain(&mut crawl), vec![d]);
        assert_eq!(crawl.nodes()[&d].depth, 2);
        assert_eq!(crawl.nodes()[&c].reply, Reply::Failed);
        crawl.answered(d, &[b]);
        assert_eq!(crawl.edges().len(), 3);
    }

    #[test]
    fn limits_bound_the_asked_and_the_drawn() {
        let me = id(0);
        let limits = CrawlLimits {
            max_asked: 3,
            max_depth: 1,
            max_nodes: 6,
        };
        let first: Vec<PeerId> = (1..=4).map(id).collect();
        let mut crawl = Crawl::new(me, &first, limits);
        let asked = drain(&mut crawl);
        assert_eq!(asked.len(), 3, "max_asked");
        assert!(crawl.truncated());
        // A peer answering with many made-up neighbours adds at most up to max_nodes, and
        // none of them is asked (beyond max_depth).
        let made_up: Vec<PeerId> = (10..40).map(id).collect();
        crawl.answered(asked[0], &made_up);
        assert_eq!(crawl.nodes().len(), 6);
        assert!(drain(&mut crawl).is_empty());
    }

    #[test]
    fn unasked_and_repeated_answers_are_ignored() {
        let (a, b, c, x) = (id(1), id(2), id(3), id(9));
        let mut crawl = Crawl::new(a, &[b], CrawlLimits::default());
        crawl.answered(x, &[c]);
        assert!(!crawl.nodes().contains_key(&c), "x was never asked");
        assert_eq!(drain(&mut crawl), vec![b]);
        crawl.answered(b, &[c]);
        crawl.answered(b, &[x]);
        assert!(!crawl.nodes().contains_key(&x), "b answered already");
    }
}
