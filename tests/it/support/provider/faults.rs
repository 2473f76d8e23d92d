//! The layer around the provider: every request recorded, and the faults
//! `Control` asks for played instead of (or around) the provider's answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{Control, Recorded, TokenAnswer};

/// The request with its body read, and its record.
async fn read(request: Request) -> (Request, Recorded) {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        form: url::form_urlencoded::parse(&body).into_owned().collect(),
        body: body.clone(),
    };
    (Request::from_parts(parts, Body::from(body)), recorded)
}

fn push(control: &Mutex<Control>, recorded: Recorded) {
    control.lock().unwrap().recorded.push(recorded);
}

pub(super) async fn faults(
    State(control): State<Arc<Mutex<Control>>>,
    request: Request,
    next: Next,
) -> Response {
    match request.uri().path() {
        "/token" => token_faults(&control, request, next).await,
        "/revoke" => revoke_faults(&control, request, next).await,
        path if path.starts_with("/api/") => api_faults(&control, request, next).await,
        _ => next.run(request).await,
    }
}

/// Recorded before it is answered, so a test can see a request in flight.
async fn token_faults(control: &Mutex<Control>, request: Request, next: Next) -> Response {
    let (request, recorded) = read(request).await;
    let refresh = recorded.form.get("grant_type").map(String::as_str) == Some("refresh_token");
    push(control, recorded);
    let (answer, delay, held_back) = {
        let c = control.lock().unwrap();
        let (answer, delay) = match (&c.refresh_override, refresh) {
            (Some(special), true) => special.clone(),
            _ => (c.token_answer.clone(), c.token_delay),
        };
        let held_back = if refresh {
            c.refresh_answer_delay
        } else {
            Duration::ZERO
        };
        (answer, delay, held_back)
    };
    tokio::time::sleep(delay).await;
    let json = [("content-type", "application/json")];
    match answer {
        TokenAnswer::Issue => {
            let response = next.run(request).await;
            if response.status().is_success() {
                tokio::time::sleep(held_back).await;
            }
            response
        }
        TokenAnswer::Status(status, body) => {
            (StatusCode::from_u16(status).unwrap(), json, body).into_response()
        }
        TokenAnswer::Hang => std::future::pending().await,
        TokenAnswer::Malformed => (StatusCode::OK, json, "{not json").into_response(),
        TokenAnswer::Huge => {
            let body = format!("{{\"access_token\":\"{}\"}}", "x".repeat(20 * 1024 * 1024));
            (StatusCode::OK, json, body).into_response()
        }
        TokenAnswer::BadExpiresIn => {
            Json(json!({"access_token": "at-bad", "token_type": "Bearer", "expires_in": "soon"}))
                .into_response()
        }
    }
}

/// Slow before anything happens, and recorded once answered, so that a
/// recorded revocation has always taken effect.
async fn revoke_faults(control: &Mutex<Control>, request: Request, next: Next) -> Response {
    let delay = control.lock().unwrap().revoke_delay;
    tokio::time::sleep(delay).await;
    let (request, recorded) = read(request).await;
    let status = control.lock().unwrap().revoke_status;
    let response = match status {
        200 => next.run(request).await,
        status => StatusCode::from_u16(status).unwrap().into_response(),
    };
    push(control, recorded);
    response
}

async fn api_faults(control: &Mutex<Control>, request: Request, next: Next) -> Response {
    let (request, recorded) = read(request).await;
    let credential = recorded.header("authorization").unwrap_or("").to_owned();
    push(control, recorded);
    let limited = control
        .lock()
        .unwrap()
        .rate_limit
        .as_mut()
        .map_or(Ok(()), |limit| limit.take(&credential));
    if let Err(wait) = limited {
        let seconds = (wait.as_secs() + 1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", seconds.as_str()),
                ("x-ratelimiting-retry-after", seconds.as_str()),
            ],
            Json(json!({"title": "Too many requests"})),
        )
            .into_response();
    }
    let scripted = control.lock().unwrap().api_script.pop_front();
    if let Some((status, headers)) = scripted {
        let mut response = StatusCode::from_u16(status).unwrap().into_response();
        for (name, value) in headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        return response;
    }
    let delay = control.lock().unwrap().upstream_delay;
    tokio::time::sleep(delay).await;
    if control.lock().unwrap().api_refuses_all {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"title": "Unauthorized"})),
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    let status = control.lock().unwrap().upstream_status;
    if status != 200 {
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
    }
    response
}
