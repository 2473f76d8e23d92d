//! Persistence. SQL lives here only, written once for SQLite and Postgres
//! through sqlx's `Any` driver; what differs between the two (DDL, pragmas,
//! how concurrent claims skip each other) stays in `backend.rs`.
//!
//! The store keeps credentials as opaque sealed bytes: it never sees a token.

/// The columns of an end user and tags, named alike on connections, on
/// sessions and on events (see `profiles.rs`).
macro_rules! profile_columns {
    () => {
        "end_user_id, end_user_email, end_user_display_name, tags"
    };
}

mod backend;
mod connections;
mod event_log;
mod events;
mod kept;
mod listing;
mod profiles;
mod session_outcomes;
mod sessions;
#[cfg(test)]
mod testing;
mod transaction;
mod upkeep;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool};

use kept::{Connection, Kept};

pub use backend::{Backend, DatabaseUrl, DatabaseUrlError};
pub use event_log::EventPage;
pub use events::{
    Attempt, AttemptError, AttemptRecord, Backlog, DeliveryState, EventRow, NewEvent,
};
pub use listing::{ConnectionFilter, Page, PageStatement};
pub use profiles::{Profile, ProfileUpdate};
pub use session_outcomes::SessionRecord;
pub use upkeep::{CheckRecord, SweepCounts};

use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus, Origin, ReturnTo};
use crate::clock::UnixTime;

/// A store operation failed; the detail is for the log, never for an answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the database holds a row this version cannot read: {0}")]
    Corrupt(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// Waiting will not help: a malformed URL, a missing directory or
    /// database, a refused password, or a database without this program's tables.
    #[error("{0}")]
    Misconfigured(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

/// A stored connection. The credential fields are sealed bytes.
#[derive(Debug, Clone)]
pub struct ConnectionRow {
    pub id: ConnectionId,
    pub kind: ConnectionKind,
    pub status: ConnectionStatus,
    pub scopes: Vec<String>,
    pub token_type: String,
    pub sealed_access_token: Vec<u8>,
    pub sealed_refresh_token: Option<Vec<u8>>,
    pub expires_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    /// When the background upkeep should next look at it (`None`: never).
    pub next_work_at: Option<UnixTime>,
    pub last_refreshed_at: Option<UnixTime>,
    pub last_checked_at: Option<UnixTime>,
    /// A short category of what last went wrong, never a provider's words.
    pub last_error: Option<String>,
    /// Transient refresh failures in a row.
    pub failures: i64,
    /// Which write of the credential this is: a new connection's starts at
    /// a random number and each save or refresh adds one; a re-seal under
    /// another key keeps it. Writes that must not overwrite another unseen
    /// compare it.
    pub generation: Generation,
    pub profile: Profile,
}

/// Which write of a connection's credential a row holds (see
/// `ConnectionRow::generation`). Only the store makes one; holding it says
/// "the credential as I read it", which every conditional write compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(i64);

/// The upkeep bookkeeping written with a new credential.
#[derive(Debug, Clone, Copy)]
pub struct Upkeep {
    pub next_work_at: Option<UnixTime>,
    /// Set when the credential was just checked (an API key at save).
    pub checked_at: Option<UnixTime>,
}

/// A credential to store, already sealed.
#[derive(Debug, Clone)]
pub struct SealedCredential {
    pub kind: ConnectionKind,
    pub scopes: Vec<String>,
    pub token_type: String,
    pub sealed_access_token: Vec<u8>,
    pub sealed_refresh_token: Option<Vec<u8>>,
    pub expires_at: Option<UnixTime>,
}

/// What a connect writes: the sealed credential, its upkeep, and what the
/// connect gives the connection besides.
#[derive(Debug, Clone, Copy)]
pub struct ConnectWrite<'a> {
    pub credential: &'a SealedCredential,
    pub upkeep: &'a Upkeep,
    pub profile: &'a ProfileUpdate,
}

/// A connect session as stored (by the hash of its token).
#[derive(Debug, Clone)]
pub struct ConnectSessionRow {
    pub connection_id: ConnectionId,
    pub return_to: Option<ReturnTo>,
    /// Set for a popup session: the app's origin that its pages answer.
    pub popup_origin: Option<Origin>,
    pub expires_at: UnixTime,
    /// What the connection it makes is given.
    pub profile: ProfileUpdate,
}

/// Pool limits and how long a database that is down at start is waited for.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub start_timeout: Duration,
}

/// The database behind every route. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite's connections, kept between statements (see `kept.rs`).
    kept: Option<Arc<Kept>>,
    /// Notified after each commit that wrote events, so that this
    /// process's deliverer sends them at once.
    events_written: Arc<tokio::sync::Notify>,
}

