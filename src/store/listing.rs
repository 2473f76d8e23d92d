//! Finding connections: by end user, email, status, kind and tags, a page
//! at a time in id order. Each filter pages along its own index, so a page
//! costs a range scan of its own rows however many connections there are
//! (the query plans seen are in bench/RESULTS.md).

use sqlx::Row as _;

use super::connections::{decode_connection, COLUMNS};
use super::{ConnectionRow, Store, StoreError};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus, EndUser};

/// Which connections a listing holds; every part given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionFilter {
    pub end_user_id: Option<String>,
    /// Matched without regard to case.
    pub end_user_email: Option<String>,
    pub status: Option<ConnectionStatus>,
    pub kind: Option<ConnectionKind>,
    /// Each `(key, value)` must be among the connection's tags.
    pub tags: Vec<(String, String)>,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub connections: Vec<ConnectionRow>,
    /// Whether more connections match after the last of this page.
    pub more: bool,
}

impl Store {
    /// Up to `limit` connections that match `filter`, with ids after
    /// `after`, in id order: a page that stays valid while others write.
    pub async fn find_connections(
        &self,
        filter: &ConnectionFilter,
        after: Option<&ConnectionId>,
        limit: i64,
    ) -> Result<Page, StoreError> {
        let query = PageStatement::new(filter, after);
        let mut statement = sqlx::query(&query.sql);
        for value in &query.binds {
            statement = statement.bind(value.as_str());
        }
        // One more than asked, to tell whether another page follows.
        let rows = statement
            .bind(limit + 1)
            .fetch_all(&mut *self.connection().await?)
            .await?;
        let more = rows.len() as i64 > limit;
        let connections = rows
            .iter()
            .take(limit as usize)
            .map(decode_connection)
            .collect::<Result<_, _>>()?;
        Ok(Page { connections, more })
    }

    /// How the database would run `find_connections`: for the bench and
    /// for checking that each filter is an index range scan.
    pub async fn explain_find(
        &self,
        filter: &ConnectionFilter,
        after: Option<&ConnectionId>,
    ) -> Result<Vec<String>, StoreError> {
        let query = PageStatement::new(filter, after);
        let explain = match self.backend {
            super::Backend::Sqlite => "EXPLAIN QUERY PLAN",
            super::Backend::Postgres => "EXPLAIN",
        };
        let sql = format!("{explain} {}", query.sql);
        let mut statement = sqlx::query(&sql);
        for value in &query.binds {
            statement = statement.bind(value.as_str());
        }
        let rows = statement
            .bind(101_i64)
            .fetch_all(&mut *self.connection().await?)
            .await?;
        let column = match self.backend {
            super::Backend::Sqlite => "detail",
            super::Backend::Postgres => "QUERY PLAN",
        };
        Ok(rows
            .iter()
            .filter_map(|row| row.try_get::<String, _>(column).ok())
            .collect())
    }
}

/// The statement of one page and the text values it binds, in order; the
/// row limit is bound last. Public for the bench, which times the
/// statement alone beside the route.
pub struct PageStatement {
    pub sql: String,
    pub binds: Vec<String>,
}

impl PageStatement {
    pub fn new(filter: &ConnectionFilter, after: Option<&ConnectionId>) -> Self {
        let mut query = Self {
            sql: String::new(),
            binds: Vec::new(),
        };
        let after = query.param(after.map_or("", ConnectionId::as_str));
        // With tags, the first one drives: its index yields matching ids in
        // order; without, the connections' own indexes do.
        let (from, order, mut conditions) = match filter.tags.split_first() {
            Some(((key, value), _)) => (
                "connection_tags t0 JOIN connections c ON c.id = t0.connection_id",
                "t0.connection_id",
                vec![
                    format!("t0.key = {}", query.param(key)),
                    format!("t0.value = {}", query.param(value)),
                    format!("t0.connection_id > {after}"),
                ],
            ),
            None => ("connections c", "c.id", vec![format!("c.id > {after}")]),
        };
        for (key, value) in filter.tags.iter().skip(1) {
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM connection_tags t WHERE t.connection_id = c.id AND t.key = {} AND t.value = {})",
                query.param(key),
                query.param(value)
            ));
        }
        let equal = [
            ("c.end_user_id", filter.end_user_id.clone()),
            (
                "c.end_user_email_key",
                filter.end_user_email.as_deref().map(EndUser::email_key),
            ),
            ("c.status", filter.status.map(|s| s.as_str().to_owned())),
            ("c.kind", filter.kind.map(|k| k.as_str().to_owned())),
        ];
        for (column, value) in equal {
            if let Some(value) = value {
                conditions.push(format!("{column} = {}", query.param(&value)));
            }
        }
        query.sql = format!(
            "SELECT {COLUMNS} FROM {from} WHERE {} ORDER BY {order} LIMIT ${}",
            conditions.join(" AND "),
            query.binds.len() + 1
        );
        query
    }

    /// Binds `value` as the next parameter; its placeholder.
    fn param(&mut self, value: &str) -> String {
        self.binds.push(value.to_owned());
        format!("${}", self.binds.len())
    }
}
