//! EmailOctopus's limit as the fake API can enforce it: a token bucket per
//! credential (a burst, then a steady refill), with a 429 and both retry
//! headers for a call that finds it empty. Written apart from the proxy's
//! own pacing, so a mistake there is not mirrored here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimit {
    burst: f64,
    per_sec: f64,
    /// Tokens left per Bearer, and when that was.
    buckets: HashMap<String, (f64, Instant)>,
    /// Calls it refused.
    pub refused: usize,
}

/// Slack for the proxy's and this clock's rounding: far below one call.
const EPSILON: f64 = 1e-6;

impl RateLimit {
    pub fn new(burst: u32, per_sec: f64) -> Self {
        Self {
            burst: f64::from(burst),
            per_sec,
            buckets: HashMap::new(),
            refused: 0,
        }
    }

    /// Takes a token for `credential`, or says how long until there is one.
    pub(super) fn take(&mut self, credential: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let (tokens, at) = self
            .buckets
            .entry(credential.to_owned())
            .or_insert((self.burst, now));
        let refilled =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        if refilled + EPSILON >= 1.0 {
            *tokens = refilled - 1.0;
            *at = now;
            return Ok(());
        }
        self.refused += 1;
        Err(Duration::from_secs_f64((1.0 - refilled) / self.per_sec))
    }
}
