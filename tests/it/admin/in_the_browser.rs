//! The operator's page clicked through in headless Chromium: sign in, find
//! a connection by its end user's email, open it, make a connect link,
//! delete one. With `UPDATE_SCREENSHOTS=1` it also saves the pictures the
//! README shows (docs/admin-*.png).

use fantoccini::Locator;
use reqwest::StatusCode;

use crate::support::browser::{bounded, Browser};
use crate::support::receiver::Hooked;
use crate::support::{eventually, Backend, ADMIN_TOKEN};

async fn screenshot(browser: &Browser, name: &str) {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_none() {
        return;
    }
    let png = browser.client.screenshot().await.unwrap();
    let path = format!("{}/docs/admin-{name}.png", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(&path, png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: apt-get install chromium chromium-driver, then cargo test -- --include-ignored"]
async fn an_operator_signs_in_finds_a_connection_makes_a_link_and_deletes_one() {
    let browser = Browser::start().await;
    let Hooked {
        receiver,
        app,
        db: _db,
        provider: _provider,
        ..
    } = Hooked::start(Backend::Sqlite).await;
    for (id, name) in [
        ("alice-42", "Alice"),
        ("bob-7", "Bob"),
        ("carol-9", "Carol"),
    ] {
        app.connect_api_key(id).await;
        let profile = serde_json::json!({
            "end_user": { "id": format!("user-{id}"), "email": format!("{}@example.com", name.to_lowercase()), "display_name": name },
            "tags": { "plan": if id == "bob-7" { "pro" } else { "free" } },
        });
        let (status, body) = app
            .admin()
            .patch(&format!("/connections/{id}"), profile)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(app.connect("dave-oauth").await.status(), StatusCode::OK);
    receiver.wait_for_delivered(4).await;

    let browser = bounded(async move {
        browser.client.set_window_size(1280, 900).await.unwrap();
        browser.client.goto(&app.at("/admin")).await.unwrap();
        browser.wait_for_heading("Sign in").await;
        browser.fill("admin_token", "a wrong token").await;
        browser.click_button("Sign in").await;
        let refused = browser.wait_for_heading("Not signed in").await;
        assert!(!refused.contains("a wrong token"));
        browser.click_link("Back to the operator's page").await;
        browser.wait_for_heading("Sign in").await;
        screenshot(&browser, "sign-in").await;
        browser.fill("admin_token", ADMIN_TOKEN).await;
        browser.click_button("Sign in").await;
        let dashboard = browser.wait_for_heading("Connections").await;
        for shown in [
            "alice-42",
            "bob-7",
            "carol-9",
            "dave-oauth",
            "Alice",
            "bob@example.com",
            "plan=pro",
        ] {
            assert!(dashboard.contains(shown), "{shown} shown: {dashboard}");
        }
        screenshot(&browser, "connections").await;

        // By the end user's email, in another case than the app gave it.
        browser.fill("q", "BOB@example.com").await;
        browser.click_button("Search").await;
        // The same heading before and after: wait for the table to change.
        eventually("the search shows bob-7 alone", async || {
            let found = browser.text().await;
            (found.contains("bob-7") && !found.contains("alice-42")).then_some(())
        })
        .await;
        browser.click_link("bob-7").await;
        let page = browser.wait_for_heading("Connection bob-7").await;
        assert!(
            page.contains("connection.created") && page.contains("delivered"),
            "{page}"
        );
        screenshot(&browser, "connection").await;

        browser.click_button("Create a connect link").await;
        browser.wait_for_heading("Connect link").await;
        let link = browser
            .client
            .find(Locator::Css("input.link"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert!(link.contains("/?session="), "{link}");
        // The link works: it opens the connect page for bob-7.
        let connect_page = reqwest::get(&link).await.unwrap().text().await.unwrap();
        assert!(connect_page.contains("bob-7"), "{connect_page}");

        browser
            .client
            .goto(&app.at("/admin/connections/carol-9"))
            .await
            .unwrap();
        browser.wait_for_heading("Connection carol-9").await;
        browser.click_link("Delete…").await;
        browser.wait_for_heading("Delete this connection?").await;
        browser.click_button("Yes, delete").await;
        let after = browser.wait_for_heading("Connections").await;
        assert!(after.contains("The connection was deleted"), "{after}");
        assert!(!after.contains("carol-9"), "{after}");
        assert_eq!(
            app.admin().get("/connections/carol-9").await.0,
            StatusCode::NOT_FOUND
        );

        browser.click_button("Sign out").await;
        browser.wait_for_heading("Sign in").await;
        browser
            .client
            .goto(&app.at("/admin/connections/bob-7"))
            .await
            .unwrap();
        browser.wait_for_heading("Sign in first").await;
        browser
    })
    .await;
    browser.close().await;
}
