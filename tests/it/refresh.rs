//! Fresh tokens: refresh when expiring, once for all callers, rotation, and
//! which failures mean "connect again" and which leave the connection alone.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{eventually, start, Backend, TestApp, TokenAnswer};

on_both_backends!(
    concurrent_callers_share_one_refresh,
    a_rotated_refresh_token_replaces_the_old_one,
    an_answer_without_a_refresh_token_keeps_the_old_one,
    invalid_grant_marks_the_connection_needs_reauth,
    other_refresh_failures_leave_the_connection_as_it_was,
    short_lived_tokens_are_refreshed_once_not_on_every_call,
    a_token_said_to_expire_at_once_is_not_refreshed_on_every_call,
    a_reconnect_during_a_refresh_wins,
);

async fn short_lived_tokens_are_refreshed_once_not_on_every_call(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    // Thirty-second tokens: shorter than the 60 s margin.
    provider.settings(|s| s.expires_in = 30);
    assert_eq!(app.connect("brief").await.status(), StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(
            app.admin().get("/connections/brief/access-token").await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        provider.token_requests("refresh_token").len(),
        0,
        "a fresh 30 s token is not due"
    );
    app.clock.advance(Duration::from_secs(20));
    let admin = std::sync::Arc::new(app.admin());
    let calls = (0..20).map(|_| {
        let admin = admin.clone();
        tokio::spawn(async move { admin.get("/connections/brief/access-token").await.0 })
    });
    for status in futures_util::future::join_all(calls).await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert_eq!(provider.token_requests("refresh_token").len(), 1);
}

async fn a_token_said_to_expire_at_once_is_not_refreshed_on_every_call(backend: Backend) {
    for expires_in in [0, 1, -5] {
        let (provider, _db, app) = start(backend, &[]).await;
        provider.settings(|s| s.expires_in = expires_in);
        assert_eq!(app.connect("storm").await.status(), StatusCode::OK);
        // A hundred calls over 25 s: a 30 s minimum lifetime allows one
        // refresh at its half, perhaps a second one.
        for call in 0..100 {
            if call % 4 == 0 {
                app.clock.advance(Duration::from_secs(1));
            }
            let (status, body) = app.admin().get("/connections/storm/access-token").await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let refreshes = provider.token_requests("refresh_token").len();
        assert!(
            (1..=2).contains(&refreshes),
            "expires_in {expires_in}: {refreshes} refreshes"
        );
    }
}

async fn a_reconnect_during_a_refresh_wins(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    connect_expiring(&app, "race").await;
    // The refresh's answer arrives after the user has connected again, and says invalid_grant.
    provider.set(|c| {
        c.refresh_override = Some((
            TokenAnswer::Status(400, r#"{"error":"invalid_grant"}"#),
            Duration::from_millis(800),
        ))
    });
    let admin = std::sync::Arc::new(app.admin());
    let refreshing = {
        let admin = admin.clone();
        tokio::spawn(async move {
            admin
                .post("/connections/race/refresh", serde_json::json!({}))
                .await
        })
    };
    eventually("the refresh reaches the provider", async || {
        !provider.token_requests("refresh_token").is_empty()
    })
    .await;
    assert_eq!(app.connect("race").await.status(), StatusCode::OK);
    let (_, reconnected) = admin.get("/connections/race/access-token").await;
    let (status, answer) = refreshing.await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "the late refusal was about the old grant: {answer}"
    );
    assert_eq!(answer["access_token"], reconnected["access_token"]);
    assert_eq!(
        admin.get("/connections/race").await.1["status"],
        "connected"
    );
}

/// Connects `id` and moves the clock to 30 s before its token expires.
async fn connect_expiring(app: &TestApp, id: &str) -> String {
    assert_eq!(app.connect(id).await.status(), StatusCode::OK);
    let (_, token) = app
        .admin()
        .get(&format!("/connections/{id}/access-token"))
        .await;
    app.clock.advance(Duration::from_secs(3600 - 30));
    token["access_token"].as_str().unwrap().to_owned()
}

async fn concurrent_callers_share_one_refresh(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let old = connect_expiring(&app, "busy").await;
    // A slow provider makes every caller arrive while the refresh is in flight.
    provider.set(|c| c.token_delay = Duration::from_millis(300));
    let admin = std::sync::Arc::new(app.admin());
    let calls = (0..100).map(|_| {
        let admin = admin.clone();
        tokio::spawn(async move { admin.get("/connections/busy/access-token").await })
    });
    let answers = futures_util::future::join_all(calls).await;
    assert_eq!(
        provider.token_requests("refresh_token").len(),
        1,
        "the provider saw more than one refresh"
    );
    let tokens: std::collections::HashSet<String> = answers
        .into_iter()
        .map(|a| {
            let (status, body) = a.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 1, "callers got different tokens");
    assert!(!tokens.contains(&old));
}

async fn a_rotated_refresh_token_replaces_the_old_one(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    connect_expiring(&app, "rot").await;
    assert_eq!(
        app.admin().get("/connections/rot/access-token").await.0,
        StatusCode::OK
    );
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        app.admin().get("/connections/rot/access-token").await.0,
        StatusCode::OK
    );
    let sent: Vec<String> = provider
        .token_requests("refresh_token")
        .iter()
        .map(|r| r.form["refresh_token"].clone())
        .collect();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0], sent[1], "the old refresh token was sent again");
    // The fake provider refuses a used refresh token, so success proves the new one was stored.
}

