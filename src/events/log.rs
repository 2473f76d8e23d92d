//! The outbox as the backend reads it: events in commit order with their
//! delivery attempts, and a redelivery on request.

use crate::checked::{ConnectionId, EventId};
use crate::clock::Clock;
use crate::store::{EventPage, EventRow, Store, StoreError};

/// Why a redelivery was not scheduled.
#[derive(Debug, thiserror::Error)]
pub enum RedeliveryError {
    #[error("no such event")]
    NotFound,
    #[error("no webhook is configured")]
    NoWebhook,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct EventLog {
    store: Store,
    clock: Clock,
    delivers: bool,
}

impl EventLog {
    pub fn new(store: Store, clock: Clock, delivers: bool) -> Self {
        Self {
            store,
            clock,
            delivers,
        }
    }

    /// Up to `limit` events after the cursor `after` (0: from the oldest
    /// kept), only those about `connection` when it is given.
    pub async fn after(
        &self,
        connection: Option<&ConnectionId>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.store
            .events_on(EventPage {
                connection,
                after,
                limit,
            })
            .await
    }

    /// Whether the connection exists or has events (a deleted one's stay readable).
    pub async fn knows_connection(&self, id: &ConnectionId) -> Result<bool, StoreError> {
        Ok(self.store.get_connection(id).await?.is_some()
            || !self.after(Some(id), 0, 1).await?.is_empty())
    }

    /// Schedules the event to be sent now, with a fresh round of attempts.
    pub async fn redeliver(&self, id: &EventId) -> Result<EventRow, RedeliveryError> {
        if !self.delivers {
            return Err(RedeliveryError::NoWebhook);
        }
        self.store
            .redeliver(id, self.clock.now_millis())
            .await?
            .ok_or(RedeliveryError::NotFound)
    }
}
