//! What operators are shown of the stored connections: whether the
//! database answers, and how many rows there are, counted when asked. One
//! count runs at a time, so scrapes, however many, keep at most one count
//! busy in the database, and none is ever shown a stale figure.

use crate::checked::ConnectionStatus;
use crate::store::{Backlog, Store, StoreError};

/// Row counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Connections in each status that has any.
    pub by_status: Vec<(ConnectionStatus, i64)>,
    /// Rows in the tables that the upkeep's sweeps keep small.
    pub swept_tables: Vec<(&'static str, i64)>,
    /// Events not yet delivered.
    pub events: Backlog,
}

pub struct Overview {
    store: Store,
    counting: tokio::sync::Mutex<()>,
}

impl Overview {
    pub(super) fn new(store: Store) -> Self {
        Self {
            store,
            counting: tokio::sync::Mutex::new(()),
        }
    }

    /// True when the database answers a trivial query.
    pub async fn database_answers(&self) -> bool {
        self.store.ping().await
    }

    /// The row counts, now.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let _one_at_a_time = self.counting.lock().await;
        Ok(Counts {
            by_status: self.store.count_by_status().await?,
            swept_tables: self.store.swept_table_rows().await?,
            events: self.store.event_backlog().await?,
        })
    }
}
