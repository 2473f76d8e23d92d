//! A real browser clicks through the sandbox: headless Chromium, driven over
//! WebDriver by a chromedriver this test starts and always stops
//! (`support::browser`).
//!
//! Without Chromium or chromedriver the tests say why on stderr and skip,
//! except in CI (`CI=true`), where a missing browser fails them: CI must never
//! pass by silently skipping the tests that use a real browser.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::browser::{bounded, Browser};
use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_connect_then_approve_connects_the_account() {
    let Some(browser) = Browser::start().await else {
        return;
    };
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
async fn clicking_deny_says_you_declined_and_stores_nothing() {
    let Some(browser) = Browser::start().await else {
        return;
    };
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
