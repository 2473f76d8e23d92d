//! Connections: one row per connection id, credentials sealed.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{corrupt, ConnectionRow, RefreshLock, SealedCredential, Store, StoreError};
use crate::clock::UnixTime;
use crate::domain::{ConnectionId, ConnectionKind, ConnectionStatus};

const COLUMNS: &str = "id, kind, status, scopes, token_type, access_token, refresh_token, expires_at, created_at, updated_at";

impl Store {
    pub async fn get_connection(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        fetch_connection(&self.pool, id).await
    }

    pub async fn list_connections(&self) -> Result<Vec<ConnectionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connections ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(decode_connection).collect()
    }

    /// Up to `limit` connections with ids after `after`, in id order: a batch
    /// that stays valid while other processes write.
    pub async fn connections_after(
        &self,
        after: Option<&ConnectionId>,
        limit: i64,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connections WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after.map_or("", ConnectionId::as_str))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_connection).collect()
    }

    /// How many connections there are in each status.
    pub async fn count_by_status(&self) -> Result<Vec<(ConnectionStatus, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM connections GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                let status = ConnectionStatus::from_stored(&status)
                    .ok_or_else(|| corrupt("connection status"))?;
                Ok((status, row.try_get("n")?))
            })
            .collect()
    }

    /// Creates the connection or replaces its credential (a reconnect keeps
    /// `created_at`), and marks it connected. One statement, so never half written.
    pub async fn upsert_connection(
        &self,
        id: &ConnectionId,
        credential: &SealedCredential,
        now: UnixTime,
    ) -> Result<ConnectionRow, StoreError> {
        let sql = format!(
            "INSERT INTO connections ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, status = excluded.status,
               scopes = excluded.scopes, token_type = excluded.token_type,
               access_token = excluded.access_token, refresh_token = excluded.refresh_token,
               expires_at = excluded.expires_at, updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(credential.kind.as_str())
            .bind(ConnectionStatus::Connected.as_str())
            .bind(credential.scopes.join(" "))
            .bind(credential.token_type.as_str())
            .bind(credential.sealed_access_token.as_slice())
            .bind(credential.sealed_refresh_token.as_deref())
            .bind(credential.expires_at)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        decode_connection(&row)
    }

    /// Deletes the connection and returns what it held, or `None` if there was none.
    pub async fn delete_connection(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!("DELETE FROM connections WHERE id = $1 RETURNING {COLUMNS}");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_connection).transpose()
    }

    /// Replaces the sealed credential only if it is still exactly `expected`,
    /// so a re-seal never overwrites a refresh that happened meanwhile.
    pub async fn reseal_connection(
        &self,
        id: &ConnectionId,
        expected_access: &[u8],
        access: &[u8],
        refresh: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connections SET access_token = $3, refresh_token = $4 WHERE id = $1 AND access_token = $2",
        )
        .bind(id.as_str())
        .bind(expected_access)
        .bind(access)
        .bind(refresh)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl RefreshLock<'_> {
    /// Reads the connection through the lock's own database session.
    pub async fn get_connection(
        &mut self,
        id: &ConnectionId,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        match &mut self.held {
            Some(conn) => fetch_connection(&mut **conn, id).await,
            None => fetch_connection(&self.store.pool, id).await,
        }
    }

    /// Stores the answer of a refresh if the credential is still the one
    /// that was refreshed (`expected`): a reconnect meanwhile wins. `None`
    /// when it was not. A refresh answer without a refresh token keeps the
    /// old one (RFC 6749 §6: the provider need not rotate it).
    pub async fn save_refreshed(
        &mut self,
        id: &ConnectionId,
        refreshed: &SealedCredential,
        expected: &[u8],
        now: UnixTime,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!(
            "UPDATE connections SET access_token = $2, refresh_token = COALESCE($3, refresh_token),
               expires_at = $4, scopes = $5, token_type = $6, status = $7, updated_at = $8
             WHERE id = $1 AND kind = 'oauth' AND access_token = $9
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(refreshed.sealed_access_token.as_slice())
            .bind(refreshed.sealed_refresh_token.as_deref())
            .bind(refreshed.expires_at)
            .bind(refreshed.scopes.join(" "))
            .bind(refreshed.token_type.as_str())
            .bind(ConnectionStatus::Connected.as_str())
            .bind(now)
            .bind(expected);
        let row = match &mut self.held {
            Some(conn) => query.fetch_optional(&mut **conn).await?,
            None => query.fetch_optional(&self.store.pool).await?,
        };
        row.as_ref().map(decode_connection).transpose()
    }

    /// Marks the connection `needs_reauth` if its credential is still
    /// `expected`; false when a reconnect replaced it meanwhile.
    pub async fn mark_needs_reauth(
        &mut self,
        id: &ConnectionId,
        expected: &[u8],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query("UPDATE connections SET status = $2, updated_at = $3 WHERE id = $1 AND access_token = $4")
            .bind(id.as_str())
            .bind(ConnectionStatus::NeedsReauth.as_str())
            .bind(now)
            .bind(expected);
        let done = match &mut self.held {
            Some(conn) => query.execute(&mut **conn).await?,
            None => query.execute(&self.store.pool).await?,
        };
        Ok(done.rows_affected() == 1)
    }
}

async fn fetch_connection<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &ConnectionId,
) -> Result<Option<ConnectionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(decode_connection).transpose()
}

fn decode_connection(row: &AnyRow) -> Result<ConnectionRow, StoreError> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let scopes: String = row.try_get("scopes")?;
    Ok(ConnectionRow {
        id: ConnectionId::parse(&id).map_err(|_| corrupt("connection id"))?,
        kind: ConnectionKind::from_stored(&kind).ok_or_else(|| corrupt("connection kind"))?,
        status: ConnectionStatus::from_stored(&status)
            .ok_or_else(|| corrupt("connection status"))?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        token_type: row.try_get("token_type")?,
        sealed_access_token: row.try_get("access_token")?,
        sealed_refresh_token: row.try_get("refresh_token")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
