//! `GET /openapi.json`: every backend route is in it, and the answers the
//! server gives validate against it.

mod schema;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{start, Backend, TestApp, TokenAnswer, ADMIN_TOKEN};

/// The backend API as the contract lists it, with the proxy's `{*path}`
/// written as OpenAPI writes a path parameter.
const BACKEND_ROUTES: [(&str, &str); 12] = [
    ("post", "/connect-sessions"),
    ("get", "/connect-sessions/status"),
    ("get", "/connections"),
    ("get", "/connections/{id}"),
    ("delete", "/connections/{id}"),
    ("get", "/connections/{id}/access-token"),
    ("post", "/connections/{id}/refresh"),
    ("put", "/connections/{id}/api-key"),
    ("get", "/connections/{id}/api/{path}"),
    ("post", "/connections/{id}/api/{path}"),
    ("put", "/connections/{id}/api/{path}"),
    ("delete", "/connections/{id}/api/{path}"),
];

async fn document(app: &TestApp) -> Value {
    let answer = reqwest::get(app.at("/openapi.json")).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "application/json");
    answer.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_covers_every_backend_route() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let bearer = &doc["components"]["securitySchemes"]["admin_bearer"];
    assert_eq!(
        (bearer["type"].as_str(), bearer["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    for (method, path) in BACKEND_ROUTES {
        let operation = &doc["paths"][path][method];
        assert!(
            operation.is_object(),
            "{method} {path} is not in the document"
        );
        let security = operation["security"].to_string();
        if path == "/connect-sessions/status" {
            assert!(
                !security.contains("admin_bearer"),
                "{method} {path}: {security}"
            );
        } else {
            assert_eq!(
                operation["security"],
                json!([{"admin_bearer": []}]),
                "{method} {path}"
            );
        }
    }

    // And nothing in it that the server does not serve: every operation
    // reaches a real route (the fallback answers an HTML page, 404 or 405).
    let admin = app.admin();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "nobody").replace("{path}", "lists");
        for method in operations.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let answer = admin
                .request(method.clone(), &concrete)
                .send()
                .await
                .unwrap();
            let kind = answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                !kind.starts_with("text/html"),
                "{method} {path} is not served: {}",
                answer.status()
            );
        }
    }
}

/// A header the document promises is the one the answer carries.
#[tokio::test]
async fn a_delete_answers_with_the_revocation_header_the_document_names() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let doc = document(&app).await;
    let documented = &doc["paths"]["/connections/{id}"]["delete"]["responses"]["204"]["headers"];
    let names: Vec<&String> = documented
        .as_object()
        .expect("204 documents its headers")
        .keys()
        .collect();
    assert_eq!(names, ["X-Revocation"]);
    app.connect_api_key("documented").await;
    let deleted = app.admin().delete("/connections/documented").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(deleted.headers()["x-revocation"], "not-applicable");
}

on_both_backends!(answers_validate_against_the_document);

/// Sends a backend request and checks its answer against the document's
/// schema for that operation and status.
struct Checked<'a> {
    app: &'a TestApp,
    doc: &'a Value,
    seen: usize,
}

impl Checked<'_> {
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        concrete: &str,
        body: Option<Value>,
        bearer: bool,
    ) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new().request(method.clone(), self.app.at(concrete));
        if bearer {
            request = request.bearer_auth(ADMIN_TOKEN);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let content_type = answer
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = answer.text().await.unwrap();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {concrete} answered {status} {text:?}: {e}"))
        };
        schema::check_answer(
            self.doc,
            &method,
            template,
            status,
            content_type.as_deref(),
            &body,
        );
        self.seen += 1;
        (status, body)
    }
}

async fn answers_validate_against_the_document(backend: Backend) {
    let (provider, _db, app) =
        start(backend, &["--return-to-origins=http://app.example.test"]).await;
    let doc = document(&app).await;
    let mut c = Checked {
        app: &app,
        doc: &doc,
        seen: 0,
    };
    use Method as M;

    c.call(M::GET, "/connections", "/connections", None, false)
        .await;
    c.call(
        M::POST,
        "/connect-sessions",
        "/connect-sessions",
        Some(json!({"connection_id": "a b"})),
        true,
    )
    .await;
    let (_, session) = c
        .call(
            M::POST,
            "/connect-sessions",
            "/connect-sessions",
            Some(
                json!({"connection_id": "o", "mode": "popup", "origin": "http://app.example.test"}),
            ),
            true,
        )
        .await;
    let token = session["token"].as_str().unwrap();
    c.call(
        M::GET,
        "/connect-sessions/status",
        &format!("/connect-sessions/status?session={token}"),
        None,
        false,
    )
    .await;
    c.call(
        M::GET,
        "/connect-sessions/status",
        "/connect-sessions/status?session=unknown",
        None,
        false,
    )
    .await;

    let browser = app.browser();
    let callback = app.begin(&browser, token).await;
    assert_eq!(
        browser.get(&callback).send().await.unwrap().status(),
        StatusCode::OK
    );
    let (_, status) = c
        .call(
            M::GET,
            "/connect-sessions/status",
            &format!("/connect-sessions/status?session={token}"),
            None,
            false,
        )
        .await;
    assert_eq!(status["kind"], "oauth");

    c.call(
        M::PUT,
        "/connections/{id}/api-key",
        "/connections/k/api-key",
        Some(json!({"api_key": "refused"})),
        true,
    )
    .await;
    c.call(
        M::PUT,
        "/connections/{id}/api-key",
        "/connections/k/api-key",
        Some(json!({"api_key": API_KEY})),
        true,
    )
    .await;
    let (_, list) = c
        .call(M::GET, "/connections", "/connections", None, true)
        .await;
    assert_eq!(list["connections"].as_array().unwrap().len(), 2);
    c.call(M::GET, "/connections/{id}", "/connections/o", None, true)
        .await;
    c.call(M::GET, "/connections/{id}", "/connections/none", None, true)
        .await;
    c.call(
        M::GET,
        "/connections/{id}/access-token",
        "/connections/o/access-token",
        None,
        true,
    )
    .await;
    c.call(
        M::GET,
        "/connections/{id}/access-token",
        "/connections/k/access-token",
        None,
        true,
    )
    .await;
    c.call(
        M::POST,
        "/connections/{id}/refresh",
        "/connections/o/refresh",
        None,
        true,
    )
    .await;
    c.call(
        M::POST,
        "/connections/{id}/refresh",
        "/connections/k/refresh",
        None,
        true,
    )
    .await;
    provider.set(|p| p.token_answer = TokenAnswer::Status(400, r#"{"error":"invalid_grant"}"#));
    let (_, problem) = c
        .call(
            M::POST,
            "/connections/{id}/refresh",
            "/connections/o/refresh",
            None,
            true,
        )
        .await;
    assert_eq!(problem["connection_status"], "needs_reauth");
    c.call(
        M::GET,
        "/connections/{id}/api/{path}",
        "/connections/k/api/lists",
        None,
        true,
    )
    .await;
    let (status, _) = c
        .call(
            M::GET,
            "/connections/{id}/api/{path}",
            "/connections/k/api/lists%2f..%2f..%2fadmin",
            None,
            true,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    c.call(M::DELETE, "/connections/{id}", "/connections/k", None, true)
        .await;
    c.call(M::DELETE, "/connections/{id}", "/connections/k", None, true)
        .await;
    assert!(c.seen >= 20);
}
