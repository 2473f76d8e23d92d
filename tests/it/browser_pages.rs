//! The pages as a person sees them in headless Chromium, in both modes
//! (API keys only, and OAuth in the sandbox) and at a phone's width (375 px)
//! and a laptop's (1280 px): what they offer, that nothing overflows, and
//! that every page load finds its favicon.

use reqwest::StatusCode;

use crate::support::browser::{bounded, Browser};
use crate::support::provider::API_KEY;
use crate::support::{new_key, Backend, FakeProvider, TestApp, TestDb};

const WIDTHS: [u32; 2] = [375, 1280];

/// Asserts that the page in `browser` fits its width and loaded its favicon.
async fn assert_fits(browser: &Browser, what: &str) {
    let fits = browser
        .client
        .execute(
            "const d = document.documentElement;
             return [d.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, inner) = (fits[0].as_u64().unwrap(), fits[1].as_u64().unwrap());
    assert!(
        scroll <= inner,
        "{what}: {scroll} px wide in a {inner} px window"
    );
    let icon = browser
        .client
        .execute(
            "const link = document.querySelector('link[rel=icon]');
             if (!link) { return 0; }
             return fetch(link.href).then(r => r.status);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(icon, 200, "{what}: the favicon");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn api_key_mode_connects_with_a_pasted_key_at_both_widths() {
    let browser = Browser::start().await;
    let api = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let args = [
        format!("--token-encryption-key={}", new_key()),
        format!("--api-base-url={}/api", api.url),
    ];
    let app = TestApp::start(&db, &args).await;
    let browser = bounded(async move {
        for width in WIDTHS {
            browser.client.set_window_size(width, 800).await.unwrap();
            let id = format!("phone-{width}");
            let session = app.session(&id).await;
            browser
                .client
                .goto(&app.at(&format!("/?session={session}")))
                .await
                .unwrap();
            let page = browser.wait_for_heading("Connect EmailOctopus").await;
            assert!(page.contains("Integrations & API"), "{page}");
            assert!(
                browser
                    .client
                    .find(fantoccini::Locator::LinkText("Connect EmailOctopus"))
                    .await
                    .is_err(),
                "no OAuth button in API-key mode"
            );
            assert_fits(&browser, &format!("connect page at {width} px")).await;

            // A typo is refused, and the way back keeps the link.
            browser.fill("api_key", "not-the-key").await;
            browser.click_button("Connect EmailOctopus").await;
            browser.wait_for_heading("API key refused").await;
            assert_fits(&browser, &format!("refusal at {width} px")).await;
            browser.click_link("Back to the connect page").await;
            browser.wait_for_heading("Connect EmailOctopus").await;

            browser.fill("api_key", API_KEY).await;
            browser.click_button("Connect EmailOctopus").await;
            let done = browser.wait_for_heading("Connected").await;
            assert!(done.contains("accepted and saved"), "{done}");
            assert_fits(&browser, &format!("result at {width} px")).await;
            let (status, connection) = app.admin().get(&format!("/connections/{id}")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(connection["kind"], "api_key");

            // Back on a fresh link: the main action reads "Reconnect", and
            // Disconnect asks first.
            let again = app.session(&id).await;
            browser
                .client
                .goto(&app.at(&format!("/?session={again}")))
                .await
                .unwrap();
            browser.wait_for_heading("Connect EmailOctopus").await;
            browser
                .client
                .find(fantoccini::Locator::XPath(
                    "//button[normalize-space()='Reconnect']",
                ))
                .await
                .unwrap();
            browser.click_link("Disconnect").await;
            browser.wait_for_heading("Disconnect?").await;
            assert_fits(&browser, &format!("confirmation at {width} px")).await;
            browser.click_button("Yes, disconnect").await;
            browser.wait_for_heading("Disconnected").await;
            assert_eq!(
                app.admin().get(&format!("/connections/{id}")).await.0,
                StatusCode::NOT_FOUND
            );
        }
        browser
    })
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn the_sandbox_pages_fit_a_phone_and_offer_oauth_first() {
    let browser = Browser::start().await;
    let app = TestApp::sandbox(&[]).await;
    let browser = bounded(async move {
        for width in WIDTHS {
            browser.client.set_window_size(width, 800).await.unwrap();
            let session = app.session("default").await;
            browser
                .client
                .goto(&app.at(&format!("/?session={session}")))
                .await
                .unwrap();
            let page = browser.wait_for_heading("Connect EmailOctopus").await;
            assert!(page.contains("Sandbox"), "the banner: {page}");
            assert!(page.contains("Use an API key instead"), "{page}");
            // The banner's long admin token wraps instead of widening the page.
            assert_fits(&browser, &format!("sandbox connect page at {width} px")).await;
            browser.click_link("Connect EmailOctopus").await;
            browser
                .wait_for_heading("Sandbox: authorize this app?")
                .await;
            assert_fits(&browser, &format!("consent page at {width} px")).await;
            browser.click_button("Deny").await;
            let declined = browser.wait_for_heading("You declined").await;
            assert!(declined.contains("nothing was connected"), "{declined}");
            assert_fits(&browser, &format!("declined page at {width} px")).await;
        }
        browser
    })
    .await;
    browser.close().await;
}
