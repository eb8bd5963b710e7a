//! The sync topics the admin API has joined, synced until the node shuts down.

use std::collections::BTreeMap;

use weft_gossip::TopicId;
use weft_sync::{ItemKey, SyncTopic, proto::Role};

use crate::Node;
use crate::admin::{
    ApiError, Payload, SyncAdd, SyncAdded, SyncItem, SyncItems, SyncList, SyncSession, SyncStatus,
};
use crate::daemon::registry::unix_millis;

/// Sync topics the admin API keeps joined at most. Past it, joining another is refused.
pub const MAX_SYNC_TOPICS: usize = 64;

/// Items one `weft sync list` returns at most, whatever limit it asks for.
pub const MAX_LIST_ITEMS: u32 = 1000;

/// The joined topics, by name.
#[derive(Debug, Default)]
pub(crate) struct SyncTopics {
    topics: tokio::sync::Mutex<BTreeMap<String, SyncTopic>>,
}

impl SyncTopics {
    /// The names of the topics joined, in order.
    pub(crate) async fn names(&self) -> Vec<String> {
        self.topics.lock().await.keys().cloned().collect()
    }

    /// Joins the topic if needed and adds the item, if one is given.
    pub(crate) async fn add(&self, node: &Node, request: SyncAdd) -> Result<SyncAdded, ApiError> {
        let mut topics = self.topics.lock().await;
        let name = request.topic;
        if !topics.contains_key(&name) {
            if name.is_empty() {
                return Err(ApiError::bad_request("the topic name is empty"));
            }
            if topics.len() >= MAX_SYNC_TOPICS {
                return Err(ApiError::unavailable(format_args!(
                    "this node syncs its limit of {MAX_SYNC_TOPICS} topics through the admin \
                     API; restart it to leave them"
                )));
            }
            let topic = node
                .subscribe_sync(TopicId::from_name(&name))
                .await
                .map_err(|err| ApiError::unavailable(format_args!("cannot sync {name}: {err}")))?;
            topics.insert(name.clone(), topic);
        }
        let topic = joined(&mut topics, &name)?;
        let item = match request.content {
            Some(content) => {
                let timestamp = request.timestamp.unwrap_or_else(unix_millis);
                let id = topic
                    .insert(timestamp, content.as_bytes())
                    .await
                    .map_err(|err| {
                        ApiError::bad_request(format_args!("cannot add to {name}: {err}"))
                    })?;
                Some(id.to_string())
            }
            None => None,
        };
        Ok(SyncAdded { topic: name, item })
    }

    /// A page of the topic's items, oldest first.
    pub(crate) async fn list(&self, request: SyncList) -> Result<SyncItems, ApiError> {
        let mut topics = self.topics.lock().await;
        let topic = joined(&mut topics, &request.topic)?;
        let limit = request.limit.min(MAX_LIST_ITEMS) as usize;
        // One more than asked tells whether more follow.
        let keys = topic
            .keys_since(request.since, limit + 1)
            .await
            .map_err(|err| stopped(&err))?;
        let more = keys.len() > limit;
        let mut items = Vec::with_capacity(keys.len().min(limit));
        for ItemKey { timestamp, id } in keys.into_iter().take(limit) {
            // An item is never removed, so a key just listed has its item.
            if let Some(item) = topic.get(id).await.map_err(|err| stopped(&err))? {
                items.push(SyncItem {
                    id: id.to_string(),
                    timestamp,
                    content: Payload(item.payload().to_vec()),
                });
            }
        }
        Ok(SyncItems {
            topic: request.topic,
            items,
            more,
        })
    }

    /// The topic's item count and sessions; `joined: false` for a topic not synced.
    pub(crate) async fn status(&self, name: String) -> Result<SyncStatus, ApiError> {
        let mut topics = self.topics.lock().await;
        let Ok(topic) = joined(&mut topics, &name) else {
            return Ok(SyncStatus {
                topic: name,
                joined: false,
                items: 0,
                sessions: Vec::new(),
            });
        };
        let items = topic.item_count().await.map_err(|err| stopped(&err))? as u64;
        let sessions = topic
            .sessions()
            .await
            .map_err(|err| stopped(&err))?
            .into_iter()
            .map(|session| SyncSession {
                peer: session.peer.to_string(),
                initiator: session.role == Role::Initiator,
                live: session.live,
            })
            .collect();
        Ok(SyncStatus {
            topic: name,
            joined: true,
            items,
            sessions,
        })
    }
}

/// The joined topic `name`, with its event queue emptied.
///
/// Nobody reads a topic's events here (the items are in the store), but the queue holds up
/// to the sync layer's event capacity, items included, until read: draining it at every use
/// keeps that memory from sitting there.
fn joined<'a>(
    topics: &'a mut BTreeMap<String, SyncTopic>,
    name: &str,
) -> Result<&'a SyncTopic, ApiError> {
    let topic = topics.get_mut(name).ok_or_else(|| {
        ApiError::not_found(format_args!(
            "this node does not sync {name}; `weft sync add {name}` joins it"
        ))
    })?;
    while topic.try_recv().is_some() {}
    Ok(topic)
}

fn stopped(err: &weft_sync::Error) -> ApiError {
    ApiError::unavailable(format_args!("sync has stopped: {err}"))
}
