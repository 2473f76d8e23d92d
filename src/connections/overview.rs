//! What operators are shown of the stored connections: whether the
//! database answers, and how many rows there are. The counts are shared and
//! kept for a few seconds: however many scrapers ask, and however often,
//! the tables are counted at most once per `COUNTS_TTL_SECS`, one count at
//! a time, so a scraper cannot load the database.

use crate::checked::ConnectionStatus;
use crate::clock::{Clock, UnixTime};
use crate::store::{Store, StoreError};

/// How long one count of the tables is shown before it is made again.
pub const COUNTS_TTL_SECS: UnixTime = 5;

/// Row counts as of `counted_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Connections in each status that has any.
    pub by_status: Vec<(ConnectionStatus, i64)>,
    /// Rows in the tables that the upkeep's sweeps keep small.
    pub swept_tables: Vec<(&'static str, i64)>,
    pub counted_at: UnixTime,
}

pub struct Overview {
    store: Store,
    clock: Clock,
    /// The last count; the lock is held while a count runs, so that callers
    /// meanwhile wait for it and share it instead of counting too.
    last: tokio::sync::Mutex<Option<Counts>>,
    #[cfg(test)]
    made: std::sync::atomic::AtomicUsize,
}

impl Overview {
    pub(super) fn new(store: Store, clock: Clock) -> Self {
        Self {
            store,
            clock,
            last: tokio::sync::Mutex::new(None),
            #[cfg(test)]
            made: Default::default(),
        }
    }

    /// True when the database answers a trivial query.
    pub async fn database_answers(&self) -> bool {
        self.store.ping().await
    }

    /// The row counts, at most `COUNTS_TTL_SECS` old.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let mut last = self.last.lock().await;
        let now = self.clock.now();
        if let Some(counts) = last
            .as_ref()
            .filter(|c| now - c.counted_at < COUNTS_TTL_SECS)
        {
            return Ok(counts.clone());
        }
        #[cfg(test)]
        self.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let counts = Counts {
            by_status: self.store.count_by_status().await?,
            swept_tables: self.store.swept_table_rows().await?,
            counted_at: now,
        };
        *last = Some(counts.clone());
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_scrapes_at_once_count_the_tables_once_per_few_seconds() {
        let (store, _dir) = Store::temporary().await;
        let clock = Clock::default();
        let overview = Arc::new(Overview::new(store, clock.clone()));
        let scrapes: Vec<_> = (0..50)
            .map(|_| {
                let overview = Arc::clone(&overview);
                tokio::spawn(async move { overview.counts().await.unwrap() })
            })
            .collect();
        for scrape in scrapes {
            scrape.await.unwrap();
        }
        assert_eq!(overview.made.load(Ordering::SeqCst), 1);

        clock.advance(Duration::from_secs(COUNTS_TTL_SECS as u64));
        overview.counts().await.unwrap();
        assert_eq!(overview.made.load(Ordering::SeqCst), 2);
    }
}
