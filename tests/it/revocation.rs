//! No credential is left alive unrecorded: delete revokes at the provider
//! (RFC 7009) and deletes, even when revocation fails; a reconnect revokes
//! the grant it replaces; a refresh whose answer loses the race to a
//! reconnect or a delete revokes the tokens it was given.

use std::time::Duration;

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{eventually, start, Backend, FakeProvider, TestApp};

on_both_backends!(
    delete_revokes_the_refresh_token,
    delete_still_deletes_when_revocation_fails,
    a_reconnect_revokes_the_grant_it_replaces,
    a_refresh_that_loses_to_a_reconnect_revokes_what_it_was_given,
    a_refresh_that_loses_to_a_delete_revokes_what_it_was_given,
    a_browser_that_gives_up_mid_exchange_still_gets_its_connection_stored,
    a_client_that_gives_up_mid_delete_still_gets_the_grant_revoked,
);

/// A client that gives up after half a second.
fn impatient(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// The provider takes 2 s to exchange the code; the browser leaves after
/// 0.5 s. The exchange and its save still finish: the grant the provider
/// issued is stored, not orphaned.
async fn a_browser_that_gives_up_mid_exchange_still_gets_its_connection_stored(backend: Backend) {
    let (provider, _db, app) = start(backend, &["--provider-timeout-secs=5"]).await;
    let browser = impatient(true);
    let callback = app.begin(&browser, &app.session("closed-tab").await).await;
    provider.set(|c| c.token_delay = Duration::from_secs(2));
    let gave_up = browser.get(&callback).send().await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    eventually("the connection is stored", async || {
        app.admin().get("/connections/closed-tab").await.0 == StatusCode::OK
    })
    .await;
    let (_, token) = app
        .admin()
        .get("/connections/closed-tab/access-token")
        .await;
    let (live_access, _) = provider.live_tokens();
    assert!(live_access.contains(&token["access_token"].as_str().unwrap().to_owned()));
}

/// The provider takes 2 s to revoke; the backend's client leaves after
/// 0.5 s. The revocation still finishes: nothing stays alive at the provider
/// for a connection that is gone.
async fn a_client_that_gives_up_mid_delete_still_gets_the_grant_revoked(backend: Backend) {
    let (provider, _db, app) = start(backend, &["--provider-timeout-secs=5"]).await;
    assert_eq!(app.connect("leaving").await.status(), StatusCode::OK);
    provider.set(|c| c.revoke_delay = Duration::from_secs(2));
    let gave_up = impatient(false)
        .delete(app.at("/connections/leaving"))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    eventually("the grant is revoked", async || {
        provider.live_tokens().1.is_empty()
    })
    .await;
    assert_eq!(
        app.admin().get("/connections/leaving").await.0,
        StatusCode::NOT_FOUND
    );
}

/// Waits until the provider has had `n` revocation requests.
async fn revocations(provider: &FakeProvider, n: usize) {
    eventually(format!("{n} revocations reach the provider"), async || {
        provider.recorded("/revoke").len() >= n
    })
    .await;
}

async fn a_reconnect_revokes_the_grant_it_replaces(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("again").await.status(), StatusCode::OK);
    let (_, first_grant) = provider.live_tokens();
    assert_eq!(app.connect("again").await.status(), StatusCode::OK);
    revocations(&provider, 1).await;
    let revoke = &provider.recorded("/revoke")[0];
    assert_eq!(revoke.form["token"], first_grant[0]);
    assert_eq!(revoke.form["token_type_hint"], "refresh_token");
    // The request is recorded as it arrives; the grant dies once it is answered.
    eventually("only the new grant is alive", async || {
        provider.live_tokens().1.len() == 1
    })
    .await;
    // The new grant works.
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        app.admin().get("/connections/again/access-token").await.0,
        StatusCode::OK
    );

    // An API key that replaces a grant revokes it too; one replaced by a grant is never sent.
    app.connect_api_key("again").await;
    revocations(&provider, 2).await;
    assert_eq!(app.connect("again").await.status(), StatusCode::OK);
    let grant_over_key = eventually(
        "only the grant that replaced the key is alive",
        async || {
            let (_, live_refresh) = provider.live_tokens();
            (live_refresh.len() == 1).then(|| live_refresh[0].clone())
        },
    )
    .await;
    // A grant replacing that grant is revoked: once its revocation has
    // arrived, one for the key would have been sent before it.
    assert_eq!(app.connect("again").await.status(), StatusCode::OK);
    revocations(&provider, 3).await;
    let revoked: Vec<String> = provider
        .recorded("/revoke")
        .iter()
        .map(|r| r.form["token"].clone())
        .collect();
    assert_eq!(revoked.len(), 3, "{revoked:?}");
    assert_eq!(revoked[2], grant_over_key, "{revoked:?}");
    assert!(!revoked.iter().any(|t| t == API_KEY), "{revoked:?}");
    eventually("only the newest grant is alive", async || {
        provider.live_tokens().1.len() == 1
    })
    .await;
}

