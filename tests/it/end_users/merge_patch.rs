//! `PATCH /connections/{id}`: RFC 7396 on the end user and tags, and
//! nothing else: no credential changes and no event is recorded.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::ada;
use crate::on_both_backends;
use crate::support::{start, Backend, TestApp};

on_both_backends!(
    a_merge_patch_replaces_the_end_user_and_merges_tags,
    a_patch_changes_no_credential_and_records_no_event,
    a_patch_of_an_unknown_connection_or_member_is_refused,
);

async fn patched(app: &TestApp, id: &str, patch: Value) -> Value {
    let (status, body) = app
        .admin()
        .patch(&format!("/connections/{id}"), patch)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, shown) = app.admin().get(&format!("/connections/{id}")).await;
    assert_eq!(shown, body, "the answer is the connection as stored");
    body
}

async fn a_merge_patch_replaces_the_end_user_and_merges_tags(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("p").await;
    let both = patched(
        &app,
        "p",
        json!({"end_user": ada(), "tags": {"a": "1", "b": "2"}}),
    )
    .await;
    assert_eq!(
        (&both["end_user"], &both["tags"]),
        (&ada(), &json!({"a": "1", "b": "2"}))
    );

    // A null value removes its key; other keys are set or kept; the end user stays.
    let merged = patched(&app, "p", json!({"tags": {"a": null, "c": "3"}})).await;
    assert_eq!(
        (&merged["end_user"], &merged["tags"]),
        (&ada(), &json!({"b": "2", "c": "3"}))
    );

    // An end user object replaces the whole end user, members left out too.
    let replaced = patched(&app, "p", json!({"end_user": {"id": "grace"}})).await;
    assert_eq!(
        replaced["end_user"],
        json!({"id": "grace", "email": null, "display_name": null})
    );

    let cleared = patched(&app, "p", json!({"end_user": null})).await;
    assert_eq!(
        (&cleared["end_user"], &cleared["tags"]),
        (&Value::Null, &json!({"b": "2", "c": "3"}))
    );
    let bare = patched(&app, "p", json!({"tags": null})).await;
    assert_eq!(bare["tags"], json!({}));
    // An empty patch changes nothing; plain JSON is taken as well.
    let plain = app
        .admin()
        .request(reqwest::Method::PATCH, "/connections/p")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(plain.json::<Value>().await.unwrap(), bare);
}

async fn a_patch_changes_no_credential_and_records_no_event(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("o").await.status(), StatusCode::OK);
    let (_, before) = app.admin().get("/connections/o").await;
    let (_, token_before) = app.admin().get("/connections/o/access-token").await;
    let (_, events_before) = app.admin().get("/connections/o/events").await;

    patched(&app, "o", json!({"end_user": ada(), "tags": {"k": "v"}})).await;

    let (_, after) = app.admin().get("/connections/o").await;
    for unchanged in [
        "kind",
        "status",
        "scopes",
        "expires_at",
        "created_at",
        "updated_at",
    ] {
        assert_eq!(after[unchanged], before[unchanged], "{unchanged}");
    }
    let (_, token_after) = app.admin().get("/connections/o/access-token").await;
    assert_eq!(token_after, token_before);
    let (_, events_after) = app.admin().get("/connections/o/events").await;
    assert_eq!(events_after["events"], events_before["events"]);
}

async fn a_patch_of_an_unknown_connection_or_member_is_refused(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    for id in ["nobody", "not%20an%20id"] {
        let (status, body) = app
            .admin()
            .patch(&format!("/connections/{id}"), json!({"tags": {"a": "b"}}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
    }
    let (_, list) = app.admin().get("/connections").await;
    assert_eq!(list["connections"], json!([]), "a patch creates nothing");
    // Only the end user and tags may be patched.
    app.connect_api_key("known").await;
    let (status, body) = app
        .admin()
        .patch("/connections/known", json!({"status": "connected"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
