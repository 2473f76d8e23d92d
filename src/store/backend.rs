//! What differs between SQLite and Postgres, and nothing else.

use std::time::Duration;

use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

use super::{Store, StoreError};
use crate::domain::ConnectionId;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One process on one machine: the embedded default.
    Sqlite,
    /// Several processes on one database.
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }

    /// SQLite files are created on first start (`mode=rwc`) unless the URL says otherwise.
    pub(super) fn connect_url(self, url: &str) -> String {
        match self {
            Self::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        }
    }

    /// WAL lets readers go on while one writer commits; `synchronous=NORMAL` in
    /// WAL mode cannot corrupt the file and loses at most the last commits on
    /// a power cut (not on a process crash), which is the usual server trade.
    pub(super) async fn prepare_connection(
        self,
        conn: &mut AnyConnection,
    ) -> Result<(), sqlx::Error> {
        if self == Self::Sqlite {
            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
                .await?;
        }
        Ok(())
    }

    pub(super) async fn migrate(self, pool: &AnyPool) -> Result<(), StoreError> {
        let migrator = match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

/// Held while one process refreshes one connection. With Postgres it is a
/// transaction-scoped advisory lock, so it is shared by every process on the
/// database and released by the server if the holder dies; SQLite serves one
/// process, whose in-memory lock (in `connections`) is enough.
pub struct RefreshLock {
    transaction: Option<Transaction<'static, Any>>,
}

impl RefreshLock {
    /// Releases the lock. Writes made under it were committed through the pool
    /// already, so the next holder reads them.
    pub async fn release(self) {
        if let Some(transaction) = self.transaction {
            // A failed commit only means the lock is released by the rollback.
            let _ = transaction.commit().await;
        }
    }
}

impl Store {
    /// Takes the refresh lock for `id`, waiting at most `wait`
    /// (`StoreError::LockTimeout` after that).
    pub async fn lock_for_refresh(
        &self,
        id: &ConnectionId,
        wait: Duration,
    ) -> Result<RefreshLock, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(RefreshLock { transaction: None });
        }
        let mut transaction = self.pool.begin().await?;
        // SET cannot take a bind parameter; the value is a number we formatted.
        let set_timeout = format!("SET LOCAL lock_timeout = '{}ms'", wait.as_millis().max(1));
        transaction.execute(set_timeout.as_str()).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('emailoctopus-connect refresh ' || $1, 0))")
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        Ok(RefreshLock {
            transaction: Some(transaction),
        })
    }
}
