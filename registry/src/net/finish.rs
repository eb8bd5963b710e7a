//! The actor's end, however it came (a shutdown call, the endpoint's shutdown, the last handle
//! dropped): withdraw what is still registered, wait for the answers within the grace period,
//! then stop.

use tracing::debug;

use super::{Command, actor::Actor, lock};

impl Actor {
    /// Stops taking commands, withdraws every registration still live and serves the network
    /// (answers, time-outs, requests from peers) until every withdrawal has ended or the grace
    /// period is over; then unregisters the handler and ends the event streams.
    pub(super) async fn finish(mut self) {
        self.commands.close();
        // Commands queued before the end: withdrawals are carried out (a caller waiting on one
        // gets its answer); the others are dropped, so their callers get `Error::Closed`.
        while let Ok(command) = self.commands.try_recv() {
            if matches!(command, Command::Withdraw { .. }) {
                self.on_command(command);
            }
        }
        // Lookups in progress end here: their streams close.
        self.lookups.clear();
        let started = self.node.shutdown(self.clock.now());
        self.flush();
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        let grace = tokio::time::sleep_until(deadline);
        tokio::pin!(grace);
        while self.node.withdrawals_running() > 0 {
            let sleep = self.next_timer();
            tokio::select! {
                Some(inbound) = self.inbound.recv() => self.on_inbound(inbound),
                Some(result) = self.results.recv() => self.on_result(result),
                () = sleep => self.fire_timers(),
                () = &mut grace => {
                    debug!(
                        running = self.node.withdrawals_running(),
                        "registry: withdrawals cut off after the shutdown grace period"
                    );
                    break;
                }
            }
        }
        debug!(started, "registry: shut down");
        self.endpoint.unregister_exact(self.registration);
        // Event streams end (after the `Withdrawn` events of the shutdown).
        lock(&self.events).take();
    }
}
