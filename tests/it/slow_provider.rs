//! A slow provider cannot take the server down with it: refreshes hold no
//! database connection while the provider answers, so readiness, pages and
//! credentials that need no refresh keep answering, and each connection is
//! still refreshed once.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{eventually, start, TestApp};

on_both_backends!(twelve_slow_refreshes_leave_the_server_answering);

/// The time every other route gets while the provider stalls.
const PROMPT: Duration = Duration::from_secs(1);

async fn twelve_slow_refreshes_leave_the_server_answering(backend: crate::support::Backend) {
    let (provider, _db, app) = start(backend, &["--provider-timeout-secs=20"]).await;
    let ids: Vec<String> = (0..12).map(|i| format!("slow-{i}")).collect();
    for id in &ids {
        assert_eq!(app.connect(id).await.status(), StatusCode::OK);
    }
    app.connect_api_key("keyed").await;
    app.clock.advance(Duration::from_secs(3600 - 30));
    provider.set(|c| c.token_delay = Duration::from_secs(8));

    let admin = std::sync::Arc::new(app.admin());
    let refreshes: Vec<_> = ids
        .iter()
        .map(|id| {
            let (admin, path) = (admin.clone(), format!("/connections/{id}/access-token"));
            tokio::spawn(async move { admin.get(&path).await })
        })
        .collect();
    // Several refreshes are now waiting at the provider.
    eventually("several refreshes waiting at the provider", async || {
        provider.token_requests("refresh_token").len() >= 4
    })
    .await;
    answers_promptly(&app, "/readyz", false).await;
    answers_promptly(&app, "/", false).await;
    answers_promptly(&app, "/connections/keyed/access-token", true).await;

    for refresh in refreshes {
        let (status, body) = refresh.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut presented: Vec<String> = provider
        .token_requests("refresh_token")
        .iter()
        .map(|r| r.form["refresh_token"].clone())
        .collect();
    presented.sort();
    presented.dedup();
    assert_eq!(presented.len(), 12, "one refresh per connection");
    assert_eq!(provider.token_requests("refresh_token").len(), 12);
}

async fn answers_promptly(app: &TestApp, path: &str, admin: bool) {
    let started = Instant::now();
    let request = if admin {
        app.admin().request(reqwest::Method::GET, path)
    } else {
        reqwest::Client::new().get(app.at(path))
    };
    let answer = tokio::time::timeout(PROMPT, request.send())
        .await
        .unwrap_or_else(|_| panic!("{path} took longer than {PROMPT:?}"))
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{path}");
    assert!(started.elapsed() < PROMPT, "{path}");
}
