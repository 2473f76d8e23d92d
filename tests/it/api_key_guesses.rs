//! Refused API keys are limited per client and per connection, wherever a
//! key comes from outside: after the budget the API is not asked again and
//! nothing is stored. The upkeep's check of a stored key is never limited.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;

use crate::api_keys::csrf_token;
use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{start, Backend, TestApp};

on_both_backends!(
    with_open_connect_a_client_that_keeps_guessing_is_stopped_before_the_api,
    another_client_is_served_until_the_connection_has_had_too_many,
    the_backend_is_stopped_per_connection_and_told_when_to_try_again,
    the_upkeep_checks_a_stored_key_whatever_was_guessed_for_its_connection,
);

/// Refused keys one client may send before it is stopped (`guesses.rs`).
const PER_CLIENT: usize = 10;
/// Refused keys one connection may have, from all clients together.
const PER_CONNECTION: usize = 20;

/// A browser whose requests come from `address` (any of 127.0.0.0/8 is
/// this machine on Linux), with the open connect page's CSRF token.
async fn browser_at(app: &TestApp, address: &str) -> (reqwest::Client, String) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .local_address(address.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let page = browser.get(app.at("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_token(&page.text().await.unwrap());
    (browser, csrf)
}

/// Posts the open connect page's API-key form (no connect session).
async fn offer(
    browser: &(reqwest::Client, String),
    app: &TestApp,
    key: &str,
) -> (StatusCode, String) {
    let (browser, csrf) = browser;
    let answer = browser
        .post(app.at("/connect/api-key"))
        .form(&[("api_key", key), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

async fn with_open_connect_a_client_that_keeps_guessing_is_stopped_before_the_api(
    backend: Backend,
) {
    let (provider, _db, app) = start(backend, &["--open-connect=true"]).await;
    let guesser = browser_at(&app, "127.0.0.1").await;
    // An API that cannot answer costs nothing.
    provider.set(|c| c.upstream_status = 503);
    let (status, _) = offer(&guesser, &app, "guess-unanswered").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    provider.set(|c| c.upstream_status = 200);
    for n in 0..PER_CLIENT {
        let (status, page) = offer(&guesser, &app, &format!("guess-{n}")).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "guess {n}: {page}"
        );
    }
    let checks = provider.recorded("/api/lists").len();
    assert_eq!(checks, PER_CLIENT + 1);

    let (status, page) = offer(&guesser, &app, "one-more-guess").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many refused API keys"), "{page}");
    assert!(page.contains("from your network"), "{page}");
    // Spent is spent: even the right key is not sent, and nothing is stored.
    let (status, _) = offer(&guesser, &app, API_KEY).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(provider.recorded("/api/lists").len(), checks);
    assert_eq!(
        app.admin().get("/connections/default").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.metric("emailoctopus_connect_api_key_guesses_limited_total{by=\"client\"}")
            .await,
        Some(2.0)
    );
    assert_eq!(
        app.metric("emailoctopus_connect_api_keys_refused_total")
            .await,
        Some(PER_CLIENT as f64)
    );
}

async fn another_client_is_served_until_the_connection_has_had_too_many(backend: Backend) {
    let (provider, _db, app) = start(backend, &["--open-connect=true"]).await;
    let first = browser_at(&app, "127.0.0.1").await;
    for n in 0..PER_CLIENT {
        assert_eq!(
            offer(&first, &app, &format!("first-{n}")).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(
        offer(&first, &app, "first-more").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Another address has its own budget, until the connection's is spent.
    let second = browser_at(&app, "127.0.0.2").await;
    for n in PER_CLIENT..PER_CONNECTION {
        assert_eq!(
            offer(&second, &app, &format!("second-{n}")).await.0,
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused key {n} of the connection"
        );
    }
    let checks = provider.recorded("/api/lists").len();
    assert_eq!(checks, PER_CONNECTION);
    let third = browser_at(&app, "127.0.0.3").await;
    for client in [&second, &third] {
        let (status, page) = offer(client, &app, API_KEY).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(page.contains("for this connection"), "{page}");
    }
    assert_eq!(provider.recorded("/api/lists").len(), checks);
    assert_eq!(
        app.metric("emailoctopus_connect_api_key_guesses_limited_total{by=\"connection\"}")
            .await,
        Some(2.0)
    );
}

async fn the_backend_is_stopped_per_connection_and_told_when_to_try_again(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let admin = app.admin();
    let put = |id: &str, key: &str| {
        let (admin, path, key) = (&admin, format!("/connections/{id}/api-key"), key.to_owned());
        async move {
            admin
                .request(reqwest::Method::PUT, &path)
                .json(&serde_json::json!({ "api_key": key }))
                .send()
                .await
                .unwrap()
        }
    };
    // The backend speaks for many users from one address: its budget is
    // the connection's, and more than a client's.
    for n in 0..PER_CONNECTION {
        let refused = put("guessed", &format!("guess-{n}")).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "guess {n}"
        );
    }
    let checks = provider.recorded("/api/lists").len();
    assert_eq!(checks, PER_CONNECTION);

    let limited = put("guessed", API_KEY).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=180).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(provider.recorded("/api/lists").len(), checks);
    assert_eq!(
        admin.get("/connections/guessed").await.0,
        StatusCode::NOT_FOUND
    );

    // Another connection is not held back.
    assert_eq!(put("other", API_KEY).await.status(), StatusCode::OK);
    assert_eq!(provider.recorded("/api/lists").len(), checks + 1);
}

async fn the_upkeep_checks_a_stored_key_whatever_was_guessed_for_its_connection(backend: Backend) {
    const DAY: u64 = 24 * 3600;
    let (provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("keyed").await;
    for n in 0..=PER_CONNECTION {
        app.admin()
            .put(
                "/connections/keyed/api-key",
                serde_json::json!({ "api_key": format!("guess-{n}") }),
            )
            .await;
    }
    let (status, _) = app
        .admin()
        .put(
            "/connections/keyed/api-key",
            serde_json::json!({ "api_key": API_KEY }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the budget is spent");
    let checks = provider.recorded("/api/lists").len();

    // The owner deleted the key at EmailOctopus; the next scheduled check
    // asks the API and hears so, spent budget or not.
    provider.set(|c| c.api_refuses_all = true);
    app.clock.advance(Duration::from_secs(DAY + DAY / 10 + 1));
    let report = app.upkeep().await;
    assert_eq!(
        report.outcomes,
        vec![emailoctopus_connect::connections::UpkeepOutcome::Key(
            emailoctopus_connect::connections::KeyHealth::Rejected
        )]
    );
    assert_eq!(provider.recorded("/api/lists").len(), checks + 1);
    assert_eq!(
        app.admin().get("/connections/keyed").await.1["status"],
        "needs_reauth"
    );
}
