//! End users and tags: who a connection belongs to in the app, and the
//! app's labels on it, on connections, on the sessions that make them and
//! on the events that tell of them. A connection's tags are written twice
//! in one transaction, always here: as rows of `connection_tags` (what the
//! `tag` filter scans) and as the JSON its answers read.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use super::connections::{decode_connection, COLUMNS};
use super::{corrupt, ConnectionRow, Store, StoreError};
use crate::checked::{ConnectionId, EndUser, Tags};

/// Who a connection belongs to in the app, and the app's tags on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub end_user: Option<EndUser>,
    pub tags: Tags,
}

/// What a connect session gives the connection it makes: each part given
/// replaces the connection's, each left out keeps what it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub end_user: Option<EndUser>,
    pub tags: Option<Tags>,
}

pub(super) const PROFILE_COLUMNS: &str = profile_columns!();

impl Store {
    /// Rewrites the connection's profile as `edit` says, in one transaction
    /// that holds the row meanwhile (so that two edits cannot each miss the
    /// other's), and changes nothing else: not the credential, its
    /// generation or `updated_at`, and records no event. `None` when there
    /// is no such connection; `Some(Err)` when `edit` refused, with nothing
    /// written.
    pub async fn edit_profile<E>(
        &self,
        id: &ConnectionId,
        edit: impl FnOnce(&Profile) -> Result<Profile, E>,
    ) -> Result<Option<Result<ConnectionRow, E>>, StoreError> {
        let mut connection = self.connection().await?;
        let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
        // A write that changes nothing, to hold the row (Postgres) or the
        // database (SQLite) until the commit.
        let held = sqlx::query(&format!(
            "UPDATE connections SET generation = generation WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(held) = held else {
            return Ok(None);
        };
        let old = decode_connection(&held)?;
        let new = match edit(&old.profile) {
            Ok(new) => new,
            Err(refused) => return Ok(Some(Err(refused))),
        };
        let mut written = held;
        if new.end_user != old.profile.end_user {
            written = set_end_user(&mut transaction, id, new.end_user.as_ref()).await?;
        }
        if new.tags != old.profile.tags {
            written = set_tags(&mut transaction, id, &new.tags).await?;
        }
        let row = decode_connection(&written)?;
        transaction.commit().await?;
        Ok(Some(Ok(row)))
    }
}

/// Gives the connection `id` what `update` holds, after `written` (the row
/// as the statement before left it); the row as it is then.
pub(super) async fn apply_update(
    connection: &mut AnyConnection,
    id: &ConnectionId,
    update: &ProfileUpdate,
    written: AnyRow,
) -> Result<AnyRow, sqlx::Error> {
    let mut row = written;
    if let Some(end_user) = &update.end_user {
        row = set_end_user(connection, id, Some(end_user)).await?;
    }
    if let Some(tags) = &update.tags {
        row = set_tags(connection, id, tags).await?;
    }
    Ok(row)
}

async fn set_end_user(
    connection: &mut AnyConnection,
    id: &ConnectionId,
    end_user: Option<&EndUser>,
) -> Result<AnyRow, sqlx::Error> {
    let sql = format!(
        "UPDATE connections SET end_user_id = $2, end_user_email = $3, end_user_display_name = $4,
           end_user_email_key = $5
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let email_key = end_user.and_then(EndUser::email).map(EndUser::email_key);
    bind_end_user(sqlx::query(&sql).bind(id.as_str()), end_user)
        .bind(email_key)
        .fetch_one(connection)
        .await
}

async fn set_tags(
    connection: &mut AnyConnection,
    id: &ConnectionId,
    tags: &Tags,
) -> Result<AnyRow, sqlx::Error> {
    sqlx::query("DELETE FROM connection_tags WHERE connection_id = $1")
        .bind(id.as_str())
        .execute(&mut *connection)
        .await?;
    if !tags.is_empty() {
        // One statement for all of them (at most 32 rows).
        let values = (0..tags.iter().count())
            .map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql =
            format!("INSERT INTO connection_tags (connection_id, key, value) VALUES {values}");
        let mut insert = sqlx::query(&sql).bind(id.as_str());
        for (key, value) in tags.iter() {
            insert = insert.bind(key).bind(value);
        }
        insert.execute(&mut *connection).await?;
    }
    sqlx::query(&format!(
        "UPDATE connections SET tags = $2 WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.as_str())
    .bind(tags.to_json())
    .fetch_one(connection)
    .await
}

/// Binds the next three parameters: the end user's id, email and display name.
pub(super) fn bind_end_user<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    end_user: Option<&'q EndUser>,
) -> Query<'q, Any, AnyArguments<'q>> {
    query
        .bind(end_user.map(EndUser::id))
        .bind(end_user.and_then(EndUser::email))
        .bind(end_user.and_then(EndUser::display_name))
}

/// The end user the row's profile columns hold, if any.
fn decode_end_user(row: &AnyRow) -> Result<Option<EndUser>, StoreError> {
    let id: Option<String> = row.try_get("end_user_id")?;
    let email: Option<String> = row.try_get("end_user_email")?;
    let display_name: Option<String> = row.try_get("end_user_display_name")?;
    id.map(|id| {
        EndUser::parse(&id, email.as_deref(), display_name.as_deref())
            .map_err(|_| corrupt("end user"))
    })
    .transpose()
}

fn decode_tags(row: &AnyRow) -> Result<Option<Tags>, StoreError> {
    let tags: Option<String> = row.try_get("tags")?;
    tags.map(|raw| Tags::from_json(&raw).ok_or_else(|| corrupt("tags")))
        .transpose()
}

/// A connection's or an event's profile; rows from before end users had none.
pub(super) fn decode_profile(row: &AnyRow) -> Result<Profile, StoreError> {
    Ok(Profile {
        end_user: decode_end_user(row)?,
        tags: decode_tags(row)?.unwrap_or_default(),
    })
}

/// What a session gives the connection it makes.
pub(super) fn decode_update(row: &AnyRow) -> Result<ProfileUpdate, StoreError> {
    Ok(ProfileUpdate {
        end_user: decode_end_user(row)?,
        tags: decode_tags(row)?,
    })
}
