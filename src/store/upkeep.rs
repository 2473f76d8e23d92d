//! Refresh leases, what a refresh or a key check found, the background
//! loop's claims of due rows, and sweeps of records that only grow.
//!
//! A lease is a row's `lease_until`/`lease_owner`: taken and given back in
//! single statements, so no pooled connection is held while the provider
//! answers, and it expires by itself when its holder dies.

use sqlx::Row;

use super::connections::{decode_connection, COLUMNS};
use super::sessions::SESSION_STATUS_RETENTION_SECS;
use super::transaction::as_written;
use super::{ConnectionRow, Generation, NewEvent, SealedCredential, Store, StoreError};
use crate::checked::{ConnectionId, ConnectionStatus};
use crate::clock::UnixTime;

/// What a key check (or an API answer about a key) leaves on its row.
#[derive(Debug, Clone, Copy)]
pub struct CheckRecord<'a> {
    pub status: ConnectionStatus,
    pub last_error: Option<&'a str>,
    pub next_work_at: Option<UnixTime>,
}

/// Rows deleted by one sweep, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepCounts {
    pub consumed_flow_states: u64,
    pub connect_sessions: u64,
}

/// A lease is free when nobody holds it, its holder's time ran out, or it is ours.
const LEASE_FREE: &str = "(lease_until IS NULL OR lease_until <= $3 OR lease_owner = $4)";

impl Store {
    /// Takes the refresh lease on `id` until `until` if its credential is
    /// still the generation `seen` and nobody else holds it; the row, or `None`.
    pub async fn claim_refresh(
        &self,
        id: &ConnectionId,
        seen: Generation,
        now: UnixTime,
        owner: &str,
        until: UnixTime,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!(
            "UPDATE connections SET lease_until = $5, lease_owner = $4
             WHERE id = $1 AND generation = $2 AND {LEASE_FREE}
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(seen.0)
            .bind(now)
            .bind(owner)
            .bind(until)
            .fetch_optional(&mut *self.connection().await?)
            .await?;
        row.as_ref().map(decode_connection).transpose()
    }

    /// Gives the lease back (if it is still ours) and says when to look again.
    pub async fn release_lease(
        &self,
        id: &ConnectionId,
        owner: &str,
        next_work_at: Option<UnixTime>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE connections SET lease_until = NULL, lease_owner = NULL, next_work_at = $3 WHERE id = $1 AND lease_owner = $2")
            .bind(id.as_str())
            .bind(owner)
            .bind(next_work_at)
            .execute(&mut *self.connection().await?)
            .await?;
        Ok(())
    }

    /// Stores the answer of a refresh if the credential is still the
    /// generation that was refreshed (`expected`; a re-seal keeps it): a
    /// reconnect or delete meanwhile wins,
    /// and then `None`. An answer without a refresh token keeps the old one
    /// (RFC 6749 §6: the provider need not rotate it). Gives the lease back.
    pub async fn save_refreshed(
        &self,
        id: &ConnectionId,
        refreshed: &SealedCredential,
        expected: Generation,
        next_work_at: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!(
            "UPDATE connections SET access_token = $2, refresh_token = COALESCE($3, refresh_token),
               expires_at = $4, scopes = $5, token_type = $6, status = $7, updated_at = $8,
               last_refreshed_at = $8, last_error = NULL, failures = 0, next_work_at = $10,
               lease_until = NULL, lease_owner = NULL, generation = generation + 1
             WHERE id = $1 AND kind = 'oauth' AND generation = $9
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(refreshed.sealed_access_token.as_slice())
            .bind(refreshed.sealed_refresh_token.as_deref())
            .bind(refreshed.expires_at)
            .bind(refreshed.scopes.join(" "))
            .bind(refreshed.token_type.as_str())
            .bind(ConnectionStatus::Connected.as_str())
            .bind(now)
            .bind(expected.0)
            .bind(next_work_at)
            .fetch_optional(&mut *self.connection().await?)
            .await?;
        row.as_ref().map(decode_connection).transpose()
    }

    /// Marks the connection `needs_reauth` for `reason` if its credential is
    /// still the generation `expected`, with the events `announce` gives;
    /// `None` when a reconnect replaced it meanwhile.
    pub async fn mark_needs_reauth(
        &self,
        id: &ConnectionId,
        expected: Generation,
        reason: &str,
        now: UnixTime,
        announce: impl FnOnce(&ConnectionRow) -> Vec<NewEvent>,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!(
            "UPDATE connections SET status = $2, updated_at = $3, last_error = $5,
               next_work_at = NULL, lease_until = NULL, lease_owner = NULL
             WHERE id = $1 AND generation = $4
             RETURNING {COLUMNS}"
        );
        let update = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(ConnectionStatus::NeedsReauth.as_str())
            .bind(now)
            .bind(expected.0)
            .bind(reason);
        self.write_announcing(update, as_written, announce).await
    }

    /// Counts a transient refresh failure (if the credential is still the
    /// generation `expected`), gives the lease back and says when to try
    /// again, with the events `announce` gives (the row holds the failures
    /// in a row so far); `None` when the row changed meanwhile.
    pub async fn record_refresh_failure(
        &self,
        id: &ConnectionId,
        expected: Generation,
        error: &str,
        retry_at: UnixTime,
        announce: impl FnOnce(&ConnectionRow) -> Vec<NewEvent>,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!(
            "UPDATE connections SET failures = failures + 1, last_error = $3, next_work_at = $4,
               lease_until = NULL, lease_owner = NULL
             WHERE id = $1 AND generation = $2
             RETURNING {COLUMNS}"
        );
        let update = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(expected.0)
            .bind(error)
            .bind(retry_at);
        self.write_announcing(update, as_written, announce).await
    }

    /// Records what a key check found, if the key is still the generation
    /// `expected` and the status still `was`, with the events `announce`
    /// gives; `updated_at` moves only when the status does. `None` when the
    /// row changed meanwhile.
    pub async fn record_check(
        &self,
        id: &ConnectionId,
        expected: Generation,
        was: ConnectionStatus,
        record: CheckRecord<'_>,
        now: UnixTime,
        announce: impl FnOnce(&ConnectionRow) -> Vec<NewEvent>,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!(
            "UPDATE connections SET status = $4, last_error = $5, next_work_at = $6,
               last_checked_at = $7, updated_at = CASE WHEN status = $4 THEN updated_at ELSE $7 END,
               lease_until = NULL, lease_owner = NULL
             WHERE id = $1 AND generation = $2 AND status = $3
             RETURNING {COLUMNS}"
        );
        let update = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(expected.0)
            .bind(was.as_str())
            .bind(record.status.as_str())
            .bind(record.last_error)
            .bind(record.next_work_at)
            .bind(now);
        self.write_announcing(update, as_written, announce).await
    }

    /// Leases up to `limit` rows due for upkeep (`next_work_at <= now`,
    /// most overdue first) to `owner` until `until`, skipping rows another
    /// process holds or is claiming; their ids.
    pub async fn claim_due(
        &self,
        now: UnixTime,
        owner: &str,
        until: UnixTime,
        limit: i64,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        // The lease test is repeated outside the subquery: on Postgres a row
        // that another claimer leased a moment ago is re-checked there.
        let sql = format!(
            "UPDATE connections SET lease_until = $4, lease_owner = $3
             WHERE id IN (SELECT id FROM connections
                          WHERE next_work_at <= $2 AND (lease_until IS NULL OR lease_until <= $2)
                          ORDER BY next_work_at LIMIT $1 {skip})
               AND (lease_until IS NULL OR lease_until <= $2)
             RETURNING id",
            skip = self.backend.skip_locked()
        );
        let rows = sqlx::query(&sql)
            .bind(limit)
            .bind(now)
            .bind(owner)
            .bind(until)
            .fetch_all(&mut *self.connection().await?)
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                ConnectionId::parse(&id).map_err(|_| super::corrupt("connection id"))
            })
            .collect()
    }

