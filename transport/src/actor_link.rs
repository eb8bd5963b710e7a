//! Shutting an actor down from outside it, and waiting for its end.
//!
//! Every layer's actor ends one of two ways: a shutdown command from a handle, or its command
//! channel closing when the last handle is gone, after which it finishes the same work in the
//! background. Its protocol handler must shut it down too (`ProtocolHandler::shutdown`, called
//! by `Endpoint::shutdown` before connections close) without keeping it alive: the handler is
//! registered on the endpoint and would otherwise outlive every handle. [`ActorLink`] is that
//! weak link, and [`ActorGuard`] is what tells it the actor has ended.

use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A weak link to an actor: sends it a shutdown command while anything else keeps it alive, and
/// waits for its end.
///
/// Holds the actor's command channel weakly, so it never keeps the actor running after its last
/// handle is gone. Cheap to clone; every clone sees the same end.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tokio::sync::mpsc;
/// use weft_transport::ActorLink;
///
/// enum Command { Shutdown }
///
/// let (commands, mut rx) = mpsc::channel(8);
/// let (link, guard) = ActorLink::new(&commands);
/// tokio::spawn(async move {
///     let _guard = guard; // dropped however the task ends
///     while let Some(command) = rx.recv().await {
///         match command {
///             Command::Shutdown => break, // finish the layer's promises here
///         }
///     }
/// });
/// link.shutdown(Command::Shutdown).await;
/// assert!(link.has_ended());
/// # }
/// ```
#[derive(Debug)]
pub struct ActorLink<C> {
    commands: mpsc::WeakSender<C>,
    ended: CancellationToken,
}

impl<C> Clone for ActorLink<C> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
            ended: self.ended.clone(),
        }
    }
}

/// Held by an actor's task for as long as it runs; its drop, however the task ends (returned,
/// panicked, aborted with its runtime), tells every [`ActorLink`] the actor has ended.
#[derive(Debug)]
pub struct ActorGuard {
    _ended: DropGuard,
}

impl<C> ActorLink<C> {
    /// A link to the actor that reads `commands`' receiver, and the guard its task must hold.
    pub fn new(commands: &mpsc::Sender<C>) -> (Self, ActorGuard) {
        let ended = CancellationToken::new();
        let guard = ActorGuard {
            _ended: ended.clone().drop_guard(),
        };
        let link = Self {
            commands: commands.downgrade(),
            ended,
        };
        (link, guard)
    }

    /// Shuts the actor down and returns once it has ended.
    ///
    /// While any handle is alive, sends `command` (waiting for room in the command queue);
    /// when every handle is gone the actor is finishing on its own, so there is nothing to
    /// ask. Either way this then waits for the actor's end, so calling it again, from any
    /// clone or after the end, returns when (or as soon as) the actor has ended.
    pub async fn shutdown(&self, command: C) {
        // Scoped: the upgraded sender must not outlive the send, or it would keep the actor's
        // command channel open while we wait for the actor to end.
        if let Some(commands) = self.commands.upgrade() {
            // Fails only when the actor has ended already: then there is nothing to ask.
            let _ = commands.send(command).await;
        }
        self.ended().await;
    }

    /// Returns once the actor has ended.
    pub async fn ended(&self) {
        self.ended.cancelled().await;
    }

