//! Popup sessions and `GET /connect-sessions/status`, over plain HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::api_keys::{csrf_token, submit_key};
use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{json_of, query_param, start, Backend, TestApp};

const APP: &str = "http://app.example.test:8080";
const OTHER: &str = "http://evil.example.test:8080";

on_both_backends!(
    the_status_follows_a_popup_oauth_connect_to_connected,
    a_declined_connect_is_declined_and_a_replay_changes_nothing,
    sessions_expire_unused_or_with_their_unfinished_flow,
    the_api_key_form_in_a_popup_settles_the_session,
    a_popup_link_used_up_by_refused_keys_has_failed,
    a_redirect_session_is_readable_by_its_return_to_origin,
);

fn allowed() -> String {
    format!("--return-to-origins={APP}")
}

async fn popup_session(app: &TestApp, id: &str) -> String {
    let (status, body) = app
        .admin()
        .post(
            "/connect-sessions",
            json!({"connection_id": id, "mode": "popup", "origin": APP}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// The session's status as a page on `origin` would fetch it: the answer,
/// and the `Access-Control-Allow-Origin` it got.
async fn status_from(
    app: &TestApp,
    token: &str,
    origin: &str,
) -> (StatusCode, Value, Option<String>) {
    let answer = reqwest::Client::new()
        .get(app.at(&format!("/connect-sessions/status?session={token}")))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["cache-control"], "no-store");
    assert_eq!(answer.headers()["vary"], "Origin");
    let allowed = answer
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = json_of(answer).await;
    (status, body, allowed)
}

async fn status(app: &TestApp, token: &str) -> Value {
    let (code, body, allowed) = status_from(app, token, APP).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(allowed.as_deref(), Some(APP));
    body
}

/// The popup notice of a page: `(status, connection id, kind, origin)`.
fn notice(page: &str) -> (String, String, String, String) {
    let attribute = |name: &str| {
        page.split(&format!("{name}=\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} in {page}"))
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(page.contains("<script src=\"/assets/popup.js\">"), "{page}");
    (
        attribute("data-status"),
        attribute("data-connection-id"),
        attribute("data-kind"),
        attribute("data-origin"),
    )
}

#[tokio::test]
async fn popup_sessions_need_an_origin_in_return_to_origins() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[&allowed()]).await;
    for (body, says) in [
        (json!({"connection_id": "c", "mode": "popup"}), "origin"),
        (
            json!({"connection_id": "c", "mode": "popup", "origin": OTHER}),
            "origin",
        ),
        (
            json!({"connection_id": "c", "mode": "popup", "origin": format!("{APP}/path")}),
            "origin",
        ),
        (
            json!({"connection_id": "c", "mode": "popup", "origin": "http://app.example.test"}),
            "origin",
        ),
        (
            json!({"connection_id": "c", "mode": "popup", "origin": APP, "return_to": format!("{APP}/done")}),
            "return_to",
        ),
        (json!({"connection_id": "c", "origin": APP}), "origin"),
        (json!({"connection_id": "c", "mode": "sideways"}), "mode"),
    ] {
        let (status, problem) = app.admin().post("/connect-sessions", body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{body}: {problem}"
        );
    }
    let (_, list) = app.admin().get("/connections").await;
    assert_eq!(list["connections"], json!([]));
    let (status, created) = app
        .admin()
        .post(
            "/connect-sessions",
            json!({"connection_id": "c", "mode": "popup", "origin": format!("{APP}/")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn an_unknown_session_is_404_and_readable_by_nobody() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[&allowed()]).await;
    for token in ["nope", "", &"x".repeat(5000)] {
        let (status, problem, allowed) = status_from(&app, token, APP).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
        assert_eq!(problem["status"], 404);
        assert_eq!(allowed, None);
    }
    let missing = reqwest::get(app.at("/connect-sessions/status"))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn the_status_follows_a_popup_oauth_connect_to_connected(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[&allowed()]).await;
    let token = popup_session(&app, "popup-1").await;
    assert_eq!(
        status(&app, &token).await,
        json!({"status": "pending", "connection_id": "popup-1", "kind": null})
    );
    // Another origin's page gets the answer without permission to read it.
    let (code, _, allowed) = status_from(&app, &token, OTHER).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(allowed, None);

    let browser = app.browser();
    let callback = app.begin(&browser, &token).await;
    assert_eq!(status(&app, &token).await["status"], "pending");
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert_eq!(
        notice(&page),
        (
            "connected".into(),
            "popup-1".into(),
            "oauth".into(),
            APP.into()
        )
    );
    assert!(page.contains("You can close this window."), "{page}");
    assert!(!page.contains(&token) && !page.contains("code="), "{page}");
    assert_eq!(
        status(&app, &token).await,
        json!({"status": "connected", "connection_id": "popup-1", "kind": "oauth"})
    );
    // Still there for the rest of its life, and after it.
    app.clock.advance(Duration::from_secs(45 * 60));
    assert_eq!(status(&app, &token).await["status"], "connected");
}

async fn a_declined_connect_is_declined_and_a_replay_changes_nothing(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[&allowed()]).await;
    let token = popup_session(&app, "popup-2").await;
    let browser = app.browser();
    let callback = app.begin(&browser, &token).await;
    let state = query_param(&callback, "state");
    let denied = browser
        .get(app.at(&format!("/callback?error=access_denied&state={state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::BAD_REQUEST);
    let page = denied.text().await.unwrap();
    assert_eq!(notice(&page).0, "declined");
    assert!(page.contains("You declined"), "{page}");
    assert!(!page.contains("You can close this window."), "{page}");
    assert_eq!(
        status(&app, &token).await,
        json!({"status": "declined", "connection_id": "popup-2", "kind": null})
    );
    // The same answer again, or the code after all: the first outcome stands.
    let replay = browser.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(status(&app, &token).await["status"], "declined");
    assert_eq!(
        app.admin().get("/connections/popup-2").await.0,
        StatusCode::NOT_FOUND
    );
}

async fn sessions_expire_unused_or_with_their_unfinished_flow(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[&allowed()]).await;
    let unused = popup_session(&app, "late").await;
    let started = popup_session(&app, "abandoned").await;
    app.begin(&app.browser(), &started).await;

    app.clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(status(&app, &unused).await["status"], "pending");
    assert_eq!(status(&app, &started).await["status"], "expired");
    app.clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(status(&app, &unused).await["status"], "expired");
    // The popup's pages say so to the app's page too.
    for path in ["/", "/auth"] {
        let late = app
            .browser()
            .get(app.at(&format!("{path}?session={unused}")))
            .send()
            .await
            .unwrap();
        assert_eq!(late.status(), StatusCode::FORBIDDEN, "{path}");
        let page = late.text().await.unwrap();
        assert_eq!(
            notice(&page),
            ("expired".into(), "late".into(), "".into(), APP.into()),
            "{path}"
        );
    }
    assert_eq!(status(&app, &unused).await["status"], "expired");
}

async fn the_api_key_form_in_a_popup_settles_the_session(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[&allowed()]).await;
    let token = popup_session(&app, "pasted").await;
    let browser = app.browser();
    let page = browser
        .get(app.at(&format!("/?session={token}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token(&page);

    // A refused key can be retried: the session stays pending, the popup open.
    let refused = submit_key(&browser, &app, "bad-key", &csrf, &token).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(notice(&refused.text().await.unwrap()).0, "pending");
    assert_eq!(status(&app, &token).await["status"], "pending");

    let saved = submit_key(&browser, &app, API_KEY, &csrf, &token).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let page = saved.text().await.unwrap();
    assert_eq!(
        notice(&page),
        (
            "connected".into(),
            "pasted".into(),
            "api_key".into(),
            APP.into()
        )
    );
    assert!(!page.contains(API_KEY), "{page}");
    assert_eq!(
        status(&app, &token).await,
        json!({"status": "connected", "connection_id": "pasted", "kind": "api_key"})
    );
}

async fn a_redirect_session_is_readable_by_its_return_to_origin(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[&allowed()]).await;
    let (code, created) = app
        .admin()
        .post(
            "/connect-sessions",
            json!({"connection_id": "redirected", "return_to": format!("{APP}/settings?done=1")}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    let browser = app.browser();
    let callback = app.begin(&browser, token).await;
    let back = browser.get(&callback).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        status(&app, token).await,
        json!({"status": "connected", "connection_id": "redirected", "kind": "oauth"})
    );
}

async fn a_popup_link_used_up_by_refused_keys_has_failed(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[&allowed()]).await;
    let token = popup_session(&app, "guessed").await;
    let browser = app.browser();
    let page = browser
        .get(app.at(&format!("/?session={token}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token(&page);
    let mut last = None;
    for _ in 0..10 {
        let refused = submit_key(&browser, &app, "bad-key", &csrf, &token).await;
        if refused.status() == StatusCode::TOO_MANY_REQUESTS {
            last = Some(refused.text().await.unwrap());
            break;
        }
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let page = last.expect("the link is used up by refused keys");
    assert_eq!(notice(&page).0, "failed");
    assert_eq!(status(&app, &token).await["status"], "failed");
}
