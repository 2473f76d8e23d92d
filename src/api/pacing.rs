//! Per-connection pacing for the proxy: a token bucket per connection shaped
//! like EmailOctopus's own (a burst, then a steady refill), so that calls
//! beyond it wait here, in the order they came, instead of being sent to be
//! refused. A call that would wait longer than the bound is answered at once
//! with how long to wait.
//!
//! Each instance keeps its own buckets: with several instances against one
//! account, each paces alone, and the rate should be divided between them.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::buckets::{Buckets, Refill};
use crate::checked::ConnectionId;

/// The bucket's shape, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct PacingSettings {
    /// Calls that may go at once after a quiet spell.
    pub burst: f64,
    /// Calls per second the bucket refills.
    pub rate_per_sec: f64,
    /// The longest a call waits for its turn before it is refused.
    pub max_wait: Duration,
}

/// How early a call may reach the API after a call before it was held up
/// on the way: the API's bucket, full since before the first call, counts
/// from when that call arrived, ours from when it left.
const JITTER_ALLOWANCE: Duration = Duration::from_millis(100);

impl PacingSettings {
    /// A bucket that keeps within the API's of `burst` and `rate_per_sec`:
    /// the calls it refills in `JITTER_ALLOWANCE` are kept out of the burst
    /// (one at EmailOctopus's 10 a second), so that jitter on the way does
    /// not spend a token the API has not refilled yet.
    pub fn within(burst: u32, rate_per_sec: f64, max_wait: Duration) -> Self {
        let kept = rate_per_sec * JITTER_ALLOWANCE.as_secs_f64();
        Self {
            burst: (f64::from(burst) - kept).max(1.0),
            rate_per_sec,
            max_wait,
        }
    }
}

/// A call that would have waited past the bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TooBusy {
    /// When a call would find a free turn.
    pub retry_after: Duration,
}

pub struct Pacing {
    max_wait: Duration,
    buckets: Mutex<Buckets<ConnectionId>>,
}

impl Pacing {
    pub fn new(settings: PacingSettings) -> Self {
        Self {
            max_wait: settings.max_wait,
            buckets: Mutex::new(Buckets::new(Refill {
                burst: settings.burst,
                rate_per_sec: settings.rate_per_sec,
            })),
        }
    }

    /// Waits for `id`'s turn, or refuses at once when it is further off than
    /// the bound. The turn is taken when it is reserved, so that calls wait
    /// in the order they came; a call dropped while waiting gives it up
    /// unused, which only errs on the slow side.
    ///
    /// Returns how long the call waited.
    pub async fn turn(&self, id: &ConnectionId) -> Result<Duration, TooBusy> {
        let wait = self.reserve(id, Instant::now())?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(wait)
    }

    /// Takes a token from `id`'s bucket at `now` and says how long until it
    /// is due; takes nothing and refuses when that is past the bound.
    fn reserve(&self, id: &ConnectionId, now: Instant) -> Result<Duration, TooBusy> {
        let mut buckets = self.buckets.lock().expect("pacing is never poisoned");
        let left = buckets.tokens(id, now) - 1.0;
        let wait = buckets.refill().time_until(left, 0.0);
        if wait > self.max_wait {
            return Err(TooBusy { retry_after: wait });
        }
        buckets.set(id.clone(), left, now);
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing(burst: u32, rate_per_sec: f64, max_wait_secs: u64) -> Pacing {
        Pacing::new(PacingSettings {
            burst: f64::from(burst),
            rate_per_sec,
            max_wait: Duration::from_secs(max_wait_secs),
        })
    }

    fn id(name: &str) -> ConnectionId {
        ConnectionId::parse(name).unwrap()
    }

    #[test]
    fn the_burst_keeps_back_what_refills_in_the_jitter_allowance() {
        let wait = Duration::from_secs(10);
        let at_emailoctopus = PacingSettings::within(100, 10.0, wait);
        assert_eq!(at_emailoctopus.burst, 99.0);
        assert_eq!(PacingSettings::within(100, 50.0, wait).burst, 95.0);
        assert_eq!(
            PacingSettings::within(1, 0.1, wait).burst,
            1.0,
            "never below one call"
        );
    }

    #[test]
    fn a_burst_goes_at_once_and_the_rest_wait_their_turn_in_order() {
        let pacing = pacing(3, 10.0, 10);
        let now = Instant::now();
        let waits: Vec<_> = (0..6)
            .map(|_| pacing.reserve(&id("a"), now).unwrap())
            .collect();
        let ms: Vec<_> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 0, 100, 200, 300]);
    }

    #[test]
    fn connections_are_paced_apart() {
        let pacing = pacing(1, 1.0, 10);
        let now = Instant::now();
        assert_eq!(pacing.reserve(&id("a"), now), Ok(Duration::ZERO));
        assert_eq!(pacing.reserve(&id("b"), now), Ok(Duration::ZERO));
        assert_eq!(pacing.reserve(&id("a"), now), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn a_turn_past_the_bound_is_refused_and_takes_nothing() {
        let pacing = pacing(1, 1.0, 2);
        let now = Instant::now();
        for _ in 0..3 {
            pacing.reserve(&id("a"), now).unwrap();
        }
        assert_eq!(
            pacing.reserve(&id("a"), now),
            Err(TooBusy {
                retry_after: Duration::from_secs(3)
            })
        );
        // The refusal reserved nothing: a second later the next turn is 2 s off.
        let later = now + Duration::from_secs(1);
        assert_eq!(pacing.reserve(&id("a"), later), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn a_quiet_bucket_refills_only_up_to_the_burst() {
        let pacing = pacing(2, 10.0, 10);
        let now = Instant::now();
        pacing.reserve(&id("a"), now).unwrap();
        let much_later = now + Duration::from_secs(3600);
        let waits: Vec<_> = (0..3)
            .map(|_| pacing.reserve(&id("a"), much_later).unwrap().as_millis())
            .collect();
        assert_eq!(waits, [0, 0, 100]);
    }
}
