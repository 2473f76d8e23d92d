//! `eventually`: the one way a test waits for something to happen. It asks
//! again every few milliseconds until the answer is yes, and fails naming
//! what never happened; no test sleeps for "long enough".

use std::fmt::Display;
use std::time::Duration;

use tokio::time::Instant;

/// How long `eventually` waits: far longer than anything should take on a
/// busy machine, so that only something that never happens fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How often the condition is asked again.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Waits, at most `DEADLINE`, until `check` says `what` has happened: a
/// `bool`, or `Some(value)`, which is returned.
pub async fn eventually<A: Answer>(what: impl Display, check: impl AsyncFnMut() -> A) -> A::Value {
    eventually_within(DEADLINE, what, check).await
}

/// As `eventually`, for a wait whose bound is itself what a test promises
/// (a process that stops within ten seconds of SIGTERM).
pub async fn eventually_within<A: Answer>(
    limit: Duration,
    what: impl Display,
    mut check: impl AsyncFnMut() -> A,
) -> A::Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await.happened() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "never happened within {limit:?}: {what}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// What a condition answers: whether it has happened, and with what.
pub trait Answer {
    type Value;
    fn happened(self) -> Option<Self::Value>;
}

impl Answer for bool {
    type Value = ();
    fn happened(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Answer for Option<T> {
    type Value = T;
    fn happened(self) -> Option<T> {
        self
    }
}
