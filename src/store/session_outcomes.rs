//! How each connect session ended, for `GET /connect-sessions/status`: the
//! first outcome recorded stands, later answers (a replayed callback) do not
//! change it.

use sqlx::Row;

use super::sessions::{decode_session, SESSION_COLUMNS};
use super::{corrupt, ConnectSessionRow, Store, StoreError};
use crate::checked::ConnectionKind;
use crate::clock::UnixTime;

/// A session as its status needs it, used or not, expired or not.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub session: ConnectSessionRow,
    pub used_at: Option<UnixTime>,
    /// `connected`, `declined` or `failed` once the connect ended.
    pub outcome: Option<String>,
    /// The kind of connection made, for a `connected` outcome.
    pub outcome_kind: Option<ConnectionKind>,
}

impl Store {
    /// The session behind `token_hash`, whatever its state, until it is swept.
    pub async fn connect_session_record(
        &self,
        token_hash: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS}, used_at, outcome, outcome_kind
             FROM connect_sessions WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&mut *self.connection().await?)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let outcome_kind: Option<String> = row.try_get("outcome_kind")?;
        Ok(Some(SessionRecord {
            session: decode_session(&row)?,
            used_at: row.try_get("used_at")?,
            outcome: row.try_get("outcome")?,
            outcome_kind: outcome_kind
                .map(|k| ConnectionKind::from_stored(&k).ok_or_else(|| corrupt("outcome kind")))
                .transpose()?,
        }))
    }

    /// Records how the session's connect ended, unless it has an outcome already.
    pub async fn record_connect_session_outcome(
        &self,
        token_hash: &str,
        outcome: &str,
        kind: Option<ConnectionKind>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE connect_sessions SET outcome = $2, outcome_kind = $3
             WHERE token_hash = $1 AND outcome IS NULL",
        )
        .bind(token_hash)
        .bind(outcome)
        .bind(kind.map(ConnectionKind::as_str))
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(())
    }
}