async fn an_answer_without_a_refresh_token_keeps_the_old_one(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    connect_expiring(&app, "keep").await;
    provider.settings(|s| s.refresh_tokens = false);
    let (status, first) = app
        .admin()
        .post("/connections/keep/refresh", serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = app
        .admin()
        .post("/connections/keep/refresh", serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let sent: Vec<String> = provider
        .token_requests("refresh_token")
        .iter()
        .map(|r| r.form["refresh_token"].clone())
        .collect();
    assert_eq!(sent[0], sent[1], "the kept refresh token was used again");
    assert_ne!(first["access_token"], second["access_token"]);
}

async fn invalid_grant_marks_the_connection_needs_reauth(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    connect_expiring(&app, "gone").await;
    provider.set(|c| {
        c.token_answer = TokenAnswer::Status(
            400,
            r#"{"error":"invalid_grant","error_description":"revoked"}"#,
        )
    });
    let (status, problem) = app.admin().get("/connections/gone/access-token").await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["connection_status"], "needs_reauth");
    let (status, problem) = app
        .admin()
        .post("/connections/gone/refresh", serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["connection_status"], "needs_reauth");
    assert_eq!(
        app.admin().get("/connections/gone").await.1["status"],
        "needs_reauth"
    );
    // Connecting again makes it usable again.
    provider.set(|c| c.token_answer = TokenAnswer::Issue);
    assert_eq!(app.connect("gone").await.status(), StatusCode::OK);
    assert_eq!(
        app.admin().get("/connections/gone").await.1["status"],
        "connected"
    );
}

async fn other_refresh_failures_leave_the_connection_as_it_was(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    connect_expiring(&app, "shaky").await;
    let (_, before) = app.admin().get("/connections/shaky").await;
    let cases = [
        (
            TokenAnswer::Status(500, r#"{"error":"server_error"}"#),
            StatusCode::BAD_GATEWAY,
        ),
        (
            TokenAnswer::Status(401, r#"{"error":"invalid_client"}"#),
            StatusCode::BAD_GATEWAY,
        ),
        (TokenAnswer::Malformed, StatusCode::BAD_GATEWAY),
        (TokenAnswer::Hang, StatusCode::SERVICE_UNAVAILABLE),
    ];
    for (answer, expected) in cases {
        provider.set(|c| c.token_answer = answer.clone());
        let started = Instant::now();
        let (status, problem) = app
            .admin()
            .post("/connections/shaky/refresh", serde_json::json!({}))
            .await;
        assert!(started.elapsed() < Duration::from_secs(8));
        assert_eq!(status, expected, "{answer:?}: {problem}");
        assert_eq!(problem["status"], expected.as_u16());
        assert!(
            problem["detail"].as_str().unwrap().contains("unchanged"),
            "{problem}"
        );
        let (_, mut after) = app.admin().get("/connections/shaky").await;
        // Only the note of what went wrong, a short category, is new.
        let last_error = after["last_error"].take();
        assert!(
            [
                "provider_unavailable",
                "provider_refused",
                "provider_timeout"
            ]
            .contains(&last_error.as_str().unwrap()),
            "{last_error}"
        );
        assert_eq!(after, before, "{answer:?} changed the connection");
    }
    // The provider is back: the kept refresh token still works.
    provider.set(|c| c.token_answer = TokenAnswer::Issue);
    assert_eq!(
        app.admin()
            .post("/connections/shaky/refresh", serde_json::json!({}))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_problem_json_shape_is_the_contracts() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let response = app
        .admin()
        .request(reqwest::Method::GET, "/connections/nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let problem: serde_json::Value = response.json().await.unwrap();
    for member in ["type", "title", "status", "detail"] {
        assert!(problem.get(member).is_some(), "{member} missing: {problem}");
    }
    // Ids that cannot exist, even ones that are not UTF-8, are not found, in the same shape.
    for path in [
        "/connections/%FF",
        "/connections/a%2Fb/access-token",
        "/connections/..%2F/access-token",
    ] {
        let response = app
            .admin()
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    // A wrong method is a 405 with words, not an empty body.
    let response = app
        .admin()
        .request(reqwest::Method::PATCH, "/connections")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(!response.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_admin_bearer_is_required_and_compared_exactly() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let real = crate::support::ADMIN_TOKEN;
    let cases = [
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(real.to_owned()),
        Some(format!("Bearer {}", &real[..real.len() - 1])),
        Some(format!("Bearer {real}x")),
        Some(format!("Basic {real}")),
        Some(format!("Bearer  {real}")),
    ];
    for header in cases {
        let mut request = reqwest::Client::new().get(app.at("/connections"));
        if let Some(h) = &header {
            request = request.header("authorization", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
    }
    let ok = reqwest::Client::new()
        .get(app.at("/connections"))
        .header("authorization", format!("bearer {real}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}
