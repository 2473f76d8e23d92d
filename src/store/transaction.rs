//! A write transaction that costs SQLite no more calls than its statements.
//!
//! Every call to an SQLite connection is a round trip to its worker thread,
//! which costs more than a short statement does. A transaction through
//! sqlx's own `begin` and `commit` adds two of them; here SQLite gets
//! `BEGIN` in the same call as the first statement and `COMMIT` in the same
//! call as the last (Postgres cannot take two statements in one prepared
//! call, so it gets them one by one).
//!
//! sqlx does not know of a transaction begun in SQL, so it cannot roll one
//! back for us: a transaction that is not finished, because a statement
//! failed or the future was dropped, closes its connection, and the pool
//! opens another. Closing ends the transaction without its changes unless
//! its `COMMIT` had already reached the database, as with sqlx's own.

use futures_util::future::Either;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Execute, Executor};

use super::kept::Connection;
use super::Backend;

/// One statement and its arguments.
pub(super) type Statement<'q> = Query<'q, Any, AnyArguments<'q>>;

/// An open transaction on `connection`; dropped unfinished, it closes it.
pub(super) struct Transaction<'t, 'k> {
    connection: &'t mut Connection<'k>,
    backend: Backend,
    finished: bool,
}

impl<'t, 'k> Transaction<'t, 'k> {
    /// Begins a transaction with `first` in it: the transaction and the row
    /// `first` returned, if any.
    pub(super) async fn begin_with(
        connection: &'t mut Connection<'k>,
        backend: Backend,
        first: Statement<'_>,
    ) -> Result<(Self, Option<AnyRow>), sqlx::Error> {
        // Before the transaction exists: arguments that cannot be encoded
        // leave nothing begun, and the connection is kept.
        let first = match backend {
            Backend::Sqlite => Either::Left(parts(first)?),
            Backend::Postgres => Either::Right(first),
        };
        let mut transaction = Self {
            connection,
            backend,
            finished: false,
        };
        let row = match first {
            Either::Left((sql, arguments)) => {
                let sql = format!("BEGIN IMMEDIATE; {sql}");
                // Not `fetch_optional`: for SQLite it reads only the first
                // statement's answer, which here is `BEGIN`'s.
                let rows = sqlx::query_with(&sql, arguments)
                    .fetch_all(transaction.connection())
                    .await?;
                rows.into_iter().next()
            }
            Either::Right(first) => {
                transaction.connection().execute("BEGIN").await?;
                first.fetch_optional(transaction.connection()).await?
            }
        };
        Ok((transaction, row))
    }

    /// The connection, for the statements between the first and the last.
    pub(super) fn connection(&mut self) -> &mut AnyConnection {
        &mut *self.connection
    }

    /// Runs `last`, if any, and commits.
    pub(super) async fn commit_with(
        mut self,
        last: Option<Statement<'_>>,
    ) -> Result<(), sqlx::Error> {
        match (self.backend, last) {
            (_, None) => {
                self.connection().execute("COMMIT").await?;
            }
            (Backend::Sqlite, Some(last)) => {
                let (sql, arguments) = parts(last)?;
                let sql = format!("{sql}; COMMIT");
                sqlx::query_with(&sql, arguments)
                    .execute(self.connection())
                    .await?;
            }
            (Backend::Postgres, Some(last)) => {
                last.execute(self.connection()).await?;
                self.connection().execute("COMMIT").await?;
            }
        }
        self.finished = true;
        Ok(())
    }

    /// Ends the transaction without its changes.
    pub(super) async fn roll_back(mut self) -> Result<(), sqlx::Error> {
        self.connection().execute("ROLLBACK").await?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Transaction<'_, '_> {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.discard();
        }
    }
}

/// A statement's text and arguments, to be sent with another statement.
fn parts<'q>(mut statement: Statement<'q>) -> Result<(&'q str, AnyArguments<'q>), sqlx::Error> {
    let arguments = statement
        .take_arguments()
        .map_err(sqlx::Error::Encode)?
        .unwrap_or_default();
    Ok((statement.sql(), arguments))
}

/// For a transaction with nothing between its first and its last statement:
/// the row as the first one left it.
pub(super) async fn as_written(_: &mut AnyConnection, row: AnyRow) -> Result<AnyRow, sqlx::Error> {
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::Transaction;
    use crate::checked::ConnectionId;
    use crate::store::testing::save;
    use crate::store::{EventPage, Store};

    async fn events(store: &Store, id: &ConnectionId) -> usize {
        let page = EventPage {
            connection: Some(id),
            after: 0,
            limit: 10,
        };
        store.events_on(page).await.unwrap().len()
    }

    #[tokio::test]
    async fn a_write_and_its_events_commit_together_and_a_write_that_changed_nothing_adds_none() {
        let (store, _dir) = Store::temporary().await;
        let id = ConnectionId::parse("one").unwrap();
        assert!(save(&store, &id, 2).await);
        assert_eq!(events(&store, &id).await, 2);
        // The id is taken: the insert changes nothing, and announces nothing.
        assert!(!save(&store, &id, 2).await);
        assert_eq!(events(&store, &id).await, 2);
    }

    #[tokio::test]
    async fn a_transaction_dropped_unfinished_leaves_nothing_and_the_store_goes_on() {
        let (store, _dir) = Store::temporary().await;
        let tag = || {
            sqlx::query("INSERT INTO connection_tags (connection_id, key, value) VALUES ('c', 'k', 'v') RETURNING key")
        };
        let mut connection = store.connection().await.unwrap();
        let (unfinished, row) = Transaction::begin_with(&mut connection, store.backend, tag())
            .await
            .unwrap();
        assert!(row.is_some(), "the first statement ran");
        drop(unfinished);
        drop(connection);
        let count = || sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM connection_tags");
        let mut connection = store.connection().await.unwrap();
        assert_eq!(count().fetch_one(&mut *connection).await.unwrap(), 0);
        let (finished, _) = Transaction::begin_with(&mut connection, store.backend, tag())
            .await
            .unwrap();
        finished.commit_with(None).await.unwrap();
        assert_eq!(count().fetch_one(&mut *connection).await.unwrap(), 1);
    }
}
