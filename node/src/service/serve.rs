//! [`Service`]: a name this node serves, for as long as the handle lives.

use tracing::debug;
use weft_registry::Registration;

use super::server::Server;

/// Why [`crate::Node::serve`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The name is empty or longer than [`super::MAX_NAME_LEN`] bytes.
    #[error("invalid service name: {0}")]
    InvalidName(String),
    /// This node serves the name already (stop that [`Service`] first).
    #[error("{0:?} is served by this node already")]
    AlreadyServed(String),
    /// The node runs no registry, so nobody could find the service.
    #[error("the registry layer is not running on this node")]
    RegistryDisabled,
    /// The node has shut down.
    #[error("the node has shut down")]
    Closed,
    /// The registry refused the registration.
    #[error(transparent)]
    Registry(#[from] weft_registry::Error),
}

/// A name this node serves: registered in the registry and answered on `call/1`.
///
/// Dropping it stops answering at once and withdraws the registration in the background;
/// [`Service::stop`] does the same and waits for the withdrawal.
#[derive(Debug)]
pub struct Service {
    name: String,
    id: u64,
    server: Server,
    registration: Option<Registration>,
}

impl Service {
    pub(crate) fn new(name: String, id: u64, server: Server, registration: Registration) -> Self {
        Self {
            name,
            id,
            server,
            registration: Some(registration),
        }
    }

    /// The name served.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nodes that acknowledged storing the registration when it was published.
    pub fn holders(&self) -> usize {
        self.registration.as_ref().map_or(0, Registration::holders)
    }

    /// Stops answering calls for the name (from now on they are answered
    /// [`CallFailure::UnknownService`](super::CallFailure::UnknownService)), then withdraws the
    /// registration and waits until its holders answered. A registry that has shut down
    /// withdrew it already.
    pub async fn stop(mut self) {
        self.server.remove(&self.name, self.id);
        if let Some(registration) = self.registration.take()
            && let Err(err) = registration.withdraw().await
        {
            debug!(name = %self.name, "withdrawing the service: {err}");
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Stop answering first: a caller that still finds the record fails over at once.
        self.server.remove(&self.name, self.id);
        // Dropping the registration (if `stop` did not take it) withdraws it.
    }
}
