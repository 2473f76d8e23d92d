//! Routes for operators: liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::error::ApiError;
use crate::api::AdminAuth;
use crate::checked::ConnectionStatus;
use crate::state::AppState;

/// On the main listener: `/metrics` needs the admin bearer.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|_: AdminAuth, state: State<AppState>| metrics(state)),
        )
}

/// On `METRICS_ADDR`: `/metrics` without a bearer, nothing else.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.connections.overview().database_answers().await {
        (
            StatusCode::OK,
            format!("ready\nmode: {}\n", state.mode.name()),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    // Counted now, one count at a time (see `Overview::counts`).
    let counts = state.connections.overview().counts().await?;
    state.metrics.table_rows(&counts.swept_tables);
    let oldest_age_ms = counts
        .events
        .oldest_pending_at
        .map_or(0, |at| (state.clock.now_millis() - at).max(0));
    state
        .metrics
        .event_backlog(counts.events.pending, oldest_age_ms / 1000);
    let by_status: Vec<(&'static str, i64)> =
        [ConnectionStatus::Connected, ConnectionStatus::NeedsReauth]
            .into_iter()
            .map(|status| {
                let count = counts
                    .by_status
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                (status.as_str(), count)
            })
            .collect();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&by_status),
    )
        .into_response())
}
