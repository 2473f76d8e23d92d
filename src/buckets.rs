//! Token buckets by key: a burst, then a steady refill. The proxy's pacing
//! and the limit on refused API keys both count with them.
//!
//! A bucket that has refilled is the same as one never used, so it is not
//! kept: the map holds only the keys that have been busy lately, and full
//! buckets are dropped in a sweep once it has doubled since the last one,
//! which costs O(1) per write on average.

use std::collections::HashMap;
use std::hash::Hash;

use tokio::time::Instant;

/// A bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refill {
    /// Tokens a bucket holds when full.
    pub burst: f64,
    /// Tokens per second a bucket gains until it is full again.
    pub rate_per_sec: f64,
}

impl Refill {
    /// How long until a bucket that holds `tokens` holds `wanted`.
    pub fn time_until(&self, tokens: f64, wanted: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64(((wanted - tokens) / self.rate_per_sec).max(0.0))
    }
}

/// Tokens at `at`; below zero when turns have been reserved that are not due yet.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn tokens_at(&self, now: Instant, refill: &Refill) -> f64 {
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() * refill.rate_per_sec;
        (self.tokens + refilled).min(refill.burst)
    }
}

#[derive(Debug)]
pub struct Buckets<K> {
    refill: Refill,
    by_key: HashMap<K, Bucket>,
    /// The size at which full buckets are next dropped.
    sweep_at: usize,
}

/// Fewest buckets kept before a sweep is worth it.
const SWEEP_FLOOR: usize = 1024;

impl<K: Eq + Hash> Buckets<K> {
    pub fn new(refill: Refill) -> Self {
        Self {
            refill,
            by_key: HashMap::new(),
            sweep_at: SWEEP_FLOOR,
        }
    }

    pub fn refill(&self) -> &Refill {
        &self.refill
    }

    /// The tokens in `key`'s bucket at `now`: the burst for a key not seen lately.
    pub fn tokens(&self, key: &K, now: Instant) -> f64 {
        self.by_key.get(key).map_or(self.refill.burst, |bucket| {
            bucket.tokens_at(now, &self.refill)
        })
    }

    /// Sets `key`'s bucket to `tokens` at `now`.
    pub fn set(&mut self, key: K, tokens: f64, now: Instant) {
        self.sweep_if_due(now);
        self.by_key.insert(key, Bucket { tokens, at: now });
    }

    fn sweep_if_due(&mut self, now: Instant) {
        if self.by_key.len() < self.sweep_at {
            return;
        }
        let refill = self.refill;
        self.by_key
            .retain(|_, bucket| bucket.tokens_at(now, &refill) < refill.burst);
        self.sweep_at = (self.by_key.len() * 2).max(SWEEP_FLOOR);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    #[cfg(test)]
    pub fn holds(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const ONE_A_SECOND: Refill = Refill {
        burst: 1.0,
        rate_per_sec: 1.0,
    };

    #[test]
    fn a_key_not_seen_has_a_full_bucket_that_refills_only_up_to_the_burst() {
        let mut buckets = Buckets::new(Refill {
            burst: 2.0,
            rate_per_sec: 10.0,
        });
        let now = Instant::now();
        assert_eq!(buckets.tokens(&"a", now), 2.0);
        buckets.set("a", -1.0, now);
        assert_eq!(buckets.tokens(&"a", now + Duration::from_millis(100)), 0.0);
        assert_eq!(buckets.tokens(&"a", now + Duration::from_secs(3600)), 2.0);
    }

    #[test]
    fn full_buckets_are_dropped_once_there_are_many() {
        let mut buckets = Buckets::new(ONE_A_SECOND);
        let now = Instant::now();
        for n in 0..SWEEP_FLOOR {
            buckets.set(n, 0.0, now);
        }
        // One still owes a turn when the sweep runs; the rest have refilled.
        let later = now + Duration::from_secs(1);
        buckets.set(usize::MAX, -1.0, later);
        assert_eq!(buckets.len(), 1, "only the busy bucket is kept");
        assert!(buckets.holds(&usize::MAX));
    }

    #[test]
    fn the_map_stays_within_twice_the_busy_keys() {
        let mut buckets = Buckets::new(ONE_A_SECOND);
        let start = Instant::now();
        // A new key every tenth of a second, each refilled a second later:
        // about ten are busy at any time, however many have been seen.
        for n in 0..100_000u32 {
            let now = start + Duration::from_millis(100 * u64::from(n));
            buckets.set(n, 0.0, now);
            assert!(buckets.len() <= 2 * SWEEP_FLOOR, "{} kept", buckets.len());
        }
    }

    #[test]
    fn time_until_counts_the_refill_and_is_never_negative() {
        let refill = Refill {
            burst: 10.0,
            rate_per_sec: 0.5,
        };
        assert_eq!(refill.time_until(0.25, 1.0), Duration::from_millis(1500));
        assert_eq!(refill.time_until(3.0, 1.0), Duration::ZERO);
    }
}
