//! Delete revokes at the provider (RFC 7009) and deletes, even when revocation fails.

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{start, Backend, TokenAnswer};

on_both_backends!(
    delete_revokes_the_refresh_token,
    delete_still_deletes_when_revocation_fails
);

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
    provider.set(|c| c.token_answer = TokenAnswer::IssueWithoutRefreshToken);
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
