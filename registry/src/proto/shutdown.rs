//! A node's end: every registration withdrawn, nothing else started.

use super::{id::Now, io::Event, node::Node, ops::OpKind};

impl Node {
    /// Begins the node's end: lookups, refreshes and publishes in progress stop (a lookup ends
    /// with its [`Event::LookupDone`]), every registration is withdrawn (even past
    /// `max_lookups`: each withdrawal is a promise made to the user), and from now on the node
    /// starts nothing but answers: no republish, no refresh, no bootstrap, and commands are
    /// refused with [`super::CommandError::ShuttingDown`]. Returns how many withdrawals it
    /// started; [`Node::withdrawals_running`] says when they have all ended.
    pub fn shutdown(&mut self, now: Now) -> usize {
        if self.closing {
            return 0;
        }
        self.closing = true;
        let stopped: Vec<_> = self
            .ops
            .iter()
            .filter(|(_, op)| !matches!(op.kind, OpKind::Withdraw { .. }))
            .map(|(id, op)| (*id, matches!(op.kind, OpKind::Lookup { .. })))
            .collect();
        for (id, is_lookup) in stopped {
            if let Some(mut op) = self.ops.remove(&id)
                && is_lookup
            {
                let stats = op.lookup.finish_stats();
                self.emit(Event::LookupDone { op: id, stats });
            }
        }
        let names: Vec<String> = self.registered_names();
        let mut started = 0;
        for name in names {
            if self.start_withdrawal(&name, now).is_ok() {
                started += 1;
            }
        }
        started
    }

    /// Whether [`Node::shutdown`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.closing
    }

    /// Withdrawals still running (waiting for their lookup or for holders' answers).
    pub fn withdrawals_running(&self) -> usize {
        self.ops
            .values()
            .filter(|op| matches!(op.kind, OpKind::Withdraw { .. }))
            .count()
    }
}
