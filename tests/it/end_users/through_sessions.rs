//! End user and tags given at `POST /connect-sessions` arrive on the
//! connection the session makes, and on the events of that connect.

use reqwest::StatusCode;
use serde_json::json;

use super::ada;
use crate::api_keys::{connect_page, csrf_token, submit_key};
use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::receiver::Receiver;
use crate::support::{start, Backend};

on_both_backends!(
    an_oauth_connect_gives_the_connection_its_sessions_end_user_and_tags,
    an_api_key_form_gives_the_connection_its_sessions_end_user_and_tags,
    events_keep_the_end_user_and_tags_as_they_were_when_they_happened,
);

async fn an_oauth_connect_gives_the_connection_its_sessions_end_user_and_tags(backend: Backend) {
    let receiver = Receiver::default();
    let args = receiver.args().await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_provider, _db, app) = start(backend, &args).await;
    let session = app
        .session_with(json!({
            "connection_id": "acme",
            "end_user": ada(),
            "tags": {"plan": "pro", "region": "eu-west"},
        }))
        .await;
    assert_eq!(app.connect_through(&session).await.status(), StatusCode::OK);

    let (status, connection) = app.admin().get("/connections/acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(connection["end_user"], ada());
    assert_eq!(
        connection["tags"],
        json!({"plan": "pro", "region": "eu-west"})
    );

    let created = receiver.arrived("connection.created", "acme").await;
    assert_eq!(created[0]["end_user"], ada());
    assert_eq!(
        created[0]["tags"],
        json!({"plan": "pro", "region": "eu-west"})
    );
    let (_, page) = app.admin().get("/events").await;
    let polled = &page["events"][0];
    assert_eq!(polled["event"], "connection.created");
    assert_eq!(polled["end_user"], ada());
    assert_eq!(polled["tags"], json!({"plan": "pro", "region": "eu-west"}));
}

async fn an_api_key_form_gives_the_connection_its_sessions_end_user_and_tags(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    let session = app
        .session_with(json!({"connection_id": "keyed", "end_user": ada(), "tags": {"via": "form"}}))
        .await;
    let browser = app.browser();
    let csrf = csrf_token(&connect_page(&browser, &app, &session).await);
    let saved = submit_key(&browser, &app, API_KEY, &csrf, &session).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let (_, connection) = app.admin().get("/connections/keyed").await;
    assert_eq!(connection["kind"], "api_key");
    assert_eq!(connection["end_user"], ada());
    assert_eq!(connection["tags"], json!({"via": "form"}));

    // A key put by the backend replaces the credential and keeps the rest.
    app.connect_api_key("keyed").await;
    let (_, connection) = app.admin().get("/connections/keyed").await;
    assert_eq!(connection["end_user"], ada());
    assert_eq!(connection["tags"], json!({"via": "form"}));
    // A connection made without a session's end user has none.
    app.connect_api_key("plain").await;
    let (_, plain) = app.admin().get("/connections/plain").await;
    assert_eq!(plain["end_user"], serde_json::Value::Null);
    assert_eq!(plain["tags"], json!({}));
}

async fn events_keep_the_end_user_and_tags_as_they_were_when_they_happened(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    let session = app
        .session_with(
            json!({"connection_id": "moving", "end_user": ada(), "tags": {"stage": "trial"}}),
        )
        .await;
    assert_eq!(app.connect_through(&session).await.status(), StatusCode::OK);
    let (status, _) = app
        .admin()
        .patch(
            "/connections/moving",
            json!({"end_user": null, "tags": {"stage": "paid"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.admin().delete("/connections/moving").await.status(),
        StatusCode::NO_CONTENT
    );

    let (_, page) = app.admin().get("/connections/moving/events").await;
    let events = page["events"].as_array().unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e["event"].clone(), e["end_user"].clone(), e["tags"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                json!("connection.created"),
                ada(),
                json!({"stage": "trial"})
            ),
            (
                json!("connection.deleted"),
                json!(null),
                json!({"stage": "paid"})
            ),
        ]
    );
    // Its tags went with it: a new connection of that id starts bare.
    app.connect_api_key("moving").await;
    let (_, again) = app.admin().get("/connections/moving").await;
    assert_eq!(again["tags"], json!({}));
    let (_, found) = app.admin().get("/connections?tag=stage:paid").await;
    assert_eq!(found["connections"], json!([]));
}