impl Store {
    /// Connects (creating an SQLite file if missing) and runs the migrations.
    /// A database that does not answer yet is retried until `start_timeout`.
    pub async fn connect(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, StoreError> {
        Self::open(url, settings, Creation::Allowed).await
    }

    /// As `connect`, for commands that must not create anything: the
    /// database must exist and hold this program's tables already.
    pub async fn connect_existing(
        url: &DatabaseUrl,
        settings: &PoolSettings,
    ) -> Result<Self, StoreError> {
        Self::open(url, settings, Creation::Refused).await
    }

    async fn open(
        url: &DatabaseUrl,
        settings: &PoolSettings,
        creation: Creation,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = url.backend();
        let url = backend.connect_url(url.as_str(), creation);
        wait_until_it_answers(&url, settings.start_timeout).await?;
        if creation == Creation::Refused {
            // Before the pool's set-up writes anything (SQLite's WAL header).
            has_our_tables(&url).await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // A Postgres connection may have died in an outage; an
            // SQLite one lives in this process.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| Box::pin(backend.prepare_connection(conn)))
            .connect(&url)
            .await?;
        backend.migrate(&pool).await?;
        let kept = (backend == Backend::Sqlite).then(|| {
            Arc::new(Kept::new(
                settings.max_connections,
                settings.acquire_timeout,
            ))
        });
        Ok(Self {
            pool,
            backend,
            kept,
            events_written: Arc::default(),
        })
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        match self.connection().await {
            Ok(mut connection) => sqlx::query("SELECT 1")
                .execute(&mut *connection)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    /// What the deliverer waits on besides its poll interval.
    pub fn events_written(&self) -> Arc<tokio::sync::Notify> {
        self.events_written.clone()
    }

    /// A connection for one statement.
    async fn connection(&self) -> Result<Connection<'_>, sqlx::Error> {
        match &self.kept {
            Some(kept) => kept.take(&self.pool).await,
            None => Ok(Connection::Pooled(self.pool.acquire().await?)),
        }
    }

    pub async fn close(&self) {
        if let Some(kept) = &self.kept {
            kept.close();
        }
        self.pool.close().await;
    }

    /// A fresh SQLite store in a folder that lives as long as the guard.
    #[cfg(test)]
    pub(crate) async fn temporary() -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = DatabaseUrl::sqlite_file(&dir.path().join("test.db"));
        let settings = PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(5),
        };
        let store = Self::connect(&url, &settings)
            .await
            .expect("a temporary store");
        (store, dir)
    }
}

/// A database this program never migrated is refused, not set up.
async fn has_our_tables(url: &str) -> Result<(), StoreError> {
    let mut conn = <AnyConnection as sqlx::Connection>::connect(url).await?;
    let found = sqlx::query("SELECT 1 FROM connections LIMIT 1")
        .execute(&mut conn)
        .await
        .is_ok();
    let _ = sqlx::Connection::close(conn).await;
    if found {
        Ok(())
    } else {
        Err(StoreError::Misconfigured(
            "this database has no emailoctopus-connect tables; is it the server's database?".into(),
        ))
    }
}

/// Whether opening the database may create it (an SQLite file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    Allowed,
    Refused,
}

/// One connection at a time, so the log names the real cause (a pool would
/// only say that it timed out), until `patience` runs out. Only a database
/// that is not reachable yet is waited for; anything waiting cannot heal
/// stops the start at once.
async fn wait_until_it_answers(url: &str, patience: Duration) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        // Bounded too: a host that accepts the connection and then says
        // nothing must not hold the start past its patience.
        let attempt =
            tokio::time::timeout_at(deadline, <AnyConnection as sqlx::Connection>::connect(url));
        let Ok(attempt) = attempt.await else {
            return Err(StoreError::Unavailable(
                "no answer within DATABASE_START_TIMEOUT_SECS".into(),
            ));
        };
        match attempt {
            Ok(conn) => {
                let _ = sqlx::Connection::close(conn).await;
                return Ok(());
            }
            Err(error) if !may_heal(&error) => {
                return Err(StoreError::Misconfigured(
                    StoreError::from(error).to_string(),
                ))
            }
            Err(error) if tokio::time::Instant::now() < deadline => {
                // Without the URL: it may hold a password.
                tracing::warn!(error = %StoreError::from(error), "the database does not answer yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Not reachable yet (refused, reset, timed out, the server still
/// starting or shutting down) may heal; a wrong URL, password, database
/// name or path will not.
fn may_heal(error: &sqlx::Error) -> bool {
    use std::io::ErrorKind as K;
    match error {
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::TimedOut
                | K::NotConnected
                | K::AddrNotAvailable
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::Interrupted
                | K::HostUnreachable
                | K::NetworkUnreachable
        ),
        sqlx::Error::PoolTimedOut => true,
        // Postgres: cannot_connect_now, admin_shutdown, crash_shutdown, too_many_connections.
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("57P03" | "57P01" | "57P02" | "53300")
        ),
        _ => false,
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}
