//! Which addresses travel with which message, and how many a node remembers.
//!
//! The protocol speaks of peer ids only; a runtime must also know how to reach the peers a
//! message names (a join forwarded for a newcomer, the peers of a shuffle) before it can act on
//! it. So every membership message carries the addresses of the peers it names, and the
//! sender's own. Which peers those are is a protocol decision, made here for every message
//! kind; the runtime only fills in the addresses it knows ([`AddressBook`]).

use std::collections::{HashMap, VecDeque};

use super::{
    hyparview::Message as Membership, state::Message, topic::TopicMessage, types::PeerIdentity,
};

/// The peers a message names and whose addresses should travel with it: those a membership
/// message asks the receiver to contact or to remember. Broadcast messages name none (they go
/// to neighbours only, whose addresses are known).
pub fn named_peers<PI: PeerIdentity>(message: &Message<PI>) -> Vec<PI> {
    let TopicMessage::Membership(membership) = &message.message else {
        return Vec::new();
    };
    match membership {
        Membership::ForwardJoin { peer, .. } => vec![*peer],
        Membership::Shuffle { origin, peers, .. } => std::iter::once(*origin)
            .chain(peers.iter().copied())
            .collect(),
        Membership::ShuffleReply { peers } => peers.clone(),
        Membership::Swap { drop } => vec![*drop],
        Membership::SwapReply { dropped, .. } => dropped.iter().copied().collect(),
        Membership::Replace { with } => with.iter().copied().collect(),
        _ => Vec::new(),
    }
}

/// Addresses learned from peers, at most `capacity`; when full, the one learned longest ago is
/// forgotten first (a re-learned address keeps its place: peers cannot pin entries by
/// repeating them, nor push out others faster than by naming new ids).
#[derive(Debug, Clone)]
pub struct AddressBook<PI, A> {
    addrs: HashMap<PI, A>,
    order: VecDeque<PI>,
    capacity: usize,
}

impl<PI: PeerIdentity, A: Clone> AddressBook<PI, A> {
    /// An empty book holding at most `capacity` addresses (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            addrs: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Remembers `addr` for `peer` (replacing an older one); returns whether the peer is new.
    pub fn learn(&mut self, peer: PI, addr: A) -> bool {
        if self.addrs.insert(peer, addr).is_some() {
            return false;
        }
        self.order.push_back(peer);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.addrs.remove(&old);
            }
        }
        true
    }

    /// The address known for `peer`.
    pub fn get(&self, peer: &PI) -> Option<&A> {
        self.addrs.get(peer)
    }

    /// The addresses to send with `message`: `own` first, then those known for the peers it
    /// names ([`named_peers`]); none for a broadcast message.
    pub fn for_message(&self, message: &Message<PI>, own: A) -> Vec<A> {
        if !matches!(message.message, TopicMessage::Membership(_)) {
            return Vec::new();
        }
        std::iter::once(own)
            .chain(
                named_peers(message)
                    .iter()
                    .filter_map(|p| self.get(p).cloned()),
            )
            .collect()
    }

    /// How many addresses are remembered.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::TopicId;

    fn membership(message: Membership<u32>) -> Message<u32> {
        Message {
            topic: TopicId::from_name("t"),
            message: TopicMessage::Membership(message),
        }
    }

    #[test]
    fn a_full_book_forgets_the_oldest_and_repeats_do_not_pin() {
        let mut book = AddressBook::new(2);
        assert!(book.learn(1u32, "a1"));
        assert!(book.learn(2, "a2"));
        assert!(!book.learn(1, "a1'"));
        assert!(book.learn(3, "a3"));
        assert_eq!(book.len(), 2);
        assert_eq!(book.get(&1), None);
        assert_eq!(book.get(&3), Some(&"a3"));
    }

    #[test]
    fn a_forwarded_join_carries_the_newcomers_address_after_ours() {
        let mut book = AddressBook::new(8);
        book.learn(7u32, "seven");
        let join = membership(Membership::ForwardJoin { peer: 7, ttl: 3 });
        assert_eq!(named_peers(&join), vec![7]);
        assert_eq!(book.for_message(&join, "me"), vec!["me", "seven"]);
        // A named peer whose address we do not know is left out.
        let swap = membership(Membership::Swap { drop: 9 });
        assert_eq!(book.for_message(&swap, "me"), vec!["me"]);
    }
}
