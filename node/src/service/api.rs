//! The service methods of [`Node`]: `serve` and `call`.

use std::future::Future;

use super::{
    CallError, CallOptions, CallReply, Handler, ServeError, ServeOptions, Service, call,
    exec::{Exec, KILL_MARGIN},
    valid_name,
};
use crate::Node;

impl Node {
    /// Serves `name`: answers calls for it on `call/1` and registers this node as a provider
    /// in the registry, for as long as the returned [`Service`] lives. Uses the default
    /// [`ServeOptions`]; see [`Node::serve_with`].
    ///
    /// The handler gets each request's bytes and returns the response's bytes, or an error
    /// message the caller sees as this provider's failure (the call then fails over). It runs
    /// on its own task: a panic is answered as a failure and the node stays up, and a handler
    /// that runs past [`ServeOptions::handler_timeout`] is cancelled.
    ///
    /// ```no_run
    /// # async fn example(node: weft_node::Node) -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = node.serve("echo", |request: Vec<u8>| async move { Ok(request) }).await?;
    /// let reply = node.call("echo", b"hello".to_vec()).await?;
    /// assert_eq!(reply.response, b"hello");
    /// echo.stop().await; // stops answering, withdraws the registration
    /// # Ok(()) }
    /// ```
    pub async fn serve<F, Fut>(
        &self,
        name: impl Into<String>,
        handler: F,
    ) -> Result<Service, ServeError>
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, String>> + Send + 'static,
    {
        self.serve_with(name, ServeOptions::default(), handler)
            .await
    }

    /// [`Node::serve`] with options: the handler's timeout and the registry metadata.
    ///
    /// The name is answered before it is registered, so a caller that finds the record is
    /// answered. It fails with [`ServeError::AlreadyServed`] if this node serves `name`
    /// already.
    pub async fn serve_with<F, Fut>(
        &self,
        name: impl Into<String>,
        options: ServeOptions,
        handler: F,
    ) -> Result<Service, ServeError>
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, String>> + Send + 'static,
    {
        self.serve_handler(name.into(), options, Handler::new(handler))
            .await
    }

    /// The names this node serves now ([`Node::serve`] and `[[service]]`), in order.
    pub fn served(&self) -> Vec<String> {
        self.calls().names()
    }

    /// Serves every `[[service]]` of the config, each through its program; on a failure, the
    /// ones served so far are stopped and the name that failed is returned with the error.
    pub(crate) async fn serve_configured(&self) -> Result<Vec<Service>, (String, ServeError)> {
        let mut services = Vec::new();
        for service in &self.config().services {
            let options = ServeOptions {
                // The program's own time-out kills it first; see `exec::KILL_MARGIN`.
                handler_timeout: service.timeout + KILL_MARGIN,
                metadata: Vec::new(),
            };
            let handler = Exec::new(service).handler();
            match self
                .serve_handler(service.name.clone(), options, handler)
                .await
            {
                Ok(served) => services.push(served),
                Err(err) => {
                    for served in services {
                        served.stop().await;
                    }
                    return Err((service.name.clone(), err));
                }
            }
        }
        Ok(services)
    }

    async fn serve_handler(
        &self,
        name: String,
        options: ServeOptions,
        handler: Handler,
    ) -> Result<Service, ServeError> {
        if !valid_name(&name) {
            return Err(ServeError::InvalidName(name.chars().take(64).collect()));
        }
        if self.is_shut_down() {
            return Err(ServeError::Closed);
        }
        let registry = self.registry().ok_or(ServeError::RegistryDisabled)?;
        let server = self.calls();
        let id = server
            .add(&name, handler, options.handler_timeout)
            .ok_or_else(|| ServeError::AlreadyServed(name.clone()))?;
        match registry.register(name.clone(), options.metadata).await {
            Ok(registration) => Ok(Service::new(name, id, server.clone(), registration)),
            Err(err) => {
                server.remove(&name, id);
                Err(err.into())
            }
        }
    }

    /// Calls the service `name` with `request` under the config's `[calls]` settings
    /// ([`crate::CallsConfig::options`], the [`CallOptions`] defaults unless the config
    /// changed them); see [`Node::call_with`].
    pub async fn call(
        &self,
        name: &str,
        request: impl Into<Vec<u8>>,
    ) -> Result<CallReply, CallError> {
        let options = self.config().calls.options();
        self.call_with(name, request, &options).await
    }

    /// Calls the service `name` with `request`: looks its providers up in the registry,
    /// orders them by measured round trip (this node first if it provides the name; then
    /// discovery's ping times, fastest first; then the unmeasured, of which a few are pinged
    /// first; ties by peer id), and tries them in that order, each within
    /// [`CallOptions::attempt_timeout`], failing over on an error, a refusal or a timeout,
    /// until one answers, [`CallOptions::max_attempts`] were tried, or
    /// [`CallOptions::timeout`] runs out.
    ///
    /// The reply names the provider that answered and the ones that failed before it. A
    /// request over [`MAX_REQUEST_SIZE`](super::MAX_REQUEST_SIZE) is refused before anything
    /// is sent.
    pub async fn call_with(
        &self,
        name: &str,
        request: impl Into<Vec<u8>>,
        options: &CallOptions,
    ) -> Result<CallReply, CallError> {
        call(self, self.calls(), name, request.into(), options).await
    }
}
