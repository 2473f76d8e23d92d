//! The backend API: connect sessions, connections, fresh tokens and the
//! proxy, all behind the admin bearer (`AdminAuth`).

mod auth;
mod connections;
pub mod error;
mod json_body;
mod proxy;
pub mod proxy_path;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post, put};
use axum::Router;

pub use auth::AdminAuth;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connect-sessions", post(connections::create_session))
        .route("/connections", get(connections::list))
        .route(
            "/connections/{id}",
            get(connections::show).delete(connections::delete),
        )
        .route(
            "/connections/{id}/access-token",
            get(connections::access_token),
        )
        .route("/connections/{id}/refresh", post(connections::refresh))
        .route("/connections/{id}/api-key", put(connections::put_api_key))
        .route(
            "/connections/{id}/api/{*path}",
            any(proxy::forward).layer(DefaultBodyLimit::max(proxy::MAX_PROXY_BODY)),
        )
}
