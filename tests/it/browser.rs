//! A real browser clicks through the sandbox: headless Chromium, driven over
//! WebDriver by a chromedriver this test starts and always stops
//! (`support::browser`).
//!
//! They are `#[ignore]`d with the reason, so a plain `cargo test` lists them
//! as ignored; `cargo test -- --include-ignored` (as CI runs it) runs them,
//! and a missing browser then fails them.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::browser::{bounded, Browser};
use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn clicking_connect_then_approve_connects_the_account() {
    let browser = Browser::start().await;
    let app = TestApp::sandbox(&[]).await;
    let session = app.session("default").await;
    let browser = bounded(async move {
        open_sandbox_consent(&browser, &app, &session).await;
        browser.click_button("Approve").await;
        let page = browser.wait_for_heading("Connected").await;
        assert!(
            page.contains("Your EmailOctopus account is connected."),
            "{page}"
        );

        let (status, connection) = app.admin().get("/connections/default").await;
        assert_eq!(status, StatusCode::OK, "{connection}");
        assert_eq!(connection["status"], "connected");
        assert_eq!(connection["kind"], "oauth");
        browser
    })
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn clicking_deny_says_you_declined_and_stores_nothing() {
    let browser = Browser::start().await;
    let app = TestApp::sandbox(&[]).await;
    let session = app.session("default").await;
    let browser = bounded(async move {
        open_sandbox_consent(&browser, &app, &session).await;
        browser.click_button("Deny").await;
        let page = browser.wait_for_heading("You declined").await;
        assert!(page.contains("nothing was connected"), "{page}");

        assert_eq!(
            app.admin().get("/connections/default").await.0,
            StatusCode::NOT_FOUND
        );
        let (_, list) = app.admin().get("/connections").await;
        assert_eq!(list["connections"], json!([]));
        browser
    })
    .await;
    browser.close().await;
}

/// Opens the connect page for `session` and clicks "Connect EmailOctopus",
/// which leads to the sandbox's consent page.
async fn open_sandbox_consent(browser: &Browser, app: &TestApp, session: &str) {
    browser.open_connect_page(app, session).await;
    let consent = browser
        .wait_for_heading("Sandbox: authorize this app?")
        .await;
    assert!(consent.contains("sandbox-client"), "{consent}");
}

/// The longest `return_to` a connect session accepts still completes in a
/// real browser and lands exactly on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn the_longest_accepted_return_to_lands_exactly_there() {
    let browser = Browser::start().await;
    let app_origin = the_apps_own_page().await;
    let app = TestApp::sandbox(&[&format!("--return-to-origins={app_origin}")]).await;
    let prefix = format!("{app_origin}/back?pad=");
    let return_to = format!("{prefix}{}", "x".repeat(2048 - prefix.len()));
    let (status, body) = app
        .admin()
        .post(
            "/connect-sessions",
            json!({ "connection_id": "default", "return_to": return_to }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let session = body["token"].as_str().unwrap().to_owned();
    let browser = bounded(async move {
        open_sandbox_consent(&browser, &app, &session).await;
        browser.click_button("Approve").await;
        browser.wait_for_heading("Back in the app").await;
        assert_eq!(
            browser.client.current_url().await.unwrap().as_str(),
            return_to
        );
        let (_, connection) = app.admin().get("/connections/default").await;
        assert_eq!(connection["status"], "connected");
        browser
    })
    .await;
    browser.close().await;
}

/// A page standing in for the app a `return_to` leads back to; its origin.
async fn the_apps_own_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let page = axum::Router::new().fallback(|| async {
        axum::response::Html("<!doctype html><title>App</title><h1>Back in the app</h1>")
    });
    tokio::spawn(async move { axum::serve(listener, page).await.unwrap() });
    origin
}

/// A browser that started 300 flows and finished none (each `/auth` sets the
/// pending-flows cookie, as a page that keeps sending it there would) still
/// connects at once: the cookie keeps only the newest flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn a_browser_that_left_300_flows_unfinished_connects_at_once() {
    let browser = Browser::start().await;
    let app = TestApp::sandbox(&[]).await;
    let session = app.session("default").await;
    let browser = bounded(async move {
        browser.client.goto(&app.at("/")).await.unwrap();
        let started = browser
            .client
            .execute(
                "return (async () => {
                    let started = 0;
                    for (let i = 0; i < 300; i++) {
                        const answer = await fetch('/auth', { redirect: 'manual', credentials: 'same-origin' });
                        if (answer.type === 'opaqueredirect') started++;
                    }
                    return started;
                })()",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(started, json!(300));
        open_sandbox_consent(&browser, &app, &session).await;
        browser.click_button("Approve").await;
        browser.wait_for_heading("Connected").await;
        browser
    })
    .await;
    browser.close().await;
}
