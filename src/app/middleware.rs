//! What every answer goes through: security headers, limits, timeouts,
//! panics, the request log and the latency metric; and the answers for
//! unknown routes and methods.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use super::MAX_BODY_BYTES;
use crate::metrics::Metrics;
use crate::request_log::{self, FailureDetail};
use crate::server;
use crate::state::AppState;
use crate::web::error::render_page_error;
use crate::web::page::{BackLink, Pages};

pub(super) async fn not_found(State(state): State<AppState>) -> Response {
    state.pages.message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing at this address.",
        None,
        &BackLink::ConnectPage { session: None },
    )
}

pub(super) async fn method_not_allowed(State(state): State<AppState>) -> Response {
    state.pages.message(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "This address does not take that kind of request.",
        None,
        &BackLink::ConnectPage { session: None },
    )
}

/// Headers every answer carries, limits, timeouts, panics, logs and latency.
pub(super) fn with_middleware(router: Router, state: &AppState) -> Router {
    // Forms may post to this origin only; a form's answer may redirect to a
    // `return_to` origin, which CSP's form-action also governs.
    let form_targets: String = state
        .return_to_origins
        .iter()
        .map(|o| format!(" {}", o.serialize()))
        .collect();
    let csp = format!(
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'{form_targets}; object-src 'none'"
    );
    let csp = HeaderValue::from_str(&csp).expect("serialised origins are valid header text");
    router
        .layer(middleware::from_fn_with_state(
            EveryAnswer {
                metrics: state.metrics.clone(),
                pages: state.pages.clone(),
                csp,
            },
            finish_answer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            server::SLOW_REQUEST_LIMIT,
        ))
        .layer(CatchPanicLayer::custom(|_panic| {
            // The panic's message may hold anything; it is not shown or logged.
            tracing::error!("a request handler panicked");
            crate::web::page::render_plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Please try again.",
            )
        }))
}

/// What every answer gets on its way out.
#[derive(Clone)]
struct EveryAnswer {
    metrics: Metrics,
    pages: Pages,
    csp: HeaderValue,
}

/// An error's page, the security headers of every answer, `no-store` unless
/// the handler set its own caching, the latency metric and the request's one
/// log line: one middleware rather than a layer each, which showed in the
/// per-request cost.
async fn finish_answer(State(every): State<EveryAnswer>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let mut response = render_page_error(&every.pages, &uri, response);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, every.csp);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let elapsed = started.elapsed();
    every.metrics.request_finished(route, elapsed.as_secs_f64());
    request_log::write(
        &method,
        route,
        response.status(),
        elapsed,
        response.extensions().get::<FailureDetail>(),
    );
    response
}
