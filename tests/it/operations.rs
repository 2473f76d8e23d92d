//! What an operator sees: metrics, readiness, and key rotation.

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{
    eventually, new_key, start, Backend, FakeProvider, TestApp, TestDb, ADMIN_TOKEN,
};
use emailoctopus_connect::connections::{rekey, RekeyReport};
use emailoctopus_connect::crypto::KeyRing;

on_both_backends!(
    rekey_moves_every_credential_to_the_first_key,
    credentials_sealed_before_subkeys_stay_readable_and_rekey_moves_them,
    a_rekey_beside_a_refresh_is_not_taken_for_another_refresh,
);

/// A credential as the server sealed it before per-purpose subkeys: version
/// 1, AES-256-GCM directly under the `TOKEN_ENCRYPTION_KEY` key.
fn sealed_the_old_way(key: &str, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use base64::Engine;
    use sha2::Digest;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    let id = sha2::Sha256::new()
        .chain_update(b"emailoctopus-connect key id\0")
        .chain_update(&secret)
        .finalize();
    let nonce = [9u8; 12];
    let ciphertext = aes_gcm::Aes256Gcm::new_from_slice(&secret)
        .unwrap()
        .encrypt(
            aes_gcm::Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap();
    [&[1u8][..], &id[..4], &nonce, &ciphertext].concat()
}

async fn credentials_sealed_before_subkeys_stay_readable_and_rekey_moves_them(backend: Backend) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let key = new_key();
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={key}"));
    let app = TestApp::start(&db, &args).await;
    app.connect_api_key("old").await;
    app.stop().await;

    let store = db.store().await;
    let id = emailoctopus_connect::checked::ConnectionId::parse("old").unwrap();
    let row = store.get_connection(&id).await.unwrap().unwrap();
    assert_eq!(
        row.sealed_access_token[0], 2,
        "new credentials use the subkey form"
    );
    // The same credential as an older server stored it.
    let old = sealed_the_old_way(
        &key,
        API_KEY.as_bytes(),
        b"emailoctopus-connect/v1/access_token/old",
    );
    assert!(store
        .reseal_connection(&id, row.generation, &old, None)
        .await
        .unwrap());

    let app = TestApp::start(&db, &args).await;
    let (status, token) = app.admin().get("/connections/old/access-token").await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["access_token"], API_KEY);
    app.stop().await;

    let ring = KeyRing::parse(&key).unwrap();
    assert_eq!(
        rekey(store, &ring).await.unwrap(),
        RekeyReport {
            resealed: 1,
            unopenable: 0,
            already_current: 0
        }
    );
    let row = store.get_connection(&id).await.unwrap().unwrap();
    assert_eq!(row.sealed_access_token[0], 2);
    assert_eq!(
        rekey(store, &ring).await.unwrap(),
        RekeyReport {
            resealed: 0,
            unopenable: 0,
            already_current: 1
        }
    );
    let app = TestApp::start(&db, &args).await;
    assert_eq!(
        app.admin().get("/connections/old/access-token").await.1["access_token"],
        API_KEY
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_the_admin_bearer_on_the_main_listener() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    assert_eq!(app.connect("m").await.status(), StatusCode::OK);
    assert_eq!(
        reqwest::get(app.at("/metrics")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let metrics = reqwest::Client::new()
        .get(app.at("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    for expected in [
        "emailoctopus_connect_flows_started_total 1",
        "emailoctopus_connect_flows_finished_total{outcome=\"connected\"} 1",
        "emailoctopus_connect_connections{status=\"connected\"} 1",
        "emailoctopus_connect_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    assert_eq!(
        reqwest::get(app.at("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        reqwest::get(app.at("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}

/// A scrape counts the rows as they are: a connection made a moment ago is
/// in the next scrape, however many scrapes came just before.
#[tokio::test]
async fn each_scrape_counts_the_connections_stored_now() {
    let (_provider, _db, app) = start(Backend::Sqlite, &["--metrics-addr=127.0.0.1:0"]).await;
    let url = app.metrics_url.clone().expect("a metrics listener");
    let connected =
        |n: u32| format!("emailoctopus_connect_connections{{status=\"connected\"}} {n}");
    let scrapes =
        (0..20).map(|_| async { reqwest::get(&url).await.unwrap().text().await.unwrap() });
    for text in futures_util::future::join_all(scrapes).await {
        assert!(text.contains(&connected(0)), "{text}");
    }
    app.connect_api_key("counted").await;
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(text.contains(&connected(1)), "{text}");
}

#[tokio::test]
async fn metrics_on_their_own_address_need_no_bearer() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    args.push("--metrics-addr=127.0.0.1:0".to_owned());
    let app = TestApp::start(&db, &args).await;
    let metrics_url = app.metrics_url.clone().expect("a metrics listener");
    let metrics = reqwest::get(&metrics_url).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("emailoctopus_connect_refreshes"));
    // Only /metrics lives there.
    assert_eq!(
        reqwest::get(metrics_url.replace("/metrics", "/connections"))
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    drop(app);
}

async fn rekey_moves_every_credential_to_the_first_key(backend: Backend) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let (old, new) = (new_key(), new_key());
    let with_key = |key: &str| {
        let mut args = provider.args();
        args.push(format!("--token-encryption-key={key}"));
        args
    };
    let rotated = KeyRing::parse(&format!("{new},{old}")).unwrap();

    let app = TestApp::start(&db, &with_key(&old)).await;
    assert_eq!(app.connect("a").await.status(), StatusCode::OK);
    app.stop().await;
    // A rekey that got as far as "a" before it was interrupted...
    let store = db.store().await;
    assert_eq!(
        rekey(store, &rotated).await.unwrap(),
        RekeyReport {
            resealed: 1,
            unopenable: 0,
            already_current: 0
        }
    );
    // ...while servers with the old key went on connecting.
    let app = TestApp::start(&db, &with_key(&old)).await;
    assert_eq!(app.connect("b").await.status(), StatusCode::OK);
    app.connect_api_key("c").await;
    // A row sealed under a key that is no longer listed.
    let stranger = TestApp::start(&db, &with_key(&new_key())).await;
    assert_eq!(stranger.connect("lost").await.status(), StatusCode::OK);
    stranger.stop().await;
    app.stop().await;

    // Resumed: it finishes, and reports the row it cannot open.
    assert_eq!(
        rekey(store, &rotated).await.unwrap(),
        RekeyReport {
            resealed: 2,
            unopenable: 1,
            already_current: 1
        }
    );
    assert_eq!(
        rekey(store, &rotated).await.unwrap(),
        RekeyReport {
            resealed: 0,
            unopenable: 1,
            already_current: 3
        }
    );

    let app = TestApp::start(&db, &with_key(&new)).await;
    for id in ["a", "b", "c"] {
        let (status, body) = app
            .admin()
            .get(&format!("/connections/{id}/access-token"))
            .await;
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
    }
    // Reported, not lost: the row is still there.
    assert_eq!(app.admin().get("/connections/lost").await.0, StatusCode::OK);
}

/// A rekey re-seals the credential while the provider is answering a
/// refresh of it. The re-seal keeps the credential's generation, so the
/// refresh's answer is stored (not revoked as if a reconnect had won), and
/// the rotated refresh token goes on working.
async fn a_rekey_beside_a_refresh_is_not_taken_for_another_refresh(backend: Backend) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let (first, second) = (new_key(), new_key());
    let mut args = provider.args();
    // The server seals under `first` and opens what rekey seals under `second`.
    args.push(format!("--token-encryption-key={first},{second}"));
    let app = TestApp::start(&db, &args).await;
    assert_eq!(app.connect("raced").await.status(), StatusCode::OK);

    // The provider rotates at once and holds its answer back.
    provider.set(|c| c.refresh_answer_delay = std::time::Duration::from_millis(800));
    let admin = app.admin();
    let refreshing = tokio::spawn(async move {
        admin
            .post("/connections/raced/refresh", serde_json::json!({}))
            .await
    });
    eventually("the refresh reaches the provider", async || {
        !provider.token_requests("refresh_token").is_empty()
    })
    .await;
    let rotated = KeyRing::parse(&format!("{second},{first}")).unwrap();
    let report = rekey(db.store().await, &rotated).await.unwrap();
    assert_eq!(report.resealed, 1);

    let (status, body) = refreshing.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let (live_access, _) = provider.live_tokens();
    assert!(
        live_access.iter().any(|t| *t == body["access_token"]),
        "{body}"
    );
    assert!(
        provider.recorded("/revoke").is_empty(),
        "the refresh's tokens were revoked"
    );
    provider.set(|c| c.refresh_answer_delay = std::time::Duration::ZERO);
    let (status, body) = app
        .admin()
        .post("/connections/raced/refresh", serde_json::json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the rotated refresh token was lost: {body}"
    );
}

#[tokio::test]
async fn the_rekey_command_prints_what_it_did() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let (old, new) = (new_key(), new_key());
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={old}"));
    let app = TestApp::start(&db, &args).await;
    assert_eq!(app.connect("a").await.status(), StatusCode::OK);
    app.stop().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_emailoctopus-connect"))
        .arg("rekey")
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("TOKEN_ENCRYPTION_KEY", format!("{new},{old}"))
        .current_dir(db.dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("re-sealed 1 credentials; 0 could not be opened"),
        "{printed}"
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_callback_finish() {
    let (provider, db, app) = start(Backend::Sqlite, &[]).await;
    let browser = app.browser();
    let callback = app.begin(&browser, &app.session("late").await).await;
    provider.set(|c| c.token_delay = std::time::Duration::from_millis(800));
    let finishing =
        tokio::spawn(async move { browser.get(callback).send().await.unwrap().status() });
    eventually("the code exchange reaches the provider", async || {
        !provider.token_requests("authorization_code").is_empty()
    })
    .await;
    // Shut down while the code exchange is at the provider.
    app.stop().await;
    assert_eq!(finishing.await.unwrap(), StatusCode::OK);
    let store = db.store().await;
    let id = emailoctopus_connect::checked::ConnectionId::parse("late").unwrap();
    assert!(
        store.get_connection(&id).await.unwrap().is_some(),
        "the connection was not stored"
    );
}
