//! A fake of EmailOctopus's API: `GET /lists`, and the check in front of
//! every route that the Bearer is a sandbox access token or the API key.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use serde_json::json;

use super::provider::Shared;
use crate::crypto::secrets_equal;

pub(super) async fn require_credential(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let now = shared.clock.now();
    let is_token = shared.issued().access_tokens.contains(presented, now);
    let api_key = shared.settings().api_key;
    if is_token || secrets_equal(presented.as_bytes(), api_key.expose_secret().as_bytes()) {
        return next.run(request).await;
    }
    let problem = json!({
        "type": "https://emailoctopus.com/api-documentation/v2#unauthorized",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Sandbox: send a sandbox access token or the sandbox API key as a Bearer token.",
    });
    (StatusCode::UNAUTHORIZED, Json(problem)).into_response()
}

pub(super) async fn lists() -> Response {
    Json(json!({
        "data": [{ "id": "00000000-0000-0000-0000-000000000001", "name": "Sandbox newsletter", "counts": { "subscribed": 3 } }],
        "paging": { "next": null },
    }))
    .into_response()
}
