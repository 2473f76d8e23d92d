//! The backend API: connect sessions, connections, fresh tokens, the
//! proxy and the event outbox, behind the admin bearer (`AdminAuth`); beside them the two routes an
//! app's page or tooling reads without it: a session's status (by its own
//! token) and the OpenAPI document.

mod auth;
mod connections;
pub mod error;
mod events;
mod json_body;
mod listing;
mod openapi;
pub mod pacing;
mod profile;
pub mod proxy;
pub mod proxy_path;
mod proxy_retry;
mod sessions;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post, put};
use axum::Router;

pub use auth::AdminAuth;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/connect-sessions", post(sessions::create))
        .route("/connect-sessions/status", get(sessions::status))
        .route("/connections", get(listing::list))
        .route(
            "/connections/{id}",
            get(connections::show)
                .patch(profile::patch)
                .delete(connections::delete),
        )
        .route(
            "/connections/{id}/access-token",
            get(connections::access_token),
        )
        .route("/connections/{id}/refresh", post(connections::refresh))
        .route("/connections/{id}/api-key", put(connections::put_api_key))
        .route("/connections/{id}/events", get(events::of_connection))
        .route("/events", get(events::list))
        .route("/events/{id}/redeliver", post(events::redeliver))
        .route(
            "/connections/{id}/api/{*path}",
            any(proxy::forward).layer(DefaultBodyLimit::max(proxy::MAX_PROXY_BODY)),
        )
}
