//! A server with no OAuth client: API keys are its one way to connect, and
//! its pages offer only what works.

use reqwest::StatusCode;

use crate::api_keys::{csrf_token, submit_key};
use crate::on_both_backends;
use crate::support::{new_key, Backend, FakeProvider, TestApp, TestDb};

on_both_backends!(
    without_client_settings_the_server_connects_with_api_keys,
    every_back_link_keeps_the_session_while_it_can_be_used,
    disconnect_asks_once_more_before_it_acts,
);

const API_KEY: &str = crate::support::provider::API_KEY;

/// The server with an encryption key and an admin token only, its API
/// pointed at the fake provider's.
async fn start_api_key_mode(backend: Backend) -> (FakeProvider, TestDb, TestApp) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let args = [
        format!("--token-encryption-key={}", new_key()),
        format!("--api-base-url={}/api", provider.url),
    ];
    let app = TestApp::start(&db, &args).await;
    (provider, db, app)
}

async fn page(browser: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let answer = browser.get(app.at(path)).send().await.unwrap();
    (answer.status(), answer.text().await.unwrap())
}

async fn without_client_settings_the_server_connects_with_api_keys(backend: Backend) {
    let (_provider, _db, app) = start_api_key_mode(backend).await;
    let ready = reqwest::get(app.at("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(ready.text().await.unwrap().contains("mode: api_keys"));
    let (status, list) = app.admin().get("/connections").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["mode"], "api_keys");

    let browser = app.browser();
    let session = app.session("main").await;
    let (status, connect) = page(&browser, &app, &format!("/?session={session}")).await;
    assert_eq!(status, StatusCode::OK);
    // The key form is the main action, open, and says where a key is made.
    assert!(connect.contains("Integrations &amp; API"), "{connect}");
    assert!(connect.contains("name=\"api_key\""), "{connect}");
    assert!(!connect.contains("<details"), "folded away: {connect}");
    assert!(!connect.contains("/auth"), "an OAuth button: {connect}");

    // /auth explains itself in words, and does not spend the link.
    let auth = browser
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(auth.status(), StatusCode::NOT_FOUND);
    assert!(auth.headers().get("location").is_none());
    assert!(auth
        .text()
        .await
        .unwrap()
        .contains("OAuth is not configured on this server"));

    let saved = submit_key(&browser, &app, API_KEY, &csrf_token(&connect), &session).await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(saved.text().await.unwrap().contains("accepted and saved"));
    let (status, token) = app.admin().get("/connections/main/access-token").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token["access_token"], API_KEY);
    assert_eq!(token["token_type"], "Bearer");

    // After connecting, the main action reads "Reconnect".
    let again = app.session("main").await;
    let (_, connected) = page(&browser, &app, &format!("/?session={again}")).await;
    assert!(
        connected.contains("Connected with an API key"),
        "{connected}"
    );
    assert!(connected.contains(">Reconnect<"), "{connected}");
}

async fn every_back_link_keeps_the_session_while_it_can_be_used(backend: Backend) {
    let (provider, _db, app) = start_api_key_mode(backend).await;
    let browser = app.browser();
    let session = app.session("kept").await;
    let back = format!("href=\"/?session={session}\"");
    let (_, connect) = page(&browser, &app, &format!("/?session={session}")).await;
    let csrf = csrf_token(&connect);

    // A refused key and an unreachable API lead back to the same page.
    let refused = submit_key(&browser, &app, "wrong-key", &csrf, &session).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains(&back));
    provider.set(|c| c.upstream_status = 503);
    let down = submit_key(&browser, &app, API_KEY, &csrf, &session).await;
    assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
    assert!(down.text().await.unwrap().contains(&back));
    let (_, auth) = page(&browser, &app, &format!("/auth?session={session}")).await;
    assert!(auth.contains(&back), "{auth}");
    // ... and that page still works.
    let (status, _) = page(&browser, &app, &format!("/?session={session}")).await;
    assert_eq!(status, StatusCode::OK);
}

async fn disconnect_asks_once_more_before_it_acts(backend: Backend) {
    let (_provider, _db, app) = start_api_key_mode(backend).await;
    app.connect_api_key("leaving").await;
    let browser = app.browser();
    let session = app.session("leaving").await;
    let (_, connect) = page(&browser, &app, &format!("/?session={session}")).await;
    let confirm_href = format!("/disconnect?session={session}");
    assert!(connect.contains(&confirm_href), "{connect}");

    // Following the link only asks.
    let (status, confirm) = page(&browser, &app, &confirm_href).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Yes, disconnect"), "{confirm}");
    assert!(!confirm.contains("<script"));
    assert_eq!(
        app.admin().get("/connections/leaving").await.0,
        StatusCode::OK
    );

    let removed = browser
        .post(app.at(&confirm_href))
        .form(&[("csrf_token", csrf_token(&confirm))])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK);
    assert!(removed.text().await.unwrap().contains("was removed"));
    assert_eq!(
        app.admin().get("/connections/leaving").await.0,
        StatusCode::NOT_FOUND
    );
    // The link was spent by the disconnect.
    let (status, _) = page(&browser, &app, &format!("/?session={session}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
