//! Single-use records: connect sessions and the states of finished callbacks.
//! Each is used up by one atomic statement, so "single use" holds across
//! processes sharing the database.

use sqlx::Row;

use super::profiles::{bind_end_user, decode_update, PROFILE_COLUMNS};
use super::{corrupt, ConnectSessionRow, Store, StoreError};
use crate::checked::{ConnectionId, Origin, ReturnTo, Tags};
use crate::clock::UnixTime;

/// How long a session is kept after it expires, so that its status can still
/// be read: a flow started in its last minute may take ten more to finish.
pub const SESSION_STATUS_RETENTION_SECS: i64 = 60 * 60;

/// What `decode_session` reads.
pub(super) const SESSION_COLUMNS: &str = concat!(
    "connection_id, return_to, popup_origin, expires_at, ",
    profile_columns!()
);

impl Store {
    pub async fn create_connect_session(
        &self,
        token_hash: &str,
        session: &ConnectSessionRow,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO connect_sessions (token_hash, connection_id, return_to, popup_origin, expires_at, {PROFILE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        let insert = sqlx::query(&sql)
            .bind(token_hash)
            .bind(session.connection_id.as_str())
            .bind(session.return_to.as_ref().map(ReturnTo::as_str))
            .bind(session.popup_origin.as_ref().map(Origin::serialize))
            .bind(session.expires_at);
        bind_end_user(insert, session.profile.end_user.as_ref())
            .bind(session.profile.tags.as_ref().map(Tags::to_json))
            .execute(&mut *self.connection().await?)
            .await?;
        Ok(())
    }

    /// The session if it is unused and unexpired, without using it up.
    pub async fn peek_connect_session(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Option<ConnectSessionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM connect_sessions
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *self.connection().await?)
        .await?;
        row.as_ref().map(decode_session).transpose()
    }

    /// Uses the session up; `None` if it is unknown, expired or used already.
    pub async fn consume_connect_session(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Option<ConnectSessionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE connect_sessions SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *self.connection().await?)
        .await?;
        row.as_ref().map(decode_session).transpose()
    }

    /// Reserves one API-key check for the session: the session and how many
    /// checks it has had, this one included; `None` if it is unknown,
    /// expired, used, or has had `limit` checks already. Atomic, so parallel
    /// posts cannot check more than `limit` keys.
    pub async fn reserve_key_attempt(
        &self,
        token_hash: &str,
        now: UnixTime,
        limit: i64,
    ) -> Result<Option<(ConnectSessionRow, i64)>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE connect_sessions SET key_attempts = key_attempts + 1
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND key_attempts < $3
             RETURNING {SESSION_COLUMNS}, key_attempts"
        ))
        .bind(token_hash)
        .bind(now)
        .bind(limit)
        .fetch_optional(&mut *self.connection().await?)
        .await?;
        row.as_ref()
            .map(|row| Ok((decode_session(row)?, row.try_get("key_attempts")?)))
            .transpose()
    }

    /// Gives back a reserved check that did not get an answer from the API.
    pub async fn release_key_attempt(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE connect_sessions SET key_attempts = key_attempts - 1
             WHERE token_hash = $1 AND key_attempts > 0",
        )
        .bind(token_hash)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(())
    }

    /// Uses the session up without returning it (its last allowed key was refused).
    pub async fn use_up_connect_session(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE connect_sessions SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(())
    }

    /// Records a callback's state as finished; false if it was already.
    pub async fn consume_flow_state(
        &self,
        state_hash: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO consumed_flow_states (state_hash, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(state_hash)
        .bind(expires_at)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

pub(super) fn decode_session(row: &sqlx::any::AnyRow) -> Result<ConnectSessionRow, StoreError> {
    let connection_id: String = row.try_get("connection_id")?;
    let return_to: Option<String> = row.try_get("return_to")?;
    let popup_origin: Option<String> = row.try_get("popup_origin")?;
    Ok(ConnectSessionRow {
        connection_id: ConnectionId::parse(&connection_id)
            .map_err(|_| corrupt("session connection id"))?,
        return_to: return_to.map(ReturnTo::from_trusted),
        popup_origin: popup_origin
            .map(|o| Origin::parse(&o))
            .transpose()
            .map_err(|_| corrupt("session popup origin"))?,
        expires_at: row.try_get("expires_at")?,
        profile: decode_update(row)?,
    })
}
