//! The outbox read back: pages of events in commit order with their
//! attempts, its backlog, and pruning what has finished long ago.

use sqlx::Row;

use super::events::{decode_event, EVENT_COLUMNS};
use super::{AttemptRow, Backlog, EventRow, Store, StoreError};
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

    /// The attempts on the page's events (and on no others), in time order.
    pub async fn attempts_on(&self, page: EventPage<'_>) -> Result<Vec<AttemptRow>, StoreError> {
        let sql = format!(
            "SELECT event_seq, at_ms, status_code, error FROM event_attempts
             WHERE event_seq IN ({}) ORDER BY event_seq, at_ms",
            page.select("seq")
        );
        let rows = page
            .bind(sqlx::query(&sql))
            .fetch_all(&mut *self.connection().await?)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AttemptRow {
                    event_seq: row.try_get("event_seq")?,
                    at: row.try_get("at_ms")?,
                    status_code: row.try_get("status_code")?,
                    error: row.try_get("error")?,
                })
            })
            .collect()
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

    /// Deletes up to `limit` events that finished before `before`, with
    /// their attempts, in one transaction; how many. The batch is chosen
    /// once and locked (skipped by another pruner on Postgres), so the
    /// attempts deleted are exactly those of the events deleted. Pending
    /// events are never pruned.
    pub async fn prune_events(&self, before: UnixMillis, limit: i64) -> Result<u64, StoreError> {
        let mut connection = self.connection().await?;
        let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
        let batch = sqlx::query(&format!(
            "SELECT seq FROM events WHERE finished_at_ms < $1
             ORDER BY finished_at_ms, seq LIMIT $2 {}",
            self.backend.skip_locked()
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>("seq"))
        .collect::<Result<Vec<_>, _>>()?;
        if batch.is_empty() {
            return Ok(0);
        }
        // The numbers are ours, not input: written into the statement.
        let seqs = batch
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(&format!(
            "DELETE FROM event_attempts WHERE event_seq IN ({seqs})"
        ))
        .execute(&mut *transaction)
        .await?;
        let pruned = sqlx::query(&format!("DELETE FROM events WHERE seq IN ({seqs})"))
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(pruned.rows_affected())
    }
}
