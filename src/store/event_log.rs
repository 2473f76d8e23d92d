//! The outbox read back: pages of events in commit order, its backlog,
//! and pruning what has finished long ago.

use sqlx::Row;

use super::events::{decode_event, EVENT_COLUMNS};
use super::{Backlog, EventRow, Store, StoreError};
use crate::checked::ConnectionId;
use crate::clock::UnixMillis;

/// One page of events: after a cursor, all of them or one connection's.
#[derive(Debug, Clone, Copy)]
pub struct EventPage<'a> {
    pub connection: Option<&'a ConnectionId>,
    pub after: i64,
    pub limit: i64,
}

impl EventPage<'_> {
    /// The page's events as a subquery selecting `columns`, binding `$1` to
    /// `$3`; a separate condition per case, so each is one index range
    /// (`events_by_connection` or the primary key).
    fn select(&self, columns: &str) -> String {
        let connection = match self.connection {
            Some(_) => "connection_id = $3 AND",
            None => "",
        };
        format!("SELECT {columns} FROM events WHERE {connection} seq > $1 ORDER BY seq LIMIT $2")
    }

    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let query = query.bind(self.after).bind(self.limit);
        match self.connection {
            Some(id) => query.bind(id.as_str()),
            None => query,
        }
    }
}

impl Store {
    /// The page's events, in commit order.
    pub async fn events_on(&self, page: EventPage<'_>) -> Result<Vec<EventRow>, StoreError> {
        let sql = page.select(EVENT_COLUMNS);
        let rows = page
            .bind(sqlx::query(&sql))
            .fetch_all(&mut *self.connection().await?)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    pub async fn event_backlog(&self) -> Result<Backlog, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending, MIN(created_at_ms) AS oldest FROM events WHERE state = 'pending'",
        )
        .fetch_one(&mut *self.connection().await?)
        .await?;
        Ok(Backlog {
            pending: row.try_get("pending")?,
            oldest_pending_at: row.try_get("oldest")?,
        })
    }

    /// Deletes up to `limit` of the oldest events that finished before
    /// `before` (their attempts are part of them); how many. Pending events
    /// are never pruned. The oldest come first in `seq`, so the scan stops
    /// at the first batch: no index on the finish time to keep up on every
    /// write.
    pub async fn prune_events(&self, before: UnixMillis, limit: i64) -> Result<u64, StoreError> {
        let pruned = sqlx::query(
            "DELETE FROM events WHERE seq IN
               (SELECT seq FROM events WHERE finished_at_ms < $1 ORDER BY seq LIMIT $2)",
        )
        .bind(before)
        .bind(limit)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(pruned.rows_affected())
    }
}
