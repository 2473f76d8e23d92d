//! When a delivery that failed is tried again: the first retry within
//! seconds, then waits that grow to hours, about a day from the first
//! attempt to the last of ten (the default first wait, 5 s: 5 s, 30 s,
//! 2 min, 10 min, 1 h, 2 h, 4 h, 8 h, 8 h; 23 h 12 min in all).

use std::time::Duration;

use rand::Rng;

/// Attempts per round, the first included (the contract: at most 10).
pub const MAX_ATTEMPTS: i64 = 10;

/// Each wait after a failed attempt, as a multiple of the first.
const WAITS: [u32; MAX_ATTEMPTS as usize - 1] = [1, 6, 24, 120, 720, 1440, 2880, 5760, 5760];

/// The wait after failed attempt number `tries` (1 for the first), or
/// `None` when that was the last. Each is between three quarters of its
/// step and all of it, so that many deliveries that failed together (a
/// receiver that was down) do not all come back at once.
pub fn wait_after(tries: i64, first_wait: Duration) -> Option<Duration> {
    let step = usize::try_from(tries).ok()?.checked_sub(1)?;
    let factor = *WAITS.get(step)?;
    let jitter = rand::thread_rng().gen_range(0.75..=1.0);
    Some((first_wait * factor).mul_f64(jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_attempts_span_about_a_day_and_the_first_retry_is_soon() {
        let first = Duration::from_secs(5);
        assert!(wait_after(1, first).unwrap() <= Duration::from_secs(10));
        let longest: Duration = WAITS.iter().map(|factor| first * *factor).sum();
        assert!(longest > Duration::from_secs(20 * 3600), "{longest:?}");
        assert!(longest < Duration::from_secs(26 * 3600), "{longest:?}");
        assert_eq!(wait_after(MAX_ATTEMPTS, first), None);
        assert_eq!(wait_after(0, first), None);
        for tries in 1..MAX_ATTEMPTS {
            let wait = wait_after(tries, first).unwrap();
            let step = first * WAITS[tries as usize - 1];
            assert!(
                wait <= step && wait >= step.mul_f64(0.75),
                "{tries}: {wait:?}"
            );
        }
    }
}
