//! What differs between SQLite and Postgres, and nothing else.

use std::fmt;
use std::path::Path;

use sqlx::{AnyConnection, AnyPool, Executor};
use url::Url;

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

/// `DATABASE_URL`, parsed once: the backend it names and the URL as written.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    url: String,
}

#[derive(Debug, thiserror::Error)]
#[error("must start with sqlite:// or postgres://")]
pub struct DatabaseUrlError;

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, DatabaseUrlError> {
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DatabaseUrlError);
        };
        Ok(Self {
            backend,
            url: raw.to_owned(),
        })
    }

    /// An SQLite file at `path`.
    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            backend: Backend::Sqlite,
            url: format!("sqlite://{}", path.display()),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }
}

/// By hand: a database URL can carry a password.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("redacted"));
                url.to_string()
            }
            _ => self.url.clone(),
        };
        f.write_str(&shown)
    }
}

impl Backend {
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

    /// Makes writers of events take turns until their transaction ends, so
    /// that events commit in the order of their `seq` and a poller reading
    /// past a cursor never skips one committed late. SQLite has one writer
    /// at a time already; on Postgres two transactions could otherwise take
    /// `seq` values in one order and commit in the other. Taken after the
    /// change the event is about, so a writer never waits for a row while
    /// holding the turn.
    pub(super) async fn take_event_turn(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if self == Self::Postgres {
            // Selecting 1, not the lock function's `void`, which the `Any` driver cannot read.
            conn.execute(
                "SELECT 1 AS taken FROM (SELECT pg_advisory_xact_lock(7285617120941)) AS turn",
            )
            .await?;
        }
        Ok(())
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
