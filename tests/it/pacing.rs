//! The proxy paces each connection to EmailOctopus's bucket: a burst at
//! once, then calls wait their turn, and a call whose turn is too far off
//! is answered 429 here instead of being sent to be refused.
//!
//! The tests shrink the bucket to keep fast: burst 100 and 50 calls a second
//! (EmailOctopus's is burst 100 and 10 a second), against a fake API that
//! enforces the same, and a 5 s provider timeout, which bounds a wait at
//! 10 s as in production. 500 calls at once then take about 8 s, inside the
//! bound (the proxy keeps 100 ms of refill, 5 calls here, out of its burst
//! against jitter on the way). What is tested, that no call reaches the API
//! before its bucket has the token and none that fits the bound is refused,
//! holds at any scale; at EmailOctopus's bucket, 99 + 10 × 10 s = 199 calls
//! at once fit, and the rest get the 429 of the second test.

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::provider::RateLimit;
use crate::support::{new_key, start, Backend, FakeProvider, TestApp, TestDb};

on_both_backends!(
    five_hundred_calls_at_once_all_succeed_and_none_is_refused_upstream,
    a_call_whose_turn_is_too_far_off_gets_429_with_retry_after,
    each_instance_on_one_database_paces_alone,
);

const CONTACTS: &str = "/api/lists/l1/contacts";

async fn five_hundred_calls_at_once_all_succeed_and_none_is_refused_upstream(backend: Backend) {
    let pacing = [
        "--proxy-burst=100",
        "--proxy-rate-per-sec=50",
        "--provider-timeout-secs=5",
    ];
    let (provider, _db, app) = start(backend, &pacing).await;
    app.connect_api_key("p").await;
    // From here on, as EmailOctopus does: the key check above took no token.
    provider.set(|c| c.rate_limit = Some(RateLimit::new(100, 50.0)));
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
    let refused = provider
        .control
        .lock()
        .unwrap()
        .rate_limit
        .as_ref()
        .unwrap()
        .refused;
    assert!(
        failed.is_empty(),
        "{} calls failed ({refused} of them refused by the API): {failed:?}",
        failed.len()
    );
    assert_eq!(provider.recorded(CONTACTS).len(), 500);
    assert_eq!(refused, 0, "the API refused calls the proxy sent");
    let waited = app
        .metric(r#"emailoctopus_connect_proxy_paced_wait_seconds_count{kind="api_key"}"#)
        .await
        .expect("waits are counted");
    assert!((1.0..=405.0).contains(&waited), "{waited} calls waited");
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
    let refusals = app
        .metric(r#"emailoctopus_connect_proxy_paced_refusals_total{kind="api_key"}"#)
        .await;
    assert_eq!(refusals, Some(1.0));
}

/// What the README tells an operator: the buckets are each instance's own,
/// so two instances on one database send twice the burst between them.
async fn each_instance_on_one_database_paces_alone(backend: Backend) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    args.extend(["--proxy-burst=1", "--proxy-rate-per-sec=0.1"].map(String::from));
    let instances = [
        TestApp::start(&db, &args).await,
        TestApp::start(&db, &args).await,
    ];
    instances[0].connect_api_key("p").await;
    let path = format!("/connections/p{CONTACTS}");
    for instance in &instances {
        let call = || instance.admin().request(reqwest::Method::GET, &path).send();
        assert_eq!(call().await.unwrap().status(), StatusCode::OK);
        assert_eq!(
            call().await.unwrap().status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        provider.recorded(CONTACTS).len(),
        2,
        "one burst per instance"
    );
}