    /// How late the most overdue upkeep is at `now`, in seconds (0 when none is due).
    pub async fn upkeep_lag(&self, now: UnixTime) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_work_at) AS oldest FROM connections WHERE next_work_at <= $1",
        )
        .bind(now)
        .fetch_one(&mut *self.connection().await?)
        .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok(oldest.map_or(0, |oldest| now - oldest))
    }

    /// Deletes up to `limit` expired rows of each single-use table.
    pub async fn sweep_expired(
        &self,
        now: UnixTime,
        limit: i64,
    ) -> Result<SweepCounts, StoreError> {
        let states = sqlx::query(
            "DELETE FROM consumed_flow_states WHERE state_hash IN
               (SELECT state_hash FROM consumed_flow_states WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(now)
        .bind(limit)
        .execute(&mut *self.connection().await?)
        .await?;
        // A session's status stays readable for a while after it can no longer
        // be used: a flow started in its last minute may still be finishing.
        let sessions = sqlx::query(
            "DELETE FROM connect_sessions WHERE token_hash IN
               (SELECT token_hash FROM connect_sessions WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(now - SESSION_STATUS_RETENTION_SECS)
        .bind(limit)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(SweepCounts {
            consumed_flow_states: states.rows_affected(),
            connect_sessions: sessions.rows_affected(),
        })
    }

    /// Rows in the tables that sweeps keep small.
    pub async fn swept_table_rows(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM consumed_flow_states) AS states,
                    (SELECT COUNT(*) FROM connect_sessions) AS sessions",
        )
        .fetch_one(&mut *self.connection().await?)
        .await?;
        Ok(vec![
            ("consumed_flow_states", row.try_get("states")?),
            ("connect_sessions", row.try_get("sessions")?),
        ])
    }
}