/// Starts a refresh of `id` whose answer the provider holds back after
/// issuing it; returns once the provider has issued it.
async fn refresh_answered_late(
    provider: &FakeProvider,
    app: &TestApp,
    id: &str,
) -> tokio::task::JoinHandle<(StatusCode, serde_json::Value)> {
    provider.set(|c| c.refresh_answer_delay = Duration::from_millis(800));
    let admin = app.admin();
    let path = format!("/connections/{id}/refresh");
    let refreshing = tokio::spawn(async move { admin.post(&path, serde_json::json!({})).await });
    // Issued, the refresh token it presented is spent (rotation), while
    // its answer is still held back.
    eventually("the provider issues the refresh's tokens", async || {
        provider
            .token_requests("refresh_token")
            .first()
            .is_some_and(|r| !provider.live_tokens().1.contains(&r.form["refresh_token"]))
    })
    .await;
    refreshing
}

async fn a_refresh_that_loses_to_a_reconnect_revokes_what_it_was_given(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("race").await.status(), StatusCode::OK);
    let refreshing = refresh_answered_late(&provider, &app, "race").await;
    assert_eq!(app.connect("race").await.status(), StatusCode::OK);
    let (_, reconnected) = app.admin().get("/connections/race/access-token").await;
    let (status, answer) = refreshing.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["access_token"], reconnected["access_token"]);
    // The grant the reconnect replaced, and both tokens the refresh got.
    revocations(&provider, 3).await;
    let (live_access, live_refresh) = provider.live_tokens();
    assert_eq!(live_refresh.len(), 1, "{live_refresh:?}");
    assert!(live_access.contains(&reconnected["access_token"].as_str().unwrap().to_owned()));
    let hints: Vec<String> = provider
        .recorded("/revoke")
        .iter()
        .map(|r| r.form["token_type_hint"].clone())
        .collect();
    assert!(hints.contains(&"access_token".to_owned()), "{hints:?}");
}

async fn a_refresh_that_loses_to_a_delete_revokes_what_it_was_given(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("gone").await.status(), StatusCode::OK);
    let refreshing = refresh_answered_late(&provider, &app, "gone").await;
    let deleted = app.admin().delete("/connections/gone").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(deleted.headers()["x-revocation"], "revoked");
    assert_eq!(refreshing.await.unwrap().0, StatusCode::NOT_FOUND);
    revocations(&provider, 3).await;
    assert!(
        provider.live_tokens().1.is_empty(),
        "no refresh token of the deleted connection is alive"
    );
}

async fn delete_revokes_the_refresh_token(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("bye").await.status(), StatusCode::OK);
    let (_, live_refresh) = provider.live_tokens();
    // Asked for once, so the opened token is in this instance's memory too.
    assert_eq!(
        app.admin().get("/connections/bye/access-token").await.0,
        StatusCode::OK
    );
    let deleted = app.admin().delete("/connections/bye").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(deleted.headers()["x-revocation"], "revoked");
    let revoke = &provider.recorded("/revoke")[0];
    assert_eq!(revoke.form["token"], live_refresh[0]);
    assert_eq!(revoke.form["token_type_hint"], "refresh_token");
    assert_eq!(
        app.admin().get("/connections/bye").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.admin().get("/connections/bye/access-token").await.0,
        StatusCode::NOT_FOUND,
        "a deleted connection's token is not served from memory"
    );
    assert_eq!(
        app.admin().delete("/connections/bye").await.status(),
        StatusCode::NOT_FOUND
    );

    // Without a refresh token, the access token is revoked.
    provider.settings(|s| s.refresh_tokens = false);
    assert_eq!(app.connect("no-rt").await.status(), StatusCode::OK);
    let (_, token) = app.admin().get("/connections/no-rt/access-token").await;
    assert_eq!(
        app.admin().delete("/connections/no-rt").await.status(),
        StatusCode::NO_CONTENT
    );
    let revoke = &provider.recorded("/revoke")[1];
    assert_eq!(
        revoke.form["token"],
        token["access_token"].as_str().unwrap()
    );
    assert_eq!(revoke.form["token_type_hint"], "access_token");

    // An API key is never sent to the OAuth provider.
    app.connect_api_key("key").await;
    let deleted = app.admin().delete("/connections/key").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(provider.recorded("/revoke").len(), 2);
}

async fn delete_still_deletes_when_revocation_fails(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("stuck").await.status(), StatusCode::OK);
    provider.set(|c| c.revoke_status = 503);
    let deleted = app.admin().delete("/connections/stuck").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        deleted.headers()["x-revocation"],
        "failed",
        "a 503 is not a revocation"
    );
    assert_eq!(
        app.admin().get("/connections/stuck").await.0,
        StatusCode::NOT_FOUND
    );
}