    /// Whether the actor has ended.
    pub fn has_ended(&self) -> bool {
        self.ended.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use futures_lite::future::poll_once;
    use tokio::sync::oneshot;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Command {
        Work,
        Shutdown,
    }

    /// How the test actor ended.
    #[derive(Debug, PartialEq)]
    enum End {
        Commanded,
        HandlesGone,
    }

    /// An actor that, on shutdown or when its handles are gone, tells how it is ending and then
    /// waits for `release` before it ends: its "finishing work".
    fn spawn_actor(
        rx: mpsc::Receiver<Command>,
        guard: ActorGuard,
    ) -> (oneshot::Receiver<End>, oneshot::Sender<()>) {
        let (ending_tx, ending) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        tokio::spawn(async move {
            let _guard = guard;
            let mut rx = rx;
            let end = loop {
                match rx.recv().await {
                    Some(Command::Work) => {}
                    Some(Command::Shutdown) => break End::Commanded,
                    None => break End::HandlesGone,
                }
            };
            let _ = ending_tx.send(end);
            let _ = release_rx.await;
        });
        (ending, release)
    }

    #[tokio::test]
    async fn with_a_handle_alive_it_sends_the_command_and_waits_for_the_end() {
        let (commands, rx) = mpsc::channel(1);
        let (link, guard) = ActorLink::new(&commands);
        let (ending, release) = spawn_actor(rx, guard);

        let mut shutdown = pin!(link.shutdown(Command::Shutdown));
        assert!(poll_once(&mut shutdown).await.is_none());
        assert_eq!(ending.await.unwrap(), End::Commanded);
        assert!(poll_once(&mut shutdown).await.is_none(), "still finishing");
        assert!(!link.has_ended());

        release.send(()).unwrap();
        shutdown.await;
        assert!(link.has_ended());
        drop(commands);
    }

    #[tokio::test]
    async fn a_full_command_queue_delays_the_command_not_loses_it() {
        let (commands, rx) = mpsc::channel(1);
        commands.send(Command::Work).await.unwrap();
        let (link, guard) = ActorLink::new(&commands);
        let mut shutdown = pin!(link.shutdown(Command::Shutdown));
        assert!(
            poll_once(&mut shutdown).await.is_none(),
            "queue full: it waits"
        );

        let (ending, release) = spawn_actor(rx, guard);
        let actor_side = async {
            let end = ending.await.unwrap();
            release.send(()).unwrap();
            end
        };
        // Polled together: the command goes out once the actor has taken `Work`.
        let (end, ()) = tokio::join!(actor_side, shutdown);
        assert_eq!(end, End::Commanded);
        drop(commands);
    }

    #[tokio::test]
    async fn with_every_handle_gone_it_waits_for_the_actor_finishing_on_its_own() {
        let (commands, rx) = mpsc::channel(1);
        let (link, guard) = ActorLink::new(&commands);
        let (ending, release) = spawn_actor(rx, guard);
        drop(commands);

        let mut shutdown = pin!(link.shutdown(Command::Shutdown));
        assert!(poll_once(&mut shutdown).await.is_none());
        // Nothing was sent: the actor saw its channel close.
        assert_eq!(ending.await.unwrap(), End::HandlesGone);
        assert!(poll_once(&mut shutdown).await.is_none(), "still finishing");

        release.send(()).unwrap();
        shutdown.await;
        assert!(link.has_ended());
    }

    #[tokio::test]
    async fn after_the_end_it_returns_at_once_with_or_without_handles() {
        let (commands, rx) = mpsc::channel(1);
        let (link, guard) = ActorLink::new(&commands);
        let (ending, release) = spawn_actor(rx, guard);
        release.send(()).unwrap();
        link.shutdown(Command::Shutdown).await;
        assert_eq!(ending.await.unwrap(), End::Commanded);

        let clone = link.clone();
        assert!(poll_once(clone.shutdown(Command::Shutdown)).await.is_some());
        drop(commands);
        assert!(poll_once(link.shutdown(Command::Shutdown)).await.is_some());
    }

    #[tokio::test]
    async fn a_panicking_actor_has_ended_too() {
        let (commands, _rx) = mpsc::channel::<Command>(1);
        let (link, guard) = ActorLink::new(&commands);
        let task = tokio::spawn(async move {
            let _guard = guard;
            panic!("the actor failed");
        });
        assert!(task.await.is_err());
        assert!(link.has_ended());
        // The receiver outlived the actor here: the command is queued, and nobody waits for it.
        link.shutdown(Command::Shutdown).await;
    }
}
