//! What differs between SQLite and Postgres, and nothing else.

use sqlx::{AnyConnection, AnyPool, Executor};

use super::StoreError;

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

    /// SQLite files are created on first start (`mode=rwc`) unless the URL
    /// says otherwise, and never by a command that refuses creation (`mode=rw`).
    pub(super) fn connect_url(self, url: &str, creation: super::Creation) -> String {
        let mode = match creation {
            super::Creation::Allowed => "rwc",
            super::Creation::Refused => "rw",
        };
        match self {
            Self::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode={mode}")
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

    /// How a claim of due rows skips rows another process is claiming at the
    /// same moment. Postgres: `SKIP LOCKED`, so concurrent claimers neither
    /// wait nor take the same rows. SQLite has one writer at a time, so a
    /// claim cannot overlap another.
    pub(super) fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }
}
