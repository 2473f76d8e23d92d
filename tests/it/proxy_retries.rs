//! Retries a caller asks for with `X-Retries`: after the API's wait, capped,
//! with the credential read again each time, and never for a call that is
//! not idempotent unless the caller says so.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::on_both_backends;
use crate::support::provider::RateLimit;
use crate::support::{start, Backend};

on_both_backends!(
    a_429_with_a_huge_retry_header_is_retried_after_the_cap_within_the_deadline,
    each_retry_reads_the_credential_again,
    a_post_is_retried_only_when_the_caller_says_it_is_safe,
    a_malformed_retry_ask_is_refused_and_nothing_is_sent,
);

const CONTACTS: &str = "/api/lists/l1/contacts";

/// The API allows one call an hour and says so: the second call, with
/// three retries asked, waits the 5 s cap once, not an hour, and the next
/// wait would pass the deadline (6 s in tests), so the API's 429 comes back.
async fn a_429_with_a_huge_retry_header_is_retried_after_the_cap_within_the_deadline(
    backend: Backend,
) {
    let (provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("p").await;
    provider.set(|c| c.rate_limit = Some(RateLimit::new(1, 1.0 / 3600.0)));
    let path = format!("/connections/p{CONTACTS}");
    let first = app
        .admin()
        .request(Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    let started = Instant::now();
    let limited = app
        .admin()
        .request(Method::GET, &path)
        .header("x-retries", "3")
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    // The API's own answer, to its last attempt: still most of the hour.
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 3500, "Retry-After: {retry_after}");
    assert!(
        (Duration::from_secs(5)..Duration::from_secs(6)).contains(&took),
        "one capped wait, within the deadline: {took:?}"
    );
    assert_eq!(
        provider.recorded(CONTACTS).len(),
        3,
        "one call, then one retry"
    );
    let retries = app
        .metric(r#"emailoctopus_connect_proxy_retries_total{kind="api_key"}"#)
        .await;
    assert_eq!(retries, Some(1.0));
}

/// The first attempt meets a 503 asking for 2 s; meanwhile the token is
/// refreshed, and the retry carries the new one.
async fn each_retry_reads_the_credential_again(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    app.connect("p").await;
    provider.set(|c| c.api_script.push_back((503, vec![("retry-after", "2")])));
    let admin = app.admin();
    let call = admin
        .request(Method::GET, &format!("/connections/p{CONTACTS}"))
        .header("x-retries", "1")
        .send();
    let call = tokio::spawn(call);
    tokio::time::timeout(Duration::from_secs(5), async {
        while provider.recorded(CONTACTS).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first attempt reaches the API");
    let (status, renewed) = app
        .admin()
        .post("/connections/p/refresh", serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");

    assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    let sent: Vec<String> = provider
        .recorded(CONTACTS)
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    let renewed = format!("Bearer {}", renewed["access_token"].as_str().unwrap());
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0], renewed, "the first attempt had the old token");
    assert_eq!(sent[1], renewed, "the retry read the renewed token");
    let retries = app
        .metric(r#"emailoctopus_connect_proxy_retries_total{kind="oauth"}"#)
        .await;
    assert_eq!(retries, Some(1.0));
}

async fn a_post_is_retried_only_when_the_caller_says_it_is_safe(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("p").await;
    provider.set(|c| {
        for _ in 0..2 {
            c.api_script.push_back((503, vec![("retry-after", "0")]));
        }
    });
    let path = format!("/connections/p{CONTACTS}");
    let post = || {
        app.admin()
            .request(Method::POST, &path)
            .header("content-type", "application/json")
            .header("x-retries", "2")
            .body(r#"{"email_address":"a@example.com"}"#)
    };
    let unasked = post().send().await.unwrap();
    assert_eq!(unasked.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(provider.recorded(CONTACTS).len(), 1, "sent once");
    let retries = r#"emailoctopus_connect_proxy_retries_total{kind="api_key"}"#;
    assert_eq!(app.metric(retries).await, None, "no retry counted");

    let asked = post()
        .header("x-retries-unsafe", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    assert_eq!(provider.recorded(CONTACTS).len(), 3, "a 503, then the 200");
    assert_eq!(app.metric(retries).await, Some(1.0));
}

async fn a_malformed_retry_ask_is_refused_and_nothing_is_sent(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("p").await;
    for (name, value) in [
        ("x-retries", "6"),
        ("x-retries", "lots"),
        ("x-retries-unsafe", "maybe"),
    ] {
        let answer = app
            .admin()
            .request(Method::GET, &format!("/connections/p{CONTACTS}"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {value}"
        );
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
    }
    assert!(provider.recorded(CONTACTS).is_empty());
}
