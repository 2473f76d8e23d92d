//! A reconnect through a connect session keeps the connection: the same id
//! and `created_at`, a new credential, the old grant revoked, and its end
//! user and tags unless the session gives new ones.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::ada;
use crate::on_both_backends;
use crate::support::receiver::Receiver;
use crate::support::{eventually, start, Backend, TestApp, TokenAnswer};

on_both_backends!(a_reconnect_replaces_the_credential_in_place);

async fn connection(app: &TestApp) -> Value {
    let (status, body) = app.admin().get("/connections/same").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn a_reconnect_replaces_the_credential_in_place(backend: Backend) {
    let receiver = Receiver::default();
    let args = receiver.args().await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (provider, _db, app) = start(backend, &args).await;
    let tags = json!({"plan": "trial"});
    let session = app
        .session_with(json!({"connection_id": "same", "end_user": ada(), "tags": tags}))
        .await;
    assert_eq!(app.connect_through(&session).await.status(), StatusCode::OK);
    let first = connection(&app).await;
    let (_, first_grant) = provider.live_tokens();
    let (_, first_token) = app.admin().get("/connections/same/access-token").await;

    // The provider withdraws the grant: the connection needs a person.
    provider.set(|c| {
        c.refresh_override = Some((
            TokenAnswer::Status(400, r#"{"error":"invalid_grant"}"#),
            Duration::ZERO,
        ))
    });
    let (status, _) = app
        .admin()
        .post("/connections/same/refresh", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    provider.set(|c| c.refresh_override = None);
    app.clock.advance(Duration::from_secs(5));

    // A session that names nobody reconnects it and keeps what it had.
    assert_eq!(app.connect("same").await.status(), StatusCode::OK);
    let second = connection(&app).await;
    assert_eq!(second["status"], "connected");
    assert_eq!(second["created_at"], first["created_at"]);
    assert_ne!(second["updated_at"], first["updated_at"]);
    assert_eq!((&second["end_user"], &second["tags"]), (&ada(), &tags));
    let (_, second_token) = app.admin().get("/connections/same/access-token").await;
    assert_ne!(second_token["access_token"], first_token["access_token"]);
    eventually("the replaced grant is revoked", async || {
        provider
            .recorded("/revoke")
            .iter()
            .any(|r| r.form["token"] == first_grant[0])
    })
    .await;
    let recovered = receiver.arrived("connection.recovered", "same").await;
    assert_eq!(
        (&recovered[0]["end_user"], &recovered[0]["tags"]),
        (&ada(), &tags)
    );
    let created = eventually("a second connection.created", async || {
        let created = receiver.events("connection.created", "same");
        (created.len() >= 2).then_some(created)
    })
    .await;
    assert!(created
        .iter()
        .all(|e| e["end_user"] == ada() && e["tags"] == tags));

    // A session that gives them replaces them: the end user whole, the tags whole.
    let session = app
        .session_with(
            json!({"connection_id": "same", "end_user": {"id": "grace"}, "tags": {"seats": "3"}}),
        )
        .await;
    assert_eq!(app.connect_through(&session).await.status(), StatusCode::OK);
    let third = connection(&app).await;
    assert_eq!(third["end_user"]["id"], "grace");
    assert_eq!(third["tags"], json!({"seats": "3"}));
    // One that gives only tags keeps the end user.
    let session = app
        .session_with(json!({"connection_id": "same", "tags": {}}))
        .await;
    assert_eq!(app.connect_through(&session).await.status(), StatusCode::OK);
    let fourth = connection(&app).await;
    assert_eq!(
        (&fourth["end_user"], &fourth["tags"]),
        (&third["end_user"], &json!({}))
    );
    assert_eq!(fourth["created_at"], first["created_at"]);

    // The outbox holds each event with its change: final counts.
    let (_, page) = app.admin().get("/connections/same/events").await;
    let held = |name: &str| {
        let events = page["events"].as_array().unwrap();
        events.iter().filter(|e| e["event"] == name).count()
    };
    assert_eq!(
        (held("connection.created"), held("connection.recovered")),
        (4, 1)
    );
}
