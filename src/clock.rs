//! The one clock: wall time plus an offset that tests can move, so expiry and
//! refresh are tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; every stored time is one of these, except
/// the event outbox's, which are `UnixMillis` (its retries start within
/// seconds and are timed closer than that).
pub type UnixTime = i64;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> UnixTime {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        wall + self.offset_secs.load(Ordering::Relaxed)
    }

    pub fn now_millis(&self) -> UnixMillis {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        wall + self.offset_secs.load(Ordering::Relaxed) * 1000
    }

    /// Moves this clock (and every copy of it) forward.
    pub fn advance(&self, by: Duration) {
        self.offset_secs
            .fetch_add(by.as_secs() as i64, Ordering::Relaxed);
    }
}

/// RFC 3339 in UTC, as every JSON answer gives times.
pub fn rfc3339(at: UnixTime) -> String {
    format_rfc3339(time::OffsetDateTime::from_unix_timestamp(at).ok())
}

/// RFC 3339 in UTC to the millisecond.
pub fn rfc3339_millis(at: UnixMillis) -> String {
    format_rfc3339(time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000).ok())
}

fn format_rfc3339(at: Option<time::OffsetDateTime>) -> String {
    at.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}
