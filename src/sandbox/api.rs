//! A fake of EmailOctopus's `GET /lists`, accepting a sandbox access token or the sandbox API key.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::Shared;
use crate::crypto::secrets_equal;

pub(super) async fn lists(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let now = shared.clock.now();
    let is_token = shared
        .issued
        .lock()
        .expect("sandbox state is never poisoned")
        .access_tokens
        .contains(presented, now);
    if !is_token && !secrets_equal(presented.as_bytes(), shared.api_key.as_bytes()) {
        let problem = json!({
            "type": "https://emailoctopus.com/api-documentation/v2#unauthorized",
            "title": "Unauthorized",
            "status": 401,
            "detail": "Sandbox: send a sandbox access token or the sandbox API key as a Bearer token.",
        });
        return (StatusCode::UNAUTHORIZED, Json(problem)).into_response();
    }
    Json(json!({
        "data": [{ "id": "00000000-0000-0000-0000-000000000001", "name": "Sandbox newsletter", "counts": { "subscribed": 3 } }],
        "paging": { "next": null },
    }))
    .into_response()
}
