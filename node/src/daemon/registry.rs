//! The names the admin API provides in the registry, kept registered until the node shuts down.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use weft_registry::{ProviderRecord, Registration, Registry};

use crate::admin::{ApiError, Payload, Provided, Provider, Providers};
use crate::daemon::saved::ProvidedName;

/// Names the admin API provides at most. Past it, a new name is refused (the provided ones
/// stay): each costs a republish to the closest nodes every record TTL, for as long as the
/// node runs.
pub const MAX_PROVIDED_NAMES: usize = 64;

/// The live registrations, by name, with the metadata each was provided with (what
/// `joined.toml` keeps). Holding a [`Registration`] is what keeps the record republished; the
/// registry's shutdown withdraws them all.
#[derive(Debug, Default)]
pub(crate) struct ProvidedNames {
    names: tokio::sync::Mutex<BTreeMap<String, (Registration, Payload)>>,
}

impl ProvidedNames {
    /// Provides `name` with `metadata`.
    ///
    /// A name provided already is **replaced**: the old record is withdrawn, then the new one
    /// registered (the registry stores a record signed after a removal), so new metadata takes
    /// effect. Withdrawing first matters: the registry treats two registrations of one name
    /// as one record, which the first of them to go would remove.
    pub(crate) async fn provide(
        &self,
        registry: &Registry,
        name: String,
        metadata: Payload,
    ) -> Result<Provided, ApiError> {
        if name.is_empty() {
            return Err(ApiError::bad_request("the name is empty"));
        }
        let mut names = self.names.lock().await;
        if let Some((old, _)) = names.remove(&name) {
            old.withdraw().await.map_err(|err| stopped(&err))?;
        } else if names.len() >= MAX_PROVIDED_NAMES {
            return Err(ApiError::unavailable(format_args!(
                "this node provides its limit of {MAX_PROVIDED_NAMES} names through the admin \
                 API; restart it to withdraw them"
            )));
        }
        let registration = registry
            .register(name.clone(), metadata.0.clone())
            .await
            .map_err(|err| ApiError::bad_request(format_args!("cannot provide {name}: {err}")))?;
        let holders = registration.holders() as u64;
        names.insert(name.clone(), (registration, metadata));
        Ok(Provided { name, holders })
    }

    /// The names provided now, with their metadata, by name.
    pub(crate) async fn list(&self) -> Vec<ProvidedName> {
        self.names
            .lock()
            .await
            .iter()
            .map(|(name, (_, metadata))| ProvidedName {
                name: name.clone(),
                metadata: metadata.clone(),
            })
            .collect()
    }
}

/// Every provider of `name` the network knows now (the local cache is bypassed: someone
/// asking from the command line wants the current answer).
pub(crate) async fn find(registry: &Registry, name: String) -> Result<Providers, ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request("the name is empty"));
    }
    let records = registry
        .lookup_all_refresh(&name)
        .await
        .map_err(|err| stopped(&err))?;
    let now = unix_millis();
    Ok(Providers {
        providers: records
            .into_iter()
            .map(|record| provider(record, now))
            .collect(),
        name,
    })
}

fn provider(record: ProviderRecord, now_ms: u64) -> Provider {
    let expires = record.issued_at.as_millis().saturating_add(record.ttl_ms);
    Provider {
        id: record.provider.to_string(),
        addresses: record.addresses.into_iter().collect(),
        relay: record.relay.map(|relay| relay.to_string()),
        metadata: Payload(record.metadata),
        expires_in_ms: expires.saturating_sub(now_ms),
    }
}

/// Milliseconds since the Unix epoch: the clock records are signed with.
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

fn stopped(err: &weft_registry::Error) -> ApiError {
    ApiError::unavailable(format_args!("the registry has stopped: {err}"))
}
