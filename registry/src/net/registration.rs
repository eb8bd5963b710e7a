//! What a handle's calls give back: a [`Registration`] and a [`LookupStream`].

use tokio::sync::{mpsc, oneshot};

use super::{Command, Error, Registry};
use crate::proto::ProviderRecord;

/// Providers of a name, as a lookup finds them. Ends when the lookup is over (or the registry
/// shuts down).
#[derive(Debug)]
pub struct LookupStream {
    rx: mpsc::Receiver<ProviderRecord>,
}

impl LookupStream {
    pub(super) fn new(rx: mpsc::Receiver<ProviderRecord>) -> Self {
        Self { rx }
    }

    /// The next provider, or `None` when the lookup is over.
    pub async fn next(&mut self) -> Option<ProviderRecord> {
        self.rx.recv().await
    }

    /// Every remaining provider.
    pub async fn collect(mut self) -> Vec<ProviderRecord> {
        let mut out = Vec::new();
        while let Some(record) = self.next().await {
            out.push(record);
        }
        out
    }
}

/// A live registration: the record is republished for as long as it lives.
///
/// Dropping it withdraws the name, in the background: the withdrawal is queued before the
/// handle's hold on the registry goes, so even the last handle's drop withdraws (the actor
/// finishes the withdrawal, within [`super::Builder::shutdown_grace`], before it stops). Call
/// [`Registration::withdraw`] to wait for the holders' answers. To keep a name registered,
/// keep its `Registration`; [`Registry::shutdown`] withdraws every registration still live.
#[derive(Debug)]
pub struct Registration {
    name: String,
    holders: usize,
    registry: Option<Registry>,
}

impl Registration {
    pub(super) fn new(name: String, holders: usize, registry: Registry) -> Self {
        Self {
            name,
            holders,
            registry: Some(registry),
        }
    }

    /// The name registered.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nodes that acknowledged storing the record when it was first published.
    pub fn holders(&self) -> usize {
        self.holders
    }

    /// Withdraws the name everywhere and waits until every holder answered. Returns how many
    /// acknowledged the removal.
    pub async fn withdraw(mut self) -> Result<usize, Error> {
        let Some(registry) = self.registry.take() else {
            return Ok(0);
        };
        let (reply, rx) = oneshot::channel();
        registry
            .send(Command::Withdraw {
                name: self.name.clone(),
                reply: Some(reply),
            })
            .await?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(registry) = self.registry.take() else {
            return;
        };
        let command = Command::Withdraw {
            name: std::mem::take(&mut self.name),
            reply: None,
        };
        match registry.inner.commands.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                // The queue is full: wait for room in the background, if a runtime is there.
                // The task holds `registry`, so the actor outlives the withdrawal either way.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = registry.inner.commands.send(command).await;
                    });
                }
            }
            // Shut down already: the shutdown withdrew it.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}
