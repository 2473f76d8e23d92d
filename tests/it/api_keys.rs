//! API-key connections: checked at the API before anything is stored.

use std::time::Duration;

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{eventually, new_key, start, Backend, FakeProvider, TestApp, TestDb};

on_both_backends!(
    an_api_key_is_checked_before_it_is_stored,
    the_page_form_saves_a_key_with_csrf,
    a_connect_link_allows_five_refused_keys_then_is_used_up,
    a_key_sent_from_a_browser_that_leaves_mid_check_is_still_settled,
);

async fn an_api_key_is_checked_before_it_is_stored(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let admin = app.admin();

    let (status, problem) = admin
        .put(
            "/connections/k/api-key",
            serde_json::json!({"api_key": "wrong-key"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(admin.get("/connections/k").await.0, StatusCode::NOT_FOUND);

    provider.set(|c| c.upstream_status = 503);
    let (status, _) = admin
        .put(
            "/connections/k/api-key",
            serde_json::json!({"api_key": API_KEY}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(admin.get("/connections/k").await.0, StatusCode::NOT_FOUND);
    provider.set(|c| c.upstream_status = 200);

    let (status, connection) = admin
        .put(
            "/connections/k/api-key",
            serde_json::json!({"api_key": API_KEY}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{connection}");
    assert_eq!(connection["kind"], "api_key");
    assert_eq!(connection["expires_at"], serde_json::Value::Null);
    let check = provider.recorded("/api/lists").pop().unwrap();
    assert_eq!(
        check.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );

    let (status, token) = admin.get("/connections/k/access-token").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token["access_token"], API_KEY);
    assert_eq!(token["expires_at"], serde_json::Value::Null);
    let (status, problem) = admin
        .post("/connections/k/refresh", serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("API-key"));
}

#[tokio::test]
async fn an_unreachable_api_is_a_502_and_stores_nothing() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let refusing = crate::support::refusing_addr();
    let mut args = crate::support::with_flag(
        provider.args(),
        "--api-base-url",
        &format!("http://{}/api", refusing.addr),
    );
    args.push(format!("--token-encryption-key={}", new_key()));
    let app = TestApp::start(&db, &args).await;
    let (status, _) = app
        .admin()
        .put(
            "/connections/k/api-key",
            serde_json::json!({"api_key": API_KEY}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        app.admin().get("/connections/k").await.0,
        StatusCode::NOT_FOUND
    );
}

/// Posts the connect page's API-key form from `browser`.
pub(crate) async fn submit_key(
    browser: &reqwest::Client,
    app: &TestApp,
    key: &str,
    csrf: &str,
    session: &str,
) -> reqwest::Response {
    // As the page's form does: the session in the address.
    browser
        .post(app.at(&format!("/connect/api-key?session={session}")))
        .form(&[("api_key", key), ("csrf_token", csrf)])
        .send()
        .await
        .unwrap()
}

/// The connect page for `session`, as `browser` opens it.
pub(crate) async fn connect_page(
    browser: &reqwest::Client,
    app: &TestApp,
    session: &str,
) -> String {
    browser
        .get(app.at(&format!("/?session={session}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The hidden `csrf_token` on the connect page.
pub(crate) fn csrf_token(page: &str) -> String {
    page.split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

async fn the_page_form_saves_a_key_with_csrf(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let session = app.session("paste").await;
    let page = connect_page(&browser, &app, &session).await;
    assert!(page.contains("Use an API key instead"));
    let csrf = csrf_token(&page);

    // Without the page's token, or from a browser without its cookie: refused.
    let forged = submit_key(&browser, &app, API_KEY, "forged", &session).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let other_browser = submit_key(&app.browser(), &app, API_KEY, &csrf, &session).await;
    assert_eq!(other_browser.status(), StatusCode::FORBIDDEN);

    let refused = submit_key(&browser, &app, "bad-key", &csrf, &session).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("did not accept this API key"));
    assert_eq!(
        app.admin().get("/connections/paste").await.0,
        StatusCode::NOT_FOUND
    );

    // A refused key does not use the link up: the user fixes the typo and retries.
    let saved = submit_key(&browser, &app, API_KEY, &csrf, &session).await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(
        app.admin().get("/connections/paste").await.1["kind"],
        "api_key"
    );
    // An accepted key does.
    let again = submit_key(&browser, &app, API_KEY, &csrf, &session).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
}

async fn a_connect_link_allows_five_refused_keys_then_is_used_up(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let session = app.session("guessed").await;
    let csrf = csrf_token(&connect_page(&browser, &app, &session).await);
    // An API that cannot answer does not count against the link.
    provider.set(|c| c.upstream_status = 503);
    let unanswered = submit_key(&browser, &app, "guess-0", &csrf, &session).await;
    assert_eq!(unanswered.status(), StatusCode::BAD_GATEWAY);
    provider.set(|c| c.upstream_status = 200);
    for guess in 1..=4 {
        let refused = submit_key(&browser, &app, &format!("guess-{guess}"), &csrf, &session).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "guess {guess}"
        );
    }
    let last = submit_key(&browser, &app, "guess-5", &csrf, &session).await;
    assert_eq!(last.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(last
        .text()
        .await
        .unwrap()
        .contains("This connect link is used up"));
    let checks = provider.recorded("/api/lists").len();
    assert_eq!(checks, 6);

    // Used up: even the right key, or the OAuth button, no longer works, and
    // nothing more reaches the API.
    let right = submit_key(&browser, &app, API_KEY, &csrf, &session).await;
    assert_eq!(right.status(), StatusCode::FORBIDDEN);
    let auth = browser
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(auth.status(), StatusCode::FORBIDDEN);
    assert_eq!(provider.recorded("/api/lists").len(), checks);
    assert_eq!(
        app.admin().get("/connections/guessed").await.0,
        StatusCode::NOT_FOUND
    );
    let metrics = app
        .admin()
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("emailoctopus_connect_api_keys_refused_total 5"),
        "{metrics}"
    );
}

/// A browser that gives up while the API is still checking the key (a
/// closed tab, a client timeout) does not cut the check short: the key the
/// API accepts is saved and the link is spent, as if the browser had waited.
async fn a_key_sent_from_a_browser_that_leaves_mid_check_is_still_settled(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let session = app.session("left").await;
    let csrf = csrf_token(&connect_page(&browser, &app, &session).await);
    provider.set(|c| c.upstream_delay = Duration::from_millis(700));
    let gave_up = browser
        .post(app.at(&format!("/connect/api-key?session={session}")))
        .form(&[("api_key", API_KEY), ("csrf_token", csrf.as_str())])
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());

    eventually("the accepted key is saved", async || {
        app.admin().get("/connections/left").await.0 == StatusCode::OK
    })
    .await;
    provider.set(|c| c.upstream_delay = Duration::ZERO);
    let again = submit_key(&browser, &app, API_KEY, &csrf, &session).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN, "the link is spent");
}
