//! Connections: one row per connection id, credentials sealed.

use rand::Rng;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Executor, Row};

use super::profiles::{apply_update, decode_profile};
use super::{
    corrupt, ConnectWrite, ConnectionRow, Generation, NewEvent, SealedCredential, Store, StoreError,
};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::clock::UnixTime;

/// A new connection's generation is below this: far from overflowing, and
/// exact in any number type a tool may read it into.
const FIRST_GENERATIONS: i64 = 1 << 52;

/// The columns a new connection is inserted with: all but its profile.
macro_rules! credential_columns {
    () => {
        "id, kind, status, scopes, token_type, access_token, refresh_token, expires_at, created_at, updated_at, next_work_at, last_refreshed_at, last_checked_at, last_error, failures, generation"
    };
}

/// What every read of a connection returns (`decode_connection`).
pub(super) const COLUMNS: &str = concat!(credential_columns!(), ", ", profile_columns!());

impl Store {
    pub async fn get_connection(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        fetch_connection(&mut *self.connection().await?, id).await
    }

    /// How many connections there are in each status.
    pub async fn count_by_status(&self) -> Result<Vec<(ConnectionStatus, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM connections GROUP BY status")
            .fetch_all(&mut *self.connection().await?)
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

    /// Creates the connection unless one with this id exists (`None` then),
    /// marked connected, with the end user and tags `profile` gives and the
    /// events `announce` gives. Its generation
    /// starts at a random number, so that a connection deleted and made
    /// again cannot match a write that read the one before.
    pub async fn insert_connection(
        &self,
        id: &ConnectionId,
        write: ConnectWrite<'_>,
        now: UnixTime,
        announce: impl FnOnce(&ConnectionRow) -> Vec<NewEvent>,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!(
            "INSERT INTO connections ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, NULL, $11, NULL, 0, $12)
             ON CONFLICT (id) DO NOTHING
             RETURNING {COLUMNS}",
            credential_columns!()
        );
        let first_generation = rand::thread_rng().gen_range(1..FIRST_GENERATIONS);
        let insert = bind_credential(sqlx::query(&sql), id, write.credential)
            .bind(now)
            .bind(write.upkeep.next_work_at)
            .bind(write.upkeep.checked_at)
            .bind(first_generation);
        self.write_announcing(
            insert,
            async |c, row| apply_update(c, id, write.profile, row).await,
            announce,
        )
        .await
    }

    /// Replaces the connection's credential if it is still as `expected`
    /// (the generation and status last read; a reconnect keeps
    /// `created_at`), marks it connected, gives it what `profile` holds and
    /// records the events `announce` gives. A refresh lease on the old credential ends with it (that
    /// refresh's write will find another credential). `None` when something
    /// else wrote it meanwhile.
    pub async fn replace_connection(
        &self,
        id: &ConnectionId,
        write: ConnectWrite<'_>,
        expected: &ConnectionRow,
        now: UnixTime,
        announce: impl FnOnce(&ConnectionRow) -> Vec<NewEvent>,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!(
            "UPDATE connections SET kind = $2, status = $3, scopes = $4, token_type = $5,
               access_token = $6, refresh_token = $7, expires_at = $8, updated_at = $9,
               next_work_at = $10, last_checked_at = $11, last_error = NULL, failures = 0,
               lease_until = NULL, lease_owner = NULL, generation = generation + 1
             WHERE id = $1 AND generation = $12 AND status = $13
             RETURNING {COLUMNS}"
        );
        let update = bind_credential(sqlx::query(&sql), id, write.credential)
            .bind(now)
            .bind(write.upkeep.next_work_at)
            .bind(write.upkeep.checked_at)
            .bind(expected.generation.0)
            .bind(expected.status.as_str());
        self.write_announcing(
            update,
            async |c, row| apply_update(c, id, write.profile, row).await,
            announce,
        )
        .await
    }

    /// Deletes the connection and its tags and returns what it held, with
    /// the events `announce` gives, or `None` if there was none.
    pub async fn delete_connection(
        &self,
        id: &ConnectionId,
        announce: impl FnOnce(&ConnectionRow) -> Vec<NewEvent>,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let sql = format!("DELETE FROM connections WHERE id = $1 RETURNING {COLUMNS}");
        let delete = sqlx::query(&sql).bind(id.as_str());
        let delete_tags =
            sqlx::query("DELETE FROM connection_tags WHERE connection_id = $1").bind(id.as_str());
        self.write_announcing(
            delete,
            async |c, row| {
                delete_tags.execute(c).await?;
                Ok(row)
            },
            announce,
        )
        .await
    }

    /// Replaces the sealed credential with the same one sealed anew, only
    /// if it is still the `expected` generation, so a re-seal never
    /// overwrites a refresh that happened meanwhile. The generation stays:
    /// the credential is the same, and a refresh that read it before may
    /// still store what it got.
    pub async fn reseal_connection(
        &self,
        id: &ConnectionId,
        expected: Generation,
        access: &[u8],
        refresh: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connections SET access_token = $3, refresh_token = $4 WHERE id = $1 AND generation = $2",
        )
        .bind(id.as_str())
        .bind(expected.0)
        .bind(access)
        .bind(refresh)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

pub(super) async fn fetch_connection<'e, E: Executor<'e, Database = Any>>(
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

pub(super) fn decode_connection(row: &AnyRow) -> Result<ConnectionRow, StoreError> {
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
        next_work_at: row.try_get("next_work_at")?,
        last_refreshed_at: row.try_get("last_refreshed_at")?,
        last_checked_at: row.try_get("last_checked_at")?,
        last_error: row.try_get("last_error")?,
        failures: row.try_get("failures")?,
        generation: Generation(row.try_get("generation")?),
        profile: decode_profile(row)?,
    })
}

/// Binds `$1` to `$8`: the id and the credential, in `COLUMNS` order.
fn bind_credential<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    id: &'q ConnectionId,
    credential: &'q SealedCredential,
) -> Query<'q, Any, AnyArguments<'q>> {
    query
        .bind(id.as_str())
        .bind(credential.kind.as_str())
        .bind(ConnectionStatus::Connected.as_str())
        .bind(credential.scopes.join(" "))
        .bind(credential.token_type.as_str())
        .bind(credential.sealed_access_token.as_slice())
        .bind(credential.sealed_refresh_token.as_deref())
        .bind(credential.expires_at)
}
