//! The two-origin harness for the browser tests: the connect server in
//! sandbox mode on 127.0.0.1, the example app (examples/spa) on localhost,
//! and Chromium with its popup blocker on; helpers that click through them.

use std::future::IntoFuture;

use fantoccini::wd::WindowHandle;
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::Value;

use super::spa;
use crate::support::browser::{bounded, Browser, PAGE_LIMIT};
use crate::support::wait::eventually_within;
use crate::support::TestApp;

/// The connect server (sandbox, on 127.0.0.1) and the example app (on localhost).
pub struct TwoOrigins {
    pub server: TestApp,
    pub app_url: String,
}

pub async fn two_origins(extra: &[&str]) -> TwoOrigins {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let allowed = format!("--return-to-origins={app_url}");
    let mut args = vec![allowed.as_str()];
    args.extend(extra);
    let server = TestApp::sandbox(&args).await;
    let router = spa::router(spa::Settings {
        connect_server: server.url.clone(),
        admin_token: server.admin_token.clone(),
        origin: app_url.clone(),
    });
    tokio::spawn(axum::serve(listener, router).into_future());
    TwoOrigins { server, app_url }
}

impl TwoOrigins {
    pub async fn connection(&self) -> (StatusCode, Value) {
        self.server
            .admin()
            .get(&format!("/connections/{}", spa::CONNECTION_ID))
            .await
    }
}

/// Loads `url` and waits until its script says it is ready.
pub async fn open_app(browser: &Browser, url: &str) -> WindowHandle {
    browser.client.goto(url).await.unwrap();
    browser
        .client
        .wait()
        .at_most(PAGE_LIMIT)
        .for_element(Locator::Css("body[data-ready='true']"))
        .await
        .unwrap_or_else(|e| panic!("the app page is not ready ({e})"));
    browser.client.window().await.unwrap()
}

pub async fn click(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Waits for the popup the app opened and switches to it.
pub async fn switch_to_popup(browser: &Browser, app: &WindowHandle) {
    let popup = wait_for_windows(browser, 2)
        .await
        .into_iter()
        .find(|w| w != app)
        .unwrap();
    browser.client.switch_to_window(popup).await.unwrap();
}

pub async fn wait_for_windows(browser: &Browser, count: usize) -> Vec<WindowHandle> {
    eventually_within(PAGE_LIMIT, format!("{count} windows open"), async || {
        let windows = browser.client.windows().await.unwrap();
        (windows.len() == count).then_some(windows)
    })
    .await
}

/// Back on the app's page: what it says once the promise settled.
pub async fn settled(browser: &Browser, app: &WindowHandle) -> String {
    browser.client.switch_to_window(app.clone()).await.unwrap();
    let result = browser
        .client
        .wait()
        .at_most(PAGE_LIMIT)
        .for_element(Locator::XPath(
            "//p[@id='result' and normalize-space() != '']",
        ))
        .await
        .unwrap_or_else(|e| panic!("the promise did not settle ({e})"));
    result.text().await.unwrap()
}

/// On the connect page: the sandbox's API key, which its banner shows.
pub async fn sandbox_key(browser: &Browser) -> String {
    let page = browser.wait_for_heading("Connect EmailOctopus").await;
    page.split("Sandbox API key: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|key| key.trim_end_matches('.').to_owned())
        .unwrap_or_else(|| panic!("no sandbox key on {page}"))
}

/// On the connect page: submits `key` in the API-key form.
pub async fn paste_key(browser: &Browser, key: &str) {
    browser.wait_for_heading("Connect EmailOctopus").await;
    browser
        .client
        .execute(
            "document.querySelector('details')?.setAttribute('open', '')",
            vec![],
        )
        .await
        .unwrap();
    browser.fill("api_key", key).await;
    browser.click_button("Save API key").await;
}

/// In the popup: the connect page, then the sandbox's consent page.
pub async fn to_the_consent_page(browser: &Browser) {
    browser.wait_for_heading("Connect EmailOctopus").await;
    browser.click_link("Connect EmailOctopus").await;
    browser
        .wait_for_heading("Sandbox: authorize this app?")
        .await;
}

pub async fn run(extra: &[&str], test: impl AsyncFnOnce(&Browser, &TwoOrigins)) {
    let browser = Browser::start_with_popup_blocker().await;
    let origins = two_origins(extra).await;
    let browser = bounded(async move {
        test(&browser, &origins).await;
        browser
    })
    .await;
    browser.close().await;
}
