//! What differs between SQLite and Postgres, and nothing else.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};

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

/// Held while one process refreshes one connection; reads and writes made
/// under it go through it.
///
/// With Postgres it is a session-level advisory lock on one pooled
/// connection, which also carries the refresh's read and write, so a refresh
/// needs one pooled connection, not two (many refreshing at once cannot
/// starve the pool). If the holder dies, Postgres ends its session and the
/// lock with it. SQLite serves one process, whose in-memory lock (in
/// `connections`) is enough; its reads and writes use the pool.
pub struct RefreshLock<'a> {
    pub(super) store: &'a Store,
    pub(super) held: Option<PoolConnection<Any>>,
    id: ConnectionId,
}

const LOCK_KEY: &str = "hashtextextended('emailoctopus-connect refresh ' || $1, 0)";

impl RefreshLock<'_> {
    /// Releases the lock, returning its connection to the pool.
    pub async fn release(mut self) {
        let Some(mut conn) = self.held.take() else {
            return;
        };
        let unlocked = sqlx::query(&format!("SELECT pg_advisory_unlock({LOCK_KEY})"))
            .bind(self.id.as_str())
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // Closing the session is what releases the lock then.
            drop(conn.detach());
        }
    }
}

impl Drop for RefreshLock<'_> {
    fn drop(&mut self) {
        // Not released (an error or a cancelled task): never hand a
        // connection that still holds the lock back to the pool.
        if let Some(conn) = self.held.take() {
            drop(conn.detach());
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
    ) -> Result<RefreshLock<'_>, StoreError> {
        let mut lock = RefreshLock {
            store: self,
            held: None,
            id: id.clone(),
        };
        if self.backend == Backend::Sqlite {
            return Ok(lock);
        }
        let mut conn = self.pool.acquire().await?;
        // SET cannot take a bind parameter; the value is a number we formatted.
        let set_timeout = format!("SET lock_timeout = '{}ms'", wait.as_millis().max(1));
        conn.execute(set_timeout.as_str()).await?;
        let locked = sqlx::query(&format!("SELECT pg_advisory_lock({LOCK_KEY})"))
            .bind(id.as_str())
            .execute(&mut *conn)
            .await;
        if conn.execute("RESET lock_timeout").await.is_err() {
            // A session in an unknown state (and perhaps holding the lock) is not reused.
            drop(conn.detach());
            locked?;
            return Err(StoreError::Unavailable(
                "could not reset lock_timeout".into(),
            ));
        }
        locked?;
        lock.held = Some(conn);
        Ok(lock)
    }
}
