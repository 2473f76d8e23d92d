//! What is at rest: sealed tokens only, bound to their connection, surviving a restart.

use emailoctopus_connect::checked::ConnectionId;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::provider::{API_KEY, CLIENT_SECRET};
use crate::support::{new_key, start, Backend, FakeProvider, TestApp, TestDb};

on_both_backends!(
    a_sealed_credential_copied_to_another_connection_does_not_open,
    a_restart_keeps_connections
);

#[tokio::test]
async fn the_sqlite_files_hold_no_token_key_or_secret() {
    let (provider, db, app) = start(Backend::Sqlite, &[]).await;
    assert_eq!(app.connect("at-rest").await.status(), StatusCode::OK);
    app.connect_api_key("key-conn").await;
    // A refresh too, so a rotated refresh token has been written.
    assert_eq!(
        app.admin()
            .post("/connections/at-rest/refresh", serde_json::json!({}))
            .await
            .0,
        StatusCode::OK
    );
    let (access, refresh) = provider.live_tokens();
    let on_disk = db.sqlite_bytes();
    assert!(!on_disk.is_empty());
    let everything_issued = provider.token_requests("authorization_code").len()
        + provider.token_requests("refresh_token").len();
    assert_eq!(everything_issued, 2);
    for secret in access.iter().chain(&refresh).map(String::as_str).chain([
        CLIENT_SECRET,
        API_KEY,
        "secret-access-token",
        "secret-refresh-token",
    ]) {
        assert!(
            !contains(&on_disk, secret.as_bytes()),
            "{secret} is on disk in plain text"
        );
    }
    app.stop().await;
    let on_disk = db.sqlite_bytes();
    for secret in access.iter().chain(&refresh) {
        assert!(
            !contains(&on_disk, secret.as_bytes()),
            "{secret} is on disk after shutdown"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn a_sealed_credential_copied_to_another_connection_does_not_open(backend: Backend) {
    let (_provider, db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("victim").await.status(), StatusCode::OK);
    assert_eq!(app.connect("attacker").await.status(), StatusCode::OK);

    // The victim's sealed bytes written onto the attacker's row, as someone
    // with write access to the database could.
    let store = db.store().await;
    let id = |raw| ConnectionId::parse(raw).unwrap();
    let victim = store.get_connection(&id("victim")).await.unwrap().unwrap();
    let attacker = store
        .get_connection(&id("attacker"))
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .reseal_connection(
            &id("attacker"),
            attacker.generation,
            &victim.sealed_access_token,
            victim.sealed_refresh_token.as_deref(),
        )
        .await
        .unwrap());

    let (status, body) = app.admin().get("/connections/attacker/access-token").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.get("access_token").is_none());
    assert_eq!(
        app.admin().get("/connections/victim/access-token").await.0,
        StatusCode::OK
    );
}

async fn a_restart_keeps_connections(backend: Backend) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    let first = TestApp::start(&db, &args).await;
    assert_eq!(first.connect("kept").await.status(), StatusCode::OK);
    let (_, before) = first.admin().get("/connections/kept/access-token").await;
    first.stop().await;

    let second = TestApp::start(&db, &args).await;
    let (status, after) = second.admin().get("/connections/kept/access-token").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["access_token"], before["access_token"]);
}
