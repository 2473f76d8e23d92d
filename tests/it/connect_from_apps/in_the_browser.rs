//! The example app (examples/spa) in headless Chromium, on its own origin,
//! with the connect server in sandbox mode on another: the popup connect in
//! both kinds and every way it can end, the full-page mode, a provider that
//! cuts the popup's tie to its opener, and a third origin that learns nothing.
//!
//! Chromium runs with its popup blocker on, as a user's does: a click is
//! what lets a popup open.

use std::future::IntoFuture;
use std::time::Duration;

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::json;

use super::spa;
use super::two_origins::{
    click, open_app, paste_key, run, sandbox_key, settled, switch_to_popup, to_the_consent_page,
    wait_for_windows,
};
use crate::support::browser::PAGE_LIMIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn a_popup_oauth_connect_settles_connected_and_the_popup_closes() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        click(browser, "#connect").await;
        switch_to_popup(browser, &app).await;
        to_the_consent_page(browser).await;
        browser.click_button("Approve").await;
        assert_eq!(
            settled(browser, &app).await,
            "Connected: example-user (oauth)"
        );
        wait_for_windows(browser, 1).await;
        let (status, connection) = origins.connection().await;
        assert_eq!(status, StatusCode::OK, "{connection}");
        assert_eq!(connection["kind"], "oauth");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn a_popup_api_key_connect_settles_connected() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        click(browser, "#connect").await;
        switch_to_popup(browser, &app).await;
        let key = sandbox_key(browser).await;
        paste_key(browser, "not-the-key").await;
        let refused = browser.wait_for_heading("API key refused").await;
        assert!(refused.contains("not saved"), "{refused}");
        browser.client.back().await.unwrap();
        paste_key(browser, &key).await;
        assert_eq!(
            settled(browser, &app).await,
            "Connected: example-user (api_key)"
        );
        assert_eq!(origins.connection().await.1["kind"], "api_key");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn deny_at_the_provider_rejects_as_declined() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        click(browser, "#connect").await;
        switch_to_popup(browser, &app).await;
        to_the_consent_page(browser).await;
        browser.click_button("Deny").await;
        let page = browser.wait_for_heading("You declined").await;
        assert!(page.contains("nothing was connected"), "{page}");
        assert_eq!(settled(browser, &app).await, "Not connected: declined");
        // On an error the popup stays open, saying what happened.
        assert_eq!(browser.client.windows().await.unwrap().len(), 2);
        assert_eq!(origins.connection().await.0, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn closing_the_popup_rejects_as_closed() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        click(browser, "#connect").await;
        switch_to_popup(browser, &app).await;
        to_the_consent_page(browser).await;
        browser.client.close_window().await.unwrap();
        assert_eq!(settled(browser, &app).await, "Not connected: closed");
        assert_eq!(origins.connection().await.0, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn a_popup_opened_outside_a_click_is_blocked_and_says_so() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        // A script's click is not the user's: the popup blocker stops it.
        browser
            .client
            .execute("document.getElementById('connect').click()", vec![])
            .await
            .unwrap();
        assert_eq!(settled(browser, &app).await, "Not connected: blocked");
        assert_eq!(browser.client.windows().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn an_expired_session_rejects_as_expired() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        origins.server.clock.advance(Duration::from_secs(31 * 60));
        click(browser, "#connect").await;
        switch_to_popup(browser, &app).await;
        let page = browser
            .wait_for_heading("This connect link cannot be used")
            .await;
        assert!(page.contains("expired"), "{page}");
        assert_eq!(settled(browser, &app).await, "Not connected: expired");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn a_provider_that_cuts_the_opener_tie_still_settles_from_the_status() {
    run(&["--sandbox-provider-coop"], async |browser, origins| {
        // The window looks closed to the app as soon as the provider's page
        // cuts the tie, so the app gives it longer before calling it closed.
        let url = format!("{}/?closed_grace_ms=60000", origins.app_url);
        let app = open_app(browser, &url).await;
        click(browser, "#connect").await;
        switch_to_popup(browser, &app).await;
        to_the_consent_page(browser).await;
        let opener = browser
            .client
            .execute("return window.opener === null", vec![])
            .await
            .unwrap();
        assert_eq!(
            opener,
            json!(true),
            "the sandbox's COOP did not cut the tie"
        );
        browser.click_button("Approve").await;
        assert_eq!(
            settled(browser, &app).await,
            "Connected: example-user (oauth)"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn the_full_page_mode_comes_back_and_settles() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        click(browser, "#connect-redirect").await;
        to_the_consent_page(browser).await;
        browser.click_button("Approve").await;
        assert_eq!(
            settled(browser, &app).await,
            "Connected: example-user (oauth)"
        );
        assert_eq!(browser.client.windows().await.unwrap().len(), 1);
    })
    .await;
}

/// A page on a third origin that opens a connect session made for the app,
/// listens for messages and tries to read the session's status.
const THIRD_PAGE: &str = r#"<!doctype html><title>Third</title>
<button id="open">Open</button>
<script>
  window.messages = [];
  addEventListener("message", (event) => messages.push(event.origin));
  document.getElementById("open").onclick = () => window.open(window.connectUrl, "third", "popup");
  window.readStatus = (url) =>
    fetch(url).then((a) => a.json()).then((s) => "read " + JSON.stringify(s), (e) => "refused " + e.name);
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn a_page_on_a_third_origin_learns_nothing() {
    run(&[], async |browser, origins| {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let third = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new().route("/", axum::routing::get(|| async { axum::response::Html(THIRD_PAGE) }));
        tokio::spawn(axum::serve(listener, router).into_future());
        let (status, created) = origins
            .server
            .admin()
            .post(
                "/connect-sessions",
                json!({"connection_id": spa::CONNECTION_ID, "mode": "popup", "origin": origins.app_url}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let token = created["token"].as_str().unwrap();
        let status_url = origins.server.at(&format!("/connect-sessions/status?session={token}"));

        browser.client.goto(&third).await.unwrap();
        let page = browser.client.window().await.unwrap();
        browser
            .client
            .execute("window.connectUrl = arguments[0]", vec![json!(created["connect_url"])])
            .await
            .unwrap();
        click(browser, "#open").await;
        switch_to_popup(browser, &page).await;
        to_the_consent_page(browser).await;
        browser.click_button("Approve").await;
        wait_for_windows(browser, 1).await;
        browser.client.switch_to_window(page).await.unwrap();

        // The connect was made, and the popup told its origin (not this one).
        let (_, connection) = origins.connection().await;
        assert_eq!(connection["status"], "connected");
        let messages = browser.client.execute("return window.messages", vec![]).await.unwrap();
        assert_eq!(messages, json!([]));
        let read = browser
            .client
            .execute_async("window.readStatus(arguments[0]).then(arguments[1])", vec![json!(status_url)])
            .await
            .unwrap();
        assert_eq!(read, json!("refused TypeError"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn the_full_page_mode_settles_an_api_key_connect_too() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        click(browser, "#connect-redirect").await;
        let key = sandbox_key(browser).await;
        paste_key(browser, &key).await;
        assert_eq!(
            settled(browser, &app).await,
            "Connected: example-user (api_key)"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn a_link_used_up_by_refused_keys_rejects_as_failed() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        click(browser, "#connect").await;
        switch_to_popup(browser, &app).await;
        loop {
            paste_key(browser, "not-the-key").await;
            let answered = "//h1[normalize-space()='API key refused' or normalize-space()='This connect link is used up']";
            let heading = browser
                .client
                .wait()
                .at_most(PAGE_LIMIT)
                .for_element(Locator::XPath(answered))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if heading == "This connect link is used up" {
                break;
            }
            assert_eq!(heading, "API key refused");
            browser.client.back().await.unwrap();
        }
        assert_eq!(settled(browser, &app).await, "Not connected: failed");
        assert_eq!(origins.connection().await.0, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn the_full_page_mode_settles_declined_after_the_way_back() {
    run(&[], async |browser, origins| {
        let app = open_app(browser, &origins.app_url).await;
        click(browser, "#connect-redirect").await;
        to_the_consent_page(browser).await;
        browser.click_button("Deny").await;
        browser.wait_for_heading("You declined").await;
        browser.click_link("Back to the app").await;
        assert_eq!(settled(browser, &app).await, "Not connected: declined");
        assert_eq!(origins.connection().await.0, StatusCode::NOT_FOUND);
    })
    .await;
}
