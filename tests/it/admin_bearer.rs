//! Every backend route in `/openapi.json` (which is generated from the
//! handlers) answers 401 without the admin bearer, or with a wrong one,
//! unless it is one of the two routes an app's page reads without it. A new
//! route that forgets `AdminAuth` fails here.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{start, Backend};

/// Read by an app's page or tooling without the admin bearer.
const PUBLIC: [&str; 1] = ["/connect-sessions/status"];

#[tokio::test]
async fn every_documented_backend_route_needs_the_admin_bearer() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    app.connect_api_key("held").await;
    let doc: Value = reqwest::get(app.at("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut swept = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "held").replace("{path}", "lists");
        for (method, operation) in operations.as_object().unwrap() {
            let open = operation["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if PUBLIC.contains(&path.as_str()) {
                assert!(
                    open,
                    "{method} {path} is public but documented as protected"
                );
                continue;
            }
            assert!(!open, "{method} {path} is documented as open");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for bearer in [None, Some("wrong-token")] {
                let mut request = http
                    .request(method.clone(), app.at(&concrete))
                    .header("content-type", "application/json")
                    .body("{}");
                if let Some(token) = bearer {
                    request = request.bearer_auth(token);
                }
                let answer = request.send().await.unwrap();
                assert_eq!(
                    answer.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with {bearer:?}"
                );
            }
            swept += 1;
        }
    }
    assert!(swept >= 11, "only {swept} operations in the document");
    // Nothing was acted on.
    let (status, connection) = app.admin().get("/connections/held").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(connection["status"], "connected");
}
