//! Every bound on end users and tags is refused with 422 problem+json that
//! names the member in a fixed sentence (never the value sent), and
//! nothing changes.

use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::on_both_backends;
use crate::support::{start, Backend};

on_both_backends!(
    every_bound_is_refused_by_name_and_nothing_changes,
    a_merge_that_would_pass_32_tags_is_refused,
);

/// A value no fixed sentence holds, to see that none is echoed.
const MARK: &str = "zq9";

/// Bodies that break one bound each, and the member the refusal must name.
fn out_of_bounds() -> Vec<(Value, &'static str)> {
    let long = |n: usize| format!("{MARK}{}", "x".repeat(n - MARK.len()));
    let user = |member: &str, value: Value| {
        let mut user = json!({"id": "u"});
        user[member] = value;
        json!({ "end_user": user })
    };
    let many: Map<String, Value> = (0..33).map(|i| (format!("k{i}"), json!(MARK))).collect();
    vec![
        (user("id", json!("")), "end_user.id"),
        (user("id", json!(long(201))), "end_user.id"),
        (user("id", json!(format!("{MARK}\u{1}"))), "end_user.id"),
        (
            user("email", json!(format!("{MARK}.example.org"))),
            "end_user.email",
        ),
        (
            user("email", json!(format!("{MARK}@a@b"))),
            "end_user.email",
        ),
        (
            user("email", json!(format!("{}@b.c", long(251)))),
            "end_user.email",
        ),
        (user("display_name", json!("")), "end_user.display_name"),
        (
            user("display_name", json!(long(201))),
            "end_user.display_name",
        ),
        (json!({"end_user": {"email": "a@b.c"}}), "end_user"),
        (json!({"end_user": MARK}), "end_user"),
        (json!({"tags": Value::Object(many)}), "tags"),
        (json!({"tags": {format!("{MARK}:x"): "v"}}), "tags"),
        (json!({"tags": {"": "v"}}), "tags"),
        (json!({"tags": {long(65): "v"}}), "tags"),
        (json!({"tags": {"k": long(257)}}), "tags"),
        (json!({"tags": {"k": 7}}), "tags"),
        (json!({"tags": ["k"]}), "tags"),
    ]
}

fn assert_refused(status: StatusCode, body: &Value, member: &str, sent: &Value) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{sent}: {body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("{member}: ")),
        "{sent}: {detail}"
    );
    assert!(
        !detail.contains(MARK),
        "{sent}: the value is echoed: {detail}"
    );
}

async fn every_bound_is_refused_by_name_and_nothing_changes(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("fixed").await;
    let (status, _) = app
        .admin()
        .patch(
            "/connections/fixed",
            json!({"end_user": {"id": "kept"}, "tags": {"t": "kept"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = app.admin().get("/connections/fixed").await;

    for (body, member) in out_of_bounds() {
        let (status, answer) = app.admin().patch("/connections/fixed", body.clone()).await;
        assert_refused(status, &answer, member, &body);

        let mut session = body.clone();
        session["connection_id"] = json!("fresh");
        let (status, answer) = app.admin().post("/connect-sessions", session).await;
        assert_refused(status, &answer, member, &body);
    }
    let (_, after) = app.admin().get("/connections/fixed").await;
    assert_eq!(after, before);
}

async fn a_merge_that_would_pass_32_tags_is_refused(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("full").await;
    let tags: Map<String, Value> = (0..32).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, full) = app
        .admin()
        .patch("/connections/full", json!({ "tags": tags }))
        .await;
    assert_eq!(status, StatusCode::OK, "32 is the bound itself");

    let one_more = json!({"tags": {"extra": MARK}});
    let (status, answer) = app
        .admin()
        .patch("/connections/full", one_more.clone())
        .await;
    assert_refused(status, &answer, "tags", &one_more);
    let (_, after) = app.admin().get("/connections/full").await;
    assert_eq!(after, full);

    // Removing one makes room for another in the same patch.
    let (status, swapped) = app
        .admin()
        .patch(
            "/connections/full",
            json!({"tags": {"k0": null, "extra": "v"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(swapped["tags"].as_object().unwrap().len(), 32);
}
