//! SQLite connections kept out of sqlx's pool between statements.
//!
//! sqlx 0.8 pings every connection the pool gets back
//! (`PoolConnection::return_to_pool`). For SQLite that ping is one more
//! round trip to the connection's worker thread for every statement, which
//! is as much as a short statement costs. An SQLite connection lives inside
//! this process and cannot be lost in an outage, so the ping buys nothing
//! there. Postgres connections still go back to the pool, so one lost in an
//! outage is found and replaced.
//!
//! The pool still opens the connections (with the pragmas) and bounds how
//! many there are. Once opened, a connection moves between statements
//! through `idle`, and `turns` makes callers wait their turn for one.
//! `close` hands every connection back, so the pool can close.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The connections this process keeps, at most the pool's size.
pub(super) struct Kept {
    idle: Mutex<Idle>,
    turns: Semaphore,
    acquire_timeout: Duration,
}

impl Drop for Kept {
    fn drop(&mut self) {
        let connections = std::mem::take(&mut self.lock().connections);
        // Going back to the pool takes a task; with no runtime left (a
        // store dropped after its runtime), each connection closes alone.
        if tokio::runtime::Handle::try_current().is_err() {
            connections.into_iter().for_each(|c| drop(c.detach()));
        }
    }
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("free_turns", &self.turns.available_permits())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Idle {
    connections: Vec<PoolConnection<Any>>,
    /// Set by `close`: from then on a connection goes back to the pool.
    closing: bool,
}

impl Kept {
    pub(super) fn new(pool_size: u32, acquire_timeout: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            turns: Semaphore::new(pool_size.max(1) as usize),
            acquire_timeout,
        }
    }

    /// A connection for one statement, after waiting at most the acquire
    /// timeout for a turn, as the pool would.
    pub(super) async fn take<'a>(&'a self, pool: &AnyPool) -> Result<Connection<'a>, sqlx::Error> {
        let turn = tokio::time::timeout(self.acquire_timeout, self.turns.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.lock().connections.pop();
        // With a turn held, the pool has a connection free for us: every
        // other one is idle here or in a turn of its own, or (discarded)
        // closing, which frees its place in the pool within moments.
        let connection = match idle {
            Some(connection) => connection,
            None => pool.acquire().await?,
        };
        Ok(Connection::Kept {
            connection: Some(connection),
            kept: self,
            _turn: turn,
        })
    }

    /// Gives every idle connection back to the pool, and every one in use
    /// once its statement is done, so that the pool can close.
    pub(super) fn close(&self) {
        self.turns.close();
        let mut idle = self.lock();
        idle.closing = true;
        idle.connections.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One statement's connection: kept (SQLite) or from the pool (Postgres).
pub(super) enum Connection<'a> {
    Kept {
        connection: Option<PoolConnection<Any>>,
        kept: &'a Kept,
        _turn: SemaphorePermit<'a>,
    },
    Pooled(PoolConnection<Any>),
}

impl Connection<'_> {
    /// Closes the connection rather than letting anyone use it again (its
    /// session may hold an unfinished transaction); the pool opens another.
    pub(super) fn discard(&mut self) {
        match self {
            Self::Kept { connection, .. } => {
                if let Some(mut connection) = connection.take() {
                    connection.close_on_drop();
                }
            }
            Self::Pooled(connection) => connection.close_on_drop(),
        }
    }
}

impl Deref for Connection<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Self::Kept { connection, .. } => connection.as_ref().expect("present until discarded"),
            Self::Pooled(connection) => connection,
        }
    }
}

impl DerefMut for Connection<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Self::Kept { connection, .. } => connection.as_mut().expect("present until discarded"),
            Self::Pooled(connection) => connection,
        }
    }
}

impl Drop for Connection<'_> {
    fn drop(&mut self) {
        if let Self::Kept {
            connection, kept, ..
        } = self
        {
            if let Some(connection) = connection.take() {
                let mut idle = kept.lock();
                if !idle.closing {
                    idle.connections.push(connection);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::checked::ConnectionId;
    use crate::store::Store;

    #[tokio::test]
    async fn many_statements_share_the_kept_connections_and_the_store_still_closes() {
        let (store, _dir) = Store::temporary().await;
        let id = ConnectionId::parse("nobody").unwrap();
        let statements = (0..64).map(|_| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move { store.get_connection(&id).await })
        });
        for statement in statements {
            assert!(statement.await.unwrap().unwrap().is_none());
        }
        assert!(store.ping().await);
        // The pool waits for every connection to come back before it closes.
        tokio::time::timeout(Duration::from_secs(5), store.close())
            .await
            .expect("the store closes with connections kept");
        assert!(!store.ping().await, "a closed store does not answer");
    }
}
