//! The one log line each request gets: method, route, status and latency,
//! and for a request that was refused or failed, the detail its error
//! carries (never shown to the client). An error attaches its detail to the
//! answer; the middleware that finishes every answer writes the line, so an
//! error is logged once and turning it into an answer has no side effects.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::Response;

/// Why a request was refused or failed, in words for the operator.
#[derive(Debug, Clone)]
pub struct FailureDetail(Arc<str>);

impl FailureDetail {
    /// Attaches `detail` to `response` for its log line.
    pub fn attach(response: &mut Response, detail: impl Display) {
        response
            .extensions_mut()
            .insert(Self(detail.to_string().into()));
    }
}

/// Writes the request's line: a warning for a server-side failure, else
/// information. The route, never the path or query: those can hold a code,
/// a state or a session token.
pub fn write(
    method: &Method,
    route: &str,
    status: StatusCode,
    latency: Duration,
    failure: Option<&FailureDetail>,
) {
    let status_code = status.as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    match failure {
        Some(FailureDetail(detail)) if status.is_server_error() => tracing::warn!(
            %method, route, status = status_code, latency_ms, error = %detail, "request failed"
        ),
        Some(FailureDetail(detail)) => tracing::info!(
            %method, route, status = status_code, latency_ms, error = %detail, "request refused"
        ),
        None => tracing::info!(%method, route, status = status_code, latency_ms, "request"),
    }
}
