//! The outbox as the backend reads it: events in commit order with their
//! delivery attempts, and a redelivery on request.

use crate::checked::{ConnectionId, EventId};
use crate::clock::Clock;
use crate::store::{AttemptRow, EventPage, EventRow, Store, StoreError};

/// An event and what its deliveries got.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub event: EventRow,
    /// Oldest first.
    pub attempts: Vec<AttemptRow>,
}

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
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let page = EventPage {
            connection,
            after,
            limit,
        };
        let events = self.store.events_on(page).await?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempts = self.store.attempts_on(page).await?.into_iter().peekable();
        Ok(events
            .into_iter()
            .map(|event| {
                // Both are in `seq` order: each event takes the attempts up to its own.
                let mut own = Vec::new();
                while let Some(attempt) = attempts.next_if(|a| a.event_seq <= event.seq) {
                    if attempt.event_seq == event.seq {
                        own.push(attempt);
                    }
                }
                LoggedEvent {
                    event,
                    attempts: own,
                }
            })
            .collect())
    }

    /// Whether the connection exists or has events (a deleted one's stay readable).
    pub async fn knows_connection(&self, id: &ConnectionId) -> Result<bool, StoreError> {
        Ok(self.store.get_connection(id).await?.is_some()
            || !self.after(Some(id), 0, 1).await?.is_empty())
    }

    /// Schedules the event to be sent now, with a fresh round of attempts.
    pub async fn redeliver(&self, id: &EventId) -> Result<LoggedEvent, RedeliveryError> {
        if !self.delivers {
            return Err(RedeliveryError::NoWebhook);
        }
        let event = self
            .store
            .redeliver(id, self.clock.now_millis())
            .await?
            .ok_or(RedeliveryError::NotFound)?;
        // The connection's first event from just before this one is this one.
        let page = EventPage {
            connection: Some(&event.connection_id),
            after: event.seq - 1,
            limit: 1,
        };
        let attempts = self.store.attempts_on(page).await?;
        Ok(LoggedEvent { event, attempts })
    }
}
