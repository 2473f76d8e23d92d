//! The proxy paces each connection to EmailOctopus's bucket: a burst at
//! once, then calls wait their turn, and a call whose turn is too far off
//! is answered 429 here instead of being sent to be refused.
//!
//! The tests shrink the bucket to keep fast: burst 20 and 250 calls a second
//! (EmailOctopus's is burst 100 and 10 a second), against a fake API that
//! enforces the same. 500 calls then take about 2 s, as 500 calls at the
//! real limit take about 40 s; what is tested, that no call is sent before
//! the bucket has its token, holds at any scale.

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::provider::RateLimit;
use crate::support::{start, Backend};

on_both_backends!(
    five_hundred_calls_at_once_all_succeed_and_none_is_refused_upstream,
    a_call_whose_turn_is_too_far_off_gets_429_with_retry_after,
);

const CONTACTS: &str = "/api/lists/l1/contacts";

async fn five_hundred_calls_at_once_all_succeed_and_none_is_refused_upstream(backend: Backend) {
    let (provider, _db, app) =
        start(backend, &["--proxy-burst=20", "--proxy-rate-per-sec=250"]).await;
    app.connect_api_key("p").await;
    // From here on, as EmailOctopus does: the key check above took no token.
    provider.set(|c| c.rate_limit = Some(RateLimit::new(20, 250.0)));
    let admin = app.admin();
    let calls = (0..500).map(|n| {
        admin
            .request(
                reqwest::Method::GET,
                &format!("/connections/p{CONTACTS}?limit=1&n={n}"),
            )
            .send()
    });
    let statuses: Vec<StatusCode> = join_all(calls)
        .await
        .into_iter()
        .map(|answer| answer.unwrap().status())
        .collect();
    let failed: Vec<_> = statuses.iter().filter(|s| **s != StatusCode::OK).collect();
    assert!(
        failed.is_empty(),
        "{} calls failed: {failed:?}",
        failed.len()
    );
    assert_eq!(provider.recorded(CONTACTS).len(), 500);
    let refused = provider
        .control
        .lock()
        .unwrap()
        .rate_limit
        .as_ref()
        .unwrap()
        .refused;
    assert_eq!(refused, 0, "the API refused calls the proxy sent");
}

/// At one call every ten seconds, the second call's turn is 10 s off: past
/// the bound (the tests' provider timeout is 2 s, so a call waits at most 4 s).
async fn a_call_whose_turn_is_too_far_off_gets_429_with_retry_after(backend: Backend) {
    let (provider, _db, app) =
        start(backend, &["--proxy-burst=1", "--proxy-rate-per-sec=0.1"]).await;
    app.connect_api_key("p").await;
    let path = format!("/connections/p{CONTACTS}");
    let first = app
        .admin()
        .request(reqwest::Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = app
        .admin()
        .request(reqwest::Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["content-type"], "application/problem+json");
    let retry_after: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (9..=10).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(
        provider.recorded(CONTACTS).len(),
        1,
        "the refused call was not sent"
    );
}
