//! Interop with an independent authorization server: node's oidc-provider
//! (interop/provider.mjs), configured like a production provider, with its own
//! login and consent pages clicked through in headless Chromium. Then the
//! connection is used the way an app's backend uses it: an access token the
//! provider's introspection accepts, a refresh (with rotation) after expiry, a
//! second refresh that only works if the rotated refresh token was kept, and
//! revocation on delete. Once per client authentication method.
//!
//! They need node, `npm ci --prefix interop`, Chromium and chromedriver, so
//! they are `#[ignore]`d with that reason; `--include-ignored` runs them (CI
//! does), and a missing tool then fails them.

mod oidc_provider;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::browser::{bounded, Browser};
use crate::support::{new_key, Backend, TestApp, TestDb};
use oidc_provider::{OidcProvider, ACCESS_TOKEN_TTL};

/// What the server asks for; the provider knows these scopes.
const SCOPES: &str = "lists:read lists:write";
/// What the provider's login form gets; devInteractions takes any name.
const LOGIN: &str = "interop-user";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node, the interop packages (npm ci --prefix interop) and Chromium: cargo test -- --include-ignored"]
async fn client_secret_post_connects_refreshes_and_revokes_at_oidc_provider() {
    connect_use_and_delete("client_secret_post").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node, the interop packages (npm ci --prefix interop) and Chromium: cargo test -- --include-ignored"]
async fn client_secret_basic_connects_refreshes_and_revokes_at_oidc_provider() {
    connect_use_and_delete("client_secret_basic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node, the interop packages (npm ci --prefix interop) and Chromium: cargo test -- --include-ignored"]
async fn cancelling_at_the_provider_says_you_declined_and_stores_nothing() {
    let (provider, browser, _db, app) = start("client_secret_post").await;
    let session = app.session("default").await;
    bounded(async {
        sign_in(&browser, &app, &session).await;
        browser.click_link("[ Cancel ]").await;
        // An error answer carries `iss` too (RFC 9207 §2), which the server checks.
        let page = browser.wait_for_heading("You declined").await;
        assert!(page.contains("nothing was connected"), "{page}");
    })
    .await;
    browser.close().await;

    let declined = provider.event("authorization.error", 1).await;
    assert_eq!(declined["error"], "access_denied", "{declined}");
    assert_eq!(
        app.admin().get("/connections/default").await.0,
        StatusCode::NOT_FOUND
    );
    assert!(provider
        .events_where(|e| e["name"] == "grant.success")
        .is_empty());
}

/// The provider, a browser, and the server pointed at the provider's
/// endpoints as its discovery document names them.
async fn start(method: &str) -> (OidcProvider, Browser, TestDb, TestApp) {
    let mut provider = OidcProvider::start(method).await;
    let browser = Browser::start().await;
    let endpoint = |name: &str| provider.endpoint(name);
    // SQLite only: this is about the provider; the backends have their own suites.
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(
        &db,
        &[
            format!("--authorize-url={}", endpoint("authorization_endpoint")),
            format!("--token-url={}", endpoint("token_endpoint")),
            format!("--revoke-url={}", endpoint("revocation_endpoint")),
            format!("--issuer={}", provider.issuer),
            format!("--token-auth-method={method}"),
            format!("--client-id={}", provider.client_id),
            format!("--client-secret={}", provider.client_secret),
            format!("--token-encryption-key={}", new_key()),
            format!("--scopes={SCOPES}"),
        ],
    )
    .await;
    provider.register_redirect_uri(&app.at("/callback")).await;
    (provider, browser, db, app)
}

/// From the connect page to the provider's consent page, signed in there.
async fn sign_in(browser: &Browser, app: &TestApp, session: &str) -> String {
    browser.open_connect_page(app, session).await;
    browser.wait_for_heading("Sign-in").await;
    browser.fill("login", LOGIN).await;
    browser.fill("password", "any password will do").await;
    browser.click_button("Sign-in").await;
    browser.wait_for_heading("Authorize").await
}

async fn connect_use_and_delete(method: &str) {
    let (provider, browser, _db, app) = start(method).await;
    let session = app.session("default").await;
    bounded(async {
        let consent = sign_in(&browser, &app, &session).await;
        assert!(consent.contains("lists:read"), "{consent}");
        browser.click_button("Continue").await;
        let page = browser.wait_for_heading("Connected").await;
        assert!(
            page.contains("Your EmailOctopus account is connected."),
            "{page}"
        );
    })
    .await;
    browser.close().await;

    let authorized = provider.event("authorization.success", 1).await;
    assert_eq!(authorized["iss"], provider.issuer.as_str(), "RFC 9207 iss");
    assert_eq!(authorized["code_challenge_method"], "S256");
    assert_eq!(authorized["scope"], SCOPES);
    let exchange = provider.event("grant.success", 1).await;
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["auth"], method, "{exchange}");

    let admin = app.admin();
    let (status, connection) = admin.get("/connections/default").await;
    assert_eq!(status, StatusCode::OK, "{connection}");
    assert_eq!(connection["kind"], "oauth");
    assert_eq!(connection["status"], "connected");
    assert_eq!(connection["scopes"], json!(["lists:read", "lists:write"]));

    // The access token is one the provider issued and still accepts.
    let first = access_token(&app).await;
    let seconds_left = expires_at(&first) - app.clock.now();
    assert!(
        (ACCESS_TOKEN_TTL - 60..=ACCESS_TOKEN_TTL).contains(&seconds_left),
        "the provider's lifetime, {ACCESS_TOKEN_TTL} s: {first}"
    );
    let first = first["access_token"].as_str().unwrap().to_owned();
    let introspection = provider.introspect(&first).await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["client_id"], provider.client_id.as_str());
    assert_eq!(introspection["sub"], LOGIN);
    assert_eq!(introspection["scope"], SCOPES);
    assert_eq!(access_token(&app).await["access_token"], first.as_str());

    // Past its expiry (on the server's clock) the server refreshes, once.
    app.clock
        .advance(Duration::from_secs(ACCESS_TOKEN_TTL as u64 + 30));
    let second = access_token(&app).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first, "a refreshed token");
    let refresh = provider.event("grant.success", 2).await;
    assert_eq!(refresh["grant_type"], "refresh_token");
    assert_eq!(refresh["auth"], method, "{refresh}");
    provider.event("refresh_token.consumed", 1).await;
    assert_eq!(provider.introspect(&second).await["active"], true);
    assert_eq!(access_token(&app).await["access_token"], second.as_str());

    // The provider rotated the refresh token and revokes the whole grant when
    // an old one comes back: this refresh works only with the rotated one.
    let (status, third) = admin.post("/connections/default/refresh", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let third = third["access_token"].as_str().unwrap().to_owned();
    assert_ne!(third, second);
    assert_eq!(provider.event("grant.success", 3).await["auth"], method);
    provider.event("refresh_token.consumed", 2).await;
    assert_eq!(provider.introspect(&third).await["active"], true);

    // Deleting revokes the refresh token, and with it the grant.
    let deleted = admin.delete("/connections/default").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let revoked = provider.event("grant.revoked", 1).await;
    assert_eq!(revoked["route"], "revocation");
    assert_eq!(revoked["token_type_hint"], "refresh_token");
    assert_eq!(revoked["auth"], method, "{revoked}");
    assert_eq!(provider.introspect(&third).await["active"], false);
    assert_eq!(
        admin.get("/connections/default").await.0,
        StatusCode::NOT_FOUND
    );

    let failures = provider.events_where(|e| {
        e["name"]
            .as_str()
            .is_some_and(|n| n.ends_with(".error") || n == "server_error")
    });
    assert!(failures.is_empty(), "the provider saw errors: {failures:?}");
}

async fn access_token(app: &TestApp) -> Value {
    let (status, body) = app.admin().get("/connections/default/access-token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["token_type"].as_str().map(str::to_lowercase),
        Some("bearer".into())
    );
    body
}

fn expires_at(token: &Value) -> i64 {
    let at = token["expires_at"].as_str().unwrap();
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}
